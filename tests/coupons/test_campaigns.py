"""Campaign admin API: create (idempotent), list, get, patch, and the checks on a body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from tests.conftest import TenantFixture
from tests.coupons.conftest import counts


def body(**kw: Any) -> dict[str, Any]:
    return {
        "code": "harbolnas-2026",
        "names": {"id": "Harbolnas 12.12", "en": "Harbolnas 12.12"},
        "discount": {"type": "percent", "percent": "20", "max_amount": "50000"},
        "conditions": {
            "valid_from": "2026-12-12T00:00:00",
            "valid_until": "2026-12-13T00:00:00",
            "min_spend": "100000",
            "max_uses": 5000,
            "per_member_limit": 1,
        },
        "public_code": "HARBOLNAS",
        **kw,
    }


def test_create_get_list_patch(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    h = {**tenant.headers, "Idempotency-Key": "camp-1"}
    r = client.post("/v1/coupon-campaigns", json=body(), headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["currency"] == "IDR"  # the program's
    assert c["code"] == "harbolnas-2026"
    assert c["public_code"] == "HARBOLNAS"
    assert c["discount"] == {
        "type": "percent",
        "amount": None,
        "percent": "20",
        "max_amount": "50000",
        "skus": [],
    }
    # Local times are the tenant's (Asia/Jakarta): stored in UTC.
    assert c["conditions"]["valid_from"] == "2026-12-11T17:00:00+00:00"
    assert c["valid_from_local"] == "2026-12-12T00:00:00+07:00"
    assert c["timezone"] == "Asia/Jakarta"
    again = client.post("/v1/coupon-campaigns", json=body(), headers=h)
    assert again.status_code == 200
    assert again.json()["id"] == c["id"]
    reused = client.post("/v1/coupon-campaigns", json=body(code="x"), headers=h)
    assert reused.json()["code"] == "idempotency_key_reused"
    taken = client.post("/v1/coupon-campaigns", json=body(public_code=None), headers=tenant.headers)
    assert taken.status_code == 409
    assert taken.json()["code"] == "campaign_code_taken"
    got = client.get(f"/v1/coupon-campaigns/{c['id']}", headers=tenant.headers)
    assert got.json()["uses"] == 0
    listed = client.get("/v1/coupon-campaigns?status=active", headers=tenant.headers).json()
    assert [x["id"] for x in listed["data"]] == [c["id"]]
    patched = client.patch(
        f"/v1/coupon-campaigns/{c['id']}",
        json={"status": "paused", "conditions": {"min_spend": None, "max_uses": 10}},
        headers=tenant.headers,
    ).json()
    assert patched["status"] == "paused"
    assert patched["conditions"]["min_spend"] is None
    assert patched["conditions"]["max_uses"] == 10
    assert patched["conditions"]["per_member_limit"] == 1  # untouched
    assert (
        client.get("/v1/coupon-campaigns?status=active", headers=tenant.headers).json()["data"]
        == []
    )
    client.patch(
        f"/v1/coupon-campaigns/{c['id']}", json={"status": "archived"}, headers=tenant.headers
    )
    frozen = client.patch(
        f"/v1/coupon-campaigns/{c['id']}", json={"status": "active"}, headers=tenant.headers
    )
    assert frozen.status_code == 409
    assert frozen.json()["code"] == "campaign_archived"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"discount": {"type": "fixed"}}, "discount.amount"),
        ({"discount": {"type": "fixed", "amount": "-1"}}, "discount.amount"),
        ({"discount": {"type": "fixed", "amount": "10.5"}}, "discount.amount"),
        ({"discount": {"type": "percent", "percent": "150"}}, "discount.percent"),
        ({"discount": {"type": "percent", "percent": "abc"}}, "discount.percent"),
        ({"discount": {"type": "free_item"}}, "discount.skus"),
        ({"discount": {"type": "free_shipping", "amount": "100"}}, "discount.amount"),
        ({"currency": "QQQ"}, "currency"),
        ({"member_bound": True}, "public_code"),
        ({"public_code": "a"}, "public_code"),
        ({"code_pattern": "#"}, "code_pattern"),
        ({"code_pattern": "A-#"}, "code_pattern"),
        (
            {
                "conditions": {
                    "valid_from": "2026-12-13T00:00:00",
                    "valid_until": "2026-12-12T00:00:00",
                }
            },
            "conditions.valid_until",
        ),
    ],
)
def test_bad_campaigns_are_refused_and_write_nothing(
    client: TestClient, db: Database, tenant: TenantFixture, changes: dict[str, Any], field: str
) -> None:
    before = counts(db)
    r = client.post("/v1/coupon-campaigns", json=body(**changes), headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json().get("field") == field
    assert counts(db) == before


def test_pos_key_cannot_create_campaigns(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    from setia.tenants import service as tenants

    with db.session() as s:
        _key, secret = tenants.create_key(s, tenant.tenant_id, scope="pos")
    r = client.post(
        "/v1/coupon-campaigns", json=body(), headers={"Authorization": f"Bearer {secret}"}
    )
    assert r.status_code == 403
