"""Per-member analytics from the service's own orders: summary, RFM, predictions, API."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from setia.analytics import members as service
from setia.analytics import models
from setia.analytics.summary import Transactions, day_number, summarise
from setia.core.db import Database
from setia.core.time import zone
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import member_by_external_id, new_member, post_event, tx

AS_OF = "2026-03-01T12:00:00+07:00"
WEEK = 7.0


def buy(t: TenantFixture, db: Database, ext: str, event_id: str, at: str, amount: str) -> None:
    post_event(
        db,
        t,
        {
            "id": event_id,
            "type": "purchase",
            "member": {"external_id": ext},
            "order_id": f"O-{event_id}",
            "amount": amount,
            "currency": "IDR",
            "occurred_at": at,
        },
    )


def refund(
    t: TenantFixture, db: Database, ext: str, event_id: str, order: str, at: str, amount: str
) -> None:
    post_event(
        db,
        t,
        {
            "id": event_id,
            "type": "refund",
            "member": {"external_id": ext},
            "order_id": f"O-{order}",
            "amount": amount,
            "occurred_at": at,
        },
    )


def history(db: Database, t: TenantFixture) -> dict[str, uuid.UUID]:
    """A small history in Asia/Jakarta (UTC+7, no DST)."""
    # a: 23:30 local on Jan 5 and 01:00 local on Jan 6 are the same UTC day (Jan 5) but two
    # local days; Jan 20 has two orders (one refunded in part): one day of 50000 + 20000.
    buy(t, db, "a", "a1", "2026-01-05T23:30:00+07:00", "100000")
    buy(t, db, "a", "a2", "2026-01-06T01:00:00+07:00", "50000")
    buy(t, db, "a", "a3", "2026-01-20T10:00:00+07:00", "80000")
    buy(t, db, "a", "a4", "2026-01-20T15:00:00+07:00", "20000")
    refund(t, db, "a", "a3r", "a3", "2026-01-25T10:00:00+07:00", "30000")
    # b: one purchase
    buy(t, db, "b", "b1", "2026-02-10T12:00:00+07:00", "40000")
    # c: a fully refunded order (not a purchase day) and one purchase
    buy(t, db, "c", "c1", "2026-02-01T09:00:00+07:00", "10000")
    refund(t, db, "c", "c1r", "c1", "2026-02-02T09:00:00+07:00", "10000")
    buy(t, db, "c", "c2", "2026-02-03T09:00:00+07:00", "25000")
    # d: only a purchase after as_of (UTC Mar 1 17:30 = local Mar 2 00:30)
    buy(t, db, "d", "d1", "2026-03-01T17:30:00+00:00", "5000")
    return {k: member_by_external_id(db, t, k) for k in "abcd"}


def summary_of(db: Database, t: TenantFixture, as_of: str = AS_OF) -> service.ProgramSummary:
    def run(s: Any) -> service.ProgramSummary:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        return service.summarise_program(s, tenant, program, as_of=dt.datetime.fromisoformat(as_of))

    return tx(db, run)


def test_summary_exact(db: Database, tenant: TenantFixture) -> None:
    ids = history(db, tenant)
    s = summary_of(db, tenant)
    rows = {r.member_id: r for r in s.rows}
    assert ids["d"] not in rows  # nothing at or before as_of
    a, b, c = rows[ids["a"]], rows[ids["b"]], rows[ids["c"]]
    assert s.as_of_day == dt.date(2026, 3, 1)

    assert (a.orders, a.spend, a.refunds) == (4, Decimal(220000), Decimal(30000))
    assert a.purchase_days == 3
    assert (a.first_purchase_day, a.last_purchase_day) == (
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 20),
    )
    assert a.x == 2
    assert a.t_x == pytest.approx(15 / WEEK)
    assert pytest.approx(55 / WEEK) == a.T
    assert a.monetary == pytest.approx((50000 + 70000) / 2)
    assert a.first_order_at == dt.datetime(2026, 1, 5, 16, 30, tzinfo=dt.UTC)

    assert (b.orders, b.spend, b.x, b.t_x, b.monetary) == (1, Decimal(40000), 0, 0, 0)
    assert pytest.approx(19 / WEEK) == b.T

    assert (c.orders, c.spend, c.refunds) == (2, Decimal(25000), Decimal(10000))
    assert c.purchase_days == 1
    assert c.x == 0
    assert c.first_purchase_day == dt.date(2026, 2, 3)
    assert pytest.approx(26 / WEEK) == c.T


def test_as_of_local_midnight(db: Database, tenant: TenantFixture) -> None:
    """d's purchase at 00:30 local on Mar 2 (still Mar 1 in UTC) is on local day Mar 2."""
    ids = history(db, tenant)
    s = summary_of(db, tenant, "2026-03-02T08:00:00+07:00")
    d = s.rows[s.index[ids["d"]]]
    assert d.first_purchase_day == dt.date(2026, 3, 2)
    assert d.T == 0


