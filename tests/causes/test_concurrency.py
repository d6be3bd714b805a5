"""Donations at the same moment (PostgreSQL: real parallel writers): the match budget is
never passed, receipt numbers stay unique and gap-free, a retried key gives one donation."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.causes import service as causes
from setia.causes.models import Donation
from setia.core.api import write
from setia.core.db import Database
from setia.programs.models import Program
from tests.causes.support import balance, cause_row, member_with_points, put_cause
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, tx


def parallel(
    n: int, fn: Callable[[int], causes.Given]
) -> tuple[list[causes.Given], list[BaseException]]:
    barrier = threading.Barrier(n, timeout=60)
    out: list[causes.Given] = []
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


def give(
    db: Database, t: TenantFixture, cause_id: uuid.UUID, member_id: uuid.UUID, points: int, key: str
) -> causes.Given:
    """One API-like unit of work: ``write`` commits, and retries after a unique-key race."""
    session = db.sessionmaker()
    try:

        def run() -> causes.Given:
            program = session.get(Program, t.program_id)
            assert program is not None
            return causes.give(
                session,
                tenant_id=t.tenant_id,
                program=program,
                cause_id=cause_id,
                member_id=member_id,
                points=points,
                idempotency_key=key,
                actor="test",
            )

        given = write(session, run)
        session.expunge(given.donation)
        return given
    finally:
        session.close()


@pytest.mark.postgres_only
def test_ten_members_at_once_match_exactly_the_budget(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, match_ratio="1", match_budget=300, receipt_prefix="TP")
    members = [member_with_points(db, tenant, 1000) for _ in range(10)]

    out, errors = parallel(10, lambda i: give(db, tenant, cause_id, members[i], 100, f"conc-{i}"))
    assert errors == []
    assert len(out) == 10
    matched = sorted(g.donation.matched_points for g in out)
    assert sum(matched) == 300
    assert matched == [0] * 7 + [100] * 3
    cause = cause_row(db, cause_id)
    assert cause.matched_points == 300
    assert cause.donated_points == 1000
    assert cause.donations_count == 10
    numbers = sorted(int(g.donation.receipt_number.rsplit("-", 1)[1]) for g in out)
    assert numbers == list(range(1, 11))
    assert all(re.fullmatch(r"TP-\d{4}-\d{6}", g.donation.receipt_number) for g in out)
    for m in members:
        assert balance(db, tenant, m) == 900
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_partial_match_under_concurrency_never_exceeds_budget(
    db: Database, tenant: TenantFixture
) -> None:
    # 10 × 70 asks for 700; the budget of 250 is 3 full matches and one of 40
    cause_id = put_cause(db, tenant, match_ratio="1", match_budget=250)
    members = [member_with_points(db, tenant, 1000) for _ in range(10)]
    out, errors = parallel(10, lambda i: give(db, tenant, cause_id, members[i], 70, f"p-{i}"))
    assert errors == []
    matched = sorted(g.donation.matched_points for g in out)
    assert matched == [0] * 6 + [40] + [70] * 3
    assert cause_row(db, cause_id).matched_points == 250
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_same_key_from_ten_threads_gives_once(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, match_ratio="1", match_budget=1000)
    m = member_with_points(db, tenant, 1000)
    out, errors = parallel(10, lambda i: give(db, tenant, cause_id, m, 100, "same-key"))
    assert errors == []
    assert len({g.donation.id for g in out}) == 1
    assert sum(g.created for g in out) == 1
    assert balance(db, tenant, m) == 900
    cause = cause_row(db, cause_id)
    assert (cause.donated_points, cause.matched_points) == (100, 100)
    rows = tx(db, lambda s: list(s.execute(select(Donation.id)).scalars()))
    assert len(rows) == 1
    assert_db_sound(db)


@pytest.mark.postgres_only
def test_one_member_racing_against_their_cap(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(
        db, tenant, match_ratio="1", match_budget=100_000, match_cap_per_member=250
    )
    m = member_with_points(db, tenant, 10_000)
    out, errors = parallel(6, lambda i: give(db, tenant, cause_id, m, 100, f"cap-{i}"))
    assert errors == []
    assert sum(g.donation.matched_points for g in out) == 250
    assert balance(db, tenant, m) == 9400


@pytest.mark.postgres_only
def test_guarded_totals_update_alone_never_passes_the_budget(
    db: Database, tenant: TenantFixture
) -> None:
    """The ledger's locks happen to serialise whole donations today; the cause's own guarded
    UPDATE must hold the budget even without them (10 writers, each asking for 100 of 300)."""
    cause_id = put_cause(db, tenant, match_ratio="1", match_budget=300)
    barrier = threading.Barrier(10, timeout=60)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            with db.session() as s:
                barrier.wait()
                match = causes._add_totals(s, cause_id, 100, 100)
            with lock:
                got.append(match)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == [0] * 7 + [100] * 3
    cause = cause_row(db, cause_id)
    assert cause.matched_points == 300
    assert cause.donated_points == 1000


@pytest.mark.postgres_only
def test_retry_that_lost_the_race_after_its_first_look_gets_the_first_donation(
    db: Database, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B looks for the key (nothing yet), A then commits its donation, B reaches the ledger
    and finds A's transfer: B must answer with A's donation, not a conflict."""
    cause_id = put_cause(db, tenant)
    m = member_with_points(db, tenant, 1000)
    real_find = causes._find_donation
    a_done = threading.Event()
    b_looked = threading.Event()

    def find(s: Session, tenant_id: uuid.UUID, key: str, digest: str) -> Donation | None:
        found = real_find(s, tenant_id, key, digest)
        if threading.current_thread().name == "B" and not b_looked.is_set():
            b_looked.set()
            assert a_done.wait(30)
        return found

    monkeypatch.setattr(causes, "_find_donation", find)
    results: dict[str, causes.Given] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            if name == "A":
                assert b_looked.wait(30)
            results[name] = give(db, tenant, cause_id, m, 100, "raced")
        except BaseException as exc:
            errors.append(exc)
        finally:
            if name == "A":
                a_done.set()

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("B", "A")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results["A"].created
    assert not results["B"].created
    assert results["B"].donation.id == results["A"].donation.id
    assert balance(db, tenant, m) == 900
