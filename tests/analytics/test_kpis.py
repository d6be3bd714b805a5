"""KPIs and cohort retention from purchase events (setia.analytics.kpis), on both backends.

Jakarta is UTC+7: 16:59:59Z is 23:59:59 local, 17:00:00Z is the next local day's midnight.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from setia.analytics import kpis
from setia.core.db import Database
from setia.jobs.service import run_due
from setia.ledger import service as ledger
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import (
    assert_db_sound,
    member_by_external_id,
    post_event,
    tx,
)

_ids = count()
JKT = ZoneInfo("Asia/Jakarta")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def buy(db: Database, t: TenantFixture, member: str, order: str, amount: int, when: str) -> int:
    """A purchase event at UTC instant ``when``; returns the points it earned."""
    rec = post_event(
        db,
        t,
        {
            "id": f"buy-{order}",
            "type": "purchase",
            "member": {"external_id": member},
            "order_id": order,
            "amount": str(amount),
            "currency": "IDR",
            "occurred_at": f"{when}+00:00",
        },
    )
    assert rec.created
    earned: int = rec.result["points"]["earned"]
    return earned


def refund(db: Database, t: TenantFixture, member: str, order: str, amount: int, when: str) -> None:
    rec = post_event(
        db,
        t,
        {
            "id": f"refund-{next(_ids)}",
            "type": "refund",
            "member": {"external_id": member},
            "order_id": order,
            "amount": str(amount),
            "occurred_at": f"{when}+00:00",
        },
    )
    assert rec.created


def ctx(t: TenantFixture, when: str, s: Session | None = None) -> ledger.Context:
    """A write at ``when``; with the session, the ledger's clock is set to it (a replay)."""
    n = next(_ids)
    if s is not None:
        ledger.set_clock(s, at(when))
    return ledger.Context(
        program_id=t.program_id,
        idempotency_key=f"kpi-{n}",
        request_hash=ledger.request_hash({"n": n}),
        source_type="test",
        source_id=f"kpi-{n}",
        effective_at=at(when),
    )


def report(db: Database, t: TenantFixture, start: str, end: str) -> dict[str, Any]:
    def run(s: Session) -> dict[str, Any]:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        return kpis.kpis(
            s, tenant, program, start=date.fromisoformat(start), end=date.fromisoformat(end)
        )

    return tx(db, run)


def cohorts(db: Database, t: TenantFixture, first: str, last: str) -> dict[str, Any]:
    def run(s: Session) -> dict[str, Any]:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        return kpis.cohorts(
            s,
            tenant,
            program,
            first_month=date.fromisoformat(first + "-01"),
            last_month=date.fromisoformat(last + "-01"),
        )

    return tx(db, run)


def history(db: Database, t: TenantFixture) -> None:
    """The constructed history. Period: local February 2026 (28 days); the previous period
    of equal length is 4-31 January."""
    # A: in the previous period, then twice on one local day in February (returning,
    # retained, one purchase day: not a repeat buyer).
    assert buy(db, t, "A", "a1", 50000, "2026-01-10T03:00:00") == 50
    buy(db, t, "A", "a2", 20000, "2026-02-05T03:00:00")
    buy(db, t, "A", "a3", 30000, "2026-02-05T08:00:00")
    # B: first purchase at local midnight 1 Feb, the second one second before local midnight
    # at the end of February (new, repeat buyer).
    buy(db, t, "B", "b1", 10000, "2026-01-31T17:00:00")
    buy(db, t, "B", "b2", 40000, "2026-02-28T16:59:59")
    # C: one second before local midnight on 31 January (previous period only: churned).
    buy(db, t, "C", "c1", 25000, "2026-01-31T16:59:59")
    # D: before the previous period, and at local midnight 1 March (after the period).
    buy(db, t, "D", "d1", 15000, "2025-12-01T03:00:00")
    buy(db, t, "D", "d2", 99000, "2026-02-28T17:00:00")
    # E: a February order refunded in full: not a purchase at all.
    buy(db, t, "E", "e1", 70000, "2026-02-10T03:00:00")
    refund(db, t, "E", "e1", 70000, "2026-02-11T03:00:00")
    # F: first purchase, partly refunded (net 60,000).
    buy(db, t, "F", "f1", 100000, "2026-02-12T03:00:00")
    refund(db, t, "F", "f1", 40000, "2026-02-13T03:00:00")
    # G: previous period, then two February days (returning, retained, repeat).
    buy(db, t, "G", "g1", 5000, "2026-01-20T03:00:00")
    buy(db, t, "G", "g2", 12000, "2026-02-20T03:00:00")
    buy(db, t, "G", "g3", 18000, "2026-02-21T03:00:00")
    # Points: H gets 500 that expire mid-February; A redeems 45 and gets 5 back.
    h = member_by_external_id(db, t, "C")  # any member; points only
    tx(
        db,
        lambda s: ledger.earn(
            s,
            ctx(t, "2026-02-02T03:00:00"),
            member_id=h,
            amount=500,
            earned_at=at("2026-02-02T03:00:00"),
            pending_until=None,
            expires_at=at("2026-02-15T00:00:00"),
        ),
    )
    assert run_due(db, at("2026-02-16T00:00:00")).expired_points == 500
    a = member_by_external_id(db, t, "A")
    res = tx(
        db, lambda s: ledger.spend(s, ctx(t, "2026-02-06T03:00:00", s), member_id=a, amount=45)
    )
    spent = tx(db, lambda s: ledger.get_transfer(s, t.program_id, res.transfer_id))
    tx(
        db,
        lambda s: ledger.return_spent(
            s, ctx(t, "2026-02-07T03:00:00", s), original=spent, amount=5
        ),
    )


