"""Badges and challenges: definitions, each member's progress from events, completion rewards,
what members have earned, and leaderboards.

Everything runs in the caller's transaction and never commits.

Progress is updated by the events service in the event's own transaction, on both paths:
``on_event`` for one event (``events.service.record_event``), ``RunProgress`` for a run of
the set-based batch path (``events.batch``): the same arithmetic (``_contribution`` and
``_apply``) on the members' tallies (one row per member, program and period, holding an
entry per definition) read once per event or once per run, written back with one statement
per table; an entry that reaches its target also gets its completion row
(``BadgeProgress``). Only the program's active definitions for the event's type are looked
at (cached per session, like the rules). A replayed event (the same client id) never
reaches this module: the events service answers it from the events table first. Tallies are
unique per (member, program, period) and completion rows per (member, definition, period),
so a concurrent first insert fails the transaction (which the API retries) instead of
counting twice.

Refunds do not change progress, and a completed badge stays completed: see docs/badges.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import orjson
from sqlalchemy import (
    String,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from setia.badges.models import (
    ALL_TIME,
    BadgeDefinition,
    BadgeProgress,
    BadgeTally,
    LeaderboardConsent,
)
from setia.badges.schemas import CriteriaIn, DefinitionIn, DefinitionPatch, PeriodIn, RewardsIn
from setia.core import bulk
from setia.core.db import new_id
from setia.core.errors import Conflict, InvalidInput, NotFound, SetiaError
from setia.core.i18n import pick
from setia.core.time import as_utc, utcnow, zone
from setia.events.schemas import EventIn
from setia.ledger import service as ledger
from setia.members.models import Member
from setia.outbox.models import OutboxMessage
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules.conditions import (
    _ORDER_OPS,
    ANY,
    DATE,
    NUMBER,
    STRING,
    TIME,
    ConditionError,
    _compare,
    _number,
    _parts,
    field_type,
    validate,
)
from setia.tenants.models import Tenant

# A streak remembers the local days/weeks/months seen within twice its target of the newest:
# enough for any late event near the front to complete it, and the state stays small.
STREAK_MEMORY = 2
SUM_FIELDS = ("event.amount", "items.amount", "items.quantity")
DISTINCT_FIELDS = (
    "item.sku",
    "item.category",
    "item.brand",
    "item.name",
    "event.store",
    "event.channel",
    "event.payment_method",
)
ATTRIBUTE_PREFIX = "event.attributes."

_progress = cast(Table, BadgeProgress.__table__)
_INSERT_PROGRESS = insert(_progress)
_SET_REWARD = (
    update(_progress)
    .where(_progress.c.id == bindparam("row_id", type_=_progress.c.id.type))
    .values(reward=bindparam("reward"))
)
_tallies = cast(Table, BadgeTally.__table__)
_INSERT_TALLY = insert(_tallies)
_UPDATE_TALLY = (
    update(_tallies)
    .where(_tallies.c.id == bindparam("row_id", type_=_tallies.c.id.type))
    .values(entries=bindparam("entries"), updated_at=bindparam("updated_at"))
)
_INSERT_OUTBOX = insert(cast(Table, OutboxMessage.__table__))
_MISSING = object()


# --------------------------------------------------------------------------- errors


class BadgeNotFound(NotFound):
    code = "badge_not_found"
    title = "Badge or challenge not found"


class BadgeCodeTaken(Conflict):
    code = "badge_code_taken"
    title = "A badge or challenge with this code exists"


class BadgeHasProgress(Conflict):
    code = "badge_has_progress"
    title = "Members have progress on this definition"


class InvalidBadge(InvalidInput):
    code = "invalid_badge"
    title = "Invalid badge or challenge definition"


class InvalidPeriod(InvalidInput):
    code = "invalid_period"
    title = "Not a period of this badge or challenge"


def _bad(field_path: str, message: str) -> InvalidBadge:
    return InvalidBadge(f"{field_path}: {message}", extra={"field": field_path})


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Normalized:
    """A definition's criteria, period and rewards as columns."""

    event_type: str
    measure: str
    target: Decimal
    field: str | None
    items_where: dict[str, Any] | None
    conditions: dict[str, Any] | None
    streak_unit: str | None
    period: str
    recurring: bool
    starts_at: datetime | None
    ends_at: datetime | None
    reward_points: int
    reward_coupon_campaign_id: uuid.UUID | None


def _reject_member_fields(node: Any, path: str) -> None:
    """Filters read the event only: progress must not depend on who the member is today."""
    if isinstance(node, dict):
        name = node.get("field")
        if isinstance(name, str) and name.startswith("member."):
            raise _bad(f"{path}.field", f"a badge filter reads the event only, not {name}")
        for key, child in node.items():
            if key in ("all", "any") and isinstance(child, list):
                for i, c in enumerate(child):
                    _reject_member_fields(c, f"{path}.{key}[{i}]")
            elif key == "not":
                _reject_member_fields(child, f"{path}.not")


def _target(raw: str | int, measure: str) -> Decimal:
    path = "criteria.target"
    if isinstance(raw, bool):
        raise _bad(path, "expected a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _bad(path, f"expected a number, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise _bad(path, "must be a number above 0")
    if measure == "first":
        if value != 1:
            raise _bad(path, "a first-time action is complete at 1")
        return value
    if measure == "sum":
        if value > Decimal(10) ** 15 or value != value.quantize(Decimal("0.000001")):
            raise _bad(path, "at most 10^15, with at most 6 decimals")
        return value
    if value != value.to_integral_value():
        raise _bad(path, f"a {measure} target is a whole number")
    limit = 366 if measure == "streak" else 100_000
    if value > limit:
        raise _bad(path, f"a {measure} target is at most {limit}")
    return value


def _local_month_window(month: str, tz_name: str) -> tuple[datetime, datetime]:
    year, mon = int(month[:4]), int(month[5:7])
    tz = zone(tz_name)
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return as_utc(start), as_utc(end)


def _stored_month(
    d: BadgeDefinition | None, month: str, tz_name: str
) -> tuple[datetime, datetime] | None:
    """A stored single-month definition's bounds, when it is that month (as its answer
    names it in the tenant's zone)."""
    if d is None or d.period != "month" or d.recurring or d.starts_at is None or not d.ends_at:
        return None
    if period_of(d, tz_name).get("month") != month:
        return None
    return as_utc(d.starts_at), as_utc(d.ends_at)


def normalize(
    session: Session,
    tenant: Tenant,
    criteria: CriteriaIn,
    period: PeriodIn,
    rewards: RewardsIn,
    current: BadgeDefinition | None = None,
) -> Normalized:
    """Check a definition; every error names the field to fix (``criteria.field``, ...).

    ``current``: the stored definition the body replaces or repeats. Its single month keeps
    the bounds it was stored with when the body names the same month (alone, or with those
    bounds): after the tenant's time zone changed, the month's window in the new zone is
    another one, and an unchanged definition sent back must stay unchanged."""
    measure = criteria.measure
    if criteria.event_type == "refund":
        raise _bad("criteria.event_type", "refunds do not count toward badges")
    target = _target(criteria.target, measure)
    name = criteria.field
    item_based = False
    if measure == "sum":
        if name is None:
            raise _bad(
                "criteria.field",
                f"a sum needs a field: {', '.join(SUM_FIELDS)} or event.attributes.<name>",
            )
        if name not in SUM_FIELDS and not (
            name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX)
        ):
            raise _bad(
                "criteria.field",
                f"cannot sum {name!r}; use {', '.join(SUM_FIELDS)} or event.attributes.<name>",
            )
        item_based = name.startswith("items.")
    elif measure == "distinct":
        if name is None:
            raise _bad("criteria.field", "distinct needs the field whose values count")
        if name not in DISTINCT_FIELDS and not (
            name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX)
        ):
            raise _bad(
                "criteria.field",
                f"cannot count distinct {name!r}; use {', '.join(DISTINCT_FIELDS)} "
                "or event.attributes.<name>",
            )
        item_based = name.startswith("item.")
    elif name is not None:
        raise _bad("criteria.field", f"a {measure} measure takes no field")
    if criteria.items_where is not None:
        if not item_based:
            raise _bad(
                "criteria.items_where",
                "items_where applies to item fields (item.*, items.*) of sum or distinct",
            )
        try:
            validate(criteria.items_where, "criteria.items_where", item=True)
        except ConditionError as exc:
            raise _bad(exc.path, exc.message) from None
    if criteria.conditions is not None:
        try:
            validate(criteria.conditions, "criteria.conditions")
        except ConditionError as exc:
            raise _bad(exc.path, exc.message) from None
        _reject_member_fields(criteria.conditions, "criteria.conditions")
    if measure == "streak":
        if criteria.streak_unit is None:
            raise _bad("criteria.streak_unit", "a streak needs its unit: day, week or month")
    elif criteria.streak_unit is not None:
        raise _bad("criteria.streak_unit", "only a streak has a unit")

    starts = as_utc(period.starts_at) if period.starts_at else None
    ends = as_utc(period.ends_at) if period.ends_at else None
    recurring = period.recurring
    if period.type == "month":
        if recurring and period.month is not None:
            raise _bad("period.month", "a recurring challenge runs every month; drop month")
        if not recurring:
            if period.month is None:
                raise _bad("period.month", 'give the month ("YYYY-MM") or recurring: true')
            window = _local_month_window(period.month, tenant.timezone)
            kept = _stored_month(current, period.month, tenant.timezone)
            if starts is None and ends is None:
                starts, ends = kept or window
            elif (starts, ends) not in (window, kept):
                # Bounds other than the month's own (as a definition's answer gives them
                # back) would say two different things.
                raise _bad(
                    "period.starts_at",
                    "a one-month period is the month itself: give the month without "
                    "starts_at and ends_at",
                )
    else:
        if recurring:
            raise _bad("period.recurring", "only a month period recurs")
        if period.month is not None:
            raise _bad("period.month", "month belongs to a month period")
        if period.type == "campaign":
            if starts is None:
                raise _bad("period.starts_at", "a campaign needs starts_at")
            if ends is None:
                raise _bad("period.ends_at", "a campaign needs ends_at")
    if starts and ends and ends <= starts:
        raise _bad("period.ends_at", "must be after starts_at")

    coupon = rewards.coupon_campaign_id
    if coupon is not None:
        from setia.coupons import service as coupons

        try:
            campaign = coupons.get_campaign(session, tenant.id, coupon)
        except SetiaError:
            raise _bad("rewards.coupon_campaign_id", f"no coupon campaign {coupon}") from None
        if campaign.status == "archived":
            raise _bad("rewards.coupon_campaign_id", f"coupon campaign {campaign.code} is archived")
    return Normalized(
        event_type=criteria.event_type,
        measure=measure,
        target=target,
        field=name,
        items_where=criteria.items_where,
        conditions=criteria.conditions,
        streak_unit=criteria.streak_unit,
        period=period.type,
        recurring=recurring,
        starts_at=starts,
        ends_at=ends,
        reward_points=rewards.points,
        reward_coupon_campaign_id=coupon,
    )


