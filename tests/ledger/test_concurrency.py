"""Races on real row locks: threads start together on a barrier, each with its own client or
sessions, against one database. The PostgreSQL tests need ``--db=postgres``; on SQLite the
same kind of race is serialised by ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.app import create_app
from setia.core.db import Database
from setia.core.time import utcnow
from setia.jobs.service import JobReport, run_due
from setia.ledger import service as ledger
from setia.ledger.models import Lot, LotMovement, Transfer
from tests.conftest import TenantFixture
from tests.ledger.support import (
    assert_db_sound,
    balance,
    count_transfers,
    member_by_external_id,
    new_member,
    tx,
)

T = TypeVar("T")


def race(n: int, setup: Callable[[], Any], work: Callable[[Any], T]) -> list[T]:
    """Run ``work`` in ``n`` threads released together; ``setup`` runs first in each thread.
    Any exception in a thread fails the test."""
    barrier = threading.Barrier(n, timeout=60)
    results: list[T | None] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            ctx = setup()
            try:
                barrier.wait()
                results[i] = work(ctx)
            finally:
                if hasattr(ctx, "__exit__"):
                    ctx.__exit__(None, None, None)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def api_client(db: Database) -> Callable[[], TestClient]:
    def make() -> TestClient:
        client = TestClient(create_app(db), raise_server_exceptions=False)
        client.__enter__()
        return client

    return make


def give(db: Database, t: TenantFixture, member_id: uuid.UUID, points: int) -> None:
    ctx = ledger.Context(
        program_id=t.program_id,
        idempotency_key=f"give:{member_id}",
        request_hash=ledger.request_hash({"give": points}),
    )
    tx(
        db,
        lambda s: ledger.adjust(
            s, ctx, member_id=member_id, delta=points, earned_at=utcnow(), expires_at=None
        ),
    )


def redemption_race(db: Database, t: TenantFixture, threads: int, points: int) -> None:
    member = new_member(db, t, "C-1")
    give(db, t, member, points)

    def redeem(client: TestClient) -> tuple[int, str | None]:
        r = client.post(
            f"/v1/members/{member}/points/redeem", json={"points": 100}, headers=t.headers
        )
        return r.status_code, r.json().get("code")

    outcomes = Counter(race(threads, api_client(db), redeem))
    wins = points // 100
    assert outcomes == {(201, None): wins, (409, "insufficient_points"): threads - wins}
    b = balance(db, t, member, utcnow())
    assert (b["available"], b["held"], b["lifetime"]["redeemed"]) == (0, 0, points)
    assert count_transfers(db, t.program_id, code="REDEEM") == wins
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_twenty_redemptions_of_a_700_point_balance_postgres(
    db: Database, tenant: TenantFixture
) -> None:
    """20 threads each redeem 100 of 700 points: exactly 7 succeed, 13 get 409."""
    redemption_race(db, tenant, threads=20, points=700)


def test_concurrent_redemptions_are_serialised(db: Database, tenant: TenantFixture) -> None:
    """The same race, smaller, on either backend (SQLite: BEGIN IMMEDIATE)."""
    redemption_race(db, tenant, threads=6, points=300)


@pytest.mark.postgres_only
@pytest.mark.parametrize("member_exists", [True, False], ids=["known-member", "new-member"])
def test_same_event_from_ten_threads_awards_once(
    db: Database, tenant: TenantFixture, member_exists: bool
) -> None:
    if member_exists:
        new_member(db, tenant, "C-1")
    event = {
        "id": "pos-7-000123",
        "type": "purchase",
        "occurred_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "member": {"external_id": "C-1"},
        "order_id": "INV-123",
        "amount": "85000",
        "currency": "IDR",
    }

    def post(client: TestClient) -> tuple[int, dict[str, Any]]:
        r = client.post("/v1/events", json=event, headers=tenant.headers)
        return r.status_code, r.json()

    outcomes = race(10, api_client(db), post)
    statuses = Counter(status for status, _ in outcomes)
    assert statuses == {201: 1, 200: 9}, [body for _, body in outcomes]
    bodies = [body for _, body in outcomes]
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["points"]["earned"] == 85
    member = member_by_external_id(db, tenant, "C-1")
    assert count_transfers(db, tenant.program_id, code="EARN") == 1
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["lifetime"]["earned"]) == (85, 85)
    assert_db_sound(db)


def many_due_lots(
    db: Database, t: TenantFixture, members: int, per_member: int
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Lots that will be due: some pending (to release), some available (to expire)."""
    now = utcnow()
    pending_ids: list[uuid.UUID] = []
    available_ids: list[uuid.UUID] = []
    for m in range(members):
        member = new_member(db, t, f"M-{m}")

        def earn_all(s: Session, member: uuid.UUID = member) -> None:
            for i in range(per_member):
                ctx = ledger.Context(
                    program_id=t.program_id,
                    idempotency_key=f"lot:{member}:{i}",
                    request_hash=ledger.request_hash({"lot": i}),
                )
                pending = i % 2 == 0
                res = ledger.earn(
                    s,
                    ctx,
                    member_id=member,
                    amount=10 + i,
                    earned_at=now,
                    pending_until=now + timedelta(hours=1) if pending else None,
                    expires_at=now + timedelta(hours=2),
                )
                assert res.lot_id is not None
                (pending_ids if pending else available_ids).append(res.lot_id)

        tx(db, earn_all)
    return pending_ids, available_ids


