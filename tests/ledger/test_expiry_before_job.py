"""Points past their expiry date are gone at once, not when the expiry job next runs.

The job (``setia jobs run``, or the worker) writes the EXPIRE transfers; until it runs, a
lot past its date still counts in the account's counters. The balance must not show those
points as available, and nothing may spend, move, take back or repay a debt with them: the
ledger expires such lots itself, under the account's lock, before points leave the account.
Whether the job ran first or not, the member ends up with the same points. (And a purchase
answer says how many of its points repaid a debt.)
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.events.batch import record_batch
from setia.jobs.service import run_due
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import Lot
from setia.outbox.models import OutboxMessage
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import (
    assert_db_sound,
    balance,
    configure,
    count_transfers,
    lots_of,
    member_by_external_id,
    post_event,
    tx,
)

_ids = itertools.count(1)


def buy(db: Database, t: TenantFixture, order: str, amount: int, days_ago: float) -> None:
    rec = post_event(
        db,
        t,
        {
            "id": f"buy-{order}",
            "type": "purchase",
            "occurred_at": (utcnow() - timedelta(days=days_ago)).isoformat(),
            "member": {"external_id": "C-1"},
            "order_id": order,
            "amount": str(amount),
            "currency": "IDR",
        },
    )
    assert rec.created


def refund(db: Database, t: TenantFixture, order: str, amount: int) -> dict[str, Any]:
    rec = post_event(
        db,
        t,
        {
            "id": f"refund-{next(_ids)}",
            "type": "refund",
            "member": {"external_id": "C-1"},
            "order_id": order,
            "amount": str(amount),
        },
    )
    assert rec.created
    out: dict[str, Any] = rec.result["refund"]
    return out


def ctx(t: TenantFixture, op: str) -> ledger.Context:
    key = f"{op}-{next(_ids)}"
    return ledger.Context(
        program_id=t.program_id, idempotency_key=key, request_hash=ledger.request_hash(key)
    )


def redeem(db: Database, t: TenantFixture, member: uuid.UUID, points: int) -> ledger.Result:
    c = ctx(t, "redeem")
    return tx(db, lambda s: ledger.spend(s, c, member_id=member, amount=points))


def expired_messages(db: Database) -> list[dict[str, Any]]:
    return tx(
        db,
        lambda s: [
            m.payload
            for m in s.execute(
                select(OutboxMessage).where(OutboxMessage.topic == "points.expired")
            ).scalars()
        ],
    )


def remaining(db: Database, t: TenantFixture, member: uuid.UUID) -> list[int]:
    return [lot.remaining for lot in lots_of(db, t, member)]


def one_month_expiry(db: Database, t: TenantFixture, **more: Any) -> None:
    configure(db, t, expiry_policy="after_duration", expiry_months=1, **more)


def test_balance_leaves_out_points_past_expiry_before_the_job_runs(
    db: Database, tenant: TenantFixture
) -> None:
    one_month_expiry(db, tenant)
    buy(db, tenant, "OLD", 85_000, days_ago=40)  # expired about ten days ago
    buy(db, tenant, "NEW", 30_000, days_ago=1)
    member = member_by_external_id(db, tenant, "C-1")
    now = utcnow()
    b = tx(db, lambda s: queries.balance(s, tenant.program_id, member, now=now, soon_days=60))
    assert b["available"] == 30
    # the expired lot is not "expiring soon" either: only the new one, in about a month
    assert [x["points"] for x in b["expiring_soon"]] == [30]
    assert remaining(db, tenant, member) == [85, 30]  # nothing written by reading
    report = run_due(db, now=now)
    assert (report.expired_points, report.expired_lots) == (85, 1)
    assert balance(db, tenant, member, now)["available"] == 30
    assert_db_sound(db)


def test_a_redemption_cannot_spend_points_past_expiry(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    one_month_expiry(db, tenant)
    buy(db, tenant, "OLD", 85_000, days_ago=40)
    buy(db, tenant, "NEW", 30_000, days_ago=1)
    member = member_by_external_id(db, tenant, "C-1")
    url = f"/v1/members/{member}/points/redeem"
    body = {"program_id": str(tenant.program_id), "points": 100, "reference": "R-1"}
    r = client.post(url, json=body, headers=tenant.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "insufficient_points"
    # refused: nothing written, the expiry included (the job will do it)
    assert count_transfers(db, tenant.program_id, code="EXPIRE") == 0
    assert remaining(db, tenant, member) == [85, 30]

    r = client.post(url, json={**body, "points": 30}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    # the expired lot was expired first, as the job would have: nothing left to spend
    assert remaining(db, tenant, member) == [0, 0]
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["lifetime"]["expired"], b["lifetime"]["redeemed"]) == (0, 85, 30)
    assert [(m["points"], m["reason"]) for m in expired_messages(db)] == [(85, "expiry")]
    assert run_due(db, now=utcnow()).expired_points == 0  # the job finds nothing more
    assert_db_sound(db)


def test_a_transfer_cannot_move_points_past_expiry(db: Database, tenant: TenantFixture) -> None:
    one_month_expiry(db, tenant, allow_member_transfers=True)
    buy(db, tenant, "OLD", 85_000, days_ago=40)
    buy(db, tenant, "NEW", 30_000, days_ago=1)
    member = member_by_external_id(db, tenant, "C-1")
    buy_other = {
        "id": "buy-other",
        "type": "purchase",
        "member": {"external_id": "C-2"},
        "order_id": "OTHER",
        "amount": "1000",
        "currency": "IDR",
    }
    assert post_event(db, tenant, buy_other).created
    other = member_by_external_id(db, tenant, "C-2")

    def move(points: int) -> Any:
        c = ctx(tenant, "transfer")
        return lambda s: ledger.transfer_between_members(
            s, c, from_member=member, to_member=other, amount=points
        )

    with pytest.raises(ledger.InsufficientPoints):
        tx(db, move(50))
    tx(db, move(30))
    assert balance(db, tenant, other, utcnow())["available"] == 31
    # the recipient's new lot keeps the expiry date of the points it came from
    new_lot = lots_of(db, tenant, other)[-1]
    assert new_lot.remaining == 30
    assert new_lot.expires_at is not None
    assert new_lot.expires_at > utcnow()
    assert_db_sound(db)


def test_a_refund_counts_the_orders_expired_points_as_expired_before_the_job_runs(
    db: Database, tenant: TenantFixture
) -> None:
    """The same refund, with and without the job having run first, takes the same points."""
    answers = []
    for run_job_first in (False, True):
        t = make_tenant(db)
        one_month_expiry(db, t)
        buy(db, t, f"OLD-{run_job_first}", 85_000, days_ago=40)
        buy(db, t, f"NEW-{run_job_first}", 30_000, days_ago=1)
        if run_job_first:
            assert run_due(db, now=utcnow()).expired_points >= 85
        out = refund(db, t, f"OLD-{run_job_first}", 85_000)
        member = member_by_external_id(db, t, "C-1")
        answers.append((out["already_expired"], out["from_available"], out["debt"]))
        assert balance(db, t, member, utcnow())["available"] == 30
    assert answers[0] == answers[1] == (85, 0, 0)
    assert_db_sound(db)


def test_a_debt_is_not_repaid_with_points_past_expiry(db: Database, tenant: TenantFixture) -> None:
    one_month_expiry(db, tenant, refund_shortfall="debt")
    buy(db, tenant, "O1", 100_000, days_ago=1)
    member = member_by_external_id(db, tenant, "C-1")
    redeem(db, tenant, member, 100)
    assert refund(db, tenant, "O1", 100_000)["debt"] == 100
    # An adjustment whose points are already past their date lands and expires at once:
    # it repays nothing.
    c = ctx(tenant, "adjust")
    res = tx(
        db,
        lambda s: ledger.adjust(
            s,
            c,
            member_id=member,
            delta=50,
            earned_at=utcnow() - timedelta(days=60),
            expires_at=utcnow() - timedelta(days=1),
        ),
    )
    assert res.amounts == {"earned": 50, "debt_repaid": 0}
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["debt"], b["lifetime"]["expired"]) == (0, 100, 50)
    # Points still valid repay it.
    buy(db, tenant, "O2", 85_000, days_ago=0.01)
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["debt"]) == (0, 15)
    assert run_due(db, now=utcnow()).expired_points == 0
    assert_db_sound(db)


def test_pending_points_expiring_within_the_window_are_listed(
    db: Database, tenant: TenantFixture
) -> None:
    configure(
        db,
        tenant,
        pending_days=7,
        expiry_policy="end_of_period",
        expiry_months=0,
        expiry_period="month",
    )
    buy(db, tenant, "O1", 85_000, days_ago=0.01)
    member = member_by_external_id(db, tenant, "C-1")
    (lot,) = lots_of(db, tenant, member)
    assert lot.expires_at is not None
    assert lot.pending_until is not None
    b = tx(db, lambda s: queries.balance(s, tenant.program_id, member, now=utcnow(), soon_days=40))
    assert (b["available"], b["pending"]) == (0, 85)
    assert [(x["points"], x["expires_at"]) for x in b["expiring_soon"]] == [(85, lot.expires_at)]


def test_expiring_before_a_spend_writes_what_the_job_writes(
    db: Database, tenant: TenantFixture
) -> None:
    """One EXPIRE transfer per lot, from the member's points to the program's EXPIRED
    account, and the lot's movement: `ledger verify` checks lots against the counters."""
    one_month_expiry(db, tenant)
    buy(db, tenant, "A", 20_000, days_ago=45)
    buy(db, tenant, "B", 30_000, days_ago=40)
    buy(db, tenant, "C", 40_000, days_ago=1)
    member = member_by_external_id(db, tenant, "C-1")
    redeem(db, tenant, member, 10)
    assert count_transfers(db, tenant.program_id, code="EXPIRE") == 2
    assert remaining(db, tenant, member) == [0, 0, 30]
    assert sorted(m["points"] for m in expired_messages(db)) == [20, 30]
    left = tx(
        db,
        lambda s: s.execute(
            select(func.count()).select_from(Lot).where(Lot.remaining > 0)
        ).scalar_one(),
    )
    assert left == 1
    assert_db_sound(db)


