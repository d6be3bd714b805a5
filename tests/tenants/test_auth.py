"""API keys: stored hashed, scoped, revocable; tenants never see each other's objects."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from setia.core.db import Database
from tests.conftest import TenantFixture, make_tenant
from tests.events.helpers import PROBLEM, purchase, row_counts

MISSING = "01900000-0000-7000-8000-000000000000"


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def new_key(client: TestClient, t: TenantFixture, scope: str) -> tuple[str, dict[str, str]]:
    r = client.post(
        "/v1/api-keys", json={"scope": scope, "name": f"{scope} key"}, headers=t.headers
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['api_key']}"}


def test_keys_are_stored_hashed(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    secrets = [tenant.api_key]
    r = client.post("/v1/api-keys", json={"scope": "pos"}, headers=tenant.headers)
    secrets.append(r.json()["api_key"])
    with db.engine.connect() as conn:
        rows = [tuple(map(str, row)) for row in conn.execute(text("SELECT * FROM api_keys"))]
        digests = {str(d) for (d,) in conn.execute(text("SELECT digest FROM api_keys"))}
    assert len(rows) == 2
    for secret in secrets:
        assert secret.startswith("sk_")
        assert not any(secret in cell or secret[12:] in cell for row in rows for cell in row)
        assert hashlib.sha256(secret.encode()).hexdigest() in digests
    # Listing keys shows the prefix, never the key.
    listed = client.get("/v1/api-keys", headers=tenant.headers).json()
    assert {k["prefix"] for k in listed} == {s[:12] for s in secrets}
    assert all("api_key" not in k for k in listed)


def test_scopes(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    _, read = new_key(client, tenant, "read")
    _, pos = new_key(client, tenant, "pos")
    member = client.post("/v1/members", json={"phone": "0812-3456-7890"}, headers=pos)
    assert member.status_code == 201, member.text
    member_id = member.json()["id"]
    adjust_url = f"/v1/members/{member_id}/points/adjust"
    adjust = {"points": 50, "reason": "goodwill"}

    before = row_counts(db)
    body = problem(client.post("/v1/events", json=purchase(), headers=read), 403, "forbidden")
    assert "'pos'" in body["detail"]
    assert "'read'" in body["detail"]
    problem(
        client.post("/v1/events/batch", json={"events": [purchase()]}, headers=read),
        403,
        "forbidden",
    )
    problem(
        client.post("/v1/members", json={"phone": "0813-1111-2222"}, headers=read), 403, "forbidden"
    )
    problem(client.post(adjust_url, json=adjust, headers=read), 403, "forbidden")
    problem(client.post(adjust_url, json=adjust, headers=pos), 403, "forbidden")
    problem(client.post("/v1/api-keys", json={"scope": "admin"}, headers=pos), 403, "forbidden")
    problem(client.get("/v1/api-keys", headers=pos), 403, "forbidden")
    problem(
        client.patch("/v1/tenant", json={"auto_create_members": False}, headers=pos),
        403,
        "forbidden",
    )
    problem(
        client.post(
            f"/v1/members/{member_id}/merge",
            json={"source_member_id": MISSING, "reason": "dup"},
            headers=pos,
        ),
        403,
        "forbidden",
    )
    assert row_counts(db) == before

    # What each scope may do.
    assert client.get(f"/v1/members/{member_id}", headers=read).status_code == 200
    assert client.get(f"/v1/members/{member_id}/balance", headers=read).status_code == 200
    assert client.get("/v1/tenant", headers=read).status_code == 200
    assert client.post("/v1/events", json=purchase(), headers=pos).status_code == 201
    r = client.post(adjust_url, json=adjust, headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.json()["balance"]["available"] == 85 + 50


def test_revoked_key_is_401(client: TestClient, tenant: TenantFixture) -> None:
    key_id, pos = new_key(client, tenant, "pos")
    assert client.get("/v1/tenant", headers=pos).status_code == 200
    r = client.delete(f"/v1/api-keys/{key_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    problem(client.get("/v1/tenant", headers=pos), 401, "unauthorized")
    problem(client.post("/v1/events", json=purchase(), headers=pos), 401, "unauthorized")
    # The admin key still works; revoking twice is harmless.
    assert client.delete(f"/v1/api-keys/{key_id}", headers=tenant.headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-only"),
        pytest.param({"Authorization": "Bearer "}, id="bearer-space"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer sk_admin_not-a-real-key"}, id="unknown"),
        pytest.param({"Authorization": b"Bearer \xe9\xe8\xff"}, id="non-ascii"),
        pytest.param({"Authorization": "Token sk_admin_x"}, id="other-scheme"),
        pytest.param({"X-Api-Key": "sk_admin_x"}, id="wrong-header"),
    ],
)
def test_missing_or_garbled_authorization_is_401(
    client: TestClient, tenant: TenantFixture, headers: dict[str, Any]
) -> None:
    problem(client.get("/v1/tenant", headers=headers), 401, "unauthorized")
    problem(client.post("/v1/events", json=purchase(), headers=headers), 401, "unauthorized")


def test_the_key_is_trimmed_and_the_scheme_case_insensitive(
    client: TestClient, tenant: TenantFixture
) -> None:
    r = client.get("/v1/tenant", headers={"Authorization": f"bearer   {tenant.api_key}  "})
    assert r.status_code == 200, r.text
    # A key of one tenant with a character changed is just unknown.
    tampered = tenant.api_key[:-1] + ("A" if tenant.api_key[-1] != "A" else "B")
    problem(
        client.get("/v1/tenant", headers={"Authorization": f"Bearer {tampered}"}),
        401,
        "unauthorized",
    )


def test_another_tenants_objects_are_404_never_403(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    h = tenant.headers
    r = client.post("/v1/events", json=purchase(), headers=h)
    member_id = r.json()["member_id"]
    hold = client.post(f"/v1/members/{member_id}/points/holds", json={"points": 10}, headers=h)
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["hold_id"]
    key_id, _ = new_key(client, tenant, "read")

    other = make_tenant(db, name="Batik Sari")
    oh = other.headers
    _, other_read = new_key(client, other, "read")
    mine = client.post("/v1/members", json={"external_id": "X"}, headers=oh).json()["id"]
    before = row_counts(db)
    m = f"/v1/members/{member_id}"
    cases = [
        ("get", m, None, oh),
        ("get", m, None, other_read),
        ("get", f"{m}/balance", None, oh),
        ("get", f"{m}/ledger", None, other_read),
        ("get", f"{m}/consents", None, oh),
        ("get", f"{m}/export", None, oh),
        ("patch", m, {"name": "x"}, oh),
        ("post", f"{m}/consents", {"channel": "sms", "granted": True, "source": "x"}, oh),
        ("post", f"{m}/points/redeem", {"points": 1}, oh),
        ("post", f"{m}/points/holds", {"points": 1}, oh),
        ("post", f"{m}/points/adjust", {"points": 5, "reason": "steal"}, oh),
        ("post", f"{m}/points/transfer", {"to_member_id": mine, "points": 1}, oh),
        (
            "post",
            f"/v1/members/{mine}/points/transfer",
            {"to_member_id": member_id, "points": 1},
            oh,
        ),
        ("post", f"{m}/merge", {"source_member_id": mine, "reason": "dup"}, oh),
        ("post", f"/v1/members/{mine}/merge", {"source_member_id": member_id, "reason": "dup"}, oh),
        ("post", f"{m}/erase", {"reason": "request", "confirm": True}, oh),
        ("get", f"/v1/holds/{hold_id}", None, oh),
        ("get", f"/v1/holds/{hold_id}", None, other_read),
        ("post", f"/v1/holds/{hold_id}/capture", {}, oh),
        ("post", f"/v1/holds/{hold_id}/void", None, oh),
        ("delete", f"/v1/api-keys/{key_id}", None, oh),
        ("get", f"/v1/programs/{tenant.program_id}", None, oh),
    ]
    for method, url, body, headers in cases:
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        r = client.request(method.upper(), url, **kwargs)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        # The answer is the same as for an id that exists nowhere.
        missing = client.request(
            method.upper(),
            url.replace(member_id, MISSING)
            .replace(hold_id, MISSING)
            .replace(key_id, MISSING)
            .replace(str(tenant.program_id), MISSING),
            **kwargs,
        )
        assert missing.status_code == 404, (method, url, missing.text)
        assert missing.json()["code"] == r.json()["code"], url
    assert row_counts(db) == before
    # And the owner still sees everything as it was.
    assert client.get(f"/v1/holds/{hold_id}", headers=h).json()["status"] == "open"
    assert client.get(f"{m}/balance", headers=h).json()["held"] == 10
    assert client.get("/v1/tenant", headers=other_read).json()["name"] == "Batik Sari"
