"""Helpers of the badges tests: definitions and events through the API, progress rows."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.badges.models import BadgeDefinition
from setia.core.db import Database
from tests.conftest import TenantFixture

_ids = itertools.count(1)


def define(
    client: TestClient, t: TenantFixture, code: str, criteria: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    body = {"code": code, "names": {"id": code, "en": code}, "criteria": criteria, **kw}
    r = client.post("/v1/badges", json=body, headers=t.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def purchase(
    member: str,
    at: datetime | str,
    amount: str = "50000",
    items: list[dict[str, Any]] | None = None,
    event_id: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    n = next(_ids)
    eid = event_id or f"p{n}"
    return {
        "id": eid,
        "type": "purchase",
        "member": {"external_id": member},
        "order_id": f"O-{eid}",
        "amount": amount,
        "currency": "IDR",
        "occurred_at": at if isinstance(at, str) else at.isoformat(),
        **({"items": items} if items is not None else {}),
        **kw,
    }


def custom(member: str, at: datetime | str, type_: str, **kw: Any) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": f"c{n}",
        "type": type_,
        "member": {"external_id": member},
        "occurred_at": at if isinstance(at, str) else at.isoformat(),
        **kw,
    }


def send(client: TestClient, t: TenantFixture, *events: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        r = client.post("/v1/events", json=e, headers=t.headers)
        assert r.status_code in (200, 201), r.text
        out.append(dict(r.json()))
    return out


def send_batch(client: TestClient, t: TenantFixture, events: list[dict[str, Any]]) -> Any:
    r = client.post("/v1/events/batch", json={"events": events}, headers=t.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    bad = [x for x in body["results"] if x["status"] not in (200, 201)]
    assert not bad, bad
    return body


def progress_rows(db: Database, t: TenantFixture) -> list[dict[str, Any]]:
    """Every member's stored progress in the tenant's program (completion rows and tally
    entries), keyed by member external id and code."""
    from setia.badges import service
    from setia.members.models import Member

    with db.session() as s:
        codes = dict(
            s.execute(
                select(BadgeDefinition.id, BadgeDefinition.code).where(
                    BadgeDefinition.program_id == t.program_id
                )
            ).all()
        )
        externals = dict(
            s.execute(
                select(Member.id, Member.external_id).where(Member.tenant_id == t.tenant_id)
            ).all()
        )
        out = [
            {
                "member": externals[p.member_id],
                "code": codes[p.definition_id],
                "period": p.period_key,
                "value": format(p.value.normalize(), "f"),
                "events": p.events,
                "state": p.state,
                "completed_at": p.completed_at.isoformat() if p.completed_at else None,
                "reward_points": (p.reward or {}).get("points"),
            }
            for p in service.progress(s, t.program_id)
        ]
    return sorted(out, key=lambda r: (r["member"], r["code"], r["period"]))


def progress(db: Database, t: TenantFixture, member: str, code: str, period: str = "all") -> Any:
    for r in progress_rows(db, t):
        if (r["member"], r["code"], r["period"]) == (member, code, period):
            return r
    return None


def topics(db: Database, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    from setia.outbox.models import OutboxMessage

    with db.session() as s:
        rows = s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        return [
            (m.topic, dict(m.payload))
            for m in rows
            if m.topic.startswith(("badge.", "challenge.")) and m.topic.startswith(prefix)
        ]
