"""Bad input on every endpoint of the issue-5 domains, found by walking the OpenAPI document:
unknown ids in every path, empty and malformed bodies on every write. Each answer is a 4xx
problem+json with a stable ``code`` (never a 500), and the status is one the operation
documents."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantFixture

TAGS = {"rewards", "coupons", "checkout", "wallet", "causes", "finance"}
WRITES = {"post", "put", "patch", "delete"}
BODIES: list[Any] = [
    None,
    {},
    [],
    "junk",
    {"amount": "abc", "points": -1, "member_id": "nope", "code": 5, "reward": None},
    {"cart": {"items": "x"}, "currency": 12, "order_id": ""},
]
UNDOCUMENTED_OK = {401, 403, 405, 413}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", *WRITES} and TAGS & set(op.get("tags", [])):
                found.append((path, method, op))
    return found


def _fill(path: str, op: dict[str, Any], value: str, program_id: Any = None) -> str:
    for p in op.get("parameters", []):
        if p["in"] == "path":
            given = str(program_id) if p["name"] == "program_id" and program_id else value
            path = path.replace("{" + p["name"] + "}", given)
    return path


def _check(
    resp: Any, method: str, path: str, op: dict[str, Any], problems: list[str], body: Any
) -> None:
    where = f"{method.upper()} {path} body={body!r}"
    if resp.status_code >= 500:
        problems.append(f"{where}: {resp.status_code} {resp.text[:200]}")
        return
    if resp.status_code >= 400:
        ctype = resp.headers.get("content-type", "")
        if "problem+json" not in ctype:
            problems.append(f"{where}: {resp.status_code} content-type {ctype}")
            return
        if not resp.json().get("code"):
            problems.append(f"{where}: {resp.status_code} without code: {resp.text[:200]}")
        if (
            str(resp.status_code) not in op.get("responses", {})
            and resp.status_code not in UNDOCUMENTED_OK
        ):
            problems.append(
                f"{where}: {resp.status_code} {resp.json().get('code')} not documented "
                f"(documents {sorted(op.get('responses', {}))})"
            )


def test_unknown_ids_and_junk_bodies_are_clear_4xx(
    client: TestClient, tenant: TenantFixture
) -> None:
    spec = client.get("/openapi.json").json()
    ops = _operations(spec)
    assert {t for _, _, op in ops for t in op["tags"]} >= TAGS
    problems: list[str] = []
    for path, method, op in ops:
        url = _fill(path, op, str(uuid.uuid4()), tenant.program_id)
        if method == "get":
            _check(client.get(url, headers=tenant.headers), method, url, op, problems, None)
            junk = _fill(path, op, "not-a-uuid%20x", tenant.program_id)
            _check(client.get(junk, headers=tenant.headers), method, junk, op, problems, None)
            continue
        for body in BODIES:
            headers = {**tenant.headers, "Idempotency-Key": f"robust-{uuid.uuid4()}"}
            if body is None:
                resp = client.request(method, url, headers=headers)
            elif isinstance(body, str):
                resp = client.request(
                    method,
                    url,
                    headers={**headers, "Content-Type": "application/json"},
                    content=b"{not json",
                )
            else:
                resp = client.request(method, url, headers=headers, json=body)
            _check(resp, method, url, op, problems, body)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scope", ["read"])
def test_read_key_cannot_write(
    client: TestClient, tenant: TenantFixture, db: Any, scope: str
) -> None:
    from setia.tenants import service as tenants

    with db.session() as session:
        _key, secret = tenants.create_key(session, tenant.tenant_id, scope=scope, name="ro")
        session.commit()
    spec = client.get("/openapi.json").json()
    problems: list[str] = []
    for path, method, op in _operations(spec):
        if method not in WRITES:
            continue
        url = _fill(path, op, str(uuid.uuid4()))
        resp = client.request(
            method,
            url,
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "k"},
            json={},
        )
        if resp.status_code != 403 and resp.status_code != 422:
            problems.append(f"{method.upper()} {path}: {resp.status_code} {resp.text[:120]}")
    assert not problems, "\n".join(problems)


def test_another_tenants_ids_are_not_found_and_nothing_is_written(
    client: TestClient, db: Any, tenant: TenantFixture
) -> None:
    """Tenant A owns a member, a campaign and code, a cause and donation, a reward and
    redemption, a points payment and wallet hold and debit. Tenant B's admin key, with A's
    ids in every path and body, finds none of them, writes nothing and lists none."""
    from decimal import Decimal

    from sqlalchemy import text

    from tests.causes.support import put_cause
    from tests.conftest import make_tenant
    from tests.coupons.conftest import KOPI, cart_json, generate, make_campaign
    from tests.ledger.support import configure
    from tests.rewards.helpers import Api, reward

    a = Api(client, tenant)
    configure(db, tenant, points_payment_rate=Decimal("1"), points_payment_max_percent=100)
    member = a.member()
    a.give(member, 10_000)
    campaign = make_campaign(db, tenant, public_code="PUNYAA")
    code = generate(db, tenant, campaign, 1)[0]
    cause = put_cause(db, tenant)
    donation = a.post(
        f"/v1/causes/{cause}/donations",
        {"member_id": member, "points": 10},
        {"Idempotency-Key": "d"},
    ).json()["id"]
    a.put_reward("R1", reward("physical", 10))
    redemption = a.redeem_ok(member, "R1", confirm=False)["id"]
    payment = a.post(
        "/v1/checkout/points-payments",
        {
            "member_id": member,
            "order_id": "ORD-A",
            "points": 100,
            "order_total": "100000",
            "currency": "IDR",
        },
    ).json()["id"]
    assert (
        a.post(
            f"/v1/members/{member}/wallet/credits",
            {"amount": "50000", "code": "TOPUP", "reason": "top-up"},
        ).status_code
        == 201
    )
    hold = a.post(
        f"/v1/members/{member}/wallet/holds", {"amount": "1000", "order_id": "W1"}
    ).json()["hold_id"]
    debit = a.post(
        f"/v1/members/{member}/wallet/debits", {"amount": "1000", "order_id": "W2"}
    ).json()["transfer_id"]
    ids = {
        "member_id": member,
        "campaign_id": str(campaign),
        "cause_id": str(cause),
        "donation_id": donation,
        "redemption_id": redemption,
        "payment_id": payment,
        "order_id": "ORD-A",
        "hold_id": hold,
        "transfer_id": debit,
        "program_id": str(tenant.program_id),
    }
    b = make_tenant(db, name="Toko B")
    union = {
        "member_id": member,
        "code": code,
        "order_id": "ORD-A",
        "cart": cart_json(KOPI),
        "reward": "R1",
        "points": 10,
        "amount": "1000",
        "order_total": "100000",
        "currency": "IDR",
        "reason": "cross-tenant probe",
        "status": "shipped",
        "count": 1,
        "program_id": str(tenant.program_id),
        "cause_id": str(cause),
        "coupon_campaign_id": str(campaign),
        "kind": "physical",
        "names": {"en": "probe"},
        "discount": {"type": "fixed", "amount": "1000"},
    }

    def body_for(op: dict[str, Any]) -> dict[str, Any]:
        """The union body cut down to the fields the operation's schema knows."""
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        ref = schema.get("schema", {}).get("$ref", "")
        props = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}).get("properties")
        return union if not props else {k: v for k, v in union.items() if k in props}

    def rows() -> dict[str, int]:
        with db.engine.connect() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT name FROM sqlite_master WHERE type='table'"
                        if db.engine.dialect.name == "sqlite"
                        else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    )
                )
                if not str(r[0]).startswith(("sqlite_", "alembic"))
            ]
            return {
                n: int(conn.execute(text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one())
                for n in names
            }

    before = rows()
    spec = client.get("/openapi.json").json()
    problems: list[str] = []
    secrets_of_a = [member, str(campaign), str(cause), donation, redemption, payment, code]
    for path, method, op in _operations(spec):
        url = path
        for p in op.get("parameters", []):
            if p["in"] == "path":
                value = ids.get(p["name"], code if p["name"] == "code" else "x")
                if path.startswith("/v1/causes/{code}"):
                    value = "tanam-pohon"
                elif "/rewards/{code}" in path:
                    value = "R1"
                url = url.replace("{" + p["name"] + "}", value)
        headers = {**b.headers, "Idempotency-Key": f"b-{uuid.uuid4()}"}
        if method == "get":
            resp = client.get(url, headers=headers)
        else:
            resp = client.request(method, url, headers=headers, json=body_for(op))
        where = f"{method.upper()} {url}"
        if resp.status_code >= 500:
            problems.append(f"{where}: {resp.status_code}")
        elif resp.status_code < 300 and method != "get":
            problems.append(f"{where}: {resp.status_code} {resp.text[:160]}")
        elif resp.status_code < 300 and any(s in resp.text for s in secrets_of_a):
            problems.append(f"{where}: shows tenant A's data {resp.text[:160]}")
    assert not problems, "\n".join(problems)
    after = rows()
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert not changed or set(changed) <= {"api_keys", "tenants", "programs", "audit_records"}, (
        changed
    )


def test_idempotent_creates_document_the_200_of_a_retry(client: TestClient) -> None:
    """Every write that answers 201 and takes an Idempotency-Key says that a retry answers
    200 (with the first result)."""
    spec = client.get("/openapi.json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in _operations(spec)
        if "201" in op["responses"]
        and any(p["name"].lower() == "idempotency-key" for p in op.get("parameters", []))
        and "200" not in (op.get("description") or "")
    ]
    assert not missing, missing


def test_times_at_the_ends_of_the_calendar_are_422(
    client: TestClient, tenant: TenantFixture
) -> None:
    """Year 1 or 9999 times (no UTC instant in some zones) are refused, never a 500."""
    from tests.rewards.helpers import reward

    h = tenant.headers
    campaign = {
        "names": {"en": "x"},
        "discount": {"type": "fixed", "amount": "1000"},
        "currency": "IDR",
    }
    for i, cond in enumerate(
        [
            {"valid_from": "0001-01-01T00:00:00"},
            {"valid_until": "9999-12-31T23:59:59-12:00"},
            {"valid_from": "0001-01-01T00:00:00+14:00"},
        ]
    ):
        r = client.post(
            "/v1/coupon-campaigns",
            json={"code": f"c{i}", **campaign, "conditions": cond},
            headers=h,
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (cond, r.text)
    cid = client.post("/v1/coupon-campaigns", json={"code": "ok", **campaign}, headers=h).json()[
        "id"
    ]
    for expires in ("9999-12-31", "0001-01-01T00:00:00"):
        r = client.post(
            f"/v1/coupon-campaigns/{cid}/codes/generate",
            json={"count": 1, "expires_at": expires},
            headers=h,
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (expires, r.text)
        r = client.post(
            f"/v1/coupon-campaigns/{cid}/codes/import",
            content=f"code,expires_at\nABCD-EFGH,{expires}\n",
            headers={**h, "Content-Type": "text/csv"},
        )
        assert (r.status_code, r.json()["code"]) == (422, "csv_invalid"), (expires, r.text)
    for when in ("0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-12:00"):
        r = client.put(
            f"/v1/programs/{tenant.program_id}/rewards/EDGE",
            json=reward("physical", 10, available_from=when),
            headers=h,
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (when, r.text)


def test_counts_too_big_for_the_database_are_422(client: TestClient, tenant: TenantFixture) -> None:
    from tests.rewards.helpers import reward

    h = tenant.headers
    big = 10**30
    for extra in (
        {"stock_total": big},
        {"stock_per_period": big, "stock_period": "day"},
        {"member_limit": big, "member_limit_period": "day"},
    ):
        r = client.put(
            f"/v1/programs/{tenant.program_id}/rewards/BIG",
            json=reward("physical", 10) | extra,
            headers=h,
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (extra, r.text)
    campaign = {"names": {"en": "x"}, "discount": {"type": "fixed", "amount": "1000"}}
    for i, extra in enumerate(
        (
            {"conditions": {"max_uses": big}},
            {"conditions": {"per_member_limit": big}},
            {"uses_per_code": big},
        )
    ):
        r = client.post(
            "/v1/coupon-campaigns", json={"code": f"big{i}", **campaign, **extra}, headers=h
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (extra, r.text)
