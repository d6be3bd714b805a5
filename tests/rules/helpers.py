"""Helpers shared by the rules tests: a small API client, local Jakarta times, row counts."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import text

from setia.core.db import Database
from tests.conftest import TenantFixture

JKT = ZoneInfo("Asia/Jakarta")
RULE_TABLES = (
    "events",
    "members",
    "orders",
    "ledger_transfers",
    "ledger_entries",
    "point_lots",
    "rules",
    "rule_revisions",
    "rule_awards",
    "campaigns",
    "outbox",
    "audit_log",
)


def local(y: int, m: int, d: int, hh: int = 12, mm: int = 0, tz: ZoneInfo = JKT) -> str:
    """An ISO timestamp at a local (Jakarta by default) wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=tz).isoformat()


def counts(db: Database, tables: tuple[str, ...] = RULE_TABLES) -> dict[str, int]:
    """Rows per table, through a fresh connection (what is committed)."""
    with db.engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in tables
        }


def rule(name: str = "Rule", **kw: Any) -> dict[str, Any]:
    """A rule body: purchase trigger, fixed 10 points unless told otherwise."""
    return {"name": name, "triggers": ["purchase"], "effect": {"type": "fixed", "points": 10}, **kw}


def item(sku: str, qty: int, price: int, **kw: Any) -> dict[str, Any]:
    return {"sku": sku, "quantity": qty, "unit_price": str(price), **kw}


class Api:
    """The HTTP API as one tenant's admin key sees it, with short-hands for rules and events."""

    def __init__(self, client: TestClient, tenant: TenantFixture) -> None:
        self.client = client
        self.tenant = tenant
        self.headers = tenant.headers
        self._n = itertools.count(1)

    # -- raw
    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Any:
        return self.client.put(path, json=body, headers=self.headers, **kw)

    # -- rules
    def add_rule(self, **kw: Any) -> dict[str, Any]:
        r = self.post("/v1/rules", rule(**kw))
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def add_campaign(self, **kw: Any) -> dict[str, Any]:
        r = self.post("/v1/campaigns", {"name": "Campaign", **kw})
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    # -- events
    def send(self, event: dict[str, Any], status: int = 201) -> dict[str, Any]:
        r = self.post("/v1/events", event)
        assert r.status_code == status, r.text
        out: dict[str, Any] = r.json()
        return out

    def purchase(
        self,
        amount: int | str = 100_000,
        at: str | None = None,
        member: str = "M1",
        items: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """Record a purchase; returns the event result (``points`` holds the awards)."""
        n = next(self._n)
        event: dict[str, Any] = {
            "id": kw.pop("id", f"ev-{n}-{uuid.uuid4().hex[:6]}"),
            "type": "purchase",
            "member": {"external_id": member},
            "order_id": kw.pop("order_id", f"O-{n}-{uuid.uuid4().hex[:6]}"),
            "amount": str(amount),
            "currency": "IDR",
            **kw,
        }
        if at is not None:
            event["occurred_at"] = at
        if items is not None:
            event["items"] = items
        return self.send(event)

    def custom(
        self, type_: str, at: str | None = None, member: str = "M1", **kw: Any
    ) -> dict[str, Any]:
        n = next(self._n)
        event: dict[str, Any] = {
            "id": kw.pop("id", f"cu-{n}-{uuid.uuid4().hex[:6]}"),
            "type": type_,
            "member": {"external_id": member},
            **kw,
        }
        if at is not None:
            event["occurred_at"] = at
        return self.send(event)

    def simulate(self, event: dict[str, Any], status: int = 200, **kw: Any) -> dict[str, Any]:
        r = self.post("/v1/rules/simulate", {"event": event, **kw})
        assert r.status_code == status, r.text
        out: dict[str, Any] = r.json()
        return out

    def balance(self, member_id: str) -> dict[str, Any]:
        r = self.get(f"/v1/members/{member_id}/balance")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


def by_rule(result: dict[str, Any]) -> dict[str, int]:
    """Points per rule name in an event result (``points.awards``)."""
    out: dict[str, int] = {}
    for a in result["points"]["awards"]:
        out[a["rule_name"]] = out.get(a["rule_name"], 0) + a["points"]
    return out


def not_fired(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rules that did not fire, by name: {name: {reason, details}}."""
    points = result.get("points")
    src = points["not_fired"] if isinstance(points, dict) else result["not_fired"]
    return {s["rule_name"]: s for s in src}
