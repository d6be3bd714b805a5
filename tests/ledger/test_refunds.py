"""Refunds: floored proportional reversal, cumulative, never more than earned, exactly once;
debt or write-off when the points were already spent; reversal from the pending lot."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.time import utcnow
from setia.events.service import RefundExceedsOrder
from setia.jobs.service import run_due
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import WRITE_OFF, Account
from setia.members import service as members
from setia.members.models import Member
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import (
    assert_db_sound,
    balance,
    configure,
    count_transfers,
    lots_of,
    member_by_external_id,
    new_member,
    post_event,
    tx,
)

_ids = iter(range(10**9))


def purchase(
    db: Database,
    t: TenantFixture,
    order: str,
    amount: int,
    member: str = "C-1",
    occurred: Any = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": f"buy-{order}",
        "type": "purchase",
        "member": {"external_id": member},
        "order_id": order,
        "amount": str(amount),
        "currency": "IDR",
    }
    if occurred is not None:
        payload["occurred_at"] = occurred.isoformat()
    rec = post_event(db, t, payload)
    assert rec.created
    return rec.result


def refund(
    db: Database, t: TenantFixture, order: str, amount: int, member: str = "C-1"
) -> dict[str, Any]:
    rec = post_event(
        db,
        t,
        {
            "id": f"refund-{next(_ids)}",
            "type": "refund",
            "member": {"external_id": member},
            "order_id": order,
            "amount": str(amount),
        },
    )
    assert rec.created
    result: dict[str, Any] = rec.result["refund"]
    return result


def redeem(
    db: Database, t: TenantFixture, member_id: uuid.UUID, points: int, at: datetime | None = None
) -> None:
    ctx = ledger.Context(
        program_id=t.program_id,
        idempotency_key=f"redeem-{next(_ids)}",
        request_hash=ledger.request_hash({"points": points}),
    )

    def run(s: Session) -> ledger.Result:
        ledger.set_clock(s, at)  # a redemption made back then: points valid then are spendable
        return ledger.spend(s, ctx, member_id=member_id, amount=points)

    tx(db, run)


def now_balance(db: Database, t: TenantFixture, member_id: uuid.UUID) -> tuple[int, int, int]:
    b = balance(db, t, member_id, utcnow())
    return b["available"], b["pending"], b["debt"]


def test_partial_refunds_reverse_floored_cumulative_shares(
    db: Database, tenant: TenantFixture
) -> None:
    assert purchase(db, tenant, "O1", 100_000)["points"]["earned"] == 100
    member = member_by_external_id(db, tenant, "C-1")
    # A third of 100 points is 33.33: floored to 33. Two thirds are 66.66: 66 in all, so 33
    # more. The last refund completes the order and reverses exactly what is left: 34.
    assert refund(db, tenant, "O1", 33_333)["points_reversed"] == 33
    assert now_balance(db, tenant, member) == (67, 0, 0)
    assert refund(db, tenant, "O1", 33_333)["points_reversed"] == 33
    assert now_balance(db, tenant, member) == (34, 0, 0)
    assert refund(db, tenant, "O1", 33_334)["points_reversed"] == 34
    assert now_balance(db, tenant, member) == (0, 0, 0)
    b = balance(db, tenant, member, utcnow())
    assert b["lifetime"]["earned"] == b["lifetime"]["reversed"] == 100
    assert_db_sound(db)


def test_small_refunds_reverse_nothing_until_a_whole_point_is_due(
    db: Database, tenant: TenantFixture
) -> None:
    purchase(db, tenant, "O1", 10_000)  # 10 points: one per 1,000 refunded
    member = member_by_external_id(db, tenant, "C-1")
    answers = [refund(db, tenant, "O1", 600) for _ in range(5)]
    reversed_ = [a["points_reversed"] for a in answers]
    assert reversed_ == [0, 1, 0, 1, 1]  # floor(0.6), floor(1.2), floor(1.8), floor(2.4), 3
    # one shape for every refund: where the points came from, zeros when none were due
    assert all(set(a) == set(answers[1]) for a in answers)
    assert {k: answers[0][k] for k in ledger.REVERSAL_PARTS} == dict.fromkeys(
        ledger.REVERSAL_PARTS, 0
    )
    assert now_balance(db, tenant, member) == (7, 0, 0)
    assert_db_sound(db)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amount=st.integers(min_value=1_000, max_value=2_000_000),
    cuts=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6),
    full=st.booleans(),
)
def test_any_sequence_of_partial_refunds_is_cumulative_and_never_exceeds_earned(
    db: Database, amount: int, cuts: list[int], full: bool
) -> None:
    t = make_tenant(db)
    earned = purchase(db, t, "O1", amount)["points"]["earned"]
    member = member_by_external_id(db, t, "C-1")
    refunded = reversed_total = 0
    for cut in cuts:
        part = max(1, (amount - refunded) * cut // 10**6)
        if refunded + part > amount:
            break
        reversed_total += refund(db, t, "O1", part)["points_reversed"]
        refunded += part
        want = earned if refunded == amount else earned * refunded // amount
        assert reversed_total == want <= earned
        assert now_balance(db, t, member) == (earned - reversed_total, 0, 0)
    if full and refunded < amount:
        reversed_total += refund(db, t, "O1", amount - refunded)["points_reversed"]
        assert reversed_total == earned
        assert now_balance(db, t, member) == (0, 0, 0)
    assert_db_sound(db)


def test_replaying_a_refund_changes_nothing(client: TestClient, tenant: TenantFixture) -> None:
    buy = {
        "id": "buy-1",
        "type": "purchase",
        "member": {"external_id": "C-1"},
        "order_id": "O1",
        "amount": "100000",
        "currency": "IDR",
    }
    assert client.post("/v1/events", json=buy, headers=tenant.headers).status_code == 201
    back = {
        "id": "refund-1",
        "type": "refund",
        "member": {"external_id": "C-1"},
        "order_id": "O1",
        "amount": "40000",
    }
    first = client.post("/v1/events", json=back, headers=tenant.headers)
    assert first.status_code == 201, first.text
    assert first.json()["refund"]["points_reversed"] == 40
    member_id = first.json()["member_id"]
    for _ in range(3):
        again = client.post("/v1/events", json=back, headers=tenant.headers)
        assert again.status_code == 200
        assert again.json() == first.json()
    b = client.get(f"/v1/members/{member_id}/balance", headers=tenant.headers).json()
    assert b["available"] == 60
    assert b["lifetime"]["reversed"] == 40
    # The same id with another payload is refused, and changes nothing either.
    other = client.post("/v1/events", json={**back, "amount": "50000"}, headers=tenant.headers)
    assert other.status_code == 409
    assert other.json()["code"] == "event_id_reused"
    # A new refund id for the rest reverses exactly the rest.
    rest = client.post(
        "/v1/events", json={**back, "id": "refund-2", "amount": "60000"}, headers=tenant.headers
    )
    assert rest.json()["refund"]["points_reversed"] == 60
    b = client.get(f"/v1/members/{member_id}/balance", headers=tenant.headers).json()
    assert (b["available"], b["lifetime"]["reversed"]) == (0, 100)


def test_refund_beyond_the_order_is_refused_and_writes_nothing(
    db: Database, tenant: TenantFixture
) -> None:
    purchase(db, tenant, "O1", 50_000)
    member = member_by_external_id(db, tenant, "C-1")
    refund(db, tenant, "O1", 30_000)
    before = count_transfers(db, tenant.program_id)
    try:
        refund(db, tenant, "O1", 20_001)
    except RefundExceedsOrder:
        pass
    else:
        raise AssertionError("a refund beyond the order was accepted")
    assert count_transfers(db, tenant.program_id) == before
    assert now_balance(db, tenant, member) == (20, 0, 0)
    assert refund(db, tenant, "O1", 20_000)["points_reversed"] == 20
    assert now_balance(db, tenant, member) == (0, 0, 0)
    assert_db_sound(db)


def test_refund_of_spent_points_becomes_debt_repaid_from_next_earnings(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, refund_shortfall="debt", pending_days=7)
    old = utcnow() - timedelta(days=8)  # past its pending period: available at once
    purchase(db, tenant, "O1", 100_000, occurred=old)
    member = member_by_external_id(db, tenant, "C-1")
    redeem(db, tenant, member, 80)
    out = refund(db, tenant, "O1", 100_000)
    assert out == {
        "amount": "100000",
        "order_id": "O1",
        "points_reversed": 100,
        "already_expired": 0,
        "from_pending": 0,
        "from_available": 20,
        "debt": 80,
        "written_off": 0,
    }
    assert now_balance(db, tenant, member) == (0, 0, 80)
    assert_db_sound(db)

    # The next points to land repay the debt first.
    purchase(db, tenant, "O2", 50_000, occurred=old)
    assert now_balance(db, tenant, member) == (0, 0, 30)
    # Pending points repay nothing until they are released...
    recent = utcnow() - timedelta(hours=1)
    purchase(db, tenant, "O3", 100_000, occurred=recent)
    assert now_balance(db, tenant, member) == (0, 100, 30)
    # ...and then repay what is left of the debt.
    report = run_due(db, now=recent + timedelta(days=7))
    assert report.released_points == 100
    assert now_balance(db, tenant, member) == (70, 0, 0)
    statement = tx(
        db, lambda s: queries.statement(s, tenant.program_id, member, limit=50, before=None)
    )
    codes = [line["code"] for line in statement]
    assert codes.count("DEBT") == 1
    assert codes.count("DEBT_REPAY") == 4  # two transfers each: points out, debt in
    assert_db_sound(db)


def test_refund_of_spent_points_is_written_off_when_the_program_says_so(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, refund_shortfall="write_off")
    purchase(db, tenant, "O1", 100_000)
    member = member_by_external_id(db, tenant, "C-1")
    redeem(db, tenant, member, 80)
    out = refund(db, tenant, "O1", 100_000)
    assert (out["from_available"], out["debt"], out["written_off"]) == (20, 0, 80)
    assert now_balance(db, tenant, member) == (0, 0, 0)

    def written_off(s: Any) -> int:
        acc = s.execute(
            select(Account).where(
                Account.program_id == tenant.program_id, Account.code == WRITE_OFF
            )
        ).scalar_one()
        return int(acc.debits_posted - acc.credits_posted)

    assert tx(db, written_off) == 80
    # Nothing is owed: the next purchase is the member's in full.
    purchase(db, tenant, "O2", 50_000)
    assert now_balance(db, tenant, member) == (50, 0, 0)
    assert_db_sound(db)


def test_refund_while_pending_reverses_from_the_pending_lot(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, pending_days=7)
    occurred = utcnow().replace(microsecond=0) - timedelta(hours=1)
    purchase(db, tenant, "O1", 100_000, occurred=occurred)
    member = member_by_external_id(db, tenant, "C-1")
    assert now_balance(db, tenant, member) == (0, 100, 0)
    out = refund(db, tenant, "O1", 30_000)
    assert (out["from_pending"], out["from_available"], out["debt"]) == (30, 0, 0)
    (lot,) = lots_of(db, tenant, member)
    assert (lot.amount, lot.remaining, lot.released_at) == (100, 70, None)
    assert now_balance(db, tenant, member) == (0, 70, 0)
    # Released on time, the lot brings only what is left of it.
    report = run_due(db, now=occurred + timedelta(days=7))
    assert report.released_points == 70
    assert now_balance(db, tenant, member) == (70, 0, 0)
    # After release, the rest of the refund comes from the available points.
    out = refund(db, tenant, "O1", 70_000)
    assert (out["from_pending"], out["from_available"], out["debt"]) == (0, 70, 0)
    assert now_balance(db, tenant, member) == (0, 0, 0)
    assert_db_sound(db)


def test_full_refund_while_pending_leaves_nothing_to_release(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, pending_days=7)
    occurred = utcnow() - timedelta(hours=1)
    purchase(db, tenant, "O1", 100_000, occurred=occurred)
    purchase(db, tenant, "O2", 20_000, occurred=occurred)
    member = member_by_external_id(db, tenant, "C-1")
    out = refund(db, tenant, "O1", 100_000)
    assert (out["from_pending"], out["from_available"], out["debt"]) == (100, 0, 0)
    # The other order's pending points are not touched.
    assert now_balance(db, tenant, member) == (0, 20, 0)
    report = run_due(db, now=occurred + timedelta(days=8))
    assert report.released_points == 20
    assert now_balance(db, tenant, member) == (20, 0, 0)
    assert_db_sound(db)


def test_refund_takes_the_orders_own_points_first(db: Database, tenant: TenantFixture) -> None:
    """Soonest-expiry-first would take the older order's points; a refund takes its own."""
    configure(db, tenant, expiry_policy="after_duration", expiry_months=12)
    now = utcnow()
    purchase(db, tenant, "OLD", 100_000, occurred=now - timedelta(days=30))
    purchase(db, tenant, "NEW", 100_000, occurred=now - timedelta(days=1))
    member = member_by_external_id(db, tenant, "C-1")
    refund(db, tenant, "NEW", 50_000)
    old_lot, new_lot = lots_of(db, tenant, member)
    assert (old_lot.source_id, old_lot.remaining) == ("OLD", 100)
    assert (new_lot.source_id, new_lot.remaining) == ("NEW", 50)
    # A redemption, by contrast, spends the soonest-expiring (older) lot first.
    redeem(db, tenant, member, 30)
    old_lot, new_lot = lots_of(db, tenant, member)
    assert (old_lot.remaining, new_lot.remaining) == (70, 50)
    assert_db_sound(db)


