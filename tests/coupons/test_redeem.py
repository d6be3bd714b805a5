"""Redeem and void at the API: idempotency, exactly-once void, limits, tenant isolation,
nothing written on a refusal."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.coupons import service
from tests.conftest import TenantFixture, make_tenant
from tests.coupons.conftest import (
    KOPI,
    cart_json,
    counts,
    coupon,
    generate,
    make_campaign,
    new_member,
    tx,
)
from tests.coupons.test_validate import check, one_code, redeem


def void(client: TestClient, t: TenantFixture, code: str, order_id: str) -> Any:
    return client.post(
        "/v1/coupons/void",
        json={"code": code, "order_id": order_id, "reason": "order_cancelled"},
        headers=t.headers,
    )


def test_redeem_returns_the_redemption(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    r = redeem(client, tenant, code.lower(), "POS-1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["code"] == code
    assert body["discount"] == "10000"
    assert body["currency"] == "IDR"
    assert body["status"] == "active"
    assert body["order_id"] == "POS-1"
    assert body["created"] is True
    assert coupon(db, tenant, code).uses == 1


def test_same_code_same_order_returns_the_first(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    first = redeem(client, tenant, code, "POS-1")
    before = counts(db)
    again = redeem(client, tenant, code, "POS-1")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert counts(db) == before
    assert coupon(db, tenant, code).uses == 1


def test_idempotency_key(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    make_campaign(db, tenant, public_code="RAMAI", uses_per_code=None)
    body = {"code": "RAMAI", "order_id": "O1", "cart": cart_json(KOPI)}
    h = {**tenant.headers, "Idempotency-Key": "k1"}
    first = client.post("/v1/coupons/redeem", json=body, headers=h)
    assert first.status_code == 201
    again = client.post("/v1/coupons/redeem", json=body, headers=h)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/v1/coupons/redeem", json={**body, "order_id": "O2"}, headers=h)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


def test_refusals_are_409_with_stable_codes_and_write_nothing(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant, conditions={"min_spend": "80000"})
    before = counts(db)
    r = redeem(client, tenant, code, "O1")
    assert r.status_code == 409
    p = r.json()
    assert p["code"] == "coupon_min_spend_not_met"
    assert p["reason_code"] == "min_spend_not_met"
    assert p["reason_params"]["shortfall"] == "30000"
    assert counts(db) == before
    assert coupon(db, tenant, code).uses == 0
    ok = redeem(client, tenant, code, "O1", cart=cart_json(("A", "", 4, "25000")))
    assert ok.status_code == 201
    second = redeem(client, tenant, code, "O2", cart=cart_json(("A", "", 4, "25000")))
    assert second.status_code == 409
    assert second.json()["code"] == "coupon_used_up"


def test_localized_refusal(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    code = one_code(db, tenant)
    redeem(client, tenant, code, "O1")
    r = client.post(
        "/v1/coupons/redeem?locale=id",
        json={"code": code, "order_id": "O2", "cart": cart_json(KOPI)},
        headers=tenant.headers,
    )
    assert r.status_code == 409
    assert r.json()["detail"] == "Kupon ini sudah terpakai."


def test_void_makes_the_code_usable_again_exactly_once(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant, conditions={"max_uses": 1})
    code = generate(db, tenant, cid, 1)[0]
    first = redeem(client, tenant, code, "O1").json()
    assert check(client, tenant, code)["reason_code"] == "used_up"
    v = void(client, tenant, code, "O1")
    assert v.status_code == 200, v.text
    assert v.json()["status"] == "voided"
    assert v.json()["void_reason"] == "order_cancelled"
    assert v.json()["id"] == first["id"]
    assert coupon(db, tenant, code).uses == 0
    assert tx(db, lambda s: service.get_campaign(s, tenant.tenant_id, cid).uses) == 0
    before = counts(db)
    again = void(client, tenant, code, "O1")
    assert again.status_code == 200
    assert again.json()["status"] == "voided"
    assert counts(db) == before
    assert coupon(db, tenant, code).uses == 0
    assert tx(db, lambda s: service.get_campaign(s, tenant.tenant_id, cid).uses) == 0
    # Usable again, for another order (and the campaign's budget of 1 counts it once).
    assert check(client, tenant, code)["valid"] is True
    assert redeem(client, tenant, code, "O2").status_code == 201
    got = client.get(f"/v1/coupons/{code}", headers=tenant.headers).json()
    assert [r["status"] for r in got["redemptions"]] == ["voided", "active"]
    assert got["uses"] == 1


def test_void_of_an_order_that_never_used_the_code(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    r = void(client, tenant, code, "O9")
    assert r.status_code == 404
    assert r.json()["code"] == "redemption_not_found"
    assert void(client, tenant, "NOPE-NOPE", "O9").json()["code"] == "coupon_not_found"


def test_per_member_limit(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    a = new_member(db, tenant, "A")
    make_campaign(db, tenant, public_code="DUAKALI", conditions={"per_member_limit": 2})
    assert redeem(client, tenant, "DUAKALI", "O1", member_id=a).status_code == 201
    assert redeem(client, tenant, "DUAKALI", "O2", member_id=a).status_code == 201
    third = redeem(client, tenant, "DUAKALI", "O3", member_id=a)
    assert third.status_code == 409
    assert third.json()["code"] == "coupon_member_limit_reached"
    no_member = redeem(client, tenant, "DUAKALI", "O4")
    assert no_member.json()["code"] == "coupon_member_required"
    void(client, tenant, "DUAKALI", "O1")
    assert redeem(client, tenant, "DUAKALI", "O3", member_id=a).status_code == 201


def test_public_code_is_multi_use_and_case_insensitive(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    make_campaign(db, tenant, public_code="harbolnas")
    for i, spelling in enumerate(["HARBOLNAS", "harbolnas", " Harbolnas "]):
        r = redeem(client, tenant, spelling, f"O{i}")
        assert r.status_code == 201, r.text
    assert coupon(db, tenant, "HARBOLNAS").uses == 3
    dup = client.post(
        "/v1/coupon-campaigns",
        json={
            "code": "other",
            "names": {"en": "x"},
            "discount": {"type": "fixed", "amount": "1000"},
            "public_code": "HarBolNas",
        },
        headers=tenant.headers,
    )
    assert dup.status_code == 409
    assert dup.json()["code"] == "coupon_code_taken"


def test_tenant_isolation(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    other = make_tenant(db, name="Other")
    theirs = one_code(db, other)
    make_campaign(db, other, public_code="MEREKA")
    before = counts(db)
    for code in (theirs, "MEREKA"):
        r = redeem(client, tenant, code, "O1")
        assert r.status_code == 404
        assert r.json()["code"] == "coupon_not_found"
        assert void(client, tenant, code, "O1").status_code == 404
        assert client.get(f"/v1/coupons/{code}", headers=tenant.headers).status_code == 404
        cancel = client.post(
            f"/v1/coupons/{code}/cancel", json={"reason": "x"}, headers=tenant.headers
        )
        assert cancel.status_code == 404
    assert counts(db) == before
    cid = make_campaign(db, other)
    assert client.get(f"/v1/coupon-campaigns/{cid}", headers=tenant.headers).status_code == 404
    gen = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate", json={"count": 5}, headers=tenant.headers
    )
    assert gen.status_code == 404
    assert gen.json()["code"] == "campaign_not_found"


def test_cancel_refuses_a_code_in_use(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    redeem(client, tenant, code, "O1")
    r = client.post(f"/v1/coupons/{code}/cancel", json={"reason": "x"}, headers=tenant.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "coupon_used"
    void(client, tenant, code, "O1")
    ok = client.post(f"/v1/coupons/{code}/cancel", json={"reason": "x"}, headers=tenant.headers)
    assert ok.status_code == 200
    assert redeem(client, tenant, code, "O2").json()["code"] == "coupon_cancelled"


def test_list_redemptions_of_an_order(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    make_campaign(db, tenant, public_code="SATU")
    make_campaign(db, tenant, public_code="DUA")
    redeem(client, tenant, "SATU", "ORD-7")
    redeem(client, tenant, "DUA", "ORD-7")
    redeem(client, tenant, "DUA", "ORD-8")
    r = client.get("/v1/coupon-redemptions?order_id=ORD-7", headers=tenant.headers)
    assert r.status_code == 200
    assert sorted(x["code"] for x in r.json()["data"]) == ["DUA", "SATU"]
    voided = tx(
        db,
        lambda s: [
            x.id
            for x in service.void_for_order(
                s, tenant_id=tenant.tenant_id, order_id="ORD-7", reason="refund"
            )
        ],
    )
    assert len(voided) == 2
    assert coupon(db, tenant, "DUA").uses == 1


def test_validate_with_the_order_that_already_used_the_code(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    code = one_code(db, tenant)
    first = redeem(client, tenant, code, "O1").json()
    body = {"code": code, "order_id": "O1", "cart": cart_json(KOPI)}
    same = client.post("/v1/coupons/validate", json=body, headers=tenant.headers).json()
    assert same["valid"] is True
    assert same["discount"] == "10000"
    assert same["redemption_id"] == first["id"]
    other = client.post(
        "/v1/coupons/validate", json={**body, "order_id": "O2"}, headers=tenant.headers
    ).json()
    assert other["reason_code"] == "used_up"
    assert other["redemption_id"] is None


def test_member_bound_campaign_gets_no_anonymous_codes(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant, member_bound=True)
    before = counts(db)
    r = client.post(
        f"/v1/coupon-campaigns/{cid}/codes/generate", json={"count": 5}, headers=tenant.headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "campaign_member_bound"
    assert counts(db) == before
    member = new_member(db, tenant, "M")
    code = tx(
        db,
        lambda s: (
            service.issue_code(
                s,
                tenant_id=tenant.tenant_id,
                campaign_id=cid,
                member_id=member,
                source_type="reward_redemption",
                source_id="R1",
            ).code
        ),
    )
    assert redeem(client, tenant, code, "O1", member_id=member).status_code == 201
