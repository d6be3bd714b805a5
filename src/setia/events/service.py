"""Recording events: idempotency, the member, and what each event does to the ledger.

An event's path: validate → idempotency check on the client id → find (or create) the
member → earning → ledger → outbox. All of it in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, cast

from sqlalchemy import String, Table, Uuid, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from setia.badges import service as badges
from setia.core.db import new_id
from setia.core.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from setia.core.money import MoneyError, check_currency, parse_amount, to_str
from setia.core.time import as_utc, utcnow
from setia.events import earning
from setia.events.models import Event, Order
from setia.events.schemas import EventIn
from setia.ledger import service as ledger
from setia.members import service as members
from setia.members.models import Member
from setia.outbox.service import publish
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules import engine as rule_engine
from setia.rules import service as rule_service
from setia.rules.models import Rule, RuleAward
from setia.tenants.models import Tenant
from setia.tiers import activity as tier_activity
from setia.tiers import service as tiers

FUTURE_SKEW = timedelta(minutes=5)


class EventIdReused(IdempotencyKeyReused):
    code = "event_id_reused"
    title = "Event id already used for a different event"


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class OrderExists(Conflict):
    code = "order_exists"
    title = "An order with this id was already recorded"


class RefundExceedsOrder(Conflict):
    code = "refund_exceeds_order"
    title = "Refund larger than what is left of the order"


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"
    title = "Currency differs from the program's or order's"


class OrderMemberMismatch(Conflict):
    code = "order_member_mismatch"
    title = "The order belongs to another member"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    title = "Invalid amount"


# Every event runs these: they are built once, on the tables, and only bound per call.
# (Foreign-key columns learn their type late, so the UUID binds name theirs.)
_events, _orders, _members = (cast(Table, m.__table__) for m in (Event, Order, Member))
_FIND_EVENT = select(_events.c.request_hash, _events.c.result).where(
    _events.c.tenant_id == bindparam("tenant_id", type_=Uuid()),
    _events.c.client_event_id == bindparam("client_event_id", type_=String()),
)
_INSERT_EVENT = insert(_events)
_SET_RESULT = update(_events).where(_events.c.id == bindparam("event_id", type_=Uuid()))
_SET_ACTIVITY = update(_members).where(_members.c.id == bindparam("member_id", type_=Uuid()))
_FIND_ORDER = select(_orders.c.id).where(
    _orders.c.tenant_id == bindparam("tenant_id", type_=Uuid()),
    _orders.c.order_id == bindparam("order_id", type_=String()),
)
_INSERT_ORDER = insert(_orders)


@dataclass
class Recorded:
    result: dict[str, Any]
    created: bool


def _canonical(value: Any) -> Any:
    """Nested keys in sorted order, so a replay answers byte for byte like the first call
    (PostgreSQL's JSONB does not keep the order the result was written in)."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _money(value: str | None, currency: str, field: str) -> Decimal:
    try:
        return parse_amount(value, currency)
    except MoneyError as exc:
        raise InvalidAmount(f"{field}: {exc}", extra={"field": field}, code=exc.code) from None


def _program(session: Session, tenant: Tenant, program_id: uuid.UUID | None) -> Program:
    cache: dict[Any, Program] = session.info.setdefault("programs", {})
    key = (tenant.id, program_id)
    if key not in cache:
        cache[key] = programs.get_program(session, tenant.id, program_id)
    return cache[key]


def _member(session: Session, tenant: Tenant, event: EventIn) -> tuple[Member, bool]:
    ref = event.member
    member = members.find_member(
        session,
        tenant,
        member_id=ref.id,
        external_id=ref.external_id,
        phone=ref.phone,
        email=ref.email,
    )
    if member is not None:
        if member.status != "active":
            raise members.MemberNotActive(f"member {member.id} is {member.status}")
        return member, False
    if ref.id is not None or not tenant.auto_create_members:
        raise members.MemberNotFound(
            "no member has these identities"
            + ("" if ref.id is not None else "; create the member first (auto-creation is off)")
        )
    data = ref.model_dump(exclude={"id"}, exclude_none=True)
    member = members.create_member(session, tenant, data, source=f"event:{event.type}")
    member_signed_up(session, tenant, member)
    return member, True


def record_event(session: Session, tenant: Tenant, event: EventIn) -> Recorded:
    """Record one event. The same client id with the same payload returns the first result."""
    payload = event.model_dump(mode="json", exclude_none=True)
    # Only the free-form attributes can hold floats.
    digest = ledger.request_hash(payload, no_floats=not event.attributes)
    existing = session.execute(
        _FIND_EVENT, {"tenant_id": tenant.id, "client_event_id": event.id}
    ).first()
    if existing is not None:
        if existing.request_hash != digest:
            raise EventIdReused(f"event id {event.id!r} was already used for a different event")
        return Recorded(_canonical(existing.result), created=False)

    now = utcnow()
    occurred_at = as_utc(event.occurred_at) if event.occurred_at else now
    if occurred_at > now + FUTURE_SKEW:
        raise InvalidInput(
            "occurred_at is in the future; send the time the event happened",
            extra={"field": "occurred_at"},
            code="occurred_at_in_future",
        )
    program = _program(session, tenant, event.program_id)
    member, member_created = _member(session, tenant, event)

    event_id = new_id()
    amount: Decimal | None = None
    currency: str | None = None
    if event.currency is not None:
        try:
            currency = check_currency(event.currency)
        except MoneyError as exc:
            raise InvalidInput(str(exc), extra={"field": "currency"}, code=exc.code) from None
    result: dict[str, Any] = {
        "id": event.id,
        "event_id": str(event_id),
        "type": event.type,
        "member_id": str(member.id),
        "program_id": str(program.id),
        "occurred_at": occurred_at.isoformat(),
        "member_created": member_created,
    }
    # The event row goes in first: its unique client id is what stops a concurrent duplicate.
    session.execute(
        _INSERT_EVENT,
        {
            "id": event_id,
            "tenant_id": tenant.id,
            "program_id": program.id,
            "member_id": member.id,
            "client_event_id": event.id,
            "type": event.type,
            "occurred_at": occurred_at,
            "received_at": now,
            "request_hash": digest,
            "order_id": event.order_id,
            "currency": currency,
            "payload": payload,
            "result": {},
        },
    )
    # A member back after a program's inactivity period: their points there expire first, as
    # the job would have expired them; then the event's activity counts, before anything is
    # earned (points earned now must not be judged by the old activity).
    ledger.expire_inactive(session, tenant.id, member.id, member.last_activity_at, occurred_at)
    if member.last_activity_at is None or occurred_at > member.last_activity_at:
        session.execute(_SET_ACTIVITY, {"member_id": member.id, "last_activity_at": occurred_at})
        member.last_activity_at = occurred_at
    if event.type == "purchase":
        assert currency is not None
        amount = _money(event.amount, currency, "amount")
        result["points"] = _purchase(
            session, tenant, program, member, event, event_id, occurred_at, amount, currency
        )
    elif event.type == "refund":
        result["refund"] = _refund(
            session, tenant, program, member, event, event_id, occurred_at, currency
        )
        amount = Decimal(result["refund"]["amount"])
    else:
        result["points"] = _custom(session, tenant, program, member, event, event_id, occurred_at)
    if event.type != "refund":
        # Badges and challenges count it (refunds never take progress back).
        badges.on_event(session, tenant, program, member, event, event_id, occurred_at, amount)
    session.execute(_SET_RESULT, {"event_id": event_id, "result": result, "amount": amount})
    publish(
        session,
        tenant.id,
        "event.recorded",
        {"event_id": str(event_id), "type": event.type, "member_id": str(member.id)},
    )
    return Recorded(_canonical(result), created=True)


def _purchase(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    event: EventIn,
    event_id: uuid.UUID,
    occurred_at: Any,
    amount: Decimal,
    currency: str,
) -> dict[str, Any]:
    if currency != program.currency:
        raise CurrencyMismatch(
            f"this program counts {program.currency}; the purchase is in {currency}",
            extra={"field": "currency"},
        )
    assert event.order_id is not None
    lines = []
    for i, item in enumerate(event.items or []):
        price = _money(item.unit_price, currency, f"items[{i}].unit_price")
        lines.append(
            {
                **item.model_dump(exclude_none=True),
                "unit_price": to_str(price, currency),
                "returned": 0,
            }
        )
    if session.execute(_FIND_ORDER, {"tenant_id": tenant.id, "order_id": event.order_id}).first():
        raise OrderExists(f"order {event.order_id!r} was already recorded by another event")
    awards, evaluation = earning.evaluate(
        session, program, tenant, member, event, amount, occurred_at
    )
    total = sum(a.points for a in awards)
    session.execute(
        _INSERT_ORDER,
        {
            "id": new_id(),
            "tenant_id": tenant.id,
            "program_id": program.id,
            "member_id": member.id,
            "order_id": event.order_id,
            "event_id": event_id,
            "amount": amount,
            "currency": currency,
            "lines": lines,
            "points_earned": total,
            "refunded_amount": Decimal(0),
            "points_reversed": 0,
            "occurred_at": occurred_at,
            "created_at": utcnow(),
        },
    )
    out = _earn(
        session,
        tenant,
        program,
        member,
        event_id,
        occurred_at,
        awards,
        source_type="order",
        source_id=event.order_id,
    )
    earning.record(session, program, member, evaluation, event_id=event_id, occurred_at=occurred_at)
    day = tier_activity.local_day(occurred_at, tenant.timezone)
    tier_activity.record(session, tier_activity.purchase(program.id, member.id, day, amount, total))
    tiers.after_activity(session, tenant, program.id, member.id, occurred_at)
    out["not_fired"] = [skip.as_dict() for skip in evaluation.skipped]
    _explain_tags(out, evaluation)
    return out


def _earn(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    event_id: uuid.UUID,
    occurred_at: Any,
    awards: list[earning.Award],
    *,
    source_type: str,
    source_id: str | None,
) -> dict[str, Any]:
    """Credit each award as its own lot, keyed by event and award number (retries are no-ops)."""
    out: dict[str, Any] = {"earned": sum(a.points for a in awards), "awards": []}
    for n, award in enumerate(awards):
        if award.points <= 0:
            continue
        ctx = ledger.Context(
            program_id=program.id,
            idempotency_key=f"event:{event_id}:award:{n}",
            request_hash=ledger.request_hash({"event": str(event_id), "award": n}, no_floats=True),
            source_type=source_type,
            source_id=source_id,
            actor="event",
            program_revision=program.revision,
            effective_at=occurred_at,
            details={
                "rule": award.rule,
                "rule_revision": award.revision,
                "event_id": str(event_id),
            },
        )
        res = ledger.earn(
            session,
            ctx,
            member_id=member.id,
            amount=award.points,
            earned_at=occurred_at,
            pending_until=award.pending_until,
            expires_at=award.expires_at,
            check_existing=False,
        )
        out["awards"].append(earning.award_answer(award, program.revision, res.transfer_id))
        if repaid := res.amounts.get("debt_repaid", 0):
            # points that landed at once repaid the member's debt first
            out["debt_repaid"] = out.get("debt_repaid", 0) + repaid
        publish(
            session,
            tenant.id,
            "points.earned",
            {
                "member_id": str(member.id),
                "program_id": str(program.id),
                "points": award.points,
                "order_id": source_id if source_type == "order" else None,
                "event_id": str(event_id),
                "pending_until": out["awards"][-1]["pending_until"],
            },
        )
    return out


def _explain_tags(out: dict[str, Any], evaluation: rule_engine.Evaluation) -> None:
    """Rules that fired by adding a tag give no points (so no award line): list them too."""
    tags = [a.as_dict() for a in evaluation.awards if a.tag]
    if tags:
        out["tags_added"] = tags


def _custom(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    event: EventIn,
    event_id: uuid.UUID,
    occurred_at: Any,
) -> dict[str, Any]:
    """Any other event (review.submitted, profile.completed, ...) earns what its rules give."""
    awards, evaluation = earning.evaluate(
        session, program, tenant, member, event, None, occurred_at
    )
    out = _earn(
        session,
        tenant,
        program,
        member,
        event_id,
        occurred_at,
        awards,
        source_type="event",
        source_id=str(event_id),
    )
    earning.record(session, program, member, evaluation, event_id=event_id, occurred_at=occurred_at)
    day = tier_activity.local_day(occurred_at, tenant.timezone)
    points = sum(a.points for a in awards)
    tier_activity.record(
        session, tier_activity.custom(program.id, member.id, day, event.type, points)
    )
    tiers.after_activity(session, tenant, program.id, member.id, occurred_at)
    out["not_fired"] = [skip.as_dict() for skip in evaluation.skipped]
    _explain_tags(out, evaluation)
    return out


def _refund(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    event: EventIn,
    event_id: uuid.UUID,
    occurred_at: Any,
    currency: str | None,
) -> dict[str, Any]:
    # Locked (PostgreSQL) and re-read: two refunds of one order at once must not both start
    # from the same refunded amount, or both would reverse the same points.
    order = session.execute(
        select(Order)
        .where(Order.tenant_id == tenant.id, Order.order_id == event.order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise OrderNotFound(
            f"no purchase with order_id {event.order_id!r} was recorded",
            extra={"field": "order_id"},
        )
    if order.member_id != member.id:
        raise OrderMemberMismatch(f"order {order.order_id!r} belongs to another member")
    if currency is not None and currency != order.currency:
        raise CurrencyMismatch(f"order {order.order_id!r} was paid in {order.currency}")
    left = order.amount - order.refunded_amount
    if event.returned_items is not None:
        lines = [dict(line) for line in order.lines]
        # An order may hold one SKU on several lines (at different prices): its returns
        # use them up in the order's own line order.
        by_sku: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            by_sku.setdefault(line["sku"], []).append(line)
        refund = Decimal(0)
        for item in event.returned_items:
            same = by_sku.get(item.sku)
            if same is None:
                raise RefundExceedsOrder(
                    f"order {order.order_id!r} has no item {item.sku!r}",
                    extra={"field": "returned_items"},
                )
            still = sum(line["quantity"] - line["returned"] for line in same)
            if item.quantity > still:
                raise RefundExceedsOrder(
                    f"only {still} of {item.sku!r} can still be returned",
                    extra={"field": "returned_items"},
                )
            wanted = item.quantity
            for line in same:
                take = min(wanted, line["quantity"] - line["returned"])
                if take > 0:
                    line["returned"] += take
                    refund += Decimal(line["unit_price"]) * take
                    wanted -= take
        refund = min(refund, left)
        order.lines = lines
    else:
        refund = _money(event.amount, order.currency, "amount")
    if refund > left:
        raise RefundExceedsOrder(
            f"only {to_str(left, order.currency)} {order.currency} of order {order.order_id!r} is left to refund",
            extra={"refundable": to_str(left, order.currency)},
        )
    refunded = order.refunded_amount + refund
    # Cumulative and floored, so the total reversed never exceeds what was earned and a
    # full refund reverses exactly everything, whatever the order of partial refunds.
    target = (
        order.points_earned
        if refunded >= order.amount
        else int(
            (Decimal(order.points_earned) * refunded / order.amount).to_integral_value(
                rounding=ROUND_FLOOR
            )
        )
    )
    to_reverse = max(0, target - order.points_reversed)
    # Every refund answers the same keys; a refund with no points to take back, zeros.
    out: dict[str, Any] = {
        "amount": to_str(refund, order.currency),
        "order_id": order.order_id,
        "points_reversed": to_reverse,
        **dict.fromkeys(ledger.REVERSAL_PARTS, 0),
    }
    if to_reverse:
        ctx = ledger.Context(
            program_id=order.program_id,
            idempotency_key=f"event:{event_id}:refund",
            request_hash=ledger.request_hash({"event": str(event_id), "refund": to_reverse}),
            source_type="order",
            source_id=order.order_id,
            actor="event",
            program_revision=program.revision,
            effective_at=occurred_at,
            details={"event_id": str(event_id)},
        )
        policy = session.get(Program, order.program_id)
        assert policy is not None
        out.update(
            ledger.reverse_order_points(
                session,
                ctx,
                member_id=member.id,
                amount=to_reverse,
                reversed_before=order.points_reversed,
                shortfall_policy=policy.refund_shortfall,
            )
        )
        publish(
            session,
            tenant.id,
            "points.reversed",
            {"member_id": str(member.id), "order_id": order.order_id, **out},
        )
    order.refunded_amount = refunded
    order.points_reversed += to_reverse
    session.flush()
    # Points paid for the order give themselves back; a full refund restores its coupons.
    from setia.checkout import service as checkout

    given_back = checkout.on_order_refund(
        session,
        tenant=tenant,
        program=program,
        order=order,
        refund_amount=refund,
        fully_refunded=refunded >= order.amount,
        event_id=event_id,
    )
    if given_back:
        out["checkout"] = given_back
    tier_activity.record(
        session,
        tier_activity.refund(
            order.program_id,
            member.id,
            tier_activity.local_day(order.occurred_at, tenant.timezone),
            refund,
            to_reverse,
            order_now_fully_refunded=refunded >= order.amount and refund > 0,
        ),
    )
    tiers.after_refund(session, tenant, order.program_id, member.id, occurred_at)
    return out


def get_event(session: Session, tenant: Tenant, event_id: str) -> dict[str, Any]:
    conds = [Event.client_event_id == event_id]
    with contextlib.suppress(ValueError):
        conds.append(Event.id == uuid.UUID(event_id))
    row = session.execute(
        select(Event).where(Event.tenant_id == tenant.id, or_(*conds)).order_by(Event.id).limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise EventNotFound(f"event {event_id!r} not found")
    return {
        **_canonical(row.result),
        "received_at": row.received_at.isoformat(),
        "payload": row.payload,
    }


class EventNotFound(NotFound):
    code = "event_not_found"
    title = "Event not found"


def award_trigger(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    trigger: str,
    *,
    occurred_at: datetime,
    key: str,
) -> dict[str, Any] | None:
    """Run the rules of a non-event trigger (member.signup, schedule.birthday, ...) for one member.

    ``key`` names the occasion (e.g. ``birthday:2026:<member>``): a second run for the same
    occasion gives nothing, even from another process (unique usage rows and ledger keys).
    """
    # Usage rows of the occasion are keyed ``<key>:<rule id>`` (``earning.record``), one per
    # rule of the program that gave: look the possible keys up exactly, through the unique
    # index (a ``LIKE '<key>:%'`` walked the whole table on SQLite, where LIKE ignores case,
    # and on PostgreSQL outside the C collation). This relies on rules never being deleted
    # nor moved to another program (neither is possible; disabled ones are included).
    rule_ids = session.execute(select(Rule.id).where(Rule.program_id == program.id)).scalars()
    existing = session.execute(
        select(RuleAward.id)
        .where(RuleAward.trigger_key.in_([f"{key}:{rule_id}" for rule_id in rule_ids]))
        .limit(1)
    ).first()
    if existing is not None:
        return None
    ctx = rule_engine.build_context(
        event_type=trigger,
        occurred_at=occurred_at,
        tz_name=member.timezone or tenant.timezone,
        member=earning.member_context(session, member, occurred_at, program_id=program.id),
    )
    evaluation = rule_engine.evaluate_rules(
        rule_service.load_specs(session, program),
        ctx,
        rule_service.DbUsage(session, member.id, program.id),
    )
    if not evaluation.awards:
        return None
    awards = earning.to_awards(program, tenant, evaluation, occurred_at)
    earning.record(
        session,
        program,
        member,
        evaluation,
        event_id=None,
        occurred_at=occurred_at,
        trigger_key=key,
    )
    ctx_id = uuid.uuid5(uuid.NAMESPACE_URL, f"setia:{program.id}:{key}")
    out = _earn(
        session,
        tenant,
        program,
        member,
        ctx_id,
        occurred_at,
        awards,
        source_type="trigger",
        source_id=key,
    )
    publish(
        session,
        tenant.id,
        "rules.triggered",
        {"member_id": str(member.id), "trigger": trigger, "key": key, "points": out["earned"]},
    )
    return out


def member_signed_up(session: Session, tenant: Tenant, member: Member) -> dict[str, Any] | None:
    """Signup bonus: the ``member.signup`` rules of every program of the tenant."""
    result = None
    for program in programs.list_programs(session, tenant.id):
        result = (
            award_trigger(
                session,
                tenant,
                program,
                member,
                "member.signup",
                occurred_at=member.created_at,
                key=f"signup:{program.id}:{member.id}",
            )
            or result
        )
    return result
