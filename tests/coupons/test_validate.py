"""Validation at the API: every reason a code is refused, the discount of each kind, and
malformed carts (422, nothing written)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.core.time import utcnow
from setia.coupons import service
from tests.conftest import TenantFixture, make_tenant
from tests.coupons.conftest import (
    KOPI,
    cart_json,
    counts,
    generate,
    make_campaign,
    new_member,
    tx,
)


def check(
    client: TestClient,
    t: TenantFixture,
    code: str,
    cart: dict[str, Any] | None = None,
    member_id: uuid.UUID | None = None,
    locale: str = "en",
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "cart": cart or cart_json(KOPI)}
    if member_id:
        body["member_id"] = str(member_id)
    r = client.post(f"/v1/coupons/validate?locale={locale}", json=body, headers=t.headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def redeem(
    client: TestClient,
    t: TenantFixture,
    code: str,
    order_id: str,
    member_id: uuid.UUID | None = None,
    cart: dict[str, Any] | None = None,
) -> Any:
    body: dict[str, Any] = {"code": code, "order_id": order_id, "cart": cart or cart_json(KOPI)}
    if member_id:
        body["member_id"] = str(member_id)
    return client.post("/v1/coupons/redeem", json=body, headers=t.headers)


def one_code(db: Database, t: TenantFixture, **campaign: Any) -> str:
    cid = make_campaign(db, t, **campaign)
    return generate(db, t, cid, 1)[0]


def assert_refused(out: dict[str, Any], reason: str) -> None:
    assert out["valid"] is False
    assert out["reason_code"] == reason
    assert Decimal(out["discount"]) == 0
    assert out["reason"]


def test_valid_fixed_discount(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    code = one_code(db, tenant)
    out = check(client, tenant, code.lower())
    assert out["valid"] is True
    assert out["discount"] == "10000"
    assert out["currency"] == "IDR"
    assert out["reason_code"] is None
    assert out["campaign"]["discount_type"] == "fixed"
    assert out["code"] == code


def test_unknown_and_other_tenants_code(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    assert_refused(check(client, tenant, "NOPE-1234"), "unknown")
    other = make_tenant(db, name="Other")
    theirs = one_code(db, other, public_code="THEIRS")
    assert check(client, other, theirs)["valid"] is True
    assert_refused(check(client, tenant, theirs), "unknown")
    assert_refused(check(client, tenant, "theirs"), "unknown")


def test_not_started_and_expired(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    now = utcnow()
    later = one_code(db, tenant, conditions={"valid_from": (now + timedelta(days=1)).isoformat()})
    assert_refused(check(client, tenant, later), "not_started")
    over = one_code(
        db, tenant, conditions={"valid_until": (now - timedelta(seconds=1)).isoformat()}
    )
    assert_refused(check(client, tenant, over), "expired")
    cid = make_campaign(db, tenant)
    own = generate(db, tenant, cid, 1, expires_at=now - timedelta(minutes=1))[0]
    assert_refused(check(client, tenant, own), "expired")


def test_cancelled_code(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    code = one_code(db, tenant)
    r = client.post(f"/v1/coupons/{code}/cancel", json={"reason": "leaked"}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert_refused(check(client, tenant, code), "cancelled")


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_campaign_paused_or_archived(
    client: TestClient, db: Database, tenant: TenantFixture, status: str
) -> None:
    cid = make_campaign(db, tenant)
    code = generate(db, tenant, cid, 1)[0]
    r = client.patch(f"/v1/coupon-campaigns/{cid}", json={"status": status}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert_refused(check(client, tenant, code), f"campaign_{status}")


def test_code_used_up_and_budget_exhausted(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    assert redeem(client, tenant, code, "O1").status_code == 201
    assert_refused(check(client, tenant, code), "used_up")
    # A public code is multi-use; the campaign's budget of 2 ends it.
    make_campaign(db, tenant, public_code="HEMAT", conditions={"max_uses": 2})
    assert redeem(client, tenant, "hemat", "P1").status_code == 201
    assert check(client, tenant, "HEMAT")["valid"] is True
    assert redeem(client, tenant, "Hemat", "P2").status_code == 201
    assert_refused(check(client, tenant, "HEMAT"), "budget_exhausted")


def test_member_conditions(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    a, b = new_member(db, tenant, "A"), new_member(db, tenant, "B")
    cid = make_campaign(db, tenant)
    issued = tx(
        db,
        lambda s: (
            service.issue_code(
                s,
                tenant_id=tenant.tenant_id,
                campaign_id=cid,
                member_id=a,
                source_type="test",
                source_id="1",
            ).code
        ),
    )
    assert_refused(check(client, tenant, issued), "member_required")
    assert_refused(check(client, tenant, issued, member_id=b), "wrong_member")
    assert check(client, tenant, issued, member_id=a)["valid"] is True
    # Per-member limit on a public code.
    make_campaign(db, tenant, public_code="SEKALI", conditions={"per_member_limit": 1})
    assert_refused(check(client, tenant, "SEKALI"), "member_required")
    assert redeem(client, tenant, "SEKALI", "O1", member_id=a).status_code == 201
    assert_refused(check(client, tenant, "SEKALI", member_id=a), "member_limit_reached")
    assert check(client, tenant, "SEKALI", member_id=b)["valid"] is True


def test_integer_prices_are_taken_as_strings(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    cart = {"currency": "idr", "items": [{"sku": "A", "quantity": 1, "unit_price": 25000}]}
    out = check(client, tenant, code, cart)
    assert out["valid"] is True
    assert out["currency"] == "IDR"


def test_unknown_member_is_404(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    code = one_code(db, tenant)
    r = client.post(
        "/v1/coupons/validate",
        json={"code": code, "member_id": str(uuid.uuid4()), "cart": cart_json(KOPI)},
        headers=tenant.headers,
    )
    assert r.status_code == 404
    assert r.json()["code"] == "member_not_found"


def test_min_spend_says_how_much_more(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant, conditions={"min_spend": "100000"})
    out = check(client, tenant, code)  # 2 x 25,000
    assert_refused(out, "min_spend_not_met")
    assert out["reason_params"]["shortfall"] == "50000"
    assert "Rp\xa050,000" in out["reason"]
    ms = check(client, tenant, code, locale="ms")
    idn = check(client, tenant, code, locale="id")
    assert ms["reason"] != out["reason"]
    assert idn["reason"] == "Minimal belanja Rp\xa0100.000; tambah Rp\xa050.000 lagi."
    assert check(client, tenant, code, cart_json(("A", "", 4, "25000")))["valid"] is True


def test_min_spend_counts_applicable_lines_only(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant, conditions={"min_spend": "50000", "categories": ["drinks"]})
    cart = cart_json(("KOPI", "drinks", 1, "30000"), ("MUG", "merch", 1, "90000"))
    out = check(client, tenant, code, cart)
    assert_refused(out, "min_spend_not_met")
    assert out["reason_params"]["shortfall"] == "20000"


def test_no_applicable_items_and_exclusions(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    only_food = one_code(db, tenant, conditions={"categories": ["food"]})
    assert_refused(check(client, tenant, only_food), "no_applicable_items")
    excluded = one_code(db, tenant, conditions={"exclude_skus": ["KOPI-SUSU"]})
    assert_refused(check(client, tenant, excluded), "no_applicable_items")
    free = one_code(db, tenant, discount={"type": "free_item", "skus": ["CROISSANT"]})
    assert_refused(check(client, tenant, free), "no_applicable_items")


def test_currency_mismatch(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    code = one_code(db, tenant)
    out = check(client, tenant, code, cart_json(("A", "", 1, "25.50"), currency="MYR"))
    assert_refused(out, "currency_mismatch")
    assert "IDR" in out["reason"]


def test_discount_kinds(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    cart = cart_json(
        ("KOPI", "drinks", 2, "25000"),
        ("TEH", "drinks", 1, "18000"),
        ("MUG", "merch", 1, "90000"),
        shipping="15000",
    )
    pct = one_code(db, tenant, discount={"type": "percent", "percent": "20", "max_amount": "30000"})
    assert check(client, tenant, pct, cart)["discount"] == "30000"  # 20% of 158,000 capped
    pct_drinks = one_code(
        db,
        tenant,
        discount={"type": "percent", "percent": "15"},
        conditions={"categories": ["drinks"]},
    )
    assert check(client, tenant, pct_drinks, cart)["discount"] == "10200"  # 15% of 68,000
    fixed_big = one_code(db, tenant, discount={"type": "fixed", "amount": "500000"})
    assert check(client, tenant, fixed_big, cart)["discount"] == "158000"  # not over the lines
    free = one_code(db, tenant, discount={"type": "free_item", "skus": ["KOPI", "TEH"]})
    assert check(client, tenant, free, cart)["discount"] == "25000"  # the dearest one
    free_cap = one_code(
        db, tenant, discount={"type": "free_item", "skus": ["KOPI"], "max_amount": "20000"}
    )
    assert check(client, tenant, free_cap, cart)["discount"] == "20000"
    ship = one_code(db, tenant, discount={"type": "free_shipping"})
    assert check(client, tenant, ship, cart)["discount"] == "15000"
    assert_refused(check(client, tenant, ship, cart_json(KOPI)), "no_shipping")


def _item(**kw: Any) -> dict[str, Any]:
    return {"sku": "A", "quantity": 1, "unit_price": "1", **kw}


PRICE = ["cart", "items", 0, "unit_price"]


@pytest.mark.parametrize(
    ("cart", "loc", "fragment"),
    [
        ({"currency": "IDR", "items": [_item(unit_price=25000.0)]}, PRICE, "not as floats"),
        ({"currency": "IDR", "items": [_item(unit_price="-5")]}, PRICE, "negative"),
        ({"currency": "IDR", "items": [_item(unit_price="NaN")]}, PRICE, "finite"),
        ({"currency": "IDR", "items": [_item(unit_price="abc")]}, PRICE, "not a number"),
        ({"currency": "IDR", "items": [_item(unit_price="1.5")]}, ["cart"], "decimal"),
        ({"currency": "XXZ", "items": [_item()]}, ["cart", "currency"], "ISO 4217"),
        ({"currency": "IDR", "items": []}, ["cart", "items"], "at least 1"),
        ({"currency": "IDR", "items": [_item(quantity=0)]}, ["cart", "items", 0, "quantity"], ""),
        ({"currency": "IDR", "items": [_item()], "shipping": "-1"}, ["cart", "shipping"], ""),
        ({"currency": "IDR", "items": [_item(sku="")]}, ["cart", "items", 0, "sku"], ""),
        ({"currency": "IDR", "items": [_item(colour="red")]}, ["cart", "items", 0, "colour"], ""),
        ({"items": [_item()]}, ["cart", "currency"], "required"),
    ],
)
def test_malformed_carts_are_422_with_field_errors_and_write_nothing(
    client: TestClient,
    db: Database,
    tenant: TenantFixture,
    cart: dict[str, Any],
    loc: list[Any],
    fragment: str,
) -> None:
    code = one_code(db, tenant)
    before = counts(db)
    for path, extra in (("validate", {}), ("redeem", {"order_id": "O1"})):
        r = client.post(
            f"/v1/coupons/{path}",
            json={"code": code, "cart": cart, **extra},
            headers=tenant.headers,
        )
        assert r.status_code == 422, r.text
        p = r.json()
        assert p["code"] == "validation_error"
        assert any(e["loc"][1:] == loc for e in p["errors"]), p["errors"]
        assert fragment in p["detail"]
    assert counts(db) == before


def test_not_started_reason_shows_the_start_in_local_time(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """Harbolnas starts at midnight 12 December in Jakarta: the member reads that, not
    "2027-12-11T17:00:00+00:00"."""
    code = one_code(db, tenant, conditions={"valid_from": "2027-12-12T00:00:00"})
    out = check(client, tenant, code, locale="id")
    assert_refused(out, "not_started")
    assert "2027-12-12 00:00" in out["reason"], out["reason"]
    assert out["reason_params"]["starts_at"] == "2027-12-11T17:00:00+00:00"
    r = redeem(client, tenant, code, "ORD-LATE")
    assert r.status_code == 409, r.text
    assert "2027-12-12 00:00" in r.json()["detail"], r.text
