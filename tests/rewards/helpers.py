"""Shared by the rewards tests: an API client with short-hands, points, row counts."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from setia.core.db import Database
from tests.conftest import TenantFixture

TABLES = (
    "rewards",
    "reward_stock_periods",
    "reward_member_usage",
    "reward_redemptions",
    "ledger_transfers",
    "ledger_entries",
    "point_lots",
    "point_lot_movements",
    "coupons",
    "cause_donations",
    "outbox",
)


def names(text_: str = "Kopi Susu") -> dict[str, str]:
    return {"id": f"{text_} (id)", "ms": f"{text_} (ms)", "en": f"{text_} (en)"}


def reward(kind: str = "physical", points: int = 100, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "names": names(), "points": points}
    body.update(kw)
    return body


def counts(db: Database, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in tables
        }


class Api:
    """The HTTP API as one tenant's admin key sees it."""

    def __init__(self, client: TestClient, tenant: TenantFixture) -> None:
        self.client = client
        self.tenant = tenant
        self.headers = tenant.headers
        self._n = itertools.count(1)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers={**self.headers, **(headers or {})})

    def put(self, path: str, body: Any) -> Any:
        return self.client.put(path, json=body, headers=self.headers)

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(path, json=body, headers=self.headers)

    # -- catalog
    def put_reward(self, code: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        r = self.put(f"/v1/programs/{self.tenant.program_id}/rewards/{code}", body)
        assert r.status_code == status, r.text
        out: dict[str, Any] = r.json()
        return out

    def catalog(self, member: str, **params: Any) -> dict[str, Any]:
        r = self.get(f"/v1/members/{member}/rewards", params=params)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    # -- members and points
    def member(self, external_id: str | None = None, **kw: Any) -> str:
        ext = external_id or f"M{next(self._n)}-{uuid.uuid4().hex[:6]}"
        r = self.post("/v1/members", {"external_id": ext, **kw})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def give(self, member: str, points: int) -> None:
        r = self.post(
            f"/v1/members/{member}/points/adjust", {"points": points, "reason": "test points"}
        )
        assert r.status_code == 201, r.text

    def points(self, member: str) -> dict[str, Any]:
        r = self.get(f"/v1/members/{member}/balance")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def available(self, member: str) -> int:
        return int(self.points(member)["available"])

    # -- redemptions
    def redeem(self, member: str, reward_ref: str, key: str | None = None, **body: Any) -> Any:
        headers = {"Idempotency-Key": key} if key else None
        return self.post(
            f"/v1/members/{member}/redemptions", {"reward": reward_ref, **body}, headers=headers
        )

    def redeem_ok(self, member: str, reward_ref: str, **body: Any) -> dict[str, Any]:
        r = self.redeem(member, reward_ref, **body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def cancel(self, redemption: str, reason: str | None = None) -> Any:
        return self.post(f"/v1/redemptions/{redemption}/cancel", {"reason": reason})

    def redemption(self, redemption: str) -> dict[str, Any]:
        r = self.get(f"/v1/redemptions/{redemption}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the problem ``code`` with ``status``; returns its body."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status, body  # no extra field shadows the problem's own
    return body
