"""The simulator ("what would this event earn, and why not more?") and replay ("what if").

Both only read: they evaluate rules in memory and never write to the database.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.errors import InvalidInput
from setia.core.money import MoneyError, check_currency
from setia.core.time import as_utc, utcnow
from setia.events import earning
from setia.events.models import Event, Order
from setia.events.schemas import EventIn
from setia.events.service import CurrencyMismatch, _money
from setia.members.models import Member
from setia.programs.models import Program
from setia.rules import engine
from setia.rules import service as rules
from setia.rules.schemas import RuleBody
from setia.tenants.models import Tenant


def proposed_specs(
    session: Session, program: Program, bodies: list[RuleBody]
) -> list[engine.RuleSpec]:
    """Specs for a proposed rule set (ids are placeholders; campaigns are the real ones)."""
    campaigns = {c.id: rules._campaign_spec(c) for c in rules.list_campaigns(session, program.id)}
    defs: list[tuple[uuid.UUID | None, int, dict[str, Any]]] = [
        (uuid.UUID(int=i + 1), 0, b.model_dump(mode="json", exclude_none=True))
        for i, b in enumerate(bodies)
    ]
    return rules.specs_from_definitions(program, defs, campaigns)


def _amount(event: EventIn, program: Program) -> Decimal | None:
    """The amount as recording reads it (purchases only; other events earn on no amount),
    refusing what recording refuses: an unknown or other currency, bad prices."""
    currency = None
    if event.currency is not None:
        try:
            currency = check_currency(event.currency)
        except MoneyError as exc:
            raise InvalidInput(str(exc), extra={"field": "currency"}, code=exc.code) from None
    if event.type != "purchase" or event.amount is None or currency is None:
        return None
    if currency != program.currency:
        raise CurrencyMismatch(
            f"this program counts {program.currency}; the purchase is in {currency}",
            extra={"field": "currency"},
        )
    for i, item in enumerate(event.items or []):
        _money(item.unit_price, currency, f"items[{i}].unit_price")
    return _money(event.amount, currency, "amount")


def simulate(
    session: Session,
    tenant: Tenant,
    program: Program,
    event_data: dict[str, Any],
    *,
    member: Member | None,
    profile: dict[str, Any] | None,
    bodies: list[RuleBody] | None,
) -> dict[str, Any]:
    data = {"id": "simulation", **event_data}
    data.setdefault("member", {"external_id": "simulation"})
    try:
        event = EventIn.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(
            f"event.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise InvalidInput(detail, code="validation_error") from None
    occurred_at = as_utc(event.occurred_at) if event.occurred_at else utcnow()
    if member is not None:
        member_ctx = earning.member_context(session, member, occurred_at, program_id=program.id)
        usage: engine.Usage = rules.DbUsage(session, member.id)
    else:
        p = profile or {}
        member_ctx = {
            "tags": p.get("tags") or [],
            "attributes": p.get("attributes") or {},
            "locale": p.get("locale"),
            "created_at": p.get("created_at") or occurred_at,
            "birthday": p.get("birthday"),
            "order_count": p.get("order_count") or 0,
            "tier": p.get("tier"),
            "tier_multiplier": p.get("tier_multiplier") or 1,
            "plan": p.get("plan"),
            "plan_multiplier": p.get("plan_multiplier") or 1,
        }
        usage = engine.MemoryUsage()
    specs = (
        rules.load_specs(session, program)
        if bodies is None
        else proposed_specs(session, program, bodies)
    )
    ctx = earning.event_context(tenant, event, occurred_at, _amount(event, program), member_ctx)
    evaluation = engine.evaluate_rules(specs, ctx, usage)
    awards = earning.to_awards(program, tenant, evaluation, occurred_at)
    out = evaluation.as_dict()
    for item, award in zip((a for a in out["awards"] if a["points"] > 0), awards, strict=False):
        item["pending_until"] = award.pending_until
        item["expires_at"] = award.expires_at
    out["occurred_at"] = occurred_at
    out["member"] = {k: v for k, v in member_ctx.items() if k != "created_at"}
    return out


@dataclass
class Side:
    points: int = 0
    events_awarded: int = 0
    by_member: dict[uuid.UUID, int] = field(default_factory=lambda: defaultdict(int))
    by_rule: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def replay(
    session: Session,
    tenant: Tenant,
    program: Program,
    bodies: list[RuleBody],
    *,
    start: datetime,
    end: datetime,
    top: int = 10,
) -> dict[str, Any]:
    """Run the recorded events of [start, end) through the current and the proposed rules.

    Limits and budgets count from the start of the window (awards made before it are not
    seen by either side), so both sides are measured the same way.
    """
    if end <= start:
        raise InvalidInput("the end of the period must be after its start")
    current = rules.load_specs(session, program)
    proposed = proposed_specs(session, program, bodies)
    members = {
        m.id: m
        for m in session.execute(
            select(Member).where(Member.tenant_id == tenant.id, Member.status == "active")
        ).scalars()
    }
    prior_orders = dict(
        session.execute(
            select(Order.member_id, func.count())
            .where(Order.program_id == program.id, Order.occurred_at < start)
            .group_by(Order.member_id)
        ).all()
    )
    sides = {"current": Side(), "proposed": Side()}
    usages = {"current": engine.MemoryUsage(), "proposed": engine.MemoryUsage()}
    specs = {"current": current, "proposed": proposed}
    orders_seen: dict[uuid.UUID, int] = defaultdict(int)
    events = 0
    rows = session.execute(
        select(Event.member_id, Event.payload, Event.occurred_at, Event.type)
        .where(
            Event.program_id == program.id,
            Event.occurred_at >= start,
            Event.occurred_at < end,
            Event.type != "refund",
        )
        .order_by(Event.occurred_at, Event.id)
    ).yield_per(2000)
    for member_id, payload, occurred_at, event_type in rows:
        member = members.get(member_id)
        if member is None or not payload:
            continue
        try:
            event = EventIn.model_validate(payload)
        except ValidationError:
            continue
        events += 1
        member_ctx = {
            "tags": member.tags or [],
            "attributes": member.attributes or {},
            "locale": member.locale,
            "created_at": member.created_at,
            "birthday": member.birthday,
            "order_count": int(prior_orders.get(member_id, 0)) + orders_seen[member_id],
        }
        ctx = earning.event_context(tenant, event, occurred_at, _amount(event, program), member_ctx)
        for name in ("current", "proposed"):
            usage = usages[name]
            usage.member_key = member_id
            evaluation = engine.evaluate_rules(specs[name], ctx, usage)
            usage.record(member_id, occurred_at, evaluation)
            side = sides[name]
            if evaluation.points:
                side.events_awarded += 1
                side.points += evaluation.points
                side.by_member[member_id] += evaluation.points
                for a in evaluation.awards:
                    side.by_rule[a.rule.name or a.rule.key] += a.points
        if event_type == "purchase":
            orders_seen[member_id] += 1
    cur, prop = sides["current"], sides["proposed"]
    delta = {
        m: prop.by_member.get(m, 0) - cur.by_member.get(m, 0)
        for m in set(cur.by_member) | set(prop.by_member)
    }
    affected = [m for m, d in delta.items() if d != 0]
    most = sorted(affected, key=lambda m: (-abs(delta[m]), str(m)))[:top]
    cpp = program.cost_per_point

    def summary(side: Side) -> dict[str, Any]:
        return {
            "points": side.points,
            "cost": str(side.points * cpp),
            "events_awarded": side.events_awarded,
            "members_awarded": len(side.by_member),
            "by_rule": dict(side.by_rule),
        }

    return {
        "period": {"from": start, "to": end},
        "events": events,
        "currency": program.currency,
        "cost_per_point": str(cpp),
        "current": summary(cur),
        "proposed": summary(prop),
        "difference": {
            "points": prop.points - cur.points,
            "cost": str((prop.points - cur.points) * cpp),
            "members_affected": len(affected),
        },
        "most_affected": [
            {
                "member_id": m,
                "name": members[m].name,
                "current": cur.by_member.get(m, 0),
                "proposed": prop.by_member.get(m, 0),
                "difference": delta[m],
            }
            for m in most
        ],
    }