def _number_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def criteria_of(d: BadgeDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_type": d.event_type,
        "measure": d.measure,
        "target": _number_text(d.target),
    }
    for key in ("field", "items_where", "conditions", "streak_unit"):
        value = getattr(d, key)
        if value is not None:
            out[key] = value
    return out


def period_of(d: BadgeDefinition, tz_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": d.period, "recurring": d.recurring}
    if d.period == "month" and not d.recurring and d.starts_at is not None:
        # Named by its middle: after the tenant's zone moved west, the stored start (midnight
        # in the old zone) falls on the last day of the month before.
        start = as_utc(d.starts_at)
        middle = start + (as_utc(d.ends_at) - start) / 2 if d.ends_at else start
        local = middle.astimezone(zone(tz_name))
        out["month"] = f"{local.year:04d}-{local.month:02d}"
    if d.starts_at is not None:
        out["starts_at"] = as_utc(d.starts_at).isoformat()
    if d.ends_at is not None:
        out["ends_at"] = as_utc(d.ends_at).isoformat()
    return out


def period_input(d: BadgeDefinition, tz_name: str) -> dict[str, Any]:
    """``period_of`` as a definition is written (``PeriodIn``): a single month by its month
    alone (its bounds follow from it)."""
    out = period_of(d, tz_name)
    if "month" in out:
        out.pop("starts_at", None)
        out.pop("ends_at", None)
    return out


def rewards_of(d: BadgeDefinition) -> dict[str, Any]:
    return {
        "points": d.reward_points,
        "coupon_campaign_id": str(d.reward_coupon_campaign_id)
        if d.reward_coupon_campaign_id
        else None,
    }


def _apply_normalized(d: BadgeDefinition, n: Normalized) -> None:
    d.event_type = n.event_type
    d.measure = n.measure
    d.target = n.target
    d.field = n.field
    d.items_where = n.items_where
    d.conditions = n.conditions
    d.streak_unit = n.streak_unit
    d.period = n.period
    d.recurring = n.recurring
    d.starts_at = n.starts_at
    d.ends_at = n.ends_at
    d.reward_points = n.reward_points
    d.reward_coupon_campaign_id = n.reward_coupon_campaign_id


def invalidate(session: Session) -> None:
    session.info.pop("badge_specs", None)


def _same(d: BadgeDefinition, body: DefinitionIn, n: Normalized) -> bool:
    return (
        d.kind == body.kind
        and d.names == body.names.model_dump(exclude_none=True)
        and d.descriptions
        == (body.descriptions.model_dump(exclude_none=True) if body.descriptions else {})
        and d.image_url == body.image_url
        and d.status == body.status
        and d.event_type == n.event_type
        and d.measure == n.measure
        and d.target == n.target
        and d.field == n.field
        and d.items_where == n.items_where
        and d.conditions == n.conditions
        and d.streak_unit == n.streak_unit
        and d.period == n.period
        and d.recurring == n.recurring
        and _eq_time(d.starts_at, n.starts_at)
        and _eq_time(d.ends_at, n.ends_at)
        and d.reward_points == n.reward_points
        and d.reward_coupon_campaign_id == n.reward_coupon_campaign_id
    )


def _eq_time(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return as_utc(a) == as_utc(b)


def create_definition(
    session: Session, tenant: Tenant, program: Program, body: DefinitionIn
) -> tuple[BadgeDefinition, bool]:
    """Create a definition; the same code with the same body again returns it (created
    False), the same code with another body is ``409 badge_code_taken``."""
    found = session.execute(
        select(BadgeDefinition).where(
            BadgeDefinition.program_id == program.id, BadgeDefinition.code == body.code
        )
    ).scalar_one_or_none()
    n = normalize(session, tenant, body.criteria, body.period, body.rewards, current=found)
    if found is not None:
        if _same(found, body, n):
            return found, False
        raise BadgeCodeTaken(
            f"the code {body.code!r} is taken in this program; pick another or PATCH "
            f"/v1/badges/{found.id}",
            extra={"field": "code", "badge_id": str(found.id)},
        )
    now = utcnow()
    d = BadgeDefinition(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=program.id,
        code=body.code,
        kind=body.kind,
        status=body.status,
        names=body.names.model_dump(exclude_none=True),
        descriptions=body.descriptions.model_dump(exclude_none=True) if body.descriptions else {},
        image_url=body.image_url,
        created_at=now,
        updated_at=now,
        archived_at=now if body.status == "archived" else None,
    )
    _apply_normalized(d, n)
    session.add(d)
    session.flush()
    invalidate(session)
    return d, True


def get_definition(
    session: Session,
    tenant_id: uuid.UUID,
    ref: str | uuid.UUID,
    program_id: uuid.UUID | None = None,
) -> BadgeDefinition:
    """By id, or by code: in ``program_id`` when given (codes are unique per program), else
    in the tenant's default program first, then its others."""
    badge_id: uuid.UUID | None = None
    if isinstance(ref, uuid.UUID):
        badge_id = ref
    else:
        try:
            badge_id = uuid.UUID(ref)
        except ValueError:
            badge_id = None
    if badge_id is not None:
        d = session.get(BadgeDefinition, badge_id)
        if (
            d is not None
            and d.tenant_id == tenant_id
            and (program_id is None or d.program_id == program_id)
        ):
            return d
        raise BadgeNotFound(f"no badge or challenge {ref}")
    stmt = (
        select(BadgeDefinition)
        .join(Program, Program.id == BadgeDefinition.program_id)
        .where(BadgeDefinition.tenant_id == tenant_id, BadgeDefinition.code == ref)
        .order_by(Program.is_default.desc(), BadgeDefinition.id)
    )
    if program_id is not None:
        stmt = stmt.where(BadgeDefinition.program_id == program_id)
    found = session.execute(stmt.limit(1)).scalar_one_or_none()
    if found is None:
        raise BadgeNotFound(f"no badge or challenge with code {ref!r}")
    return found


def list_definitions(
    session: Session,
    program_id: uuid.UUID,
    *,
    status: str | None = "active",
    kind: str | None = None,
) -> list[BadgeDefinition]:
    stmt = select(BadgeDefinition).where(BadgeDefinition.program_id == program_id)
    if status is not None:
        stmt = stmt.where(BadgeDefinition.status == status)
    if kind is not None:
        stmt = stmt.where(BadgeDefinition.kind == kind)
    return list(session.execute(stmt.order_by(BadgeDefinition.code)).scalars())


def _has_progress(session: Session, definition_id: uuid.UUID) -> bool:
    d = session.get(BadgeDefinition, definition_id)
    return d is not None and bool(progress(session, d.program_id, definition_id=d.id, limit=1))


def update_definition(
    session: Session, tenant: Tenant, d: BadgeDefinition, patch: DefinitionPatch
) -> BadgeDefinition:
    sent = patch.model_fields_set
    if "criteria" in sent or "period" in sent:
        criteria = patch.criteria or CriteriaIn.model_validate(criteria_of(d))
        period = patch.period or PeriodIn.model_validate(period_input(d, tenant.timezone))
        rewards = patch.rewards or RewardsIn.model_validate(rewards_of(d))
        n = normalize(session, tenant, criteria, period, rewards, current=d)
        changed = (
            n.event_type,
            n.measure,
            n.target,
            n.field,
            n.items_where,
            n.conditions,
            n.streak_unit,
            n.period,
            n.recurring,
        ) != (
            d.event_type,
            d.measure,
            d.target,
            d.field,
            d.items_where,
            d.conditions,
            d.streak_unit,
            d.period,
            d.recurring,
        ) or not (_eq_time(n.starts_at, d.starts_at) and _eq_time(n.ends_at, d.ends_at))
        if changed and _has_progress(session, d.id):
            raise BadgeHasProgress(
                "members already have progress on this definition: its criteria and period "
                "cannot change; archive it and create a new one",
                extra={"field": "criteria" if "criteria" in sent else "period"},
            )
        _apply_normalized(d, n)
    elif "rewards" in sent and patch.rewards is not None:
        n = normalize(
            session,
            tenant,
            CriteriaIn.model_validate(criteria_of(d)),
            PeriodIn.model_validate(period_input(d, tenant.timezone)),
            patch.rewards,
            current=d,
        )
        d.reward_points = n.reward_points
        d.reward_coupon_campaign_id = n.reward_coupon_campaign_id
    if "names" in sent:
        if patch.names is None:
            raise _bad("names", "a definition needs a name")
        d.names = patch.names.model_dump(exclude_none=True)
    if "descriptions" in sent:
        d.descriptions = (
            patch.descriptions.model_dump(exclude_none=True) if patch.descriptions else {}
        )
    if "image_url" in sent:
        d.image_url = patch.image_url
    if "status" in sent and patch.status is not None and patch.status != d.status:
        d.status = patch.status
        d.archived_at = utcnow() if patch.status == "archived" else None
    d.updated_at = utcnow()
    session.flush()
    invalidate(session)
    return d


def archive_definition(session: Session, d: BadgeDefinition) -> BadgeDefinition:
    """No event counts toward it any more; what members earned stays. Idempotent."""
    if d.status != "archived":
        d.status = "archived"
        d.archived_at = d.updated_at = utcnow()
        session.flush()
        invalidate(session)
    return d


# --------------------------------------------------------------------------- specs


Match = Callable[[dict[str, Any]], bool]


def matcher(node: dict[str, Any], *, line: bool = False) -> Match:
    """A validated condition tree as a yes/no function of the context: the rules'
    ``compile_condition`` with the same comparisons (``_compare``), without the reasons a
    failing rule explains itself with (a definition only needs to know whether it counts).

    With ``line``, the function takes one item line instead of the context: the ``where``
    of an items condition or of a definition's ``items_where``, asked of ``{"item": line}``
    by the rules, asked of the line itself here (no dict built per line)."""
    if "all" in node:
        children = [matcher(child, line=line) for child in node["all"]]
        return lambda ctx: all(child(ctx) for child in children)
    if "any" in node:
        options = [matcher(child, line=line) for child in node["any"]]
        return lambda ctx: any(option(ctx) for option in options)
    if "not" in node:
        inner = matcher(node["not"], line=line)
        return lambda ctx: not inner(ctx)
    if "items" in node:
        if line:  # a line has no lines of its own: the condition meets an empty basket
            empty = matcher(node)({})
            return lambda _line: empty
        spec = node["items"]
        where = matcher(spec["where"], line=True) if "where" in spec else None
        need_q = _number(spec.get("min_quantity")) if "min_quantity" in spec else None
        need_a = _number(spec.get("min_amount")) if "min_amount" in spec else None
        if need_q is None and need_a is None:
            if where is None:
                return lambda ctx: bool(ctx.get("items"))
            return lambda ctx: any(where(item) for item in ctx.get("items") or ())

        def items(ctx: dict[str, Any]) -> bool:
            lines = ctx.get("items") or []
            matching = [item for item in lines if where is None or where(item)]
            qty = sum((_number(item.get("quantity")) or Decimal(0)) for item in matching)
            amount = sum((_number(item.get("amount")) or Decimal(0)) for item in matching)
            return (need_q is None or qty >= need_q) and (need_a is None or amount >= need_a)

        return items
    name, op = node["field"], node["op"]
    find = _finder(_parts(name), line)
    if op == "exists":
        want = node.get("value", True)
        return lambda ctx: (find(ctx) is not None) == want
    expected = node.get("value")
    kind = field_type(name, item=name.startswith("item.")) or ANY
    test = _tester(kind, op, expected)
    if op in ("ne", "not_in", "not_contains"):  # true of a field that is not there

        def negative(ctx: dict[str, Any]) -> bool:
            actual = find(ctx)
            return actual is None or test(actual)

        return negative

    def compare(ctx: dict[str, Any]) -> bool:
        actual = find(ctx)
        return actual is not None and test(actual)

    return compare


def _finder(parts: tuple[str, ...], line: bool) -> Callable[[Any], Any]:
    """The value at a dotted path (None: not there, or null, which conditions treat alike).
    On a line, ``item.x`` is the line's ``x``; any other path is not there."""
    if line:
        if not parts or parts[0] != "item":
            return lambda _line: None
        parts = parts[1:]
    if len(parts) == 1:
        (only,) = parts
        return lambda cur: cur.get(only) if isinstance(cur, dict) else None
    if len(parts) == 2:
        first, second = parts

        def two(cur: Any) -> Any:
            if isinstance(cur, dict):
                cur = cur.get(first)
                if isinstance(cur, dict):
                    return cur.get(second)
            return None

        return two

    def walk(cur: Any) -> Any:
        for part in parts:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(part)
        return cur

    return walk


_TEXT_KINDS = frozenset((STRING, DATE, TIME))


def _tester(kind: str, op: str, expected: Any) -> Callable[[Any], bool]:
    """``_compare(kind, op, actual, expected)`` as a function of ``actual`` (present, not
    null), the common cases decided once: text against text, numbers against a number."""
    compare_to = _ORDER_OPS.get(op)
    text = isinstance(expected, str)
    if kind in _TEXT_KINDS and compare_to is not None and text:
        if op == "ne":
            return lambda actual: not isinstance(actual, str) or actual != expected
        return lambda actual: isinstance(actual, str) and compare_to(actual, expected)
    if (
        kind in _TEXT_KINDS
        and op in ("in", "not_in")
        and isinstance(expected, list)
        and all(isinstance(option, str) for option in expected)
    ):
        options = frozenset(expected)
        if op == "in":
            return lambda actual: isinstance(actual, str) and actual in options
        return lambda actual: not (isinstance(actual, str) and actual in options)
    if kind == NUMBER and compare_to is not None and not isinstance(expected, bool):
        bound = _number(expected)
        if bound is None:  # never comparable: only ``ne`` holds
            result = op == "ne"
            return lambda _actual: result
        if op == "ne":

            def differs(actual: Any) -> bool:
                number = _number(actual)
                return number is None or number != bound

            return differs

        def ordered(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and compare_to(number, bound)

        return ordered
    return lambda actual: _compare(kind, op, actual, expected)


@dataclass(frozen=True)
class Spec:
    """An active definition ready to count events."""

    id: uuid.UUID
    code: str
    kind: str
    event_type: str
    measure: str
    target: Decimal
    field: str | None
    check: Match | None
    items_check: Match | None
    items_key: str  # the same items_where in two definitions picks the lines once per event
    id_text: str
    target_text: str
    key: int  # the id as an int: progress rows are keyed by ints while counting
    streak_unit: str | None
    recurring: bool
    starts_at: datetime | None
    ends_at: datetime | None
    reward_points: int
    coupon_campaign_id: uuid.UUID | None
    # What one event adds (None: nothing): ``_contribution`` compiled for this definition.
    contribute: Callable[[dict[str, Any], datetime], Any] = dataclasses.field(
        default=lambda _ctx, _at: None, compare=False, repr=False
    )
    # Adds a contribution to a tally's entry (``_apply``, its branches decided for this
    # definition).
    step: Callable[[list[Any], Any, str], str | None] = dataclasses.field(
        default=lambda _entry, _c, _at: None, compare=False, repr=False
    )


def _spec(d: BadgeDefinition) -> Spec:
    spec = _bare_spec(d)
    object.__setattr__(spec, "contribute", _contributor(spec))
    object.__setattr__(spec, "step", _stepper(spec))
    return spec


def _bare_spec(d: BadgeDefinition) -> Spec:
    return Spec(
        id=d.id,
        code=d.code,
        kind=d.kind,
        event_type=d.event_type,
        measure=d.measure,
        target=Decimal(d.target),
        field=d.field,
        check=matcher(d.conditions) if d.conditions else None,
        items_check=matcher(d.items_where, line=True) if d.items_where else None,
        items_key=json.dumps(d.items_where, sort_keys=True) if d.items_where else "",
        id_text=str(d.id),
        key=d.id.int,
        target_text=_number_text(Decimal(d.target)),
        streak_unit=d.streak_unit,
        recurring=d.recurring,
        starts_at=as_utc(d.starts_at) if d.starts_at else None,
        ends_at=as_utc(d.ends_at) if d.ends_at else None,
        reward_points=d.reward_points,
        coupon_campaign_id=d.reward_coupon_campaign_id,
    )


# Built once, bound per call: every event asks for its program's active definitions.
_ACTIVE_DEFINITIONS = select(BadgeDefinition).where(
    BadgeDefinition.program_id == bindparam("program_id", type_=Uuid()),
    BadgeDefinition.status == "active",
)


def specs_by_type(session: Session, program_id: uuid.UUID) -> dict[str, list[Spec]]:
    """The program's active definitions by event type (cached for the session)."""
    cache: dict[uuid.UUID, dict[str, list[Spec]]] = session.info.setdefault("badge_specs", {})
    found = cache.get(program_id)
    if found is None:
        found = defaultdict(list)
        rows = session.execute(_ACTIVE_DEFINITIONS, {"program_id": program_id}).scalars()
        for d in rows:
            found[d.event_type].append(_spec(d))
        found = dict(found)
        cache[program_id] = found
    return found


# --------------------------------------------------------------------------- arithmetic


def period_key(spec: Spec, local: datetime) -> str:
    return f"{local.year:04d}-{local.month:02d}" if spec.recurring else ALL_TIME


def bucket(unit: str, local: datetime) -> int:
    """The local day, week (Monday to Sunday) or month an instant falls in, as a number."""
    day = local.date()
    if unit == "day":
        return day.toordinal()
    if unit == "week":
        return (day.toordinal() - 1) // 7  # day 1 (1 January of year 1) was a Monday
    return day.year * 12 + day.month - 1


def longest_run(buckets: list[int]) -> int:
    best = run = 0
    prev: int | None = None
    for b in buckets:
        run = run + 1 if prev is not None and b == prev + 1 else 1
        best = max(best, run)
        prev = b
    return best


def _lines(spec: Spec, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = ctx.get("items") or []
    if spec.items_check is None:
        return lines
    picked: dict[str, list[dict[str, Any]]] = ctx.setdefault("_badge_lines", {})
    found = picked.get(spec.items_key)
    if found is None:
        check = spec.items_check
        found = picked[spec.items_key] = [line for line in lines if check(line)]
    return found


def _event_value(spec: Spec, ctx: dict[str, Any]) -> Any:
    name = spec.field or ""
    if name.startswith(ATTRIBUTE_PREFIX):
        attrs = ctx["event"].get("attributes") or {}
        return attrs.get(name[len(ATTRIBUTE_PREFIX) :])
    return ctx["event"].get(name.split(".", 1)[1])


def _contribution(spec: Spec, ctx: dict[str, Any], at: datetime) -> Any:
    """What one event adds to a definition (None: nothing). The reference arithmetic;
    events are counted with ``spec.contribute``, the same compiled once per definition."""
    if spec.starts_at is not None and at < spec.starts_at:
        return None
    if spec.ends_at is not None and at >= spec.ends_at:
        return None
    if spec.check is not None and not spec.check(ctx):
        return None
    measure = spec.measure
    if measure in ("count", "first"):
        return Decimal(1)
    if measure == "sum":
        name = spec.field or ""
        if name == "items.amount" or name == "items.quantity":
            key = name.split(".", 1)[1]
            total = sum(
                (_number(line.get(key)) or Decimal(0) for line in _lines(spec, ctx)), Decimal(0)
            )
        else:
            total = _number(_event_value(spec, ctx)) or Decimal(0)
        return total if total > 0 else None
    if measure == "distinct":
        name = spec.field or ""
        if name.startswith("item."):
            key = name.split(".", 1)[1]
            raw = [line.get(key) for line in _lines(spec, ctx)]
        else:
            raw = [_event_value(spec, ctx)]
        values = sorted({str(v).strip()[:200] for v in raw if v is not None and str(v).strip()})
        return values or None
    assert spec.streak_unit is not None
    return bucket(spec.streak_unit, ctx["_local"])


_ONE = Decimal(1)
_ZERO = Decimal(0)


def _contributor(spec: Spec) -> Callable[[dict[str, Any], datetime], Any]:
    """``_contribution`` for one definition, its branches decided once: called for every
    definition on every event, it is most of the counting."""
    measure = spec.measure
    name = spec.field or ""
    value: Callable[[dict[str, Any]], Any]
    if measure in ("count", "first"):

        def value(_ctx: dict[str, Any]) -> Any:
            return _ONE

    elif measure == "sum" and name in ("items.amount", "items.quantity"):
        line_key = name.split(".", 1)[1]

        def value(ctx: dict[str, Any]) -> Any:
            total = sum((_number(line.get(line_key)) or _ZERO for line in _lines(spec, ctx)), _ZERO)
            return total if total > 0 else None

    elif measure == "sum":

        def value(ctx: dict[str, Any]) -> Any:
            total = _number(_event_value(spec, ctx)) or _ZERO
            return total if total > 0 else None

    elif measure == "distinct" and name.startswith("item."):
        line_key = name.split(".", 1)[1]

        def value(ctx: dict[str, Any]) -> Any:
            raw = [line.get(line_key) for line in _lines(spec, ctx)]
            values = sorted({str(v).strip()[:200] for v in raw if v is not None and str(v).strip()})
            return values or None

    elif measure == "distinct":

        def value(ctx: dict[str, Any]) -> Any:
            v = _event_value(spec, ctx)
            text = str(v).strip()[:200] if v is not None else ""
            return [text] if text else None

    else:
        unit = spec.streak_unit
        assert unit is not None

        def value(ctx: dict[str, Any]) -> Any:
            return bucket(unit, ctx["_local"])

    starts, ends, check = spec.starts_at, spec.ends_at, spec.check
    if starts is None and ends is None and check is None:
        return lambda ctx, _at: value(ctx)

    def contribute(ctx: dict[str, Any], at: datetime) -> Any:
        if starts is not None and at < starts:
            return None
        if ends is not None and at >= ends:
            return None
        if check is not None and not check(ctx):
            return None
        return value(ctx)

    return contribute


@dataclass(slots=True)
class Row:
    """A progress row as read (or about to be created), changed in memory."""

    id: uuid.UUID | None  # the completion row's, once written
    program_id: uuid.UUID
    definition_id: uuid.UUID
    member_id: uuid.UUID
    period_key: str
    value: Decimal = Decimal(0)
    state: dict[str, Any] | str = field(default_factory=dict)  # text: as read, not decoded
    events: int = 0
    last_event_at: datetime | None = None
    completed_at: datetime | None = None
    dirty: bool = False


def shown(spec_measure: str, value: Decimal, target: Decimal) -> int:
    """The progress a member sees: the count, or a sum's whole percent."""
    if spec_measure == "sum":
        return int(min(Decimal(100), value * 100 / target))
    return int(min(value, target))


def _state(row: Row) -> dict[str, Any]:
    """The row's state, decoded the first time an event needs it."""
    state = row.state = _decoded(row.state)
    return state


def _apply(spec: Spec, row: Row, contribution: Any, at: datetime) -> str | None:
    """Add one event's contribution; ``progressed``, ``completed`` or None (no change)."""
    if row.completed_at is not None:
        return None
    before = row.value
    measure = spec.measure
    if measure in ("count", "first", "sum"):
        row.value = before + contribution
    elif measure == "distinct":
        seen: list[str] = _state(row).get("values", [])
        fresh = [v for v in contribution if v not in seen]
        if fresh:
            seen = [*seen, *fresh][: max(len(seen), int(spec.target))]
            if len(seen) != len(_state(row).get("values", ())):
                row.state = {"values": seen}
                row.value = Decimal(len(seen))
    else:
        buckets: list[int] = _state(row).get("buckets", [])
        if contribution not in buckets:
            merged = sorted([*buckets, contribution])
            oldest = merged[-1] - STREAK_MEMORY * int(spec.target)
            kept = [b for b in merged if b >= oldest]
            if kept != buckets:
                row.state = {"buckets": kept}
                row.value = max(before, Decimal(min(longest_run(kept), int(spec.target))))
    row.events += 1
    last = row.last_event_at
    if last is None or at > last:
        row.last_event_at = at
    row.dirty = True
    value = row.value
    target = spec.target
    if value >= target:
        row.completed_at = at
        return "completed"
    if value == before:
        return None
    # Below the target a count, distinct or streak shows its (whole) value: any change shows.
    if measure != "sum" or shown(measure, value, target) != shown(measure, before, target):
        return "progressed"
    return None


_PROGRESSED = "progressed"
_COMPLETED = "completed"


def _whole(text: str) -> int:
    """A stored count as an int ("7"; "7.0" from an older writer too)."""
    try:
        return int(text)
    except ValueError:
        return int(Decimal(text))


def _decoded(state: Any) -> dict[str, Any]:
    if not state:
        return {}
    if isinstance(state, str):
        return cast(dict[str, Any], json.loads(state))
    return cast(dict[str, Any], state)


# A tally's entry, as stored and as counted: [value (text), events, last event (UTC ISO
# text), completed at (UTC ISO text or null), state (distinct values or streak buckets)].
Entry = list[Any]


def _stepper(spec: Spec) -> Callable[[Entry, Any, str], str | None]:
    """``_apply`` for one definition, on a tally's entry in place (no ``Row`` per entry):
    ``progressed``, ``completed`` or None. Instants are UTC ISO texts, which order as the
    instants do (one format throughout: ``datetime.isoformat`` of a UTC instant). A
    completed entry keeps no state (its completion row does)."""
    measure, target = spec.measure, spec.target
    if measure in ("count", "first"):

        def count(entry: Entry, _contribution: Any, at: str) -> str | None:
            if entry[3] is not None:
                return None
            value = _whole(entry[0]) + 1
            entry[0] = str(value)
            entry[1] += 1
            last = entry[2]
            if last is None or at > last:
                entry[2] = at
            if value >= target:
                entry[3] = at
                return _COMPLETED
            return _PROGRESSED

        return count
    if measure == "sum":
        hundred = Decimal(100)

        def add(entry: Entry, contribution: Any, at: str) -> str | None:
            if entry[3] is not None:
                return None
            before = Decimal(entry[0])
            value = before + contribution
            entry[0] = str(value)
            entry[1] += 1
            last = entry[2]
            if last is None or at > last:
                entry[2] = at
            if value >= target:
                entry[3] = at
                return _COMPLETED
            if value == before:
                return None
            # ``shown``: a sum shows its whole percent
            if int(min(hundred, value * 100 / target)) != int(min(hundred, before * 100 / target)):
                return _PROGRESSED
            return None

        return add
    whole = int(target)

    def _counted(entry: Entry, before: int, value: int, at: str) -> str | None:
        # the end of ``_apply`` for a distinct or streak measure (no sum: any change shows)
        entry[1] += 1
        last = entry[2]
        if last is None or at > last:
            entry[2] = at
        if value >= target:
            entry[3] = at
            return _COMPLETED
        return None if value == before else _PROGRESSED

    if measure == "distinct":

        def distinct(entry: Entry, contribution: Any, at: str) -> str | None:
            if entry[3] is not None:
                return None
            before = value = _whole(entry[0])
            seen: list[str] = _decoded(entry[4]).get("values", [])
            fresh = [v for v in contribution if v not in seen]
            if fresh:
                merged = [*seen, *fresh][: max(len(seen), whole)]
                if len(merged) != len(seen):
                    entry[4] = {"values": merged}
                    value = len(merged)
                    entry[0] = str(value)
            return _counted(entry, before, value, at)

        return distinct

    def streak(entry: Entry, contribution: Any, at: str) -> str | None:
        if entry[3] is not None:
            return None
        before = value = _whole(entry[0])
        buckets: list[int] = _decoded(entry[4]).get("buckets", [])
        if contribution not in buckets:
            merged = sorted([*buckets, contribution])
            oldest = merged[-1] - STREAK_MEMORY * whole
            kept = [b for b in merged if b >= oldest]
            if kept != buckets:
                entry[4] = {"buckets": kept}
                value = max(before, min(longest_run(kept), whole))
                entry[0] = str(value)
        return _counted(entry, before, value, at)

    return streak


# --------------------------------------------------------------------------- reading and writing rows


@dataclass(slots=True)
class Tally:
    """A member's tally of one period as read (``id`` None: not written yet): its entries
    by definition id, changed in place by ``_Tally.write``."""

    id: Any  # as the driver gave it (hex text on SQLite), written back as is
    member_id: uuid.UUID
    period_key: str
    entries: dict[str, list[Any]]
    dirty: bool = False


def _read_tallies(
    session: Session,
    program_id: uuid.UUID,
    member_ids: Iterable[uuid.UUID],
    periods: Iterable[str],
) -> dict[tuple[int, str], Tally]:
    """The members' tallies of the periods, by (member id as an int, period); locked on
    PostgreSQL, in id order (the event paths write them back). The entries are decoded, but
    no entry becomes a ``Row`` until an event counts toward its definition."""
    out: dict[tuple[int, str], Tally] = {}
    members = list(dict.fromkeys(member_ids))
    keys = sorted(set(periods))
    if not members or not keys:
        return out
    pg = session.get_bind().dialect.name == "postgresql"
    c = _tallies.c
    # Member ids come back as the driver gives them (a hex string on SQLite, a UUID on
    # PostgreSQL) and are mapped to the UUIDs asked for: no conversion per row.
    ids: dict[Any, uuid.UUID] = {}
    for known in members:
        ids[known] = ids[known.hex] = known
    cols: list[Any] = [
        c.id if pg else type_coerce(c.id, String),
        type_coerce(c.member_id, String),
        c.period_key,
        _text(c.entries, pg),
    ]
    loads = orjson.loads
    for i in range(0, len(members), 500):
        stmt = select(*cols).where(
            c.member_id.in_(members[i : i + 500]),
            c.period_key.in_(keys),
            c.program_id == program_id,
        )
        if pg:
            stmt = stmt.order_by(c.id).with_for_update()
        for row_id, raw_member, period, text in session.execute(stmt).all():
            member_id = ids[raw_member]
            out[(member_id.int, period)] = Tally(row_id, member_id, period, loads(text))
    return out


@dataclass
class Completion:
    spec: Spec
    row: Row
    tenant_id: uuid.UUID
    transfer_id: uuid.UUID | None = None  # points already written by the batch path's plan
    granted_at: datetime | None = None  # when the reward is given, if not at completion


@dataclass
class PlannedReward:
    """A completion's reward points as the batch path writes them itself: the very transfer
    ``ledger.earn`` would write (same key, hash, source, details, dates)."""

    completion: Completion
    points: int
    key: str
    request_hash: str
    source_id: str
    details: dict[str, Any]
    at: datetime

    def planned(self, transfer_id: uuid.UUID) -> None:
        self.completion.transfer_id = transfer_id


def _reward_terms(c: Completion) -> PlannedReward:
    spec, row = c.spec, c.row
    return PlannedReward(
        completion=c,
        points=spec.reward_points,
        key=reward_key(spec.id, row.member_id, row.period_key),
        request_hash=ledger.request_hash({"badge": str(spec.id), "points": spec.reward_points}),
        source_id=f"{spec.code}:{row.period_key}",
        details={"badge_id": str(spec.id), "code": spec.code, "period": row.period_key},
        at=c.granted_at or row.completed_at or utcnow(),
    )


@dataclass
class _Tally:
    """Tallies, messages and completions of one event or one run.

    ``tallies`` are the members' stored tallies read for the run (a tally not stored yet is
    created on first count); events change their entries in place. Messages are kept as
    (topic, spec, member, period, value, completed_at, event_id) until ``write``; a
    challenge's ``challenge.progressed`` is replaced by any later message of the same member,
    definition and period in the same run, so a run sends at most one per entry (with the
    latest progress), and none once the run completed the challenge."""

    tenant: Tenant
    program: Program
    tallies: dict[tuple[int, str], Tally] = field(default_factory=dict)
    outbox: dict[Any, tuple[str, Spec, uuid.UUID, str, str, str | None, uuid.UUID]] = field(
        default_factory=dict
    )
    completions: list[Completion] = field(default_factory=list)
    earned: dict[uuid.UUID, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Rewards given at this instant instead of at completion (``replay``).
    grant_at: datetime | None = None
    program_id: uuid.UUID = field(init=False)
    tenant_id: uuid.UUID = field(init=False)
    # The members and periods whose tallies ``read`` read (absent ones have no tally yet).
    read_members: set[int] = field(default_factory=set)
    read_periods: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.program_id = self.program.id
        self.tenant_id = self.tenant.id

    def read(self, session: Session, member_ids: Iterable[uuid.UUID], periods: set[str]) -> None:
        """Read the members' tallies of the periods (before counting their events)."""
        members = list(member_ids)
        self.tallies.update(_read_tallies(session, self.program_id, members, periods))
        self.read_members.update(m.int for m in members)
        self.read_periods.update(periods)

    def _tally(self, member_id: uuid.UUID, period: str) -> Tally:
        """The member's tally of the period, as read or new. One not read (``replay``
        counts without reading) is marked: ``write`` folds it into the stored one."""
        key = (member_id.int, period)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = Tally(None, member_id, period, {})
            if key[0] not in self.read_members or period not in self.read_periods:
                tally.id = _UNREAD
        return tally

    def count(
        self,
        specs: list[Spec],
        member_id: uuid.UUID,
        ctx: dict[str, Any],
        at: datetime,
        event_id: uuid.UUID,
    ) -> None:
        local = ctx["_local"]
        month = f"{local.year:04d}-{local.month:02d}"
        outbox = self.outbox
        member_key = member_id.int  # ints as keys: a UUID hashes in Python, an int in C
        monthly: Tally | None = None
        lasting: Tally | None = None
        at_text = ""  # ``at`` as entries store instants, once an event counts
        for spec in specs:
            if spec.recurring:
                tally = monthly
                if tally is None:
                    tally = monthly = self._tally(member_id, month)
            else:
                tally = lasting
                if tally is None:
                    tally = lasting = self._tally(member_id, ALL_TIME)
            entries = tally.entries
            entry = entries.get(spec.id_text)
            if entry is not None and entry[3] is not None:
                continue  # complete in this period: nothing counts any more
            contribution = spec.contribute(ctx, at)
            if contribution is None:
                continue
            if not at_text:
                at_text = at.isoformat()
            if entry is None:
                entry = entries[spec.id_text] = ["0", 0, None, None, None]
            change = spec.step(entry, contribution, at_text)
            tally.dirty = True
            if change is None:
                continue
            period = tally.period_key
            key = (member_key, spec.key, period)
            if change == _COMPLETED:
                topic = "badge.earned" if spec.kind == "badge" else "challenge.completed"
                self.completions.append(
                    Completion(
                        spec, self._completed(spec, member_id, period, entry, at), self.tenant_id
                    )
                )
                entry[4] = None  # the completion row keeps the state
                self.earned[member_id].add(spec.code)
            elif spec.kind == "challenge":
                topic = "challenge.progressed"
            else:
                continue
            message = (topic, spec, member_id, period, entry[0], entry[3], event_id)
            if topic == "challenge.progressed" or key in outbox:
                # the latest progress of this entry replaces an earlier progress message
                outbox.pop(key, None)
                outbox[key] = message
            else:
                outbox[(key, len(outbox))] = message

    def _completed(
        self, spec: Spec, member_id: uuid.UUID, period: str, entry: Entry, at: datetime
    ) -> Row:
        """The completion row of an entry an event just completed."""
        last = entry[2]
        return Row(
            None,
            self.program_id,
            spec.id,
            member_id,
            period,
            Decimal(entry[0]),
            _decoded(entry[4]),
            entry[1],
            at if last == entry[3] else datetime.fromisoformat(last),
            at,
            dirty=True,
        )

    def write(self, session: Session) -> None:
        self._write_tallies(session)
        if self.outbox:
            now = utcnow()
            program_id = str(self.program.id)
            texts: dict[Any, str] = {}
            topics: list[str] = []
            payloads: list[Any] = []
            for topic, spec, member_id, period, value, done, event_id in self.outbox.values():
                member = texts.get(member_id)
                if member is None:
                    member = texts[member_id] = str(member_id)
                event = texts.get(event_id)
                if event is None:
                    event = texts[event_id] = str(event_id)
                head = texts.get(spec.id)
                if head is None:
                    head = texts[spec.id] = _message_head(spec, program_id)
                topics.append(topic)
                payloads.append(_message_text(head, spec, period, value, done, member, event))
            n = len(topics)
            bulk.executemany(
                session,
                _INSERT_OUTBOX,
                {
                    "id": [new_id() for _ in range(n)],
                    "tenant_id": [self.tenant_id] * n,
                    "topic": topics,
                    "payload": payloads,
                    "created_at": [now] * n,
                },
            )
            self.outbox = {}
        reward_ids: list[Any] = []
        rewards: list[dict[str, Any]] = []
        for c in self.completions:
            if self.grant_at is not None:
                c.granted_at = self.grant_at
            reward = _reward(session, self.tenant, self.program, c)
            if reward is not None:
                reward_ids.append(c.row.id)
                rewards.append(reward)
        if session.get_bind().dialect.name == "postgresql" and rewards:
            _set_json_pg(
                session,
                "badge_progress",
                "reward",
                [(i, json.dumps(r)) for i, r in zip(reward_ids, rewards, strict=True)],
            )
        elif rewards:
            bulk.executemany(session, _SET_REWARD, {"row_id": reward_ids, "reward": rewards})
        self.completions = []

    def _write_tallies(self, session: Session) -> None:
        """The changed tallies (one row written per member and period), and a
        ``BadgeProgress`` row for each entry completed since they were read."""
        tallies = self.tallies
        unread = [t for t in tallies.values() if t.id is _UNREAD and t.dirty]
        if unread:  # counted without reading (``replay``): other entries may be stored
            found = _read_tallies(
                session,
                self.program_id,
                [t.member_id for t in unread],
                {t.period_key for t in unread},
            )
            for t in unread:
                stored = found.get((t.member_id.int, t.period_key))
                t.id = None
                if stored is not None:
                    t.id = stored.id
                    t.entries = {**stored.entries, **t.entries}
        now = utcnow()
        fresh = [t for t in tallies.values() if t.dirty and t.id is None]
        changed = [t for t in tallies.values() if t.dirty and t.id is not None]
        if fresh:
            for t in fresh:
                t.id = new_id()
            n = len(fresh)
            bulk.executemany(
                session,
                _INSERT_TALLY,
                {
                    "id": [t.id for t in fresh],
                    "program_id": [self.program_id] * n,
                    "member_id": [t.member_id for t in fresh],
                    "period_key": [t.period_key for t in fresh],
                    "entries": [_entries_text(t.entries) for t in fresh],
                    "updated_at": [now] * n,
                },
            )
        if changed and session.get_bind().dialect.name == "postgresql":
            _set_json_pg(
                session,
                "badge_tallies",
                "entries",
                [(t.id, _entries_text(t.entries).text) for t in changed],
                updated_at=now,
            )
        elif changed:
            bulk.executemany(
                session,
                _UPDATE_TALLY,
                {
                    "row_id": [t.id for t in changed],
                    "entries": [_entries_text(t.entries) for t in changed],
                    "updated_at": [now] * len(changed),
                },
            )
        for t in fresh:
            t.dirty = False
        for t in changed:
            t.dirty = False
        done_rows = [c.row for c in self.completions if c.row.dirty]
        if done_rows:
            for r in done_rows:
                r.id = new_id()
                r.dirty = False
            bulk.executemany(
                session,
                _INSERT_PROGRESS,
                {
                    "id": [r.id for r in done_rows],
                    "program_id": [r.program_id for r in done_rows],
                    "definition_id": [r.definition_id for r in done_rows],
                    "member_id": [r.member_id for r in done_rows],
                    "period_key": [r.period_key for r in done_rows],
                    "value": [r.value for r in done_rows],
                    "state": [r.state for r in done_rows],
                    "events": [r.events for r in done_rows],
                    "last_event_at": [r.last_event_at for r in done_rows],
                    "completed_at": [r.completed_at for r in done_rows],
                    "reward": [None] * len(done_rows),
                },
            )


_UNREAD = object()  # the id of a tally counted before it was read


def _entries_text(entries: dict[str, list[Any]]) -> bulk.JsonText:
    """A tally's entries as the JSON column stores them (orjson, like the engine's
    serializer: entries hold only text, integers, lists of text or integers and nulls)."""
    return bulk.JsonText(orjson.dumps(entries).decode())


def _set_json_pg(
    session: Session,
    table: str,
    column: str,
    values: list[tuple[Any, str]],
    *,
    updated_at: datetime | None = None,
) -> None:
    """One ``UPDATE <table> SET <column> = ...`` of many rows on PostgreSQL: the (id, JSON
    text) pairs go as one JSON object keyed by id, taken apart by ``jsonb_each`` on the
    server. (An array parameter of JSON texts would cost the client a regular-expression
    escape of every quote in every document.)"""
    doc = "{" + ",".join(f'"{row_id}":{text}' for row_id, text in values) + "}"
    stamp = ", updated_at = %(at)s" if updated_at is not None else ""
    session.connection().exec_driver_sql(
        f"UPDATE {table} AS p SET {column} = v.value{stamp} "
        "FROM jsonb_each(%(doc)s::jsonb) AS v(key, value) WHERE p.id = v.key::uuid",
        {"doc": doc, "at": updated_at},
    )


def _message_head(spec: Spec, program_id: str) -> str:
    """``_message``'s keys up to the period as JSON text, for ``_message_text``."""
    text = json.dumps({"program_id": program_id, "badge_id": spec.id_text, "code": spec.code})
    return text[1:-1] + ", " + json.dumps({"kind": spec.kind})[1:-1]


def _message_text(
    head: str,
    spec: Spec,
    period: str,
    value: str,
    completed_at: str | None,
    member: str,
    event: str,
) -> bulk.JsonText:
    """``json.dumps(_message(...))`` without encoding a dict per message (ids, period keys,
    numbers and instants need no escaping; the definition's part is encoded once). ``value``
    and ``completed_at`` are as a tally's entry stores them."""
    done = f'"{completed_at}"' if completed_at else "null"
    shown_value = value if value.isdigit() else _number_text(Decimal(value))
    return bulk.JsonText(
        f'{{"member_id": "{member}", {head}, "period": "{period}", '
        f'"value": "{shown_value}", "target": "{spec.target_text}", "completed_at": {done}, '
        f'"event_id": "{event}"}}'
    )


def _message(
    spec: Spec,
    member_id: uuid.UUID,
    period: str,
    program_id: str,
    value: Decimal,
    completed_at: datetime | None,
    event_id: uuid.UUID,
) -> dict[str, Any]:
    """A badge message's payload: the reference ``_message_text`` is held to."""
    return {
        "member_id": str(member_id),
        "program_id": program_id,
        "badge_id": spec.id_text,
        "code": spec.code,
        "kind": spec.kind,
        "period": period,
        "value": _number_text(value),
        "target": spec.target_text,
        "completed_at": as_utc(completed_at).isoformat() if completed_at else None,
        "event_id": str(event_id),
    }


def reward_key(definition_id: uuid.UUID, member_id: uuid.UUID, period: str) -> str:
    return f"badge:{definition_id}:{member_id}:{period}"


def _reward(
    session: Session, tenant: Tenant, program: Program, c: Completion
) -> dict[str, Any] | None:
    """Points and a coupon for a completion, once per (definition, member, period): the
    ledger's idempotency key and the coupon's source make a second call a no-op. A coupon
    the campaign can no longer issue (ended, archived, out of codes) is recorded on the
    progress row instead of failing the event."""
    spec, row = c.spec, c.row
    if not spec.reward_points and spec.coupon_campaign_id is None:
        return None
    terms = _reward_terms(c)
    key, at = terms.key, terms.at
    reward: dict[str, Any] = {}
    if spec.reward_points and c.transfer_id is not None:
        reward["points"] = spec.reward_points
        reward["transfer_id"] = str(c.transfer_id)
    elif spec.reward_points:
        ctx = ledger.Context(
            program_id=program.id,
            idempotency_key=key,
            request_hash=terms.request_hash,
            source_type="badge",
            source_id=terms.source_id,
            actor="badges",
            program_revision=program.revision,
            effective_at=at,
            details=terms.details,
        )
        res = ledger.earn(
            session,
            ctx,
            member_id=row.member_id,
            amount=spec.reward_points,
            earned_at=at,
            pending_until=None,
            expires_at=programs.expires_at(program, at, tenant.timezone),
        )
        reward["points"] = spec.reward_points
        reward["transfer_id"] = str(res.transfer_id)
    if spec.coupon_campaign_id is not None:
        from setia.coupons import service as coupons

        savepoint = session.begin_nested()
        try:
            coupon = coupons.issue_code(
                session,
                tenant_id=tenant.id,
                campaign_id=spec.coupon_campaign_id,
                member_id=row.member_id,
                source_type="badge",
                source_id=key,
            )
        except (SetiaError, SQLAlchemyError) as exc:
            savepoint.rollback()
            reward["coupon_error"] = getattr(exc, "code", "coupon_not_issued")
        else:
            savepoint.commit()
            reward["coupon_id"] = str(coupon.id)
            reward["coupon_code"] = coupon.code
    return reward


# --------------------------------------------------------------------------- the event paths


def on_event(
    session: Session,
    tenant: Tenant,
    program: Program,
    member: Member,
    event: EventIn,
    event_id: uuid.UUID,
    occurred_at: datetime,
    amount: Decimal | None,
) -> None:
    """Count one recorded event (purchase or custom) toward the program's definitions."""
    specs = specs_by_type(session, program.id).get(event.type)
    if not specs:
        return
    from setia.events import earning

    ctx = earning.event_context(tenant, event, occurred_at, amount, {})
    at = as_utc(occurred_at)
    wanted = [s for s in specs if s.contribute(ctx, at) is not None]
    if not wanted:
        return
    local = ctx["_local"]
    tally = _Tally(tenant, program)
    tally.read(session, [member.id], {period_key(s, local) for s in wanted})
    tally.count(wanted, member.id, ctx, at, event_id)
    tally.write(session)


class RunProgress:
    """The batch path's side: the tallies of every member of a run read once, the run's
    events counted in order in memory, everything written with one statement per table."""

    def __init__(
        self,
        session: Session,
        tenant: Tenant,
        program: Program,
        events: Iterable[tuple[uuid.UUID, str, datetime]],
    ) -> None:
        self.specs = specs_by_type(session, program.id)
        self.tally = _Tally(tenant, program)
        self.seen = 0
        members: dict[uuid.UUID, None] = {}
        periods: set[str] = set()
        tz = zone(tenant.timezone)
        types: set[str] = set()
        monthly = {t for t, specs in self.specs.items() if any(s.recurring for s in specs)}
        for member_id, event_type, at in events:
            if event_type not in self.specs:
                continue
            members[member_id] = None
            types.add(event_type)
            if event_type in monthly:
                local = as_utc(at).astimezone(tz)
                periods.add(f"{local.year:04d}-{local.month:02d}")  # period_key of a recurring
        for event_type in types:
            if any(not s.recurring for s in self.specs[event_type]):
                periods.add(ALL_TIME)
        if members:
            self.tally.read(session, members, periods)

    def count(
        self,
        member_id: uuid.UUID,
        event_type: str,
        ctx: dict[str, Any],
        at: datetime,
        event_id: uuid.UUID,
    ) -> set[str]:
        """Count one event; the codes the member completed so far in this run."""
        specs = self.specs.get(event_type)
        if specs:
            self.tally.count(specs, member_id, ctx, as_utc(at), event_id)
        return self.tally.earned.get(member_id, set())

    def counts(self, event_type: str) -> bool:
        """Whether events of this type count toward any active definition."""
        return event_type in self.specs

    def rewards(self) -> list[PlannedReward]:
        """The points of the completions the last ``count`` made, for the batch path to
        write with the event's own ledger rows (then ``planned`` with the transfer)."""
        done = self.tally.completions[self.seen :]
        self.seen = len(self.tally.completions)
        return [_reward_terms(c) for c in done if c.spec.reward_points]

    def write(self, session: Session) -> None:
        self.tally.write(session)


# --------------------------------------------------------------------------- what members have


@dataclass(slots=True)
class Progress:
    """A member's progress on one definition in one period, as stored: a completion row, or
    an entry of the member's tally short of the target."""

    member_id: uuid.UUID
    definition_id: uuid.UUID
    period_key: str
    value: Decimal
    events: int
    last_event_at: datetime | None
    completed_at: datetime | None
    state: dict[str, Any]
    reward: dict[str, Any] | None


def _text(column: Any, pg: bool) -> Any:
    return cast_(column, Text) if pg else type_coerce(column, String)


def _has_entry(pg: bool, name: str) -> Any:
    """SQL: the tally has an entry for the definition ``name`` (its id as text)."""
    entries = _tallies.c.entries
    if pg:
        return entries.op("?")(name)
    return func.json_type(entries, f'$."{name}"').is_not(None)


def _open_entry(pg: bool, name: str) -> Any:
    """SQL: the tally's entry for the definition ``name`` is not complete."""
    entries = _tallies.c.entries
    done = (
        entries.op("->")(name).op("->>")(3) if pg else func.json_extract(entries, f'$."{name}"[3]')
    )
    return and_(_has_entry(pg, name), done.is_(None))


def progress(
    session: Session,
    program_id: uuid.UUID,
    *,
    member_ids: list[uuid.UUID] | None = None,
    definition_id: uuid.UUID | None = None,
    period: str | None = None,
    limit: int | None = None,
) -> list[Progress]:
    """Stored progress of the program (every member, definition and period unless
    narrowed): completions from their rows, the rest from the members' tallies. ``limit``
    stops early (e.g. 1: is there any)."""
    pg = session.get_bind().dialect.name == "postgresql"
    out: list[Progress] = []
    chunks: list[list[uuid.UUID] | None] = [None]
    if member_ids is not None:
        chunks = [member_ids[i : i + 500] for i in range(0, len(member_ids), 500)]
    name = str(definition_id) if definition_id is not None else None
    for chunk in chunks:
        stmt = select(BadgeProgress).where(BadgeProgress.program_id == program_id)
        if chunk is not None:
            stmt = stmt.where(BadgeProgress.member_id.in_(chunk))
        if definition_id is not None:
            stmt = stmt.where(BadgeProgress.definition_id == definition_id)
        if period is not None:
            stmt = stmt.where(BadgeProgress.period_key == period)
        for r in session.execute(stmt.limit(limit)).scalars():
            out.append(
                Progress(
                    r.member_id,
                    r.definition_id,
                    r.period_key,
                    Decimal(r.value),
                    r.events,
                    r.last_event_at,
                    r.completed_at,
                    r.state or {},
                    r.reward,
                )
            )
            if limit is not None and len(out) >= limit:
                return out
        t = _tallies.c
        tstmt = select(t.member_id, t.period_key, _text(t.entries, pg)).where(
            t.program_id == program_id
        )
        if chunk is not None:
            tstmt = tstmt.where(t.member_id.in_(chunk))
        if period is not None:
            tstmt = tstmt.where(t.period_key == period)
        if name is not None:
            tstmt = tstmt.where(_open_entry(pg, name))
        if limit is not None:
            tstmt = tstmt.limit(limit - len(out) + 1)
        for member_id, period_key, text in session.execute(tstmt):
            for key, (value, events, last, done, state) in orjson.loads(text).items():
                if done is not None or (name is not None and key != name):
                    continue  # a completion's own row is read above
                out.append(
                    Progress(
                        member_id,
                        uuid.UUID(key),
                        period_key,
                        Decimal(value),
                        events,
                        datetime.fromisoformat(last) if last else None,
                        None,
                        state or {},
                        None,
                    )
                )
                if limit is not None and len(out) >= limit:
                    return out
    return out


def period_counts(session: Session, d: BadgeDefinition, period: str) -> tuple[int, int]:
    """Members with progress on the definition in the period, and how many completed it
    (two counts in SQL: nothing is decoded in Python)."""
    pg = session.get_bind().dialect.name == "postgresql"
    t = _tallies.c
    completed = session.execute(
        select(func.count())
        .select_from(BadgeProgress)
        .where(BadgeProgress.definition_id == d.id, BadgeProgress.period_key == period)
    ).scalar_one()
    started = session.execute(
        select(func.count())
        .select_from(_tallies)
        .where(
            t.program_id == d.program_id,
            t.period_key == period,
            _open_entry(pg, str(d.id)),
        )
    ).scalar_one()
    return int(started) + int(completed), int(completed)


def periods(session: Session, d: BadgeDefinition) -> list[str]:
    """The periods with stored progress on the definition, newest first."""
    pg = session.get_bind().dialect.name == "postgresql"
    t = _tallies.c
    found = {
        p
        for (p,) in session.execute(
            select(BadgeProgress.period_key)
            .where(BadgeProgress.definition_id == d.id)
            .group_by(BadgeProgress.period_key)
        )
    }
    found.update(
        p
        for (p,) in session.execute(
            select(t.period_key)
            .where(t.program_id == d.program_id, _has_entry(pg, str(d.id)))
            .group_by(t.period_key)
        )
    )
    return sorted(found, reverse=True)


def earned_codes_many(
    session: Session, program_id: uuid.UUID, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Codes of the badges and challenges each member has completed (in any period)."""
    out: dict[uuid.UUID, set[str]] = defaultdict(set)
    for i in range(0, len(member_ids), 500):
        chunk = member_ids[i : i + 500]
        rows = session.execute(
            select(BadgeProgress.member_id, BadgeDefinition.code)
            .join(BadgeDefinition, BadgeDefinition.id == BadgeProgress.definition_id)
            .where(
                BadgeProgress.member_id.in_(chunk),
                BadgeProgress.program_id == program_id,
                BadgeProgress.completed_at.is_not(None),
            )
        )
        for member_id, code in rows:
            out[member_id].add(code)
    return {m: sorted(out.get(m, ())) for m in member_ids}


def earned_codes(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> list[str]:
    return earned_codes_many(session, program_id, [member_id])[member_id]


def _progress_out(
    d: BadgeDefinition, row: Progress | None, period: str, locale: str
) -> dict[str, Any]:
    value = row.value if row else Decimal(0)
    target = Decimal(d.target)
    percent = int(min(Decimal(100), value * 100 / target)) if target else 100
    completed = row is not None and row.completed_at is not None
    return {
        "badge_id": d.id,
        "code": d.code,
        "kind": d.kind,
        "name": pick(d.names, locale) or d.code,
        "image_url": d.image_url,
        "period": period,
        "value": _number_text(value),
        "target": _number_text(target),
        "percent": percent,
        "text": _progress_text(value, target, locale),
        "completed": completed,
        "completed_at": row.completed_at if row else None,
        "reward": row.reward if row else None,
    }


def _progress_text(value: Decimal, target: Decimal, locale: str) -> str:
    word = {"id": "dari", "ms": "daripada", "en": "of"}.get(locale, "of")
    return f"{_number_text(min(value, target))} {word} {_number_text(target)}"


def current_period(d: BadgeDefinition, tz_name: str, now: datetime | None = None) -> str:
    if not d.recurring:
        return ALL_TIME
    local = as_utc(now or utcnow()).astimezone(zone(tz_name))
    return f"{local.year:04d}-{local.month:02d}"


_MONTH_KEY = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def check_period(d: BadgeDefinition, key: str) -> str:
    """``key`` if the definition has such periods: ``all`` for one that is not recurring, a
    month (YYYY-MM) for a recurring challenge. Asking the other kind is a mistake to
    explain, not an empty list."""
    if d.recurring and (key == ALL_TIME or not _MONTH_KEY.fullmatch(key)):
        raise InvalidPeriod(
            f"{d.code!r} starts again every month: give the month, as YYYY-MM",
            extra={"field": "period"},
        )
    if not d.recurring and key != ALL_TIME:
        raise InvalidPeriod(
            f"{d.code!r} counts over all time, not by month: give the period all, or none",
            extra={"field": "period"},
        )
    return key


def member_badges(
    session: Session, tenant: Tenant, program: Program, member: Member, locale: str
) -> dict[str, Any]:
    """What the member has earned (every completion, newest first) and where they stand on
    every active definition that is not complete in its current period."""
    rows = progress(session, program.id, member_ids=[member.id])
    defs = {d.id: d for d in list_definitions(session, program.id, status=None)}
    earned = sorted(
        (r for r in rows if r.completed_at is not None),
        key=lambda r: (as_utc(cast(datetime, r.completed_at)), r.period_key),
        reverse=True,
    )
    by_key = {(r.definition_id, r.period_key): r for r in rows}
    in_progress = []
    for d in sorted(defs.values(), key=lambda d: d.code):
        if d.status != "active":
            continue
        period = current_period(d, tenant.timezone)
        row = by_key.get((d.id, period))
        if row is not None and row.completed_at is not None:
            continue
        in_progress.append(_progress_out(d, row, period, locale))
    return {
        "member_id": member.id,
        "program_id": program.id,
        "badges": sorted({defs[r.definition_id].code for r in earned}),
        "earned": [_progress_out(defs[r.definition_id], r, r.period_key, locale) for r in earned],
        "in_progress": in_progress,
    }


# --------------------------------------------------------------------------- leaderboards


def consent_of(session: Session, member_id: uuid.UUID) -> LeaderboardConsent | None:
    return session.execute(
        select(LeaderboardConsent)
        .where(LeaderboardConsent.member_id == member_id)
        .order_by(LeaderboardConsent.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def set_consent(
    session: Session,
    member: Member,
    *,
    opted_in: bool,
    display_name: str | None,
    source: str,
) -> LeaderboardConsent:
    if not source.strip():
        raise InvalidInput(
            "say where the choice came from (source), e.g. 'app-settings'",
            extra={"field": "source"},
        )
    if display_name is not None and not display_name.strip():
        raise InvalidInput("display_name is empty", extra={"field": "display_name"})
    row = LeaderboardConsent(
        id=new_id(),
        tenant_id=member.tenant_id,
        member_id=member.id,
        opted_in=opted_in,
        display_name=display_name.strip() if display_name else None,
        source=source.strip()[:100],
        changed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    from setia.outbox.service import publish

    publish(
        session,
        member.tenant_id,
        "member.leaderboard_consent_changed",
        {"member_id": str(member.id), "opted_in": opted_in},
    )
    return row


def display_name(member: Member, consent: LeaderboardConsent | None) -> str | None:
    """What a leaderboard shows for the member: nothing without consent; the chosen name,
    else the first name and the initial of the last ("Budi S."), else "Anggota"."""
    if consent is None or not consent.opted_in or member.status != "active":
        return None
    if consent.display_name:
        return consent.display_name
    parts = (member.name or "").split()
    if not parts:
        return "Anggota"
    if len(parts) == 1:
        return parts[0][:40]
    return f"{parts[0]} {parts[-1][0]}."[:40]


def leaderboard(
    session: Session, d: BadgeDefinition, period: str, limit: int
) -> list[dict[str, Any]]:
    """Members who opted in, by progress: completed first (earliest first), then by value.
    Members without consent are skipped, not counted: ranks are among those shown."""
    later = aliased(LeaderboardConsent)
    newer = (
        select(later.id)
        .where(later.member_id == LeaderboardConsent.member_id, later.id > LeaderboardConsent.id)
        .exists()
    )
    shown = (
        select(Member, LeaderboardConsent)
        .join(LeaderboardConsent, LeaderboardConsent.member_id == Member.id)
        .where(~newer, LeaderboardConsent.opted_in.is_(True), Member.status == "active")
    )
    # Completions first (by the index of the definition and period), then the entries of
    # the consenting members' tallies of the period.
    done = session.execute(
        shown.add_columns(BadgeProgress)
        .join(BadgeProgress, BadgeProgress.member_id == Member.id)
        .where(BadgeProgress.definition_id == d.id, BadgeProgress.period_key == period)
        .order_by(
            BadgeProgress.completed_at,
            BadgeProgress.value.desc(),
            BadgeProgress.last_event_at,
            BadgeProgress.id,
        )
        .limit(limit)
    ).all()
    standings: list[tuple[Any, ...]] = [
        (
            0,
            as_utc(cast(datetime, p.completed_at)),
            -p.value,
            as_utc(p.last_event_at).isoformat() if p.last_event_at else None,
            str(p.id),
            m,
            c,
            p.value,
        )
        for m, c, p in done
    ]
    if len(standings) < limit:
        pg = session.get_bind().dialect.name == "postgresql"
        t = _tallies.c
        name = str(d.id)
        rows = session.execute(
            shown.add_columns(t.id, _text(t.entries, pg))
            .join(_tallies, t.member_id == Member.id)
            .where(
                t.program_id == d.program_id,
                t.period_key == period,
                _open_entry(pg, name),
            )
        ).all()
        for m, c, tally_id, text in rows:
            entry = orjson.loads(text)[name]  # an open entry (``_open_entry``)
            value, last = Decimal(entry[0]), entry[2] or ""
            standings.append((1, None, -value, last, str(tally_id), m, c, value))
        standings.sort(key=lambda s: (s[0], s[1] or 0, s[2], s[3] or "", s[4]))
    out = []
    for rank, (_g, completed_at, _v, _l, _i, member, consent, value) in enumerate(
        standings[:limit], start=1
    ):
        name_shown = display_name(member, consent)
        if name_shown is None:
            continue
        out.append(
            {
                "rank": rank,
                "display_name": name_shown,
                "value": _number_text(Decimal(value)),
                "completed_at": completed_at,
            }
        )
    return out


# --------------------------------------------------------------------------- replay


def replay(session: Session, tenant: Tenant, program: Program) -> int:
    """Count the program's recorded events (oldest first) toward its active definitions, as
    if each had just been recorded: for definitions created after the events (the demo).
    Only members without progress on a definition are counted, so running it twice adds
    nothing. Progress keeps the history's times (completed when the completing event
    happened), but completion rewards are given *now*: points dated by an old completion
    would be born expired under the program's expiry policy. Returns the number of events
    counted."""
    from setia.events import earning
    from setia.events.models import Event

    specs = specs_by_type(session, program.id)
    if not specs:
        return 0
    started = {(p.member_id, p.definition_id) for p in progress(session, program.id)}
    rows = session.execute(
        select(Event.id, Event.member_id, Event.occurred_at, Event.payload, Event.amount)
        .where(
            Event.program_id == program.id,
            Event.type.in_(sorted(specs)),
        )
        .order_by(Event.occurred_at, Event.id)
    ).all()
    tally = _Tally(tenant, program, grant_at=utcnow())
    counted = 0
    for event_id, member_id, occurred_at, payload, amount in rows:
        event = EventIn.model_validate(payload)
        todo = [s for s in specs.get(event.type, []) if (member_id, s.id) not in started]
        if not todo:
            continue
        ctx = earning.event_context(tenant, event, occurred_at, amount, {})
        tally.count(todo, member_id, ctx, as_utc(occurred_at), event_id)
        counted += 1
    tally.write(session)
    return counted


def member_record_codes(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> list[str]:
    """For the member record: the codes earned in the tenant's default program."""
    program = programs.get_program(session, tenant_id, None)
    return earned_codes(session, program.id, member_id)
