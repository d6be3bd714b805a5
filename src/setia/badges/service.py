"""Badges and challenges: definitions, each member's progress from events, completion rewards,
what members have earned, and leaderboards.

Everything runs in the caller's transaction and never commits.

Progress is updated by the events service in the event's own transaction, on both paths:
``on_event`` for one event (``events.service.record_event``), ``RunProgress`` for a run of
the set-based batch path (``events.batch``): the same arithmetic (``_contribution`` and
``_apply``) on rows read once per event or once per run, written back with one statement
per table. Only the program's active definitions for the event's type are looked at (cached
per session, like the rules). A replayed event (the same client id) never reaches this
module: the events service answers it from the events table first. Progress rows are unique
per (member, definition, period), so a concurrent first insert fails the transaction
(which the API retries) instead of counting twice.

Refunds do not change progress, and a completed badge stays completed: see docs/badges.md.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import String, Table, Text, bindparam, insert, select, type_coerce, update
from sqlalchemy import cast as cast_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from setia.badges.models import ALL_TIME, BadgeDefinition, BadgeProgress, LeaderboardConsent
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
    ANY,
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
_WHERE_ROW = _progress.c.id == bindparam("row_id", type_=_progress.c.id.type)
# Counts and sums change numbers only; distinct values and streaks also their state.
_UPDATE_COUNTER = (
    update(_progress)
    .where(_WHERE_ROW)
    .values(
        value=bindparam("value"),
        events=bindparam("events"),
        last_event_at=bindparam("last_event_at"),
        completed_at=bindparam("completed_at"),
    )
)
_UPDATE_STATE = _UPDATE_COUNTER.values(state=bindparam("state"))
_SET_REWARD = update(_progress).where(_WHERE_ROW).values(reward=bindparam("reward"))
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


def normalize(
    session: Session,
    tenant: Tenant,
    criteria: CriteriaIn,
    period: PeriodIn,
    rewards: RewardsIn,
) -> Normalized:
    """Check a definition; every error names the field to fix (``criteria.field``, ...)."""
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
            if starts or ends:
                raise _bad("period.starts_at", "a one-month period is the month itself")
            starts, ends = _local_month_window(period.month, tenant.timezone)
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
        local = as_utc(d.starts_at).astimezone(zone(tz_name))
        out["month"] = f"{local.year:04d}-{local.month:02d}"
    if d.starts_at is not None:
        out["starts_at"] = as_utc(d.starts_at).isoformat()
    if d.ends_at is not None:
        out["ends_at"] = as_utc(d.ends_at).isoformat()
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
    n = normalize(session, tenant, body.criteria, body.period, body.rewards)
    found = session.execute(
        select(BadgeDefinition).where(
            BadgeDefinition.program_id == program.id, BadgeDefinition.code == body.code
        )
    ).scalar_one_or_none()
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


def get_definition(session: Session, tenant_id: uuid.UUID, ref: str | uuid.UUID) -> BadgeDefinition:
    """By id, or by code (in any program of the tenant; the default program's first)."""
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
        if d is not None and d.tenant_id == tenant_id:
            return d
        raise BadgeNotFound(f"no badge or challenge {ref}")
    rows = list(
        session.execute(
            select(BadgeDefinition)
            .where(BadgeDefinition.tenant_id == tenant_id, BadgeDefinition.code == ref)
            .order_by(BadgeDefinition.id)
        ).scalars()
    )
    if not rows:
        raise BadgeNotFound(f"no badge or challenge with code {ref!r}")
    return rows[0]


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
    return (
        session.execute(
            select(BadgeProgress.id).where(BadgeProgress.definition_id == definition_id).limit(1)
        ).first()
        is not None
    )


def update_definition(
    session: Session, tenant: Tenant, d: BadgeDefinition, patch: DefinitionPatch
) -> BadgeDefinition:
    sent = patch.model_fields_set
    if "criteria" in sent or "period" in sent:
        criteria = patch.criteria or CriteriaIn.model_validate(criteria_of(d))
        period = patch.period or PeriodIn.model_validate(period_of(d, tenant.timezone))
        rewards = patch.rewards or RewardsIn.model_validate(rewards_of(d))
        n = normalize(session, tenant, criteria, period, rewards)
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
            PeriodIn.model_validate(period_of(d, tenant.timezone)),
            patch.rewards,
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


def matcher(node: dict[str, Any]) -> Match:
    """A validated condition tree as a yes/no function of the context: the rules'
    ``compile_condition`` with the same comparisons (``_compare``), without the reasons a
    failing rule explains itself with (a definition only needs to know whether it counts)."""
    if "all" in node:
        children = [matcher(child) for child in node["all"]]
        return lambda ctx: all(child(ctx) for child in children)
    if "any" in node:
        options = [matcher(child) for child in node["any"]]
        return lambda ctx: any(option(ctx) for option in options)
    if "not" in node:
        inner = matcher(node["not"])
        return lambda ctx: not inner(ctx)
    if "items" in node:
        spec = node["items"]
        where = matcher(spec["where"]) if "where" in spec else None
        need_q = _number(spec.get("min_quantity")) if "min_quantity" in spec else None
        need_a = _number(spec.get("min_amount")) if "min_amount" in spec else None

        def items(ctx: dict[str, Any]) -> bool:
            lines = ctx.get("items") or []
            matching = [line for line in lines if where is None or where({"item": line})]
            if need_q is None and need_a is None:
                return bool(matching)
            qty = sum((_number(line.get("quantity")) or Decimal(0)) for line in matching)
            amount = sum((_number(line.get("amount")) or Decimal(0)) for line in matching)
            return (need_q is None or qty >= need_q) and (need_a is None or amount >= need_a)

        return items
    name, op = node["field"], node["op"]
    parts = _parts(name)

    def find(ctx: dict[str, Any]) -> tuple[bool, Any]:
        cur: Any = ctx
        for part in parts:
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                return False, None
        return cur is not None, cur

    if op == "exists":
        want = node.get("value", True)
        return lambda ctx: find(ctx)[0] == want
    expected = node.get("value")
    kind = field_type(name, item=name.startswith("item.")) or ANY
    negative = op in ("ne", "not_in", "not_contains")

    def compare(ctx: dict[str, Any]) -> bool:
        found, actual = find(ctx)
        return (found and _compare(kind, op, actual, expected)) or (not found and negative)

    return compare


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
    # Adds a contribution to a row (``_apply``, its branches decided for this definition).
    step: Callable[[Row, Any, datetime], str | None] = dataclasses.field(
        default=lambda _row, _c, _at: None, compare=False, repr=False
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
        items_check=matcher(d.items_where) if d.items_where else None,
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


def specs_by_type(session: Session, program_id: uuid.UUID) -> dict[str, list[Spec]]:
    """The program's active definitions by event type (cached for the session)."""
    cache: dict[uuid.UUID, dict[str, list[Spec]]] = session.info.setdefault("badge_specs", {})
    found = cache.get(program_id)
    if found is None:
        found = defaultdict(list)
        rows = session.execute(
            select(BadgeDefinition).where(
                BadgeDefinition.program_id == program_id, BadgeDefinition.status == "active"
            )
        ).scalars()
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
        found = picked[spec.items_key] = [line for line in lines if check({"item": line})]
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

    id: uuid.UUID | str  # a read row's id as the driver gave it (hex text on SQLite)
    program_id: uuid.UUID
    definition_id: uuid.UUID
    member_id: uuid.UUID
    period_key: str
    value: Decimal = Decimal(0)
    state: dict[str, Any] | str = field(default_factory=dict)  # text: as read, not decoded
    events: int = 0
    last_event_at: datetime | None = None
    completed_at: datetime | None = None
    new: bool = False
    dirty: bool = False
    state_changed: bool = False


def shown(spec_measure: str, value: Decimal, target: Decimal) -> int:
    """The progress a member sees: the count, or a sum's whole percent."""
    if spec_measure == "sum":
        return int(min(Decimal(100), value * 100 / target))
    return int(min(value, target))


def _state(row: Row) -> dict[str, Any]:
    """The row's state, decoded the first time an event needs it (most rows read for a run
    are counters, or never touched by its events)."""
    state = row.state
    if state.__class__ is str:
        state = row.state = json.loads(state) if state else {}
    return cast(dict[str, Any], state)


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
                row.state_changed = True
                row.value = Decimal(len(seen))
    else:
        buckets: list[int] = _state(row).get("buckets", [])
        if contribution not in buckets:
            merged = sorted([*buckets, contribution])
            oldest = merged[-1] - STREAK_MEMORY * int(spec.target)
            kept = [b for b in merged if b >= oldest]
            if kept != buckets:
                row.state = {"buckets": kept}
                row.state_changed = True
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


def _stepper(spec: Spec) -> Callable[[Row, Any, datetime], str | None]:
    """``_apply`` for one definition: a count or a sum (most definitions, on most events)
    without the measure's branches; distinct values and streaks through ``_apply``."""
    measure, target = spec.measure, spec.target
    if measure in ("count", "first"):

        def count(row: Row, _contribution: Any, at: datetime) -> str | None:
            if row.completed_at is not None:
                return None
            value = row.value = row.value + _ONE
            row.events += 1
            last = row.last_event_at
            if last is None or at > last:
                row.last_event_at = at
            row.dirty = True
            if value >= target:
                row.completed_at = at
                return _COMPLETED
            return _PROGRESSED

        return count
    if measure == "sum":
        hundred = Decimal(100)

        def add(row: Row, contribution: Any, at: datetime) -> str | None:
            if row.completed_at is not None:
                return None
            before = row.value
            value = row.value = before + contribution
            row.events += 1
            last = row.last_event_at
            if last is None or at > last:
                row.last_event_at = at
            row.dirty = True
            if value >= target:
                row.completed_at = at
                return _COMPLETED
            if value == before:
                return None
            # ``shown``: a sum shows its whole percent
            if int(min(hundred, value * 100 / target)) != int(min(hundred, before * 100 / target)):
                return _PROGRESSED
            return None

        return add
    whole = int(target)

    def _counted(row: Row, before: Decimal, at: datetime) -> str | None:
        # the end of ``_apply`` for a distinct or streak measure (no sum: any change shows)
        row.events += 1
        last = row.last_event_at
        if last is None or at > last:
            row.last_event_at = at
        row.dirty = True
        value = row.value
        if value >= target:
            row.completed_at = at
            return _COMPLETED
        return None if value == before else _PROGRESSED

    if measure == "distinct":

        def distinct(row: Row, contribution: Any, at: datetime) -> str | None:
            if row.completed_at is not None:
                return None
            before = row.value
            seen: list[str] = _state(row).get("values", [])
            fresh = [v for v in contribution if v not in seen]
            if fresh:
                merged = [*seen, *fresh][: max(len(seen), whole)]
                if len(merged) != len(seen):
                    row.state = {"values": merged}
                    row.state_changed = True
                    row.value = Decimal(len(merged))
            return _counted(row, before, at)

        return distinct

    def streak(row: Row, contribution: Any, at: datetime) -> str | None:
        if row.completed_at is not None:
            return None
        before = row.value
        buckets: list[int] = _state(row).get("buckets", [])
        if contribution not in buckets:
            merged = sorted([*buckets, contribution])
            oldest = merged[-1] - STREAK_MEMORY * whole
            kept = [b for b in merged if b >= oldest]
            if kept != buckets:
                row.state = {"buckets": kept}
                row.state_changed = True
                row.value = max(before, Decimal(min(longest_run(kept), whole)))
        return _counted(row, before, at)

    return streak


# --------------------------------------------------------------------------- reading and writing rows


def _load(
    session: Session,
    program_id: uuid.UUID,
    member_ids: list[uuid.UUID],
    definition_ids: list[uuid.UUID],
    periods: set[str],
) -> dict[tuple[int, int, str], Row]:
    """Existing rows (locked on PostgreSQL, in id order: the event path writes them back).
    A row's ``state`` stays text until an event needs it (``_state``), and its id stays as
    the driver gave it (written back as is).

    On SQLite the query asks for the members' rows of the periods only (the unique index's
    first column; listing the definitions too would make SQLite probe every member x
    definition x period) and other definitions' rows are skipped here."""
    out: dict[tuple[int, int, str], Row] = {}
    if not member_ids or not definition_ids:
        return out
    pg = session.get_bind().dialect.name == "postgresql"
    c = _progress.c
    # Member and definition ids come back as the driver gives them (a hex string on SQLite,
    # a UUID on PostgreSQL) and are mapped to the UUIDs asked for: no conversion per row.
    ids: dict[Any, uuid.UUID] = {}
    for known in member_ids:
        ids[known] = ids[known.hex] = known
    wanted: dict[Any, uuid.UUID] = {}
    for known in definition_ids:
        wanted[known] = wanted[known.hex] = known
    cols: list[Any] = [
        type_coerce(c.id, String) if not pg else c.id,
        type_coerce(c.definition_id, String),
        type_coerce(c.member_id, String),
    ]
    # Values, instants too: a member's rows last moved by the same event share them, so each
    # distinct raw value is converted once, by the column type's own result processor.
    # (SQLite only: psycopg gives decimals and datetimes already.)
    if pg:
        cols += [c.period_key, c.value, c.events, c.last_event_at, c.completed_at]
        cols += [cast_(c.state, Text)]
        to_value: Any = None
        to_time: Any = None
    else:
        cols += [c.period_key, type_coerce(c.value, String), c.events]
        cols += [type_coerce(c.last_event_at, String), type_coerce(c.completed_at, String)]
        cols += [type_coerce(c.state, String)]
        dialect = session.get_bind().dialect
        to_value = c.value.type._cached_result_processor(dialect, None)
        to_time = c.last_event_at.type._cached_result_processor(dialect, None)
    values: dict[Any, Any] = {}
    times: dict[Any, Any] = {None: None}

    def convert(f: Any, memo: dict[Any, Any], raw: Any) -> Any:
        done = memo.get(raw, _MISSING)
        if done is _MISSING:
            done = memo[raw] = f(raw)
        return done

    for i in range(0, len(member_ids), 500):
        chunk = member_ids[i : i + 500]
        stmt = select(*cols).where(c.member_id.in_(chunk), c.period_key.in_(sorted(periods)))
        if pg:
            stmt = stmt.where(c.definition_id.in_(definition_ids)).order_by(c.id)
            stmt = stmt.with_for_update()
        for (
            row_id,
            raw_def,
            raw_member,
            period,
            value,
            events,
            last,
            done,
            state,
        ) in session.execute(stmt).all():
            definition_id = wanted.get(raw_def)
            if definition_id is None:
                continue
            member_id = ids[raw_member]
            if to_value is not None:
                value = convert(to_value, values, value)
                last = convert(to_time, times, last)
                done = convert(to_time, times, done)
            out[(member_id.int, definition_id.int, period)] = Row(
                row_id,
                program_id,
                definition_id,
                member_id,
                period,
                value,
                state or {},
                events,
                last,
                done,
            )
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
    """Rows, messages and completions of one event or one run.

    Messages are kept as (topic, spec, row, value, completed_at, event_id) until ``write``;
    a challenge's ``challenge.progressed`` is replaced by any later message of the same
    member, definition and period in the same run, so a run sends at most one per row
    (with the latest progress), and none once the run completed the challenge."""

    tenant: Tenant
    program: Program
    rows: dict[tuple[int, int, str], Row]
    outbox: dict[Any, tuple[str, Spec, Row, Decimal, datetime | None, uuid.UUID]] = field(
        default_factory=dict
    )
    completions: list[Completion] = field(default_factory=list)
    earned: dict[uuid.UUID, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Rewards given at this instant instead of at completion (``replay``).
    grant_at: datetime | None = None
    program_id: uuid.UUID = field(init=False)
    tenant_id: uuid.UUID = field(init=False)

    def __post_init__(self) -> None:
        self.program_id = self.program.id
        self.tenant_id = self.tenant.id

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
        rows = self.rows
        outbox = self.outbox
        member_key = member_id.int  # ints as keys: a UUID hashes in Python, an int in C
        for spec in specs:
            key = (member_key, spec.key, month if spec.recurring else ALL_TIME)
            row = rows.get(key)
            if row is not None and row.completed_at is not None:
                continue  # complete in this period: nothing counts any more
            contribution = spec.contribute(ctx, at)
            if contribution is None:
                continue
            if row is None:
                row = rows[key] = Row(
                    new_id(), self.program_id, spec.id, member_id, key[2], new=True
                )
            change = spec.step(row, contribution, at)
            if change is None:
                continue
            if change == _COMPLETED:
                topic = "badge.earned" if spec.kind == "badge" else "challenge.completed"
                self.completions.append(Completion(spec, row, self.tenant_id))
                self.earned[member_id].add(spec.code)
            elif spec.kind == "challenge":
                topic = "challenge.progressed"
            else:
                continue
            message = (topic, spec, row, row.value, row.completed_at, event_id)
            if topic == "challenge.progressed" or key in outbox:
                # the latest progress of this row replaces an earlier progress message
                outbox.pop(key, None)
                outbox[key] = message
            else:
                outbox[(key, len(outbox))] = message

    def write(self, session: Session) -> None:
        fresh: list[Row] = []
        counters: list[Row] = []
        states: list[Row] = []
        for r in self.rows.values():
            if not r.dirty:
                continue
            if r.new:
                fresh.append(r)
            elif r.state_changed:
                states.append(r)
            else:
                counters.append(r)
        if fresh:
            bulk.executemany(
                session,
                _INSERT_PROGRESS,
                {
                    "id": [r.id for r in fresh],
                    "program_id": [r.program_id for r in fresh],
                    "definition_id": [r.definition_id for r in fresh],
                    "member_id": [r.member_id for r in fresh],
                    "period_key": [r.period_key for r in fresh],
                    "value": [r.value for r in fresh],
                    "state": [r.state for r in fresh],
                    "events": [r.events for r in fresh],
                    "last_event_at": [r.last_event_at for r in fresh],
                    "completed_at": [r.completed_at for r in fresh],
                    "reward": [None] * len(fresh),
                },
            )
        _update_rows(session, counters, with_state=False)
        _update_rows(session, states, with_state=True)
        for rows in (fresh, counters, states):
            for r in rows:
                r.new = r.dirty = r.state_changed = False
        if self.outbox:
            now = utcnow()
            program_id = str(self.program.id)
            texts: dict[Any, str] = {}
            topics: list[str] = []
            payloads: list[Any] = []
            for topic, spec, row, value, done, event_id in self.outbox.values():
                member = texts.get(row.member_id)
                if member is None:
                    member = texts[row.member_id] = str(row.member_id)
                event = texts.get(event_id)
                if event is None:
                    event = texts[event_id] = str(event_id)
                head = texts.get(spec.id)
                if head is None:
                    head = texts[spec.id] = _message_head(spec, program_id)
                topics.append(topic)
                payloads.append(_message_text(head, spec, row, value, done, member, event))
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
            _update_pg(session, reward_ids, [("reward", "jsonb", [json.dumps(r) for r in rewards])])
        elif rewards:
            bulk.executemany(session, _SET_REWARD, {"row_id": reward_ids, "reward": rewards})
        self.completions = []


def _update_rows(session: Session, rows: list[Row], *, with_state: bool) -> None:
    """Write back the numbers (and the state) of rows read: ``executemany`` on SQLite (in
    process), one ``UPDATE ... FROM unnest(arrays)`` on PostgreSQL (``executemany`` there
    costs a statement per row)."""
    if not rows:
        return
    columns: list[tuple[str, str, list[Any]]] = [
        ("value", "numeric", [r.value for r in rows]),
        ("events", "bigint", [r.events for r in rows]),
        ("last_event_at", "timestamptz", [r.last_event_at for r in rows]),
        ("completed_at", "timestamptz", [r.completed_at for r in rows]),
    ]
    if session.get_bind().dialect.name != "postgresql":
        values = {name: col for name, _t, col in columns}
        values["row_id"] = [r.id for r in rows]
        if with_state:
            values["state"] = [r.state for r in rows]
        bulk.executemany(session, _UPDATE_STATE if with_state else _UPDATE_COUNTER, values)
        return
    if with_state:
        columns.append(("state", "jsonb", [json.dumps(r.state) for r in rows]))
    _update_pg(session, [r.id for r in rows], columns)


def _update_pg(session: Session, ids: list[Any], columns: list[tuple[str, str, list[Any]]]) -> None:
    """One ``UPDATE badge_progress ... FROM unnest(...)`` setting ``columns`` (name, SQL
    type, one value per id) of the rows ``ids``."""
    sets = ", ".join(f"{name} = v.{name}" for name, _t, _v in columns)
    arrays = ", ".join(f"%(c{i})s::{sql_type}[]" for i, (_n, sql_type, _v) in enumerate(columns))
    names = ", ".join(name for name, _t, _v in columns)
    params: dict[str, Any] = {"ids": ids}
    for i, (_n, _t, values) in enumerate(columns):
        params[f"c{i}"] = values
    session.connection().exec_driver_sql(
        f"UPDATE badge_progress AS p SET {sets} FROM unnest(%(ids)s::uuid[], {arrays}) "
        f"AS v(id, {names}) WHERE p.id = v.id",
        params,
    )


def _message_head(spec: Spec, program_id: str) -> str:
    """``_message``'s keys up to the period as JSON text, for ``_message_text``."""
    text = json.dumps({"program_id": program_id, "badge_id": spec.id_text, "code": spec.code})
    return text[1:-1] + ", " + json.dumps({"kind": spec.kind})[1:-1]


def _message_text(
    head: str,
    spec: Spec,
    row: Row,
    value: Decimal,
    completed_at: datetime | None,
    member: str,
    event: str,
) -> bulk.JsonText:
    """``json.dumps(_message(...))`` without encoding a dict per message (ids, period keys,
    numbers and instants need no escaping; the definition's part is encoded once)."""
    done = f'"{as_utc(completed_at).isoformat()}"' if completed_at else "null"
    return bulk.JsonText(
        f'{{"member_id": "{member}", {head}, "period": "{row.period_key}", '
        f'"value": "{_number_text(value)}", "target": "{spec.target_text}", "completed_at": {done}, '
        f'"event_id": "{event}"}}'
    )


def _message(
    spec: Spec,
    row: Row,
    program_id: str,
    value: Decimal,
    completed_at: datetime | None,
    event_id: uuid.UUID,
    member_text: str | None = None,
    event_text: str | None = None,
) -> dict[str, Any]:
    return {
        "member_id": member_text or str(row.member_id),
        "program_id": program_id,
        "badge_id": spec.id_text,
        "code": spec.code,
        "kind": spec.kind,
        "period": row.period_key,
        "value": _number_text(value),
        "target": spec.target_text,
        "completed_at": as_utc(completed_at).isoformat() if completed_at else None,
        "event_id": event_text or str(event_id),
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
    rows = _load(
        session,
        program.id,
        [member.id],
        [s.id for s in wanted],
        {period_key(s, local) for s in wanted},
    )
    tally = _Tally(tenant, program, rows)
    tally.count(wanted, member.id, ctx, at, event_id)
    tally.write(session)


class RunProgress:
    """The batch path's side: rows of every member of a run read once, the run's events
    counted in order in memory, everything written with one statement per table."""

    def __init__(
        self,
        session: Session,
        tenant: Tenant,
        program: Program,
        events: Iterable[tuple[uuid.UUID, str, datetime]],
    ) -> None:
        self.specs = specs_by_type(session, program.id)
        self.tally = _Tally(tenant, program, {})
        self.seen = 0
        members: dict[uuid.UUID, None] = {}
        defs: dict[uuid.UUID, None] = {}
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
            for s in self.specs[event_type]:
                defs[s.id] = None
                if not s.recurring:
                    periods.add(ALL_TIME)
        if members:
            self.tally.rows = _load(session, program.id, list(members), list(defs), periods)

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
    d: BadgeDefinition, row: BadgeProgress | None, period: str, locale: str
) -> dict[str, Any]:
    value = Decimal(row.value) if row else Decimal(0)
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


def member_badges(
    session: Session, tenant: Tenant, program: Program, member: Member, locale: str
) -> dict[str, Any]:
    """What the member has earned (every completion, newest first) and where they stand on
    every active definition that is not complete in its current period."""
    rows = list(
        session.execute(
            select(BadgeProgress).where(
                BadgeProgress.member_id == member.id, BadgeProgress.program_id == program.id
            )
        ).scalars()
    )
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
    rows = session.execute(
        select(BadgeProgress, Member, LeaderboardConsent)
        .join(Member, Member.id == BadgeProgress.member_id)
        .join(LeaderboardConsent, LeaderboardConsent.member_id == BadgeProgress.member_id)
        .where(
            ~newer,
            BadgeProgress.definition_id == d.id,
            BadgeProgress.period_key == period,
            LeaderboardConsent.opted_in.is_(True),
            Member.status == "active",
        )
        .order_by(
            BadgeProgress.completed_at.is_(None),
            BadgeProgress.completed_at,
            BadgeProgress.value.desc(),
            BadgeProgress.last_event_at,
            BadgeProgress.id,
        )
        .limit(limit)
    ).all()
    out = []
    for rank, (progress, member, consent) in enumerate(rows, start=1):
        name = display_name(member, consent)
        if name is None:
            continue
        out.append(
            {
                "rank": rank,
                "display_name": name,
                "value": _number_text(Decimal(progress.value)),
                "completed_at": progress.completed_at,
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
    started = {
        (m, d)
        for m, d in session.execute(
            select(BadgeProgress.member_id, BadgeProgress.definition_id).where(
                BadgeProgress.program_id == program.id
            )
        )
    }
    rows = session.execute(
        select(Event.id, Event.member_id, Event.occurred_at, Event.payload, Event.amount)
        .where(
            Event.program_id == program.id,
            Event.type.in_(sorted(specs)),
        )
        .order_by(Event.occurred_at, Event.id)
    ).all()
    tally = _Tally(tenant, program, {}, grant_at=utcnow())
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