# --------------------------------------------------------------------------- inactivity


def inactivity(db: Database, t: TenantFixture, months: int = 6) -> None:
    configure(db, t, expiry_policy="inactivity", expiry_months=months)


def purchase_body(order: str, amount: int, days_ago: float) -> dict[str, Any]:
    return {
        "id": f"buy-{order}",
        "type": "purchase",
        "occurred_at": (utcnow() - timedelta(days=days_ago)).isoformat(),
        "member": {"external_id": "C-1"},
        "order_id": order,
        "amount": str(amount),
        "currency": "IDR",
    }


def record(db: Database, t: TenantFixture, bodies: list[dict[str, Any]], path: str) -> None:
    """Record the events one by one, or in one batch; every one must be created."""
    if path == "batch":

        def run(s: Any) -> Any:
            out = record_batch(s, s.get(Tenant, t.tenant_id), bodies)
            s.commit()
            return out

        out = tx(db, run)
        assert (out.created, out.failed) == (len(bodies), 0)
    else:
        for body in bodies:
            assert post_event(db, t, body).created


def test_after_the_inactivity_period_points_are_gone_before_the_job_runs(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    inactivity(db, tenant)
    buy(db, tenant, "OLD", 85_000, days_ago=240)  # the member's last activity, 8 months ago
    member = member_by_external_id(db, tenant, "C-1")
    assert balance(db, tenant, member, utcnow())["available"] == 0
    # ... but not before the period ended
    assert balance(db, tenant, member, utcnow() - timedelta(days=70))["available"] == 85
    url = f"/v1/members/{member}/points/redeem"
    body = {"program_id": str(tenant.program_id), "points": 10, "reference": "R-1"}
    r = client.post(url, json=body, headers=tenant.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "insufficient_points"
    assert remaining(db, tenant, member) == [85]  # refused: nothing written
    report = run_due(db, now=utcnow())
    assert (report.expired_points, report.expired_lots) == (85, 1)
    assert_db_sound(db)


@pytest.mark.parametrize("path", ["one by one", "batch"])
def test_a_member_back_after_the_inactivity_period_keeps_only_the_new_points(
    db: Database, tenant: TenantFixture, path: str
) -> None:
    """The job would have expired the old points at the end of the period; a purchase that
    brings the member back must not save them by refreshing the last activity."""
    inactivity(db, tenant)
    buy(db, tenant, "OLD", 85_000, days_ago=240)
    member = member_by_external_id(db, tenant, "C-1")
    body = purchase_body("NEW", 30_000, days_ago=0.01)
    record(db, tenant, [body], path)
    assert remaining(db, tenant, member) == [0, 30]
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["lifetime"]["expired"]) == (30, 85)
    assert [(m["points"], m["reason"]) for m in expired_messages(db)] == [(85, "inactivity")]
    assert run_due(db, now=utcnow()).expired_points == 0
    assert_db_sound(db)


def test_an_active_member_keeps_points_under_the_inactivity_policy(
    db: Database, tenant: TenantFixture
) -> None:
    inactivity(db, tenant)
    buy(db, tenant, "A", 85_000, days_ago=150)  # five months ago: still inside the period
    buy(db, tenant, "B", 30_000, days_ago=0.01)
    member = member_by_external_id(db, tenant, "C-1")
    assert remaining(db, tenant, member) == [85, 30]
    redeem(db, tenant, member, 100)
    assert balance(db, tenant, member, utcnow())["available"] == 15
    assert expired_messages(db) == []
    assert_db_sound(db)


def test_a_purchase_answer_says_what_repaid_the_debt(db: Database, tenant: TenantFixture) -> None:
    configure(db, tenant, refund_shortfall="debt")
    buy(db, tenant, "O1", 100_000, days_ago=1)
    member = member_by_external_id(db, tenant, "C-1")
    redeem(db, tenant, member, 100)
    assert refund(db, tenant, "O1", 100_000)["debt"] == 100
    rec = post_event(db, tenant, purchase_body("O2", 60_000, days_ago=0.01))
    assert rec.result["points"]["earned"] == 60
    assert rec.result["points"]["debt_repaid"] == 60
    rec = post_event(db, tenant, purchase_body("O3", 85_000, days_ago=0.01))
    assert rec.result["points"]["debt_repaid"] == 40
    rec = post_event(db, tenant, purchase_body("O4", 10_000, days_ago=0.01))
    assert "debt_repaid" not in rec.result["points"]  # nothing owed any more
    assert balance(db, tenant, member, utcnow())["available"] == 55
    assert_db_sound(db)


def member_purchase(external_id: str, order: str, amount: int, days_ago: float) -> dict[str, Any]:
    return {**purchase_body(order, amount, days_ago), "member": {"external_id": external_id}}


def test_a_member_back_after_inactivity_repays_a_debt_from_the_new_points(
    db: Database, tenant: TenantFixture
) -> None:
    """The returning event counts as activity before it earns: the points it earns are not
    judged by the old activity (they would all expire again)."""
    inactivity(db, tenant)
    configure(db, tenant, refund_shortfall="debt")
    buy(db, tenant, "O1", 100_000, days_ago=240)
    member = member_by_external_id(db, tenant, "C-1")
    c = ctx(tenant, "redeem")

    def spend_back_then(s: Any) -> Any:
        ledger.set_clock(s, utcnow() - timedelta(days=239))  # spent while still active
        return ledger.spend(s, c, member_id=member, amount=100)

    tx(db, spend_back_then)
    body = {
        "id": "refund-O1",
        "type": "refund",
        "occurred_at": (utcnow() - timedelta(days=238)).isoformat(),
        "member": {"external_id": "C-1"},
        "order_id": "O1",
        "amount": "100000",
    }
    assert post_event(db, tenant, body).result["refund"]["debt"] == 100
    rec = post_event(db, tenant, purchase_body("O2", 300_000, days_ago=0.01))
    assert rec.result["points"]["debt_repaid"] == 100
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["debt"], b["lifetime"]["expired"]) == (200, 0, 0)
    assert_db_sound(db)