def test_local_days_across_dst() -> None:
    times = [
        dt.datetime(2026, 3, 8, 4, 30, tzinfo=dt.UTC),  # 23:30 EST on Mar 7
        dt.datetime(2026, 3, 8, 5, 30, tzinfo=dt.UTC),  # 00:30 EST on Mar 8
        dt.datetime(2026, 3, 9, 3, 30, tzinfo=dt.UTC),  # 23:30 EDT on Mar 8
        dt.datetime(2026, 3, 9, 4, 30, tzinfo=dt.UTC),  # 00:30 EDT on Mar 9
    ]
    days = service.local_days(times, "America/New_York")
    expected = [dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 3, 8), dt.date(2026, 3, 9)]
    assert days.tolist() == [day_number(d) for d in expected]


def random_history(db: Database, t: TenantFixture, seed: int = 7) -> list[tuple[str, str, str]]:
    """25 members, about 80 purchases over Jan–Feb 2026 at random local times, some refunds."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    made: list[tuple[str, str, str]] = []
    n = 0
    for m in range(25):
        ext = f"m{m}"
        for _ in range(rng.choice([1, 1, 2, 3, 4, 6])):
            n += 1
            at = start + dt.timedelta(minutes=rng.randrange(0, 59 * 24 * 60))
            amount = str(rng.randrange(1, 50) * 1000)
            buy(t, db, ext, f"r{n}", at.isoformat(), amount)
            made.append((ext, f"r{n}", amount))
            if rng.random() < 0.15:
                part = str(rng.randrange(1, int(amount) // 1000 + 1) * 1000)
                refund(
                    t, db, ext, f"r{n}x", f"r{n}", (at + dt.timedelta(hours=1)).isoformat(), part
                )
    return made


def test_sql_summary_equals_python_summarise(db: Database, tenant: TenantFixture) -> None:
    random_history(db, tenant)
    s = summary_of(db, tenant)
    # the same transactions, read back row by row and summarised by the file-based code
    from setia.events.models import Order

    def rows(session: Any) -> list[tuple[str, dt.datetime, Decimal]]:
        q = session.query(Order.member_id, Order.occurred_at, Order.amount - Order.refunded_amount)
        return [
            (str(m), at, Decimal(v)) for m, at, v in q.filter(Order.program_id == tenant.program_id)
        ]

    got = [r for r in tx(db, rows) if r[2] > 0]
    tz = zone("Asia/Jakarta")
    from setia.core.time import as_utc

    py = summarise(
        Transactions(
            customer=np.array([r[0] for r in got], dtype=np.str_),
            day=np.array([day_number(as_utc(r[1]).astimezone(tz).date()) for r in got]),
            amount=np.array([float(r[2]) for r in got]),
        ),
        unit="week",
        calibration_end=dt.date(2026, 3, 1),
    )
    by_id = {str(r.member_id): r for r in s.purchasers}
    assert sorted(by_id) == sorted(py.customer.tolist())
    for i, key in enumerate(py.customer.tolist()):
        r = by_id[key]
        assert r.x == py.x[i]
        assert r.t_x == pytest.approx(py.t_x[i])
        assert pytest.approx(py.T[i]) == r.T
        assert r.monetary == pytest.approx(py.monetary[i])


def test_predictions_equal_pure_models(db: Database, tenant: TenantFixture) -> None:
    random_history(db, tenant)
    s = summary_of(db, tenant)
    p = service.predict(s, horizon_weeks=8, months=6, discount_rate=0.02)
    assert p.reason is None
    assert p.fit is not None
    assert p.p_alive is not None
    x, t_x, T, mon = s.arrays()
    fit = models.fit_bgnbd(x, t_x, T)
    assert p.fit.params == pytest.approx(fit.params)
    np.testing.assert_allclose(p.p_alive, models.bgnbd_p_alive(fit.params, x, t_x, T))
    assert p.expected_purchases is not None
    np.testing.assert_allclose(
        p.expected_purchases, models.bgnbd_expected_purchases(fit.params, 8, x, t_x, T)
    )
    if p.spend_fit is not None:
        gg = models.fit_gamma_gamma(x, mon)
        spend = models.expected_spend(gg.params, x, mon)
        assert p.clv is not None
        np.testing.assert_allclose(
            p.clv, models.clv(fit, spend, x, t_x, T, months=6, discount_rate=0.02)
        )
    else:
        assert p.spend_reason


def test_too_few_members_for_predictions(db: Database, tenant: TenantFixture) -> None:
    history(db, tenant)
    p = service.predict(summary_of(db, tenant))
    assert p.fit is None
    assert p.p_alive is None
    assert p.reason is not None
    assert "too few" in p.reason


# --- API ------------------------------------------------------------------------------------


def test_member_endpoint(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    ids = history(db, tenant)
    r = client.get(
        f"/v1/analytics/members/{ids['a']}", params={"as_of": AS_OF}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    sm = body["summary"]
    assert sm["orders"] == 4
    assert sm["spend"] == "220000"
    assert sm["refunds"] == "30000"
    assert sm["x"] == 2
    assert sm["monetary"] == "60000"
    assert sm["t_x"] == pytest.approx(15 / 7)
    assert sm["T"] == pytest.approx(55 / 7)
    assert sm["recency_days"] == 40
    assert body["rfm"]["segment"]
    assert body["predictions"] is None
    assert "too few" in body["predictions_missing"]

    # a member of the tenant with nothing before as_of
    r = client.get(
        f"/v1/analytics/members/{ids['d']}", params={"as_of": AS_OF}, headers=tenant.headers
    )
    assert r.status_code == 200
    assert r.json()["summary"]["orders"] == 0
    assert r.json()["rfm"] is None


def test_member_endpoint_with_predictions(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    mid = member_by_external_id(db, tenant, "m3")
    r = client.get(
        f"/v1/analytics/members/{mid}",
        params={"as_of": AS_OF, "horizon_weeks": 8},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"]
    s = summary_of(db, tenant)
    p = service.predict(s, horizon_weeks=8)
    assert p.p_alive is not None
    assert p.expected_purchases is not None
    i = [row.member_id for row in s.purchasers].index(mid)
    assert pred["p_alive"] == pytest.approx(float(p.p_alive[i]))
    assert pred["expected_purchases"] == pytest.approx(float(p.expected_purchases[i]))


def test_tenant_isolation(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    ids = history(db, tenant)
    other = make_tenant(db, name="Other")
    r = client.get(f"/v1/analytics/members/{ids['a']}", headers=other.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = client.get("/v1/analytics/rfm", params={"as_of": AS_OF}, headers=other.headers)
    assert r.status_code == 200
    assert r.json()["members"] == 0
    r = client.get(
        "/v1/analytics/rfm", params={"program_id": str(tenant.program_id)}, headers=other.headers
    )
    assert r.status_code == 404
    r = client.get("/v1/analytics/members", params={"as_of": AS_OF}, headers=other.headers)
    assert r.status_code == 200
    assert r.json()["data"] == []
    r = client.get(
        f"/v1/analytics/members/{ids['a']}",
        params={"program_id": str(other.program_id)},
        headers=tenant.headers,
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/analytics/members/not-a-uuid", {}),
        ("/v1/analytics/rfm", {"as_of": "yesterday"}),
        ("/v1/analytics/rfm", {"as_of": "2026-03-01T12:00:00"}),  # no offset
        ("/v1/analytics/members", {"segment": "royalty"}),
        ("/v1/analytics/members", {"limit": 0}),
        ("/v1/analytics/members", {"cursor": "!!"}),
        ("/v1/analytics/rfm", {"program_id": "x"}),
    ],
)
def test_bad_params(
    db: Database, tenant: TenantFixture, client: TestClient, path: str, params: dict[str, Any]
) -> None:
    r = client.get(path, params=params, headers=tenant.headers)
    assert r.status_code == 422, r.text


def test_member_horizon_validation(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    mid = new_member(db, tenant, "z")
    for params in ({"horizon_weeks": 0}, {"months": 0}, {"discount_rate": -0.1}):
        r = client.get(f"/v1/analytics/members/{mid}", params=params, headers=tenant.headers)
        assert r.status_code == 422, params


def test_redemptions_counted(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    from setia.ledger import service as ledger

    ids = history(db, tenant)
    for k in range(2):
        ctx = ledger.Context(
            program_id=tenant.program_id, idempotency_key=f"redeem-{k}", request_hash=f"h{k}"
        )
        tx(db, lambda s, c=ctx: ledger.spend(s, c, member_id=ids["a"], amount=1))
    now = client.get(f"/v1/analytics/members/{ids['a']}", headers=tenant.headers).json()
    assert now["summary"]["redemptions"] == 2
    assert now["summary"]["orders"] == 4
    # the redemptions happened after AS_OF: not counted then
    then = client.get(
        f"/v1/analytics/members/{ids['a']}", params={"as_of": AS_OF}, headers=tenant.headers
    ).json()
    assert then["summary"]["redemptions"] == 0
    other = client.get(f"/v1/analytics/members/{ids['b']}", headers=tenant.headers).json()
    assert other["summary"]["redemptions"] == 0


def test_summary_in_a_dst_zone(db: Database) -> None:
    """New York: local days follow EST before and EDT after the March change."""
    ny = make_tenant(db, name="NY", timezone="America/New_York")
    buy(ny, db, "n", "n1", "2026-03-08T04:30:00+00:00", "10000")  # Mar 7 23:30 EST
    buy(ny, db, "n", "n2", "2026-03-09T03:30:00+00:00", "20000")  # Mar 8 23:30 EDT
    buy(ny, db, "n", "n3", "2026-03-09T04:30:00+00:00", "40000")  # Mar 9 00:30 EDT
    s = summary_of(db, ny, "2026-03-15T12:00:00-04:00")
    (row,) = s.rows
    assert s.as_of_day == dt.date(2026, 3, 15)
    assert row.first_purchase_day == dt.date(2026, 3, 7)
    assert row.last_purchase_day == dt.date(2026, 3, 9)
    assert row.x == 2  # three local days (two UTC days)
    assert pytest.approx(2 / WEEK) == row.t_x
    assert pytest.approx(8 / WEEK) == row.T
    assert row.monetary == pytest.approx(30000)