def test_kpis_constructed_history(db: Database, tenant: TenantFixture) -> None:
    history(db, tenant)
    assert_db_sound(db)
    r = report(db, tenant, "2026-02-01", "2026-02-28")
    assert r["members"] == {
        "active": 4,  # A, B, F, G
        "new": 2,  # B, F
        "returning": 2,  # A, G
        "repeat": 2,  # B, G
        "active_previous_period": 3,  # A, C, G (D's December order is before it)
        "retained": 2,  # A, G
    }
    assert (r["previous_from"], r["previous_to"], r["days"]) == ("2026-01-04", "2026-01-31", 28)
    assert r["orders"] == 7
    assert r["net_sales"] == "190000"  # 20+30+10+40+60 (100 - 40 refunded)+12+18 thousand
    assert r["average_order_value"] == "27143"  # 190000 / 7, rounded to whole rupiah
    assert r["purchase_frequency"] == "1.7500"
    assert r["repeat_purchase_rate"] == "0.5000"
    assert r["retention_rate"] == "0.6667"
    assert r["churn_rate"] == "0.3333"
    # Issued: February purchases 20+30+10+40+70+100+12+18 = 300, plus the 500 that expired.
    # Refund reversals are not issuance; the redemption is 45 - 5 returned.
    assert r["points"] == {
        "issued": 800,
        "redeemed": 40,
        "expired": 500,
        "redemption_rate": "0.0500",
    }
    assert r["member_vs_non_member"] is None
    assert "member" in r["member_vs_non_member_note"]


def test_kpis_local_day_edges(db: Database, tenant: TenantFixture) -> None:
    """One-day periods on either side of local midnights."""
    history(db, tenant)
    jan31 = report(db, tenant, "2026-01-31", "2026-01-31")
    assert jan31["members"]["active"] == 1  # C at 23:59:59 local; B's midnight is 1 Feb
    assert jan31["net_sales"] == "25000"
    feb1 = report(db, tenant, "2026-02-01", "2026-02-01")
    assert (feb1["members"]["active"], feb1["members"]["new"], feb1["net_sales"]) == (1, 1, "10000")
    # Previous period of 1 Feb is 31 Jan: C was active then, not on 1 Feb.
    assert (feb1["members"]["active_previous_period"], feb1["retention_rate"]) == (1, "0.0000")
    assert feb1["churn_rate"] == "1.0000"
    mar1 = report(db, tenant, "2026-03-01", "2026-03-01")
    assert (mar1["members"]["active"], mar1["members"]["returning"]) == (1, 1)  # D
    feb28 = report(db, tenant, "2026-02-28", "2026-02-28")
    assert (feb28["orders"], feb28["net_sales"]) == (1, "40000")  # B, not D


def test_kpis_empty_program(db: Database, tenant: TenantFixture) -> None:
    r = report(db, tenant, "2026-02-01", "2026-02-28")
    assert r["members"] == dict.fromkeys(
        ("active", "new", "returning", "repeat", "active_previous_period", "retained"), 0
    )
    assert r["orders"] == 0
    assert r["net_sales"] == "0"
    for ratio in (
        "repeat_purchase_rate",
        "purchase_frequency",
        "average_order_value",
        "retention_rate",
        "churn_rate",
    ):
        assert r[ratio] is None
    assert r["points"] == {"issued": 0, "redeemed": 0, "expired": 0, "redemption_rate": None}
    c = cohorts(db, tenant, "2026-01", "2026-03")
    assert c["cohorts"] == []


