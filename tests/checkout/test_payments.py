"""Paying with points: hold, capture (all or part), release, expiry, conversion, bad input."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from setia.checkout.service import order_limit, points_for, points_value
from setia.core.time import utcnow
from setia.jobs.service import run_due
from setia.programs.models import Program
from tests.checkout.conftest import Till
from tests.conftest import make_tenant
from tests.ledger.support import lots_of


def test_hold_capture_balance(till: Till) -> None:
    m = till.member()
    till.grant(m, 50_000)
    payment = till.held(m, "INV-1", 15_000, total="85000")
    assert payment["status"] == "held"
    assert (payment["points"], payment["amount"], payment["order_total"]) == (
        15_000,
        "15000",
        "85000",
    )
    assert payment["created"] is True
    bal = till.balance(m)
    assert (bal["available"], bal["held"]) == (35_000, 15_000)
    captured = till.ok(till.capture(payment["id"]))
    assert captured["status"] == "captured"
    assert captured["points"] == 15_000
    bal = till.balance(m)
    assert (bal["available"], bal["held"]) == (35_000, 0)
    assert till.ok(till.get(f"/v1/checkout/points-payments/{payment['id']}")) == captured
    # The same capture again is safe; anything else on a captured payment is refused.
    assert till.ok(till.capture(payment["id"]))["status"] == "captured"
    r = till.capture(payment["id"], {"points": 10})
    assert (r.status_code, r.json()["code"]) == (409, "hold_not_open")
    r = till.release(payment["id"])
    assert (r.status_code, r.json()["code"]) == (409, "hold_not_open")
    assert till.available(m) == 35_000
    order = till.order("INV-1")
    assert (order["points_paid"], order["amount_paid_with_points"]) == (15_000, "15000")
    assert order["purchase"] is None
    till.sound()


def test_partial_capture_gives_the_rest_back_to_the_lots(till: Till) -> None:
    m = till.member()
    till.grant(m, 100)
    till.grant(m, 100)
    payment = till.held(m, "INV-2", 150, total="1000")
    # Spending takes the oldest lot first: 100 from the first, 50 from the second.
    assert sorted(lot.remaining for lot in lots_of(till.db, till.t, uuid.UUID(m))) == [0, 50]
    out = till.ok(till.capture(payment["id"], {"points": 120}))
    assert (out["status"], out["points"], out["amount"], out["points_held"]) == (
        "captured",
        120,
        "120",
        150,
    )
    lots = lots_of(till.db, till.t, uuid.UUID(m))
    assert sum(lot.remaining for lot in lots) == 80
    assert sorted(lot.remaining for lot in lots) == [0, 80]
    bal = till.balance(m)
    assert (bal["available"], bal["held"]) == (80, 0)
    till.sound()


def test_capture_by_amount_and_more_than_held(till: Till) -> None:
    till.configure(points_payment_rate=Decimal("10"))
    m = till.member()
    till.grant(m, 1_000)
    payment = till.held(m, "INV-3", 500, total="10000")
    assert payment["amount"] == "5000"
    r = till.capture(payment["id"], {"points": 501})
    assert (r.status_code, r.json()["code"]) == (409, "capture_exceeds_hold")
    out = till.ok(till.capture(payment["id"], {"amount": "2995"}))
    # 2995 / 10 rounded up: 300 points, worth 3000.
    assert (out["points"], out["amount"]) == (300, "3000")
    assert till.available(m) == 700
    till.sound()


def test_release_gives_every_point_back_and_frees_the_order(till: Till) -> None:
    m = till.member()
    till.grant(m, 1_000)
    payment = till.held(m, "INV-4", 400)
    r = till.pay(m, "INV-4", points=100)
    assert (r.status_code, r.json()["code"]) == (409, "order_already_paid_with_points")
    assert r.json()["points_payment_id"] == payment["id"]
    released = till.ok(till.release(payment["id"]))
    assert (released["status"], released["points"], released["amount"]) == ("released", 0, "0")
    assert till.available(m) == 1_000
    assert till.ok(till.release(payment["id"]))["status"] == "released"  # safe to repeat
    r = till.capture(payment["id"])
    assert (r.status_code, r.json()["code"]) == (409, "hold_not_open")
    again = till.held(m, "INV-4", 100)  # a new attempt for the cancelled order
    assert again["id"] != payment["id"]
    assert till.available(m) == 900
    assert [p["status"] for p in till.order("INV-4")["points_payments"]] == ["released", "held"]
    till.sound()


def test_expiry_through_the_job(till: Till) -> None:
    m = till.member()
    till.grant(m, 1_000)
    payment = till.held(m, "INV-5", 300, timeout_minutes=10)
    report = run_due(till.db, utcnow() + timedelta(minutes=5))
    assert (report.expired_holds, report.checkout) == (0, {})
    report = run_due(till.db, utcnow() + timedelta(minutes=11))
    assert report.expired_holds == 1
    assert report.checkout == {"expired_payments": 1}
    out = till.ok(till.get(f"/v1/checkout/points-payments/{payment['id']}"))
    assert (out["status"], out["points"]) == ("expired", 0)
    assert till.available(m) == 1_000
    assert run_due(till.db, utcnow() + timedelta(minutes=60)).checkout == {}
    r = till.capture(payment["id"])
    assert (r.status_code, r.json()["code"], r.json()["payment_status"]) == (
        409,
        "hold_not_open",
        "expired",
    )
    assert r.json()["status"] == 409  # the problem's own status, never the payment's
    assert till.ok(till.release(payment["id"]))["status"] == "expired"
    till.held(m, "INV-5", 200)  # the order is free again
    till.sound()


def test_capture_after_the_deadline_before_the_job(
    till: Till, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = till.member()
    till.grant(m, 1_000)
    payment = till.held(m, "INV-6", 300, timeout_minutes=1)
    later = utcnow() + timedelta(minutes=2)
    monkeypatch.setattr("setia.ledger.service.utcnow", lambda: later)
    monkeypatch.setattr("setia.checkout.service.utcnow", lambda: later)
    r = till.capture(payment["id"])
    assert (r.status_code, r.json()["code"], r.json()["payment_status"]) == (
        409,
        "hold_not_open",
        "expired",
    )
    assert r.json()["status"] == 409  # the problem's own status, never the payment's
    assert till.balance(m)["held"] == 300
    # A new payment for the order expires the dead one first (the job has not run yet).
    again = till.held(m, "INV-6", 100)
    statuses = {p["id"]: p["status"] for p in till.order("INV-6")["points_payments"]}
    assert statuses == {payment["id"]: "expired", again["id"]: "held"}
    assert till.balance(m)["held"] == 100
    assert till.available(m) == 900
    # The ledger's hold job finds that hold already expired, with its own key.
    report = run_due(till.db, later)
    assert (report.expired_holds, report.checkout, report.errors) == (0, {}, [])
    till.sound()


def test_idempotent_create(till: Till) -> None:
    m = till.member()
    till.grant(m, 1_000)
    first = till.held(m, "INV-7", 300, key="till-7")
    r = till.pay(m, "INV-7", points=300, key="till-7")
    assert r.status_code == 200
    assert r.json()["id"] == first["id"]
    assert r.json()["created"] is False
    r = till.pay(m, "INV-7", points=301, key="till-7")
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_key_reused")
    till.ok(till.capture(first["id"]))
    r = till.pay(m, "INV-7", points=300, key="till-7")  # still the first result
    assert (r.status_code, r.json()["status"]) == (200, "captured")
    assert till.available(m) == 700
    till.sound()


def test_conversion_and_rounding(till: Till) -> None:
    rate = Decimal("1.5")
    assert points_for(Decimal("10"), rate) == 7  # 6.67 rounded up
    assert points_value(7, rate, "IDR") == Decimal("10")  # 10.5 rounded down
    assert points_value(7, rate, "MYR") == Decimal("10.50")
    assert points_value(3, Decimal("0.333"), "MYR") == Decimal("0.99")
    till.configure(points_payment_rate=rate, points_payment_max_percent=20)
    with till.db.session() as s:
        program = s.get(Program, till.t.program_id)
        assert program is not None
        assert order_limit(Decimal("85000"), program, rate) == (Decimal("17000"), 11_333)
    m = till.member()
    till.grant(m, 50_000)
    out = till.ok(till.pay(m, "INV-8", amount="10", total="85000"), 201)
    assert (out["points"], out["amount"], out["rate"]) == (7, "10", "1.5")
    r = till.pay(m, "INV-9", points=11_334, total="85000")
    assert (r.status_code, r.json()["code"]) == (409, "points_payment_limit")
    assert (r.json()["max_points"], r.json()["max_amount"]) == (11_333, "17000")
    till.ok(till.pay(m, "INV-9", points=11_333, total="85000"), 201)
    quote = till.ok(
        till.post(
            "/v1/checkout/points-quote", {"member_id": m, "order_total": "85000", "currency": "IDR"}
        )
    )
    assert quote["available_points"] == 50_000 - 7 - 11_333
    assert (quote["max_points"], quote["max_amount"], quote["usable"]) == (11_333, "16999", True)
    till.sound()


def test_quote_caps_at_the_balance_and_minimum(till: Till) -> None:
    till.configure(min_redeem_points=500)
    m = till.member()
    till.grant(m, 400)
    body = {"member_id": m, "order_total": "85000", "currency": "IDR"}
    quote = till.ok(till.post("/v1/checkout/points-quote", body))
    assert (quote["available_points"], quote["max_points"], quote["usable"]) == (400, 0, False)
    r = till.pay(m, "INV-10", points=100)
    assert (r.status_code, r.json()["code"]) == (409, "below_minimum_redeem")
    till.grant(m, 200)
    quote = till.ok(till.post("/v1/checkout/points-quote", body))
    assert (quote["max_points"], quote["max_amount"], quote["order_max_points"]) == (
        600,
        "600",
        85_000,
    )
    till.sound()


@pytest.mark.parametrize(
    ("change", "body", "status", "code"),
    [
        ({"points_payment_rate": None}, {"points": 10}, 409, "points_payment_disabled"),
        ({"points_payment_max_percent": 10}, {"points": 10_001}, 409, "points_payment_limit"),
        ({}, {"points": 2_001}, 409, "insufficient_points"),
        ({}, {"points": 10, "currency": "MYR"}, 409, "currency_mismatch"),
        ({}, {"points": 10, "currency": "XXQ"}, 422, "unknown_currency"),
        ({}, {"points": 10, "member_id": str(uuid.uuid4())}, 404, "member_not_found"),
        ({}, {"amount": "12.5"}, 422, "too_many_decimals"),
        ({}, {"amount": "-5"}, 422, "invalid_amount"),
        ({}, {"amount": "abc"}, 422, "invalid_amount"),
        ({}, {"amount": 15}, 422, None),
        ({}, {"points": 10, "order_total": "0"}, 422, "invalid_amount"),
        ({}, {"points": 10, "amount": "10"}, 422, None),
        ({}, {}, 422, None),
        ({}, {"points": 0}, 422, None),
        ({}, {"points": "10"}, 422, None),
        ({}, {"points": 1.5}, 422, None),
        ({}, {"points": 10, "extra": 1}, 422, None),
    ],
)
def test_bad_input_writes_nothing(
    till: Till, change: dict[str, object], body: dict[str, object], status: int, code: str | None
) -> None:
    if change:
        till.configure(**change)
    m = till.member()
    till.grant(m, 2_000)
    before = till.counts()
    r = till.pay(m, "INV-BAD", total="100000", **body)
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["code"] == code
    assert till.counts() == before
    assert till.available(m) == 2_000


def test_other_tenants_member_and_payment_are_not_found(till: Till) -> None:
    other = make_tenant(till.db, name="Other")
    with till.db.session() as s:
        from setia.members import service as members
        from setia.tenants.models import Tenant

        t = s.get(Tenant, other.tenant_id)
        assert t is not None
        stranger = str(members.create_member(s, t, {"name": "X"}, source="test").id)
    m = till.member()
    till.grant(m, 1_000)
    before = till.counts()
    r = till.pay(stranger, "INV-11", points=10)
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
    assert till.counts() == before
    payment = till.held(m, "INV-11", 10)
    foreign = {"Authorization": f"Bearer {other.api_key}"}
    for path in ("", "/capture", "/release"):
        url = f"/v1/checkout/points-payments/{payment['id']}{path}"
        r = till.c.post(url, headers=foreign) if path else till.c.get(url, headers=foreign)
        assert (r.status_code, r.json()["code"]) == (404, "points_payment_not_found")
    r = till.c.get("/v1/checkout/orders/INV-11", headers=foreign)
    assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
    assert till.order("INV-11")["points_payments"][0]["status"] == "held"


def test_cli(till: Till, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from setia.cli import app
    from setia.core import db as core_db
    from setia.core.config import get_settings

    monkeypatch.setenv("SETIA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    core_db.set_database(None)
    m = till.member()
    till.grant(m, 1_000)
    runner = CliRunner()
    tenant = ["--tenant", str(till.t.tenant_id)]

    def run(*args: str) -> dict[str, object]:
        result = runner.invoke(app, ["checkout", *args, *tenant])
        assert result.exit_code == 0, result.output
        out: dict[str, object] = json.loads(result.stdout)
        return out

    try:
        quote = run("quote", m, "--total", "85000")
        assert (quote["available_points"], quote["max_points"]) == (1_000, 1_000)
        held = run("pay", m, "ORD-CLI", "--points", "300", "--total", "85000")
        assert (held["status"], held["points"]) == ("held", 300)
        captured = run("capture", str(held["id"]), "--points", "200")
        assert (captured["status"], captured["points"]) == ("captured", 200)
        other = run("pay", m, "ORD-CLI-2", "--points", "100", "--total", "85000")
        assert run("release", str(other["id"]))["status"] == "released"
        result = runner.invoke(app, ["checkout", "capture", str(held["id"]), *tenant])
        assert result.exit_code != 0
        assert "captured" in result.output
    finally:
        core_db.get_database().dispose()
        core_db.set_database(None)
        get_settings.cache_clear()
    assert till.available(m) == 800
    till.sound()


def test_scopes(till: Till) -> None:
    from setia.tenants import service as tenants

    with till.db.session() as s:
        _key, secret = tenants.create_key(s, till.t.tenant_id, scope="read")
    read = {"Authorization": f"Bearer {secret}"}
    m = till.member()
    till.grant(m, 1_000)
    payment = till.held(m, "SC-1", 100)
    body = {"member_id": m, "order_id": "SC-2", "points": 1, "order_total": "10", "currency": "IDR"}
    for path, data in [
        ("/v1/checkout/points-payments", body),
        (f"/v1/checkout/points-payments/{payment['id']}/capture", None),
        (f"/v1/checkout/points-payments/{payment['id']}/release", None),
        ("/v1/checkout/orders/SC-1/refund", {"amount": "1"}),
    ]:
        r = till.c.post(path, json=data, headers=read)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), path
    quote = {"member_id": m, "order_total": "1000", "currency": "IDR"}
    assert till.c.post("/v1/checkout/points-quote", json=quote, headers=read).status_code == 200
    assert (
        till.c.get(f"/v1/checkout/points-payments/{payment['id']}", headers=read).json()["status"]
        == "held"
    )
    assert till.c.get("/v1/checkout/orders/SC-1", headers=read).status_code == 200


@given(
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2),
    rate=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3),
)
def test_conversion_never_favours_the_member(amount: Decimal, rate: Decimal) -> None:
    """The points asked for an amount are the fewest worth at least it (before the value is
    rounded down to the currency), and their value never exceeds what they are worth."""
    points = points_for(amount, rate)
    assert points * rate >= amount
    assert (points - 1) * rate < amount
    value = points_value(points, rate, "MYR")
    assert value <= points * rate
    assert points * rate - value < Decimal("0.01")
    assert value >= amount  # amount has the currency's precision


def test_job_mirrors_a_hold_captured_through_the_generic_holds_api(till: Till) -> None:
    m = till.member()
    till.grant(m, 1_000)
    payment = till.held(m, "GEN-1", 400, timeout_minutes=5)
    till.ok(till.post(f"/v1/holds/{payment['hold_id']}/capture", {"points": 300}))
    report = run_due(till.db, utcnow() + timedelta(minutes=6))
    assert report.checkout == {"reconciled_payments": 1}
    out = till.ok(till.get(f"/v1/checkout/points-payments/{payment['id']}"))
    assert (out["status"], out["points"], out["amount"]) == ("captured", 300, "300")
    assert till.available(m) == 700
    till.sound()
