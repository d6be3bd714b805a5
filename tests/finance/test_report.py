"""The finance report over a constructed history, with exact figures per local day."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.finance import service as finance
from setia.jobs.service import run_due
from setia.ledger import service as ledger
from setia.ledger.models import Transfer
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound, configure, new_member, tx


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class History:
    """Ledger writes with chosen business times (``effective_at``), one transaction each."""

    def __init__(self, db: Database, t: TenantFixture) -> None:
        self.db = db
        self.t = t
        self.n = 0
        self.when: datetime | None = None

    def ctx(self, when: str, source: tuple[str, str] | None = None) -> ledger.Context:
        self.n += 1
        self.when = at(when)  # the next write happens then: the ledger's clock (see run)
        return ledger.Context(
            program_id=self.t.program_id,
            idempotency_key=f"h{self.n}",
            request_hash=ledger.request_hash({"n": self.n}),
            source_type=source[0] if source else "test",
            source_id=source[1] if source else f"h{self.n}",
            effective_at=at(when),
        )

    def run(self, fn: Callable[[Session], Any]) -> Any:
        def at_the_time(s: Session) -> Any:
            ledger.set_clock(s, self.when)  # a replay: what had expired by then is expired
            return fn(s)

        return tx(self.db, at_the_time)

    def earn(
        self,
        m: uuid.UUID,
        points: int,
        when: str,
        expires: str | None = None,
        order: str | None = None,
    ) -> ledger.Result:
        ctx = self.ctx(when, ("order", order) if order else None)
        return self.run(
            lambda s: ledger.earn(
                s,
                ctx,
                member_id=m,
                amount=points,
                earned_at=at(when),
                pending_until=None,
                expires_at=at(expires) if expires else None,
            )
        )

    def spend(self, m: uuid.UUID, points: int, when: str, hold: bool = False) -> Transfer:
        ctx = self.ctx(when)
        res = self.run(
            lambda s: ledger.spend(
                s,
                ctx,
                member_id=m,
                amount=points,
                hold_for=timedelta(minutes=30) if hold else None,
            )
        )
        return self.transfer(res.transfer_id)

    def transfer(self, transfer_id: uuid.UUID) -> Transfer:
        found: Transfer = self.run(lambda s: ledger.get_transfer(s, self.t.program_id, transfer_id))
        return found

    def resolve(
        self, hold: Transfer, action: str, when: str, points: int | None = None
    ) -> Transfer:
        ctx = self.ctx(when)
        res = self.run(lambda s: ledger.resolve_hold(s, ctx, hold, action=action, amount=points))
        return self.transfer(res.transfer_id)

    def give_back(self, original: Transfer, points: int, when: str) -> None:
        ctx = self.ctx(when)
        self.run(lambda s: ledger.return_spent(s, ctx, original=original, amount=points))


def report(db: Database, t: TenantFixture, start: str, end: str) -> dict[str, Any]:
    def run(s: Session) -> dict[str, Any]:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        return finance.report(
            s, tenant, program, start=date.fromisoformat(start), end=date.fromisoformat(end)
        )

    return tx(db, run)


ZERO_DAY = dict.fromkeys(finance.DAILY_POINTS, 0)


def day(**figures: int) -> dict[str, int]:
    return {**ZERO_DAY, **figures}


def test_constructed_history(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    """Jakarta is UTC+7: 16:59:59Z is 23:59:59 local, 17:00Z is the next local day."""
    configure(db, tenant, cost_per_point=Decimal("5.5"), refund_shortfall="debt")
    h = History(db, tenant)
    a, b, c, d = (new_member(db, tenant, x) for x in "abcd")
    # Before the period (29 Jan local, one second before midnight).
    h.earn(d, 70, "2026-01-29T16:59:59")
    # 30 Jan: A earns twice, the second one second before local midnight.
    h.earn(a, 1000, "2026-01-30T03:00:00", expires="2026-02-01T00:00:00")  # lot L1
    h.earn(a, 500, "2026-01-30T16:59:59", expires="2026-06-15T00:00:00")  # lot L2
    # 31 Jan: B earns at local midnight exactly, and gets a manual +50.
    h.earn(b, 300, "2026-01-30T17:00:00", order="o-b")  # lot L3, never expires
    ctx = h.ctx("2026-01-31T02:00:00")
    h.run(
        lambda s: ledger.adjust(
            s, ctx, member_id=b, delta=50, earned_at=at("2026-01-31T02:00:00"), expires_at=None
        )
    )
    redeem = h.spend(a, 200, "2026-01-31T05:00:00")  # from L1 (soonest expiry)
    hold = h.spend(a, 300, "2026-01-31T06:00:00", hold=True)  # not counted
    # Captured at 18:00Z on 31 Jan: 01:00 on 1 Feb local. 50 go back to L1.
    capture = h.resolve(hold, "capture", "2026-01-31T18:00:00", points=250)
    voided = h.spend(b, 100, "2026-01-31T07:00:00", hold=True)
    h.resolve(voided, "void", "2026-01-31T08:00:00")  # counted nowhere
    # Wallet: credit on 31 Jan, debit on 1 Feb, part of it returned on 2 Feb.
    ctx = h.ctx("2026-01-31T09:00:00")
    h.run(lambda s: ledger.wallet_credit(s, ctx, member_id=a, amount=25000, code="TOPUP"))
    ctx = h.ctx("2026-02-01T09:00:00")
    w = h.run(lambda s: ledger.wallet_debit(s, ctx, member_id=a, amount=10000))
    wallet_debit = h.transfer(w.transfer_id)
    h.give_back(wallet_debit, 4000, "2026-02-02T09:00:00")
    # 1 Feb: the job expires what is left of L1 (1000 - 200 - 300 + 50 = 550).
    assert run_due(db, at("2026-02-01T01:00:00")).expired_points == 550
    # Then 100 of the redemption come back, to L1 (already expired): the next run expires them.
    h.give_back(redeem, 100, "2026-02-01T10:00:00")
    assert run_due(db, at("2026-02-02T02:00:00")).expired_points == 100
    # 2 Feb: a refund takes 120 of B's order back; C's refund becomes debt, then is repaid.
    ctx = h.ctx("2026-02-02T03:00:00", ("order", "o-b"))
    h.run(
        lambda s: ledger.reverse_order_points(
            s, ctx, member_id=b, amount=120, shortfall_policy="debt"
        )
    )
    h.earn(c, 100, "2026-02-02T04:00:00", order="o-c")
    h.spend(c, 100, "2026-02-02T05:00:00")
    ctx = h.ctx("2026-02-02T06:00:00", ("order", "o-c"))
    h.run(
        lambda s: ledger.reverse_order_points(
            s, ctx, member_id=c, amount=100, shortfall_policy="debt"
        )
    )
    h.earn(c, 40, "2026-02-02T07:00:00")  # all of it repays the debt
    # After the period: 3 Feb 00:00 local.
    h.earn(d, 30, "2026-02-02T17:00:00")
    # An open hold: 100 of A's L2 (expiring June) are reserved, still outstanding.
    h.spend(a, 100, "2026-02-02T08:00:00", hold=True)
    assert capture.amount == 250
    assert_db_sound(db)

    r = report(db, tenant, "2026-01-30", "2026-02-02")
    assert [x["date"] for x in r["daily"]] == [
        "2026-01-30",
        "2026-01-31",
        "2026-02-01",
        "2026-02-02",
    ]
    points = [x["points"] for x in r["daily"]]
    assert points[0] == day(earned=1500)
    assert points[1] == day(earned=350, redeemed=200)
    assert points[2] == day(redeemed=150, returned=100, expired=550)
    assert points[3] == day(earned=140, redeemed=100, reversed=220, expired=100, debt_repaid=40)
    wallet = [x["wallet"] for x in r["daily"]]
    assert wallet == [
        {"credited": "0", "spent": "0", "returned": "0"},
        {"credited": "25000", "spent": "0", "returned": "0"},
        {"credited": "0", "spent": "10000", "returned": "0"},
        {"credited": "0", "spent": "0", "returned": "4000"},
    ]
    period = r["period"]
    assert period["points"] == day(
        earned=1990, redeemed=450, returned=100, reversed=220, expired=650, debt_repaid=40
    )
    assert period["reversed_detail"] == {"reversal": 120, "debt": 100, "written_off": 0}
    assert period["redeemed_by_code"] == {"REDEEM": 550}
    assert period["opening_outstanding"] == 70
    # 70 + 1990 - 450 - 120 (the REVERSAL; DEBT took nothing from a balance) - 650 - 40
    assert period["closing_outstanding"] == 800
    assert period["wallet"] == {"credited": "25000", "spent": "10000", "returned": "4000"}

    # Breakage: lifetime 650 expired of 70 + 1990 + 30 issued; in the period of 1990.
    assert r["breakage"]["lifetime"] == {"issued": 2090, "expired": 650, "rate": "0.3110"}
    assert r["breakage"]["period"] == {"issued": 1990, "expired": 650, "rate": "0.3266"}

    # Outstanding now: A 500 in L2 (100 of them held), B 180 + 50, C 0, D 100.
    out = r["outstanding"]
    assert [(bk["month"], bk["points"], bk["held"]) for bk in out["by_expiry_month"]] == [
        ("2026-06", 500, 100),
        ("never", 330, 0),
    ]
    assert [Decimal(bk["value"]) for bk in out["by_expiry_month"]] == [2750, 1815]
    assert out["points"] == 830
    assert out["held"] == 100
    assert out["liability_points"] == 830
    liability = client.get(
        f"/v1/programs/{tenant.program_id}/liability", headers=tenant.headers
    ).json()
    assert liability["points_outstanding"] == out["points"]
    assert Decimal(liability["liability"]) == Decimal(out["value"])
    assert sum(Decimal(bk["value"]) for bk in out["by_expiry_month"]) == Decimal(out["value"])
    # A report to the end of the whole history closes at what members hold now.
    whole = report(db, tenant, "2026-01-29", "2026-02-03")
    assert whole["period"]["opening_outstanding"] == 0
    assert whole["period"]["closing_outstanding"] == out["points"]
    assert r["wallet"] == {"balance": "19000", "held": "0", "available": "19000", "wallets": 1}

    # The API gives the same report.
    api = client.get(
        f"/v1/programs/{tenant.program_id}/finance/report",
        params={"from": "2026-01-30", "to": "2026-02-02"},
        headers=tenant.headers,
    )
    assert api.status_code == 200, api.text
    got = api.json()
    assert got["from"] == "2026-01-30"
    assert got["daily"] == r["daily"]
    assert got["outstanding"] == out
    assert got["breakage"] == r["breakage"]


def test_empty_program(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    r = client.get(
        f"/v1/programs/{tenant.program_id}/finance/report",
        params={"from": "2026-02-01", "to": "2026-02-28"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert len(data["daily"]) == 28
    assert all(d["points"] == ZERO_DAY for d in data["daily"])
    assert data["outstanding"]["by_expiry_month"] == []
    assert data["outstanding"]["points"] == 0
    assert data["breakage"]["lifetime"] == {"issued": 0, "expired": 0, "rate": None}
    assert data["wallet"]["balance"] == "0"
    assert data["timezone"] == "Asia/Jakarta"


def test_bad_periods_and_other_tenants(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    url = f"/v1/programs/{tenant.program_id}/finance/report"

    def get(**params: str) -> Any:
        return client.get(url, params=params, headers=tenant.headers)

    r = get(**{"from": "2026-02-02", "to": "2026-02-01"})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_period"
    r = get(**{"from": "2025-01-01", "to": "2026-01-01"})  # 366 days: fine
    assert r.status_code == 200
    assert len(r.json()["daily"]) == 366
    r = get(**{"from": "2025-01-01", "to": "2026-01-02"})  # 367
    assert r.status_code == 422
    assert r.json()["max_days"] == 366
    r = get(**{"from": "2026-02-30", "to": "2026-03-01"})
    assert r.status_code == 422
    assert r.json()["field"] == "from"
    assert get(to="2026-03-01").status_code == 422
    # Days at the ends of the calendar (no UTC instant for their local midnight) and other
    # ISO shapes are refused like any bad date, not a 500.
    for day in ("0001-01-01", "9999-12-31", "20260301", "2026-W09-7"):
        r = get(**{"from": day, "to": day})
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            422,
            "invalid_period",
            "from",
        )
    other = make_tenant(db, name="Other")
    r = client.get(
        f"/v1/programs/{other.program_id}/finance/report",
        params={"from": "2026-02-01", "to": "2026-02-02"},
        headers=tenant.headers,
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("tz", "last_of_day_one", "first_of_day_two"),
    [
        # India is UTC+5:30: local midnight of 2 Mar is 18:30Z on 1 Mar.
        ("Asia/Kolkata", "2026-03-01T18:29:59", "2026-03-01T18:30:00"),
        # Berlin: 29 Mar 2026 has 23 hours (clocks go forward), local midnight of 30 Mar
        # is 22:00Z on 29 Mar (CEST, UTC+2), of 29 Mar 23:00Z on 28 Mar (CET).
        ("Europe/Berlin", "2026-03-29T21:59:59", "2026-03-29T22:00:00"),
    ],
)
def test_local_days_in_other_zones(
    db: Database, tz: str, last_of_day_one: str, first_of_day_two: str
) -> None:
    t = make_tenant(db, name="Zone", country="ID", currency="IDR", timezone=tz)
    h = History(db, t)
    m = new_member(db, t, "z")
    day_one = date.fromisoformat(first_of_day_two[:10]) if tz == "Europe/Berlin" else None
    h.earn(m, 1, last_of_day_one)
    h.earn(m, 10, first_of_day_two)
    if tz == "Europe/Berlin":
        assert day_one is not None
        h.earn(m, 100, "2026-03-28T23:00:00")  # 00:00 CET on 29 Mar: the 23-hour day
        h.earn(m, 1000, "2026-03-28T22:59:59")  # 23:59:59 on 28 Mar
        r = report(db, t, "2026-03-28", "2026-03-30")
        assert [d["points"]["earned"] for d in r["daily"]] == [1000, 101, 10]
    else:
        r = report(db, t, "2026-03-01", "2026-03-02")
        assert [d["points"]["earned"] for d in r["daily"]] == [1, 10]


def test_expiry_months_follow_the_tenant_zone(db: Database, tenant: TenantFixture) -> None:
    h = History(db, tenant)
    m = new_member(db, tenant, "x")
    # End-of-month expiry is the first local instant of the next month: April 1 00:00 WIB.
    h.earn(m, 10, "2026-01-10T00:00:00", expires="2026-03-31T17:00:00")
    h.earn(m, 20, "2026-01-10T00:00:00", expires="2026-03-31T16:59:59")  # 23:59:59 31 Mar
    h.earn(m, 40, "2026-01-10T00:00:00", expires="2026-12-31T17:00:00")  # 1 Jan 2027
    r = report(db, tenant, "2026-01-01", "2026-01-31")
    months = [(b["month"], b["points"]) for b in r["outstanding"]["by_expiry_month"]]
    assert months == [("2026-03", 20), ("2026-04", 10), ("2027-01", 40)]
