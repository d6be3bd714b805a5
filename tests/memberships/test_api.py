"""The memberships HTTP API: plans, subscriptions, payments, scopes, tenants, OpenAPI."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.core.time import utcnow
from setia.tenants import service as tenants
from tests.conftest import TenantFixture, make_tenant

PLAN = {
    "code": "plus",
    "names": {"id": "Member Plus", "ms": "Ahli Plus", "en": "Member Plus"},
    "price": "49000",
    "currency": "IDR",
    "period": "monthly",
    "grace_days": 7,
    "earn_multiplier": "1.5",
    "monthly_bonus_points": 500,
    "perks": [{"id": "Gratis upsize", "en": "Free upsize"}],
}


class Client:
    def __init__(self, client: TestClient, t: TenantFixture) -> None:
        self.c, self.t = client, t

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.c.post(path, json=body, headers={**self.t.headers, **headers})

    def get(self, path: str, **params: Any) -> Any:
        return self.c.get(path, params=params, headers=self.t.headers)

    def member(self, name: str = "Siti") -> str:
        r = self.post("/v1/members", {"name": name})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def plan(self, **kw: Any) -> dict[str, Any]:
        r = self.post("/v1/membership-plans", {**PLAN, **kw})
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def start(self, member: str, ext: str = "ORD-1", **headers: str) -> Any:
        return self.post(
            "/v1/subscriptions",
            {
                "member_id": member,
                "plan": "plus",
                "payment": {
                    "gateway": "midtrans",
                    "external_id": ext,
                    "amount": "49000",
                    "currency": "IDR",
                },
            },
            **headers,
        )


@pytest.fixture
def api(client: TestClient, tenant: TenantFixture) -> Client:
    return Client(client, tenant)


def test_plans_crud_and_revisions(api: Client) -> None:
    plan = api.plan()
    assert plan["price"] == "49000"
    assert plan["revision"] == 1
    assert plan["earn_multiplier"] == "1.5"
    r = api.c.patch(
        f"/v1/membership-plans/{plan['id']}", json={"price": "59000"}, headers=api.t.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    assert api.get(f"/v1/membership-plans/{plan['id']}").json()["price"] == "59000"
    assert [p["code"] for p in api.get("/v1/membership-plans").json()] == ["plus"]
    r = api.c.delete(f"/v1/membership-plans/{plan['id']}", headers=api.t.headers)
    assert r.status_code == 200
    assert r.json()["active"] is False
    r = api.start(api.member())
    assert r.status_code == 409
    assert r.json()["code"] == "plan_retired"


def test_plan_validation(api: Client) -> None:
    assert api.post("/v1/membership-plans", {**PLAN, "price": "49000.5"}).json()["code"] == (
        "too_many_decimals"
    )
    r = api.post("/v1/membership-plans", {**PLAN, "currency": "MYR"})
    assert (r.status_code, r.json()["code"]) == (409, "currency_mismatch")
    r = api.post("/v1/membership-plans", {**PLAN, "earn_multiplier": "0.5"})
    assert r.status_code == 422
    api.plan()
    r = api.post("/v1/membership-plans", PLAN)
    assert (r.status_code, r.json()["code"]) == (409, "plan_code_taken")


def test_subscription_start_idempotent_and_one_live(api: Client) -> None:
    api.plan()
    m = api.member()
    r = api.start(m, **{"Idempotency-Key": "k1"})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["status"] == "active"
    assert sub["price"] == "49000"
    r = api.start(m, **{"Idempotency-Key": "k1"})
    assert r.status_code == 200
    assert r.json()["id"] == sub["id"]
    r = api.start(m, ext="ORD-2", **{"Idempotency-Key": "k1"})
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_key_reused")
    r = api.start(m, ext="ORD-3")
    assert (r.status_code, r.json()["code"]) == (409, "membership_exists")
    page = api.get("/v1/subscriptions", member_id=m).json()
    assert [s["id"] for s in page["data"]] == [sub["id"]]
    assert page["next_cursor"] is None


def test_payments_webhook_retry_and_reuse(api: Client) -> None:
    api.plan()
    sub = api.start(api.member()).json()
    body = {
        "subscription_id": sub["id"],
        "gateway": "xendit",
        "external_id": "inv_123",
        "status": "paid",
        "amount": "49000",
        "currency": "IDR",
        "occurred_at": utcnow().isoformat(),
        "payload": {"status": "PAID", "paid_amount": 49000},
    }
    r = api.post("/v1/subscription-payments", body)
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "renewed"
    assert r.json()["subscription"]["periods_paid"] == 2
    r2 = api.post("/v1/subscription-payments", body)
    assert r2.status_code == 200
    assert r2.json()["id"] == r.json()["id"]
    assert r2.json()["subscription"]["periods_paid"] == 2
    r3 = api.post("/v1/subscription-payments", {**body, "payload": {"status": "PAID", "x": 1}})
    assert (r3.status_code, r3.json()["code"]) == (409, "payment_id_reused")
    r4 = api.post("/v1/subscription-payments", {**body, "external_id": "inv_9", "amount": "1"})
    assert (r4.status_code, r4.json()["code"]) == (409, "payment_amount_mismatch")
    r5 = api.post("/v1/subscription-payments", {**body, "amount": 49000})
    assert r5.status_code == 422


def test_cancel_and_resume(api: Client) -> None:
    api.plan()
    sub = api.start(api.member()).json()
    r = api.post(f"/v1/subscriptions/{sub['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["cancel_at_period_end"] is True
    assert r.json()["status"] == "active"
    r = api.post(f"/v1/subscriptions/{sub['id']}/resume")
    assert r.json()["cancel_at_period_end"] is False


def test_scopes(api: Client, db: Database) -> None:
    with db.session() as s:
        _key, secret = tenants.create_key(s, api.t.tenant_id, scope="read", name="r")
    headers = {"Authorization": f"Bearer {secret}"}
    r = api.c.post("/v1/membership-plans", json=PLAN, headers=headers)
    assert r.status_code == 403
    assert api.c.get("/v1/membership-plans", headers=headers).status_code == 200
    assert api.c.post("/v1/subscriptions", json={}, headers=headers).status_code == 403


def test_other_tenants_objects_are_404(api: Client, db: Database, client: TestClient) -> None:
    plan = api.plan()
    sub = api.start(api.member()).json()
    other = Client(client, make_tenant(db, name="Batik Lain"))
    assert other.get(f"/v1/subscriptions/{sub['id']}").status_code == 404
    assert other.get(f"/v1/membership-plans/{plan['id']}").status_code == 404
    r = other.post(f"/v1/subscriptions/{sub['id']}/cancel")
    assert (r.status_code, r.json()["code"]) == (404, "subscription_not_found")
    r = other.post(
        "/v1/subscription-payments",
        {
            "subscription_id": sub["id"],
            "gateway": "midtrans",
            "external_id": "x",
            "status": "paid",
            "amount": "49000",
            "currency": "IDR",
            "occurred_at": utcnow().isoformat(),
        },
    )
    assert r.status_code == 404
    assert other.get("/v1/subscriptions").json()["data"] == []
    # Another tenant's member cannot be subscribed either.
    other.plan()
    assert other.start(api.member("Budi")).status_code == 404


def test_report_endpoint_and_openapi(api: Client) -> None:
    r = api.get("/v1/memberships/report", **{"from": "2026-01", "to": "2026-03"})
    assert r.status_code == 200, r.text
    assert [m["month"] for m in r.json()["months"]] == ["2026-01", "2026-02", "2026-03"]
    assert (
        api.get("/v1/memberships/report", **{"from": "2026-13", "to": "2026-14"}).status_code == 422
    )
    doc = api.c.get("/openapi.json").json()
    for path in (
        "/v1/membership-plans",
        "/v1/membership-plans/{plan_id}",
        "/v1/subscriptions",
        "/v1/subscriptions/{subscription_id}",
        "/v1/subscriptions/{subscription_id}/cancel",
        "/v1/subscriptions/{subscription_id}/resume",
        "/v1/subscription-payments",
        "/v1/memberships/report",
    ):
        assert path in doc["paths"], path


def test_purchase_earns_the_plan_multiplier(api: Client) -> None:
    """A rule with factor member.plan_multiplier gives a paying member 1.5x the base."""
    r = api.post(
        "/v1/rules",
        {
            "name": "Member Plus 1.5x",
            "triggers": ["purchase"],
            "conditions": {"field": "member.is_paid_member", "op": "eq", "value": True},
            "effect": {"type": "multiplier", "factor": "member.plan_multiplier"},
        },
    )
    assert r.status_code == 201, r.text
    api.plan()
    paying, other = api.member("A"), api.member("B")
    assert api.start(paying).status_code == 201

    def earned(member: str, order: str) -> int:
        r = api.post(
            "/v1/events",
            {
                "id": order,
                "type": "purchase",
                "member": {"id": member},
                "order_id": order,
                "amount": "100000",
                "currency": "IDR",
            },
        )
        assert r.status_code == 201, r.text
        return int(r.json()["points"]["earned"])

    assert earned(paying, "O-1") == 150
    assert earned(other, "O-2") == 100


def test_trial_start_payment_required_and_pagination(api: Client) -> None:
    api.plan()
    r = api.post("/v1/subscriptions", {"member_id": api.member("A"), "plan": "plus"})
    assert (r.status_code, r.json()["code"]) == (409, "payment_required")
    api.plan(code="coba", trial_days=14)
    ids = []
    for name in ("B", "C", "D"):
        r = api.post("/v1/subscriptions", {"member_id": api.member(name), "plan": "coba"})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "trialing"
        ids.append(r.json()["id"])
    first = api.get("/v1/subscriptions", limit=2).json()
    assert [s["id"] for s in first["data"]] == ids[:2]
    rest = api.get("/v1/subscriptions", limit=2, cursor=first["next_cursor"]).json()
    assert [s["id"] for s in rest["data"]] == ids[2:]
    assert rest["next_cursor"] is None
    assert api.get("/v1/subscriptions", cursor="!!").status_code == 422
    r = api.post("/v1/subscriptions", {"member_id": str(uuid.uuid4()), "plan": "coba"})
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
    r = api.post("/v1/subscriptions", {"member_id": api.member("E"), "plan": "nope"})
    assert (r.status_code, r.json()["code"]) == (404, "plan_not_found")
