"""Two job runners at once (PostgreSQL: real row locks and SKIP LOCKED) give each bonus once
and move each subscription once."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.app import create_app
from setia.core.db import Database
from setia.core.time import utcnow
from setia.ledger.models import Transfer
from setia.ledger.verify import verify
from setia.memberships import jobs
from setia.outbox.models import OutboxMessage
from tests.conftest import TenantFixture
from tests.memberships.conftest import World, jkt


def parallel(world: World, at: datetime, n: int = 4) -> list[jobs.MembershipReport]:
    barrier = threading.Barrier(n, timeout=60)
    out: list[jobs.MembershipReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            out.append(jobs.run_due(world.db, at))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return out


@pytest.mark.postgres_only
def test_parallel_runs_grant_once_and_move_once(world: World) -> None:
    world.plan(period="yearly", price="490000")
    subs = [
        world.start(world.member(f"M{i}"), jkt(2024, 1, 1 + i), amount="490000") for i in range(6)
    ]
    # Each has its month-0 bonus; the year then passes in one go.
    reports = parallel(world, jkt(2025, 2, 1))
    assert sum(r.bonus_grants for r in reports) == 6 * 11
    assert sum(r.lapsed for r in reports) == 6
    assert all(r.errors == [] for r in reports)
    for sub_id in subs:
        assert world.bonus_transfers(sub_id) == 12
        assert world.sub(sub_id).status == "lapsed"
    with world.db.session() as s:
        lapsed = s.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == "membership.lapsed")
        ).scalar_one()
        assert lapsed == 6
        assert verify(s).ok
        assert s.execute(select(func.count()).select_from(Transfer)).scalar_one() >= 72


def test_sequential_reruns_change_nothing(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 31))
    first = world.run(jkt(2024, 3, 1))
    again = world.run(jkt(2024, 3, 1))
    assert first.past_due == 1
    assert again.as_dict() == jobs.MembershipReport().as_dict()
    assert world.bonus_transfers(sub_id) == 1


def test_parallel_webhook_retries_renew_once_and_parallel_starts_make_one(
    db: Database, tenant: TenantFixture
) -> None:
    from tests.memberships.test_api import PLAN, Client
    from tests.rules.test_concurrency import race

    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        api = Client(client, tenant)
        api.plan()
        member = api.member()
        other = api.member("Budi")
        sub = api.start(member).json()
        assert PLAN["price"] == "49000"
    body = {
        "subscription_id": sub["id"],
        "gateway": "midtrans",
        "external_id": "ORD-RACE",
        "status": "paid",
        "amount": "49000",
        "currency": "IDR",
        "occurred_at": utcnow().isoformat(),
        "payload": {"transaction_status": "settlement"},
    }
    statuses = race(
        4,
        lambda c, _i: (
            c.post("/v1/subscription-payments", json=body, headers=tenant.headers).status_code
        ),
        db,
    )
    assert sorted(statuses) == [200, 200, 200, 201]
    starts = race(
        4,
        lambda c, i: Client(c, tenant).start(other, ext=f"ORD-S{i}").json().get("code", "ok"),
        db,
    )
    assert sorted(starts) == ["membership_exists"] * 3 + ["ok"]
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        got = client.get(f"/v1/subscriptions/{sub['id']}", headers=tenant.headers).json()
    assert got["periods_paid"] == 2
