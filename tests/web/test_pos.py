"""The cashier page: find a member by phone or QR text, record a purchase once, apply a coupon,
pay with points, redeem a reward; what a cashier may not do."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.coupons.models import Coupon, CouponRedemption
from setia.events.models import Event, Order
from setia.web.console.pos import parse_scan
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import configure
from tests.web.test_members_pages import available, grant, new_member


def coupon_code(client: TestClient, tenant: TenantFixture, amount: str = "10000") -> str:
    camp = client.post(
        "/v1/coupon-campaigns",
        json={
            "code": f"promo{uuid.uuid4().hex[:6]}",
            "names": {"id": "Potongan 10rb", "en": "10k off"},
            "discount": {"type": "fixed", "amount": amount},
            "uses_per_code": 1,
        },
        headers=tenant.headers,
    )
    assert camp.status_code == 201, camp.text
    cid = camp.json()["id"]
    gen = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate", json={"count": 1}, headers=tenant.headers
    )
    assert gen.status_code == 201, gen.text
    codes = client.get(f"/v1/coupon-campaigns/{cid}/codes", headers=tenant.headers).json()["data"]
    return str(codes[0]["code"])


def count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def sale(amount: str = "85000", **kw: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "order_id": f"POS-T-{uuid.uuid4().hex[:8]}",
        "idem": str(uuid.uuid4()),
        **kw,
    }


# --------------------------------------------------------------------------- finding


def test_scan_text_formats() -> None:
    mid = str(uuid.uuid4())
    assert parse_scan(f"setia:member:{mid}") == ("id", mid)
    assert parse_scan("setia:member:C-1001") == ("external_id", "C-1001")
    assert parse_scan(mid) == ("id", mid)
    assert parse_scan("0812-3456-7890") == ("phone", "0812-3456-7890")
    assert parse_scan("siti@example.com") == ("email", "siti@example.com")
    assert parse_scan("C-1001") == ("external_id", "C-1001")


def test_find_by_phone_or_qr(console_as, client, tenant) -> None:
    mid = new_member(client, tenant, name="Siti Rahayu", phone="+6281234567890")
    c = console_as("cashier")
    r = c.get("/console/pos", params={"find": "0812 3456 7890"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/pos/m/{mid}"
    r = c.get("/console/pos", params={"find": f"setia:member:{mid}"}, follow_redirects=False)
    assert r.headers["location"] == f"/console/pos/m/{mid}"
    page = c.get(f"/console/pos/m/{mid}")
    assert page.status_code == 200
    assert "Siti Rahayu" in page.text
    assert 'id="pos-balance">0<' in page.text
    missing = c.get("/console/pos", params={"find": "0899-0000-0000"})
    assert missing.status_code == 404
    assert 'id="err-find"' in missing.text


def test_another_tenants_member_is_a_404_at_the_till(console_as, client, db) -> None:
    other = make_tenant(db, name="Other Shop")
    mid = new_member(client, other, name="Not Yours", phone="+6281234567890")
    c = console_as("cashier")
    assert c.get(f"/console/pos/m/{mid}").status_code == 404
    assert c.get("/console/pos", params={"find": f"setia:member:{mid}"}).status_code == 404
    assert c.post(f"/console/pos/m/{mid}/sale", sale()).status_code == 404
    assert count(db, Event) == 0


# --------------------------------------------------------------------------- the sale


def test_a_purchase_is_recorded_once_on_retry(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("cashier")
    body = sale("85000", store="bandung-dago", items="KOPI, 2, 25000\nCROISSANT, 1, 35000")
    r = c.post(f"/console/pos/m/{mid}/sale", body)
    assert r.status_code == 303, r.text
    again = c.post(f"/console/pos/m/{mid}/sale", body)  # the tablet retried
    assert again.status_code == 303
    assert count(db, Event) == 1
    assert count(db, Order) == 1
    assert available(client, tenant, mid) == 85  # 1 point per Rp 1.000
    receipt = c.get(r.headers["location"])
    assert 'id="points-earned">85<' in receipt.text
    assert body["order_id"] in receipt.text


def test_sale_field_errors_in_the_cashier_language(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("cashier", lang="ms")
    r = c.post(f"/console/pos/m/{mid}/sale", sale(""))
    assert r.status_code == 422
    assert 'id="err-amount"' in r.text
    assert "Medan ini wajib diisi." in r.text
    r = c.post(f"/console/pos/m/{mid}/sale", sale("12.50"))  # IDR has no sen
    assert r.status_code == 422
    assert 'id="err-amount"' in r.text
    r = c.post(f"/console/pos/m/{mid}/sale", sale("50000", items="KOPI, two, 25000"))
    assert 'id="err-items"' in r.text
    assert count(db, Event) == 0


def test_coupon_applied_to_the_sale(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    code = coupon_code(client, tenant)
    c = console_as("cashier")
    check = c.post(f"/console/pos/m/{mid}/coupon-check", sale("85000", coupon=code))
    assert check.status_code == 200
    assert "10,000 off" in check.text
    assert count(db, CouponRedemption) == 0  # checking writes nothing
    body = sale("85000", coupon=code.lower())
    r = c.post(f"/console/pos/m/{mid}/sale", body)
    assert r.status_code == 303, r.text
    assert c.post(f"/console/pos/m/{mid}/sale", body).status_code == 303  # retried
    assert count(db, CouponRedemption) == 1
    with db.session() as s:
        order = s.execute(select(Order)).scalar_one()
        assert order.amount == Decimal(75000)
        assert order.points_earned == 75
    receipt = c.get(r.headers["location"])
    assert code in receipt.text
    # the code is single use: a second sale is refused next to the coupon field, nothing written
    again = c.post(f"/console/pos/m/{mid}/sale", sale("50000", coupon=code))
    assert again.status_code == 409
    assert 'id="err-coupon"' in again.text
    assert "already been used" in again.text
    assert count(db, Event) == 1


def test_unknown_and_expired_coupons_in_the_cashier_language(
    console_as, client, tenant, db
) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("cashier", lang="id")
    r = c.post(f"/console/pos/m/{mid}/sale", sale(coupon="NOPE-NOPE"))
    assert r.status_code == 409
    assert 'id="err-coupon"' in r.text
    assert "Kode kupon tidak dikenal." in r.text
    code = coupon_code(client, tenant)
    with db.session() as s:
        coupon = s.execute(select(Coupon).where(Coupon.code == code)).scalar_one()
        coupon.expires_at = utcnow() - timedelta(days=1)
        s.commit()
    r = c.post(f"/console/pos/m/{mid}/sale", sale(coupon=code))
    assert "Kupon ini sudah kedaluwarsa." in r.text
    assert count(db, Event) == 0


def test_pay_with_points(console_as, client, tenant, db) -> None:
    configure(db, tenant, points_payment_rate=Decimal("10"), points_payment_max_percent=50)
    mid = new_member(client, tenant, name="Siti")
    grant(client, tenant, mid, 3000)
    c = console_as("cashier", lang="id")
    too_many = c.post(f"/console/pos/m/{mid}/sale", sale("50000", points="2600"))
    assert too_many.status_code == 409
    assert 'id="err-points"' in too_many.text
    assert available(client, tenant, mid) == 3000
    body = sale("50000", points="2000")
    r = c.post(f"/console/pos/m/{mid}/sale", body)
    assert r.status_code == 303, r.text
    assert c.post(f"/console/pos/m/{mid}/sale", body).status_code == 303  # retried
    assert available(client, tenant, mid) == 3000 - 2000 + 50
    receipt = c.get(r.headers["location"])
    assert "Rp\u00a020.000" in receipt.text  # 2.000 points at Rp 10
    short = c.post(f"/console/pos/m/{mid}/sale", sale("500000", points="5000"))
    assert 'id="err-points"' in short.text
    assert "Poin tidak cukup" in short.text


def test_points_field_says_when_paying_with_points_is_off(console_as, client, tenant) -> None:
    mid = new_member(client, tenant, name="Siti")
    grant(client, tenant, mid, 1000)
    c = console_as("cashier")
    page = c.get(f"/console/pos/m/{mid}")
    assert "Paying with points is off" in page.text
    r = c.post(f"/console/pos/m/{mid}/sale", sale(points="100"))
    assert r.status_code == 409
    assert 'id="err-points"' in r.text
    assert available(client, tenant, mid) == 1000


def test_redeem_a_reward_at_the_till(console_as, client, tenant, db) -> None:
    put = client.put(
        f"/v1/programs/{tenant.program_id}/rewards/kopi",
        json={
            "kind": "physical",
            "names": {"en": "Free coffee", "id": "Kopi gratis"},
            "points": 100,
        },
        headers=tenant.headers,
    )
    assert put.status_code == 201, put.text
    mid = new_member(client, tenant, name="Siti")
    grant(client, tenant, mid, 150)
    c = console_as("cashier")
    page = c.get(f"/console/pos/m/{mid}")
    assert "Free coffee" in page.text
    idem = str(uuid.uuid4())
    r = c.post(f"/console/pos/m/{mid}/reward", {"reward": "kopi", "idem": idem})
    assert r.status_code == 303, r.text
    assert (
        c.post(f"/console/pos/m/{mid}/reward", {"reward": "kopi", "idem": idem}).status_code == 303
    )
    assert available(client, tenant, mid) == 50
    short = c.post(f"/console/pos/m/{mid}/reward", {"reward": "kopi", "idem": str(uuid.uuid4())})
    assert short.status_code == 409
    assert "Not enough points" in short.text
    assert available(client, tenant, mid) == 50


# --------------------------------------------------------------------------- roles, CSRF


@pytest.mark.parametrize("role", ["marketer", "analyst"])
def test_the_till_is_refused_to_roles_without_pos(console_as, client, tenant, db, role) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as(role)
    assert c.get("/console/pos").status_code == 403
    assert c.get(f"/console/pos/m/{mid}").status_code == 403
    assert c.post(f"/console/pos/m/{mid}/sale", sale()).status_code == 403
    assert count(db, Event) == 0


def test_a_cashier_looks_members_up_but_cannot_adjust_merge_or_erase(
    console_as, client, tenant
) -> None:
    mid = new_member(client, tenant, name="Siti", phone="+6281234567890")
    other = new_member(client, tenant, name="Siti dup")
    c = console_as("cashier")
    assert "Siti" in c.get("/console/members", params={"q": "0812-3456-7890"}).text
    page = c.get(f"/console/members/{mid}")
    assert page.status_code == 200
    assert f"/console/members/{mid}/adjust" not in page.text
    assert (
        c.post(f"/console/members/{mid}/adjust", {"points": "9", "reason": "x y z"}).status_code
        == 403
    )
    assert (
        c.post(f"/console/members/{mid}/merge", {"other": other, "reason": "dup"}).status_code
        == 403
    )
    assert (
        c.post(f"/console/members/{mid}/erase", {"confirm": "ERASE", "reason": "x y"}).status_code
        == 403
    )
    assert available(client, tenant, mid) == 0
    assert client.get(f"/v1/members/{other}", headers=tenant.headers).json()["status"] == "active"


def test_a_sale_without_csrf_is_refused(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("cashier")
    assert c.post(f"/console/pos/m/{mid}/sale", sale(), csrf=False).status_code == 403
    assert count(db, Event) == 0