def test_kpis_api_and_tenant_isolation(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    history(db, tenant)
    other = make_tenant(db, name="Other")
    buy(db, other, "A", "x1", 500000, "2026-02-03T03:00:00")
    got = client.get(
        "/v1/analytics/kpis",
        params={"from": "2026-02-01", "to": "2026-02-28"},
        headers=tenant.headers,
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["from"] == "2026-02-01"
    assert body["members"]["active"] == 4
    assert body["net_sales"] == "190000"
    mine = client.get(
        "/v1/analytics/kpis",
        params={"from": "2026-02-01", "to": "2026-02-28", "program_id": str(other.program_id)},
        headers=other.headers,
    ).json()
    assert (mine["members"]["active"], mine["net_sales"], mine["orders"]) == (1, "500000", 1)
    # Another tenant's program is not found, not leaked.
    leak = client.get(
        "/v1/analytics/kpis",
        params={"from": "2026-02-01", "to": "2026-02-28", "program_id": str(other.program_id)},
        headers=tenant.headers,
    )
    assert leak.status_code == 404
    cohort = client.get(
        "/v1/analytics/cohorts",
        params={"from_month": "2026-01", "to_month": "2026-02"},
        headers=other.headers,
    ).json()
    assert [(r["cohort"], r["size"]) for r in cohort["cohorts"]] == [("2026-02", 1)]


def test_kpis_bad_periods(tenant: TenantFixture, client: TestClient) -> None:
    cases: list[tuple[str, dict[str, str]]] = [
        ("/v1/analytics/kpis", {"from": "2026-03-01", "to": "2026-02-01"}),
        ("/v1/analytics/kpis", {"from": "2024-01-01", "to": "2026-01-01"}),  # 732 days
        ("/v1/analytics/kpis", {"from": "2026-02-30", "to": "2026-03-01"}),
        ("/v1/analytics/kpis", {"from": "20260201", "to": "2026-03-01"}),
        ("/v1/analytics/kpis", {"from": "1900-01-01", "to": "1900-01-02"}),
        ("/v1/analytics/cohorts", {"from_month": "2026-03", "to_month": "2026-01"}),
        ("/v1/analytics/cohorts", {"from_month": "2020-01", "to_month": "2025-01"}),  # 61
        ("/v1/analytics/cohorts", {"from_month": "2026-13", "to_month": "2027-01"}),
    ]
    for path, params in cases:
        got = client.get(path, params=params, headers=tenant.headers)
        assert got.status_code == 422, (params, got.text)
        assert got.json()["code"] == "invalid_period", params
    ok = client.get(
        "/v1/analytics/kpis",
        params={"from": "2024-01-01", "to": "2025-12-31"},
        headers=tenant.headers,
    )
    assert ok.status_code == 200
    assert ok.json()["days"] == 731
    assert (
        client.get(
            "/v1/analytics/kpis", params={"from": "2026-02-01", "to": "2026-02-02"}
        ).status_code
        == 401
    )


def test_cohorts_constructed(db: Database, tenant: TenantFixture) -> None:
    history(db, tenant)
    c = cohorts(db, tenant, "2026-01", "2026-03")
    rows = {r["cohort"]: r for r in c["cohorts"]}
    # January: A, C, G (D's first purchase is in December, before the range; B's is 1 Feb
    # local). February: B, F (E's only order was refunded in full).
    assert [(r["cohort"], r["size"]) for r in c["cohorts"]] == [("2026-01", 3), ("2026-02", 2)]
    assert [
        (m["offset"], m["month"], m["members"], m["share"]) for m in rows["2026-01"]["months"]
    ] == [
        (0, "2026-01", 3, "1.0000"),
        (1, "2026-02", 2, "0.6667"),
        (2, "2026-03", 0, "0.0000"),
    ]
    assert [(m["members"], m["share"]) for m in rows["2026-02"]["months"]] == [
        (2, "1.0000"),
        (0, "0.0000"),
    ]


def _months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


Bought = tuple[str, datetime, int, int]  # member, UTC instant, amount, refunded amount


def random_history(db: Database, t: TenantFixture, seed: int, n: int = 60) -> list[Bought]:
    """``n`` purchases of 15 members between October 2025 and April 2026, half of them within
    an hour of a local midnight; 15 % refunded in full, 15 % of the rest by half."""
    rng = random.Random(seed)
    base = datetime(2025, 10, 1, tzinfo=UTC)
    span = int((datetime(2026, 5, 1, tzinfo=UTC) - base).total_seconds())
    orders: list[Bought] = []
    for i in range(n):
        member = f"m{rng.randrange(15)}"
        moment = base + timedelta(seconds=rng.randrange(span))
        if rng.random() < 0.5:
            local = moment.astimezone(JKT)
            midnight = datetime(local.year, local.month, local.day, tzinfo=JKT)
            moment = (midnight + timedelta(seconds=rng.randrange(-3600, 3600))).astimezone(UTC)
        moment = moment.replace(microsecond=0)
        order, amount, when = f"r{i}", 1000 * rng.randrange(1, 50), f"{moment:%Y-%m-%dT%H:%M:%S}"
        buy(db, t, member, order, amount, when)
        refunded = 0
        if rng.random() < 0.15:
            refunded = amount
        elif rng.random() < 0.15:
            refunded = amount // 2
        if refunded:
            refund(db, t, member, order, refunded, when)
        orders.append((member, moment, amount, refunded))
    return orders


def _local(moment: datetime) -> date:
    return moment.astimezone(JKT).date()


def test_cohorts_differential(db: Database, tenant: TenantFixture) -> None:
    """The matrix equals a plain-Python computation over the same events."""
    orders = random_history(db, tenant, 6)
    first, last = date(2025, 11, 1), date(2026, 3, 1)
    by_member: dict[str, list[date]] = defaultdict(list)
    for member, moment, amount, refunded in orders:
        if refunded < amount:  # fully refunded orders are not purchases
            by_member[member].append(_local(moment).replace(day=1))
    expected: dict[str, tuple[int, list[int]]] = {}
    for months in by_member.values():
        cohort = min(months)
        if not first <= cohort <= last:
            continue
        key = f"{cohort:%Y-%m}"
        size, cells = expected.get(key, (0, [0] * (_months_between(cohort, last) + 1)))
        for k in range(len(cells)):
            m = date(cohort.year + (cohort.month - 1 + k) // 12, (cohort.month - 1 + k) % 12 + 1, 1)
            if m in months:
                cells[k] += 1
        expected[key] = (size + 1, cells)
    got = cohorts(db, tenant, "2025-11", "2026-03")
    assert {
        r["cohort"]: (r["size"], [m["members"] for m in r["months"]]) for r in got["cohorts"]
    } == expected
    assert len(expected) >= 3  # the data exercise several cohorts
    for row in got["cohorts"]:
        assert row["months"][0]["members"] == row["size"]


def test_kpis_differential(db: Database, tenant: TenantFixture) -> None:
    """Member counts, orders, net sales, repeat and retention equal a plain-Python
    computation over the same events, for several periods."""
    orders = [o for o in random_history(db, tenant, 7, n=80) if o[3] < o[2]]
    periods = [
        ("2026-01-01", "2026-01-31"),
        ("2025-12-15", "2026-02-14"),
        ("2026-02-28", "2026-03-01"),
        ("2026-03-10", "2026-03-10"),
        ("2025-10-01", "2026-04-30"),
    ]
    checked_retention = False
    for f, to in periods:
        start, end = date.fromisoformat(f), date.fromisoformat(to)
        prev = start - (end - start + timedelta(days=1))
        days: dict[str, set[date]] = defaultdict(set)
        prev_active: set[str] = set()
        firsts: dict[str, date] = {}
        n_orders, net = 0, 0
        for member, moment, amount, refunded in orders:
            day = _local(moment)
            firsts[member] = min(day, firsts.get(member, day))
            if start <= day <= end:
                days[member].add(day)
                n_orders += 1
                net += amount - refunded
            elif prev <= day < start:
                prev_active.add(member)
        active = set(days)
        r = report(db, tenant, f, to)
        assert r["members"] == {
            "active": len(active),
            "new": sum(1 for m in active if firsts[m] >= start),
            "returning": sum(1 for m in active if firsts[m] < start),
            "repeat": sum(1 for m in active if len(days[m]) >= 2),
            "active_previous_period": len(prev_active),
            "retained": len(active & prev_active),
        }, (f, to)
        assert (r["orders"], r["net_sales"]) == (n_orders, str(net)), (f, to)
        if prev_active:
            checked_retention = True
            want = Decimal(len(active & prev_active)) / Decimal(len(prev_active))
            assert r["retention_rate"] == str(want.quantize(Decimal("0.0001")))
    assert checked_retention
