"""Shared by the tier tests: a standard three-tier structure and short-hands."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select, text

from setia.core.db import Database
from setia.outbox.models import OutboxMessage
from setia.tiers.models import MemberTier
from tests.rules.helpers import Api


def names(id_: str, ms: str, en: str) -> dict[str, str]:
    return {"id": id_, "ms": ms, "en": en}


def tier_set(**kw: Any) -> dict[str, Any]:
    """Perunggu → Perak (Rp 1.000.000) → Emas (Rp 5.000.000) on spend in the calendar year,
    kept until the end of the next year, one level at a time."""
    body: dict[str, Any] = {
        "name": "Kopi tiers",
        "metrics": [{"metric": "spend"}],
        "window": {"kind": "calendar_year"},
        "retention": {"kind": "end_of_next_window"},
        "downgrade": "one_level",
        "tiers": [
            {"code": "bronze", "names": names("Perunggu", "Gangsa", "Bronze"), "thresholds": ["0"]},
            {
                "code": "silver",
                "names": names("Perak", "Perak", "Silver"),
                "thresholds": ["1000000"],
                "earn_multiplier": "1.25",
            },
            {
                "code": "gold",
                "names": names("Emas", "Emas", "Gold"),
                "thresholds": ["5000000"],
                "earn_multiplier": "1.5",
                "perks": [
                    {
                        "id": "Kopi gratis di hari ulang tahun",
                        "ms": "Kopi percuma",
                        "en": "Free coffee",
                    }
                ],
            },
        ],
    }
    body.update(kw)
    return body


def setup(api: Api, **kw: Any) -> dict[str, Any]:
    r = api.put(f"/v1/programs/{api.tenant.program_id}/tier-set", tier_set(**kw))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def member_id(result: dict[str, Any]) -> str:
    return str(result["member_id"])


def view(api: Api, member: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/members/{member}/tier", params=params)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def evaluate(api: Api, on: date) -> dict[str, Any]:
    r = api.post(f"/v1/programs/{api.tenant.program_id}/tier-set/evaluate", {"on": on.isoformat()})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def history(api: Api, member: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/members/{member}/tier/history")
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


def refund(api: Api, order_id: str, amount: int, at: str | None = None) -> Any:
    """Refund ``amount`` of an order (member M1)."""
    event: dict[str, Any] = {
        "id": f"rf-{uuid.uuid4().hex[:10]}",
        "type": "refund",
        "member": {"external_id": "M1"},
        "order_id": order_id,
        "amount": str(amount),
    }
    if at is not None:
        event["occurred_at"] = at
    return api.send(event)


def outbox(db: Database, topic_prefix: str = "tier.") -> list[dict[str, Any]]:
    """The tier messages in the outbox, oldest first: [{topic, **payload}]."""
    with db.session() as s:
        rows = s.execute(
            select(OutboxMessage.topic, OutboxMessage.payload)
            .where(OutboxMessage.topic.like(topic_prefix + "%"))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        ).all()
    return [{"topic": t, **p} for t, p in rows]


def topics(db: Database) -> list[str]:
    return [m["topic"] for m in outbox(db)]


def member_row(db: Database, member: str) -> MemberTier | None:
    with db.session() as s:
        row = s.execute(
            select(MemberTier).where(MemberTier.member_id == uuid.UUID(member))
        ).scalar_one_or_none()
        if row is not None:
            s.expunge(row)
        return row


SNAPSHOT_TABLES = ("member_tiers", "tier_changes", "outbox", "tier_sets")


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables an evaluation may write, as sorted tuples."""
    out = {}
    with db.engine.connect() as conn:
        for table in SNAPSHOT_TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            out[table] = sorted((tuple(str(v) for v in r) for r in rows), key=str)
    return out


def code_of(api: Api, member: str) -> str:
    return str(view(api, member)["tier"]["code"])
