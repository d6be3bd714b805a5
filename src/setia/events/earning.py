"""What an event earns: the program's rules (its base rate among them), evaluated and explained.

``evaluate`` turns an event into awards (with the rule and revision that made each, and
its pending and expiry dates) plus the reasons the other rules did not fire. ``record``
writes the awards' usage rows (the basis of limits and budgets) and applies tags. The
ledger writes are the events service's job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, Uuid, bindparam, func, insert, select
from sqlalchemy.orm import Session

from setia.analytics import store_fields
from setia.badges import service as badges
from setia.core.db import UTCDateTime, new_id
from setia.core.time import days
from setia.events import benefits
from setia.events.models import Order
from setia.events.schemas import EventIn, LineItem
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules import engine
from setia.rules import service as rules
from setia.rules.models import RuleAward
from setia.tenants.models import Tenant

_orders = cast(Table, Order.__table__)
# A line item's fields, all empty: an item dumped without its empty fields, laid over this,
# is the item as ``LineItem.model_dump()`` gives it (every optional field defaults to None).
EMPTY_ITEM: dict[str, Any] = dict.fromkeys(LineItem.model_fields)
assert all(f.default is None for f in LineItem.model_fields.values() if not f.is_required()), (
    "EMPTY_ITEM assumes optional line-item fields default to None"
)

_ORDERS_SO_FAR = (  # built once: it runs for every event when a rule reads the order count
    select(func.count())
    .select_from(_orders)
    .where(
        _orders.c.member_id == bindparam("member_id", type_=Uuid()),
        _orders.c.occurred_at <= bindparam("at", type_=UTCDateTime()),
    )
)


@dataclass(frozen=True)
class Award:
    points: int
    rule: str
    pending_until: datetime | None
    expires_at: datetime | None
    rule_id: uuid.UUID | None = None
    revision: int = 0
    campaign_id: uuid.UUID | None = None
    rule_name: str = ""


def award_answer(award: Award, program_revision: int, transfer_id: uuid.UUID) -> dict[str, Any]:
    """An award as the event's answer shows it (the one-by-one and the batch path alike)."""
    return {
        "rule": award.rule,
        "rule_id": str(award.rule_id) if award.rule_id else None,
        "rule_name": award.rule_name,
        "revision": award.revision,
        "program_revision": program_revision,
        "points": award.points,
        "transfer_id": str(transfer_id),
        "pending_until": award.pending_until.isoformat() if award.pending_until else None,
        "expires_at": award.expires_at.isoformat() if award.expires_at else None,
    }


def member_context(
    session: Session,
    member: Member,
    occurred_at: datetime,
    *,
    program_id: uuid.UUID | None = None,
    count_orders: bool = True,
    count_referrals: bool = True,
    read_scores: bool = True,
    with_badges: bool = True,
) -> dict[str, Any]:
    # Orders recorded so far up to this instant: one at the very same time was placed before
    # this one (the event being evaluated has no order row yet), so two orders in one second
    # are not both a first purchase.
    orders = (
        session.execute(_ORDERS_SO_FAR, {"member_id": member.id, "at": occurred_at}).scalar_one()
        if count_orders
        else 0
    )
    return {
        "tags": member.tags or [],
        "attributes": member.attributes or {},
        "locale": member.locale,
        "created_at": member.created_at,
        "birthday": member.birthday,
        "order_count": int(orders),
        **(benefits.member_benefits(session, program_id, member.id) if program_id else {}),
        **(
            {"referral_count": _referral_count(session, program_id, member.id)}
            if program_id and count_referrals
            else {}
        ),
        # stored analytics (member.rfm_segment, ...): one query, only when a rule reads them
        **(
            store_fields.rule_fields(session, program_id, [member.id]).get(member.id, {})
            if program_id and read_scores
            else {}
        ),
        **(
            {"badges": badges.earned_codes(session, program_id, member.id)}
            if program_id and with_badges
            else {}
        ),
    }


