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
