"""Redemptions at the same moment (PostgreSQL: real parallel writers, each thread with its
own session): the last unit of stock goes to exactly one member, a member limit of one
lets exactly one redemption through, no balance goes negative, the ledger verifies."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from setia.core.api import write
from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.ledger.models import Account
from setia.programs.models import Program
from setia.rewards import service
from setia.rewards.jobs import run_due as run_rewards
from setia.rewards.models import Reward, RewardMemberUsage, RewardRedemption
from setia.rewards.schemas import RedemptionIn
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, tx
from tests.rewards.helpers import Api, reward

N = 10


def parallel(n: int, fn: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(n, timeout=60)
    out: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            got = fn(i)
            with lock:
                out.append(got)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, errors


def redeem(db: Database, t: TenantFixture, member: str, ref: str, key: str | None = None) -> str:
    """One API-like unit of work in its own session: ``write`` commits or rolls back."""
    session = db.sessionmaker()
    try:

        def run() -> str:
            tenant = session.get(Tenant, t.tenant_id)
            program = session.get(Program, t.program_id)
            assert tenant is not None
            assert program is not None
            red, _ = service.redeem(
                session,
                tenant,
                program,
                uuid.UUID(member),
                RedemptionIn(reward=ref),
                actor="test",
                idempotency_key=key,
            )
            return str(red.id)

        return write(session, run)
    finally:
        session.close()


def no_negative_balance(db: Database, t: TenantFixture) -> None:
    def run(s: Any) -> int:
        return int(
            s.execute(
                select(func.count())
                .select_from(Account)
                .where(
                    Account.program_id == t.program_id,
                    Account.member_id.is_not(None),
                    Account.code == "POINTS",
                    Account.credits_posted - Account.debits_posted - Account.debits_pending < 0,
                )
            ).scalar_one()
        )

    assert tx(db, run) == 0


def codes(errors: list[BaseException]) -> list[str]:
    assert all(isinstance(e, SetiaError) for e in errors), errors
    return sorted(e.code for e in errors if isinstance(e, SetiaError))


@pytest.mark.postgres_only
def test_last_unit_of_stock_goes_to_exactly_one_of_ten(api: Api, db: Database) -> None:
    api.put_reward("LAST", reward("physical", 100, stock_total=1))
    members = [api.member() for _ in range(N)]
    for m in members:
        api.give(m, 150)
    won, errors = parallel(N, lambda i: redeem(db, api.tenant, members[i], "LAST"))
    assert len(won) == 1
    assert codes(errors) == ["out_of_stock"] * (N - 1)
    used = tx(db, lambda s: s.execute(select(Reward.stock_used)).scalar_one())
    assert used == 1
    spent = [m for m in members if api.available(m) == 50]
    assert len(spent) == 1
    assert sorted(api.available(m) for m in members) == [50] + [150] * (N - 1)
    no_negative_balance(db, api.tenant)
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_member_limit_of_one_lets_one_of_ten_through(api: Api, db: Database) -> None:
    api.put_reward("ONCE", reward("physical", 10, member_limit=1, member_limit_period="lifetime"))
    m = api.member()
    api.give(m, 1000)
    won, errors = parallel(N, lambda i: redeem(db, api.tenant, m, "ONCE"))
    assert len(won) == 1
    assert codes(errors) == ["member_limit_reached"] * (N - 1)
    assert api.available(m) == 990
    usage = tx(db, lambda s: s.execute(select(RewardMemberUsage.used)).scalar_one())
    assert usage == 1
    no_negative_balance(db, api.tenant)
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_points_for_only_some_of_many_at_once(api: Api, db: Database) -> None:
    """One member, ten redemptions of an unlimited reward at once, points for four: four
    win, the others are insufficient_points, the balance is exactly zero."""
    api.put_reward("KOPI", reward("physical", 25))
    m = api.member()
    api.give(m, 100)
    won, errors = parallel(N, lambda i: redeem(db, api.tenant, m, "KOPI"))
    assert len(won) == 4
    assert codes(errors) == ["insufficient_points"] * (N - 4)
    assert api.available(m) == 0
    no_negative_balance(db, api.tenant)
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_one_key_from_ten_threads_redeems_once(api: Api, db: Database) -> None:
    api.put_reward("KOPI", reward("physical", 10, stock_total=5))
    m = api.member()
    api.give(m, 1000)
    won, errors = parallel(N, lambda i: redeem(db, api.tenant, m, "KOPI", key="same-key"))
    assert errors == []
    assert len(set(won)) == 1
    assert api.available(m) == 990
    count = tx(
        db, lambda s: s.execute(select(func.count()).select_from(RewardRedemption)).scalar_one()
    )
    assert count == 1
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_cancels_and_jobs_at_once_return_points_once(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 100, stock_total=3))
    m = api.member()
    api.give(m, 1000)
    ids = [api.redeem_ok(m, "MUG")["id"] for _ in range(3)]

    def cancel(i: int) -> str:
        session = db.sessionmaker()
        try:

            def run() -> str:
                tenant = session.get(Tenant, api.tenant.tenant_id)
                assert tenant is not None
                red, _ = service.cancel(
                    session, tenant, uuid.UUID(ids[i % 3]), actor="test", reason="race"
                )
                return red.status

            return write(session, run)
        finally:
            session.close()

    done, errors = parallel(N, cancel)
    assert errors == []
    assert set(done) == {"cancelled"}
    assert api.available(m) == 1000
    assert tx(db, lambda s: s.execute(select(Reward.stock_used)).scalar_one()) == 0
    assert run_rewards(db).as_dict()["errors"] == []
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_parallel_job_runs_expire_each_once(api: Api, db: Database) -> None:
    from datetime import timedelta

    from setia.core.time import utcnow
    from setia.jobs.service import run_due

    api.put_reward("MUG", reward("physical", 10, stock_total=20))
    members = [api.member() for _ in range(4)]
    for m in members:
        api.give(m, 100)
    for m in members:
        for _ in range(3):
            api.redeem_ok(m, "MUG", confirm=False)
    at = utcnow() + timedelta(hours=1)
    reports, errors = parallel(4, lambda i: run_due(db, at))
    assert errors == []
    assert sum(r.rewards.get("expired_holds", 0) for r in reports) == 12
    assert all(r.errors == [] for r in reports)
    assert tx(db, lambda s: s.execute(select(Reward.stock_used)).scalar_one()) == 0
    for m in members:
        assert api.available(m) == 100
        assert api.points(m)["held"] == 0
    assert_db_sound(db)