def test_refund_after_merge_reverses_from_the_survivor(db: Database, tenant: TenantFixture) -> None:
    purchase(db, tenant, "O1", 100_000, member="DUP")
    survivor = new_member(db, tenant, "KEEP")
    source = member_by_external_id(db, tenant, "DUP")

    def merge(s: Any) -> None:
        tenant_row = s.get(Tenant, tenant.tenant_id)
        members.merge_members(
            s, tenant_row, s.get(Member, survivor), s.get(Member, source), actor="t", reason="dup"
        )

    tx(db, merge)
    assert now_balance(db, tenant, survivor) == (100, 0, 0)
    out = refund(db, tenant, "O1", 100_000, member="KEEP")
    assert out["from_available"] == 100
    assert now_balance(db, tenant, survivor) == (0, 0, 0)
    assert now_balance(db, tenant, source) == (0, 0, 0)
    assert_db_sound(db)


def test_refund_after_the_orders_points_expired_takes_nothing_more(
    db: Database, tenant: TenantFixture
) -> None:
    """Expired points already went back to the program: a later refund of the order must not
    take them from the member a second time (from other points, or as debt)."""
    configure(db, tenant, expiry_policy="after_duration", expiry_months=1)
    now = utcnow()
    purchase(db, tenant, "OLD", 100_000, occurred=now - timedelta(days=45))
    member = member_by_external_id(db, tenant, "C-1")
    # 30 of OLD's points spent while they were valid, 70 left to expire
    redeem(db, tenant, member, 30, at=now - timedelta(days=30))
    assert run_due(db, now=now).expired_points == 70
    purchase(db, tenant, "NEW", 50_000, occurred=now - timedelta(days=1))
    assert now_balance(db, tenant, member) == (50, 0, 0)

    # Half the order back: 50 points, all covered by the 70 that expired.
    out = refund(db, tenant, "OLD", 50_000)
    assert out["points_reversed"] == 50
    assert (out["already_expired"], out["from_available"], out["debt"]) == (50, 0, 0)
    assert now_balance(db, tenant, member) == (50, 0, 0)
    # The rest: 20 more expired points, then the 30 that were spent become debt.
    out = refund(db, tenant, "OLD", 50_000)
    assert out["points_reversed"] == 50
    assert (out["already_expired"], out["from_available"], out["debt"]) == (20, 30, 0)
    assert now_balance(db, tenant, member) == (20, 0, 0)
    b = balance(db, tenant, member, utcnow())
    # Taken from the member for OLD in all: 70 expired + 30 reversed = the 100 it earned.
    assert (b["lifetime"]["expired"], b["lifetime"]["reversed"]) == (70, 30)
    assert_db_sound(db)