@pytest.mark.postgres_only
def test_two_job_runners_release_and_expire_each_lot_exactly_once(
    db: Database, tenant: TenantFixture
) -> None:
    pending_ids, available_ids = many_due_lots(db, tenant, members=30, per_member=10)
    all_ids = pending_ids + available_ids
    total = tx(db, lambda s: int(s.execute(select(func.sum(Lot.amount))).scalar_one()))
    pending_total = tx(
        db,
        lambda s: int(
            s.execute(select(func.sum(Lot.amount)).where(Lot.id.in_(pending_ids))).scalar_one()
        ),
    )
    later = utcnow() + timedelta(hours=3)

    reports: list[JobReport] = race(2, lambda: None, lambda _ctx: run_due(db, now=later))
    assert len(reports) == 2
    assert all(r.errors == [] for r in reports)
    assert sum(r.released_lots for r in reports) == len(pending_ids)
    assert sum(r.released_points for r in reports) == pending_total
    assert sum(r.expired_lots for r in reports) == len(all_ids)
    assert sum(r.expired_points for r in reports) == total

    def per_lot(s: Session, code: str) -> dict[uuid.UUID, int]:
        rows = s.execute(
            select(Lot.id, func.count(LotMovement.id))
            .join(LotMovement, LotMovement.lot_id == Lot.id)
            .join(Transfer, Transfer.id == LotMovement.transfer_id)
            .where(Transfer.code == code)
            .group_by(Lot.id)
        ).all()
        return {lot: int(n) for lot, n in rows}

    expired = tx(db, lambda s: per_lot(s, "EXPIRE"))
    assert expired == dict.fromkeys(all_ids, 1)
    released = tx(
        db,
        lambda s: Counter(
            s.execute(select(Transfer.idempotency_key).where(Transfer.code == "RELEASE")).scalars()
        ),
    )
    assert released == {f"release:{lot}": 1 for lot in pending_ids}
    assert tx(db, lambda s: s.execute(select(func.sum(Lot.remaining))).scalar_one()) == 0
    again = run_due(db, now=later)
    assert (again.released_lots, again.expired_lots, again.errors) == (0, 0, [])
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_two_job_runners_expire_each_hold_exactly_once(db: Database, tenant: TenantFixture) -> None:
    holds: list[uuid.UUID] = []
    for m in range(30):
        member = new_member(db, tenant, f"H-{m}")
        give(db, tenant, member, 100)

        def place(s: Session, member: uuid.UUID = member) -> None:
            for i in range(3):
                ctx = ledger.Context(
                    program_id=tenant.program_id,
                    idempotency_key=f"hold:{member}:{i}",
                    request_hash=ledger.request_hash({"hold": i}),
                )
                res = ledger.spend(
                    s, ctx, member_id=member, amount=30, hold_for=timedelta(minutes=1)
                )
                holds.append(res.transfer_id)

        tx(db, place)
    later = utcnow() + timedelta(minutes=2)
    reports: list[JobReport] = race(2, lambda: None, lambda _ctx: run_due(db, now=later))
    assert all(r.errors == [] for r in reports)
    assert sum(r.expired_holds for r in reports) == len(holds)
    resolutions = tx(
        db,
        lambda s: Counter(
            s.execute(
                select(Transfer.pending_id).where(Transfer.kind == "EXPIRE_PENDING")
            ).scalars()
        ),
    )
    assert resolutions == dict.fromkeys(holds, 1)
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_concurrent_refunds_of_one_order_reverse_at_most_what_it_earned(
    db: Database, tenant: TenantFixture
) -> None:
    """Different refund events for the same order, at once: the order's refunded amount and
    reversed points are read under a lock, so no refund is counted twice."""
    buy = {
        "id": "buy-1",
        "type": "purchase",
        "occurred_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "member": {"external_id": "C-1"},
        "order_id": "INV-1",
        "amount": "100000",
        "currency": "IDR",
    }
    make = api_client(db)
    with make() as client:
        assert client.post("/v1/events", json=buy, headers=tenant.headers).status_code == 201
    member = member_by_external_id(db, tenant, "C-1")
    n = iter(range(100))

    def refund(client: TestClient, amount: str) -> tuple[int, str | None]:
        body = {
            "id": f"refund-{next(n)}",
            "type": "refund",
            "member": {"external_id": "C-1"},
            "order_id": "INV-1",
            "amount": amount,
        }
        r = client.post("/v1/events", json=body, headers=tenant.headers)
        return r.status_code, r.json().get("code")

    # Two full refunds at once: one is done, the other finds nothing left to refund.
    outcomes = Counter(race(2, make, lambda c: refund(c, "100000")))
    assert outcomes == {(201, None): 1, (409, "refund_exceeds_order"): 1}
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["debt"], b["lifetime"]["reversed"]) == (0, 0, 100)
    assert_db_sound(db)

    # Ten tenths of another order at once: all done, exactly everything reversed.
    with make() as client:
        r = client.post(
            "/v1/events", json={**buy, "id": "buy-2", "order_id": "INV-2"}, headers=tenant.headers
        )
        assert r.status_code == 201

    def tenth(client: TestClient) -> int:
        body = {
            "id": f"refund-2-{next(n)}",
            "type": "refund",
            "member": {"external_id": "C-1"},
            "order_id": "INV-2",
            "amount": "10000",
        }
        return client.post("/v1/events", json=body, headers=tenant.headers).status_code

    assert race(10, make, tenth) == [201] * 10
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["debt"], b["lifetime"]["reversed"]) == (0, 0, 200)
    assert_db_sound(db)