def event_context(
    tenant: Tenant,
    event: EventIn,
    occurred_at: datetime,
    amount: Decimal | None,
    member_ctx: dict[str, Any],
    items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The rules' context of an event. ``items``: the event's items as ``model_dump()`` gives
    them, when the caller has them already."""
    return engine.build_context(
        event_type=event.type,
        occurred_at=occurred_at,
        tz_name=tenant.timezone,
        amount=amount,
        currency=event.currency,
        items=[i.model_dump() for i in event.items or []] if items is None else items,
        store=event.store,
        channel=event.channel,
        payment_method=event.payment_method,
        attributes=event.attributes,
        member=member_ctx,
    )


def to_awards(
    program: Program, tenant: Tenant, evaluation: engine.Evaluation, occurred_at: datetime
) -> list[Award]:
    """Dates for each award: the effect's own pending/expiry if it sets them, else the program's."""
    out = []
    for a in evaluation.awards:
        if a.points <= 0:
            continue
        pending = (
            (occurred_at + days(a.pending_days) if a.pending_days else None)
            if a.pending_days is not None
            else programs.pending_until(program, occurred_at)
        )
        expires = (
            programs.months_after(occurred_at, a.expiry_months, tenant.timezone)
            if a.expiry_months is not None
            else programs.expires_at(program, occurred_at, tenant.timezone)
        )
        out.append(
            Award(
                points=a.points,
                rule=a.rule.key,
                pending_until=pending,
                expires_at=expires,
                rule_id=a.rule.id,
                revision=a.rule.revision,
                campaign_id=a.rule.campaign.id if a.rule.campaign else None,
                rule_name=a.rule.name,
            )
        )
    return out


def _reads_orders(specs: list[engine.RuleSpec]) -> bool:
    return any(
        "member.order_count" in text or "member.is_first_purchase" in text
        for text in (repr(spec.body.get("conditions")) for spec in specs)
    )


def _reads_badges(specs: list[engine.RuleSpec]) -> bool:
    return any("member.badges" in repr(spec.body.get("conditions")) for spec in specs)


def _reads_referrals(specs: list[engine.RuleSpec]) -> bool:
    return any("member.referral_count" in repr(spec.body.get("conditions")) for spec in specs)


def referral_counts(
    session: Session, program_id: uuid.UUID, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    # Imported here: the referrals domain reads orders, the events domain's own table.
    from setia.referrals.service import referral_counts as counts

    return counts(session, program_id, member_ids)


def _referral_count(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> int:
    return referral_counts(session, program_id, [member_id])[member_id]


def evaluate(
    session: Session,
    program: Program,
    tenant: Tenant,
    member: Member,
    event: EventIn,
    amount: Decimal | None,
    occurred_at: datetime,
) -> tuple[list[Award], engine.Evaluation]:
    specs = rules.load_specs(session, program)
    # The order count costs a query per event: only ask when some rule reads it.
    member_ctx = member_context(
        session,
        member,
        occurred_at,
        program_id=program.id,
        count_orders=_reads_orders(specs),
        count_referrals=_reads_referrals(specs),
        read_scores=store_fields.reads_scores(specs),
        with_badges=_reads_badges(specs),
    )
    ctx = event_context(tenant, event, occurred_at, amount, member_ctx)
    evaluation = engine.evaluate_rules(specs, ctx, rules.DbUsage(session, member.id, program.id))
    return to_awards(program, tenant, evaluation, occurred_at), evaluation


def record(
    session: Session,
    program: Program,
    member: Member,
    evaluation: engine.Evaluation,
    *,
    event_id: uuid.UUID | None,
    occurred_at: datetime,
    trigger_key: str | None = None,
) -> None:
    """Write usage rows for the rules that gave points, and add the tags rules gave."""
    rows = [
        {
            "id": new_id(),
            "program_id": program.id,
            "rule_id": a.rule.id,
            "rule_revision": a.rule.revision,
            "campaign_id": a.rule.campaign.id if a.rule.campaign else None,
            "member_id": member.id,
            "event_id": event_id,
            "points": a.points,
            "occurred_at": occurred_at,
            "trigger_key": f"{trigger_key}:{a.rule.key}" if trigger_key else None,
        }
        for a in evaluation.awards
        if a.rule.id is not None
    ]
    if rows:
        # Core executemany: the ORM's bulk path costs more than the rows themselves.
        session.execute(insert(cast(Table, RuleAward.__table__)), rows)
    tags = {a.tag for a in evaluation.awards if a.tag}
    if tags and not tags <= set(member.tags or []):
        member.tags = sorted(set(member.tags or []) | tags)
        session.flush()