def test_a_merge_expires_each_records_points_that_are_gone(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    """An inactive duplicate's points do not survive by moving into an active member (the
    job would have expired them); the survivor's own points stay."""
    inactivity(db, tenant)
    assert post_event(db, tenant, member_purchase("OLD-1", "OA", 85_000, days_ago=240)).created
    assert post_event(db, tenant, member_purchase("NEW-1", "OB", 10_000, days_ago=1)).created
    source = member_by_external_id(db, tenant, "OLD-1")
    survivor = member_by_external_id(db, tenant, "NEW-1")
    r = client.post(
        f"/v1/members/{survivor}/merge",
        json={"source_member_id": str(source), "reason": "duplicate"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    b = balance(db, tenant, survivor, utcnow())
    assert (b["available"], b["lifetime"]["expired"]) == (10, 85)
    assert [(m["points"], m["reason"]) for m in expired_messages(db)] == [(85, "inactivity")]
    assert run_due(db, now=utcnow()).expired_points == 0
    assert_db_sound(db)


def test_a_late_refund_takes_the_same_points_whether_or_not_the_job_ran(
    db: Database, tenant: TenantFixture
) -> None:
    """The ledger judges expiry when it processes an operation, as the job does, not at
    the date the operation carries: a refund dated a week ago cannot take points that have
    expired since."""
    answers = []
    for run_job_first in (False, True):
        t = make_tenant(db)
        one_month_expiry(db, t, refund_shortfall="debt")
        tag = "job" if run_job_first else "nojob"
        buy(db, t, f"B-{tag}", 30_000, days_ago=8)
        member = member_by_external_id(db, t, "C-1")
        redeem(db, t, member, 30)
        buy(db, t, f"A-{tag}", 40_000, days_ago=36)  # imported late: expired days ago
        if run_job_first:
            assert run_due(db, now=utcnow()).expired_points == 40
        body = {
            "id": f"refund-{tag}",
            "type": "refund",
            "occurred_at": (utcnow() - timedelta(days=7)).isoformat(),
            "member": {"external_id": "C-1"},
            "order_id": f"B-{tag}",
            "amount": "30000",
        }
        out = post_event(db, t, body).result["refund"]
        answers.append((out["from_available"], out["debt"]))
    assert answers[0] == answers[1] == (0, 30)
    assert_db_sound(db)


def test_the_job_writes_one_message_per_lot_it_expires(db: Database, tenant: TenantFixture) -> None:
    one_month_expiry(db, tenant)
    buy(db, tenant, "A", 20_000, days_ago=45)
    buy(db, tenant, "B", 30_000, days_ago=40)
    member = member_by_external_id(db, tenant, "C-1")
    report = run_due(db, now=utcnow())
    assert (report.expired_lots, report.expired_points) == (2, 50)
    got = sorted((m["points"], m["reason"], m["member_id"]) for m in expired_messages(db))
    assert got == [(20, "expiry", str(member)), (30, "expiry", str(member))]
    assert run_due(db, now=utcnow()).expired_lots == 0
    assert len(expired_messages(db)) == 2


@pytest.mark.parametrize("path", ["one by one", "batch"])
def test_a_history_imported_oldest_first_keeps_an_active_members_points(
    db: Database, tenant: TenantFixture, path: str
) -> None:
    """A purchase every four months for two years, under six months' inactivity: the member
    was never inactive, whatever order the events arrive in."""
    inactivity(db, tenant)
    bodies = [purchase_body(f"H{n}", 10_000, days_ago=720 - 120 * n) for n in range(6)]
    record(db, tenant, bodies, path)
    member = member_by_external_id(db, tenant, "C-1")
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["lifetime"]["expired"]) == (60, 0)
    assert expired_messages(db) == []
    assert run_due(db, now=utcnow()).expired_points == 0
