"""Tiers: configuration, the event hooks, overrides, plan benefits and the nightly evaluation.

The decisions are pure functions in ``setia.tiers.rules``; this module reads the figures,
applies a decision with a compare-and-set on ``member_tiers.version`` (so two evaluations,
or an evaluation and an event, never both move a member), and writes the history and the
outbox messages (``tier.upgraded``, ``tier.downgraded``, ``tier.at_risk``) in the caller's
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.db import Database, new_id
from setia.core.errors import Conflict, NotFound
from setia.core.time import as_utc, utcnow, zone
from setia.members.models import Member
from setia.outbox.service import publish
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.tiers import rules
from setia.tiers.models import (
    EVENT_PREFIX,
    PURCHASE,
    MemberTier,
    Tier,
    TierActivity,
    TierChange,
    TierSet,
)
from setia.tiers.rules import FIELDS, Outcome, State, Structure, TierDef
from setia.tiers.schemas import TierSetIn

_mt = cast(Table, MemberTier.__table__)
_act = cast(Table, TierActivity.__table__)
_changes = cast(Table, TierChange.__table__)
_STATE = (_mt.c.member_id, *[_mt.c[f] for f in FIELDS])
# Built once (a call only binds values): the compare-and-set of a member's standing.
_INSERT_MT = insert(_mt)
_INSERT_CHANGE = insert(_changes)
_UPDATE_MT = (
    update(_mt)
    .where(
        _mt.c.tier_set_id == bindparam("k_set"),
        _mt.c.member_id == bindparam("k_member"),
        _mt.c.version == bindparam("k_version"),
    )
    .values({f: bindparam(f"v_{f}", type_=_mt.c[f].type) for f in FIELDS})
    .returning(_mt.c.version)
)
CHUNK = 5000


class TierSetNotFound(NotFound):
    code = "tier_set_not_found"


class TierNotFound(NotFound):
    code = "tier_not_found"


class TierInUse(Conflict):
    code = "tier_in_use"


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return as_utc(now or utcnow()).astimezone(zone(tenant.timezone)).date()


def local_day(tenant: Tenant, moment: datetime) -> date:
    return as_utc(moment).astimezone(zone(tenant.timezone)).date()


# ---------------------------------------------------------------------- configuration


# Built once, bound per call (every event asks for its program's tier set).
_TIER_SET = select(TierSet).where(TierSet.program_id == bindparam("program_id", type_=Uuid()))
_TIERS_OF_SET = (
    select(Tier)
    .where(Tier.tier_set_id == bindparam("tier_set_id", type_=Uuid()))
    .order_by(Tier.rank)
)


def get_tier_set(session: Session, program_id: uuid.UUID) -> TierSet | None:
    return session.execute(_TIER_SET, {"program_id": program_id}).scalar_one_or_none()


def tiers_of_set(session: Session, tier_set_id: uuid.UUID) -> list[Tier]:
    return list(session.execute(_TIERS_OF_SET, {"tier_set_id": tier_set_id}).scalars().all())


def structure(session: Session, program_id: uuid.UUID) -> Structure | None:
    """The program's tier set as plain values, cached for the session (a request or a job)."""
    cache: dict[Any, Structure | None] = session.info.setdefault("tier_structures", {})
    if program_id in cache:
        return cache[program_id]
    ts = get_tier_set(session, program_id)
    built = None
    if ts is not None:
        built = Structure(
            id=ts.id,
            program_id=ts.program_id,
            metrics=tuple(ts.metrics),
            combine=ts.combine,
            window=dict(ts.window),
            retention=dict(ts.retention),
            downgrade=ts.downgrade,
            grace_days=ts.grace_days,
            at_risk_days=ts.at_risk_days,
            tiers=tuple(
                TierDef(
                    id=t.id,
                    code=t.code,
                    rank=t.rank,
                    thresholds=tuple(Decimal(x) for x in t.thresholds),
                    invitation_only=t.invitation_only,
                    names=dict(t.names),
                )
                for t in tiers_of_set(session, ts.id)
            ),
        )
    cache[program_id] = built
    return built


def _forget(session: Session) -> None:
    session.info.pop("tier_structures", None)


def put_tier_set(
    session: Session, tenant: Tenant, program: Program, body: TierSetIn, *, actor: str
) -> TierSet:
    """Create or replace the program's tier structure. Tiers are matched by code: a tier
    that members are in cannot be removed (409 ``tier_in_use``); ranks follow the order
    given. History rows keep the tier ids they named."""
    ts = get_tier_set(session, program.id)
    now = utcnow()
    fields = {
        "name": body.name,
        "metrics": [m.model_dump(exclude_none=True) for m in body.metrics],
        "combine": body.combine,
        "window": body.window.model_dump(exclude_none=True),
        "retention": body.retention.model_dump(exclude_none=True),
        "downgrade": body.downgrade,
        "grace_days": body.grace_days,
        "at_risk_days": body.at_risk_days,
    }
    if ts is None:
        ts = TierSet(id=new_id(), program_id=program.id, created_at=now, updated_at=now, **fields)
        session.add(ts)
        session.flush()
        existing: dict[str, Tier] = {}
    else:
        for k, v in fields.items():
            setattr(ts, k, v)
        ts.revision += 1
        ts.updated_at = now
        ts.evaluated_on = None  # the next evaluation places members with earlier activity
        existing = {t.code: t for t in tiers_of_set(session, ts.id)}
    wanted = {t.code for t in body.tiers}
    for code, tier in existing.items():
        if code in wanted:
            continue
        used = session.execute(
            select(func.count())
            .select_from(MemberTier)
            .where(
                MemberTier.tier_set_id == ts.id,
                (MemberTier.tier_id == tier.id)
                | (MemberTier.earned_tier_id == tier.id)
                | (MemberTier.override_tier_id == tier.id)
                | (MemberTier.plan_tier_id == tier.id),
            )
        ).scalar_one()
        if used:
            raise TierInUse(
                f"tier {code!r} still has {used} member(s); move them before removing it",
                extra={"tier": code, "members": int(used)},
            )
        changed = session.execute(
            select(func.count())
            .select_from(TierChange)
            .where((TierChange.to_tier_id == tier.id) | (TierChange.from_tier_id == tier.id))
        ).scalar_one()
        if changed:
            raise TierInUse(
                f"tier {code!r} appears in members' tier history; it can be renamed, not removed",
                extra={"tier": code},
            )
        session.delete(tier)
    session.flush()
    # Ranks are unique: park the kept tiers out of the way, then give the final ranks.
    for i, tier in enumerate(existing.values()):
        if tier.code in wanted:
            tier.rank = 1000 + i
    session.flush()
    for rank, t in enumerate(body.tiers):
        values = {
            "names": t.names.model_dump(),
            "thresholds": [str(Decimal(x)) for x in t.thresholds],
            "invitation_only": t.invitation_only,
            "earn_multiplier": t.earn_multiplier,
            "perks": [p.model_dump() for p in t.perks],
            "support_priority": t.support_priority,
            "color": t.color,
            "rank": rank,
        }
        if t.code in existing:
            for k, v in values.items():
                setattr(existing[t.code], k, v)
        else:
            session.add(Tier(id=new_id(), tier_set_id=ts.id, code=t.code, **values))
    session.flush()
    _forget(session)
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="tier_set.saved",
        subject_type="tier_set",
        subject_id=str(ts.id),
        details={"revision": ts.revision, "tiers": [t.code for t in body.tiers]},
    )
    return ts


def require_structure(session: Session, program_id: uuid.UUID) -> Structure:
    s = structure(session, program_id)
    if s is None:
        raise TierSetNotFound("this program has no tiers yet; create them with PUT .../tier-set")
    return s


def tier_by_code(s: Structure, code: str) -> TierDef:
    for t in s.tiers:
        if t.code == code:
            return t
    raise TierNotFound(
        f"no tier {code!r}; the tiers are {', '.join(t.code for t in s.tiers)}",
        extra={"field": "tier"},
    )


# ---------------------------------------------------------------------- figures


def _aggregates(s: Structure) -> list[ColumnElement[Any]]:
    """One SUM per metric of the tier set, over ``tier_activity`` rows."""
    out: list[ColumnElement[Any]] = []
    for m in s.metrics:
        kind = m["metric"]
        if kind == "spend":
            expr: ColumnElement[Any] = case((_act.c.kind == PURCHASE, _act.c.spend), else_=0)
        elif kind == "points":
            expr = _act.c.points
        elif kind == "orders":
            expr = case((_act.c.kind == PURCHASE, _act.c.orders), else_=0)
        elif kind == "visits":
            expr = case((and_(_act.c.kind == PURCHASE, _act.c.orders > 0), 1), else_=0)
        else:
            expr = case((_act.c.kind == EVENT_PREFIX + m["event_type"], _act.c.count), else_=0)
        out.append(func.coalesce(func.sum(expr), 0))
    return out


def _figures(row: Sequence[Any]) -> list[Decimal]:
    return [Decimal(v or 0) for v in row]


def member_figures(
    session: Session,
    s: Structure,
    member_id: uuid.UUID,
    start: date | None,
    end: date | None,
) -> list[Decimal]:
    conds = [_act.c.program_id == s.program_id, _act.c.member_id == member_id]
    if start is not None:
        conds.append(_act.c.day >= start)
    if end is not None:
        conds.append(_act.c.day <= end)
    row = session.execute(select(*_aggregates(s)).where(*conds)).one()
    return _figures(row)


def qualification_figures(
    session: Session, s: Structure, member_id: uuid.UUID, st: State, day: date
) -> list[Decimal] | None:
    """The figures, as of ``day``, of the window in which the member's earned tier was
    reached or last qualified for (None when it was not reached by qualification)."""
    if st.qualified_on is None:
        return None
    start, end = s.window_for(st.qualified_on, st.anchor_day)
    if s.window["kind"] != "rolling":
        end = min(end, day) if end is not None else day
    return member_figures(session, s, member_id, start, end)


# ---------------------------------------------------------------------- member state


def load_state(
    session: Session, tenant: Tenant, s: Structure, member_id: uuid.UUID, *, lock: bool = True
) -> State:
    """The member's standing; a member never seen before starts in the base tier (the row
    is written when something changes). On PostgreSQL the row is locked when it exists."""
    stmt = select(*[_mt.c[f] for f in FIELDS]).where(
        _mt.c.tier_set_id == s.id, _mt.c.member_id == member_id
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is not None:
        return State(**row._asdict())
    # In the base tier since they joined.
    joined = session.execute(select(Member.created_at).where(Member.id == member_id)).scalar_one()
    return State(
        tier_id=s.base.id,
        since=joined,
        earned_tier_id=s.base.id,
        earned_since=joined,
        anchor_day=local_day(tenant, joined),
        version=0,
    )


class ConcurrentChange(Exception):
    """Another transaction moved the member first."""


def _save(
    session: Session,
    tenant: Tenant,
    s: Structure,
    member_id: uuid.UUID,
    before: State,
    out: Outcome,
    day: date,
    *,
    actor: str = "system",
) -> None:
    st = out.state
    values = {f: getattr(st, f) for f in FIELDS if f != "version"}
    if before.version == 0:
        session.execute(
            _INSERT_MT, {"tier_set_id": s.id, "member_id": member_id, "version": 1, **values}
        )
    else:
        params = {f"v_{f}": v for f, v in values.items()}
        done = session.execute(
            _UPDATE_MT,
            {
                **params,
                "v_version": before.version + 1,
                "k_set": s.id,
                "k_member": member_id,
                "k_version": before.version,
            },
        ).first()
        if done is None:
            raise ConcurrentChange(str(member_id))
    now = utcnow()
    for c in out.changes:
        session.execute(
            _INSERT_CHANGE,
            {
                "id": new_id(),
                "tier_set_id": s.id,
                "member_id": member_id,
                "from_tier_id": c.from_tier_id,
                "to_tier_id": c.to_tier_id,
                "reason": c.reason,
                "details": c.details,
                "actor": actor,
                "at": now,
                "on_day": day,
            },
        )
    old, new = s.tier(before.tier_id), s.tier(st.tier_id)
    if new.rank != old.rank:
        topic = "tier.upgraded" if new.rank > old.rank else "tier.downgraded"
        publish(
            session,
            tenant.id,
            topic,
            {
                "member_id": str(member_id),
                "program_id": str(s.program_id),
                "from": old.code,
                "to": new.code,
                "reason": out.changes[-1].reason if out.changes else topic.split(".")[1],
                "secure_until": st.secure_until.isoformat() if st.secure_until else None,
                "on": day.isoformat(),
            },
        )
    if out.at_risk is not None:
        publish(
            session,
            tenant.id,
            "tier.at_risk",
            {"member_id": str(member_id), "program_id": str(s.program_id), **out.at_risk},
        )


def _changed(before: State, out: Outcome) -> bool:
    if out.changes or out.at_risk is not None:
        return True
    after = out.state
    return any(getattr(before, f) != getattr(after, f) for f in FIELDS)


# ---------------------------------------------------------------------- event hooks


def after_activity(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    occurred_at: datetime,
) -> None:
    """Upgrade at once when the member's activity now qualifies for a higher tier."""
    s = structure(session, program_id)
    if s is None:
        return
    day = local_day(tenant, occurred_at)
    before = load_state(session, tenant, s, member_id)
    start, end = s.window_for(day, before.anchor_day)
    figures = member_figures(session, s, member_id, start, end)
    out = rules.decide_activity(s, before, figures, day, utcnow())
    if before.version == 0 and s.tier(out.state.earned_tier_id).rank == 0:
        return  # still in the base tier: nothing to write yet
    if _changed(before, out):
        _save(session, tenant, s, member_id, before, out, day)


def after_refund(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    occurred_at: datetime,
) -> None:
    """A refund that undoes the qualification of the member's tier marks it revoked."""
    s = structure(session, program_id)
    if s is None:
        return
    before = load_state(session, tenant, s, member_id)
    if before.version == 0 or before.qualified_on is None:
        return
    figures = qualification_figures(session, s, member_id, before, local_today(tenant))
    assert figures is not None
    out = rules.decide_refund(s, before, figures, local_day(tenant, occurred_at))
    if _changed(before, out):
        _save(session, tenant, s, member_id, before, out, local_day(tenant, occurred_at))


# ---------------------------------------------------------------------- overrides and plans


def _apply(
    session: Session,
    tenant: Tenant,
    s: Structure,
    member_id: uuid.UUID,
    change: Callable[[State], tuple[str, dict[str, Any]] | None],
    *,
    actor: str,
) -> State:
    day = local_today(tenant)
    before = load_state(session, tenant, s, member_id)
    st = before.copy()
    out = Outcome(st)
    prior = st.tier_id
    described = change(st)
    if described is None:
        return before
    reason, details = described
    rules._moved(s, st, out, prior, reason, details, day, utcnow())
    _save(session, tenant, s, member_id, before, out, day, actor=actor)
    return st


def set_override(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    tier_code: str,
    until: date | None,
    reason: str,
    actor: str,
) -> State:
    """An admin's assignment: the member is at least ``tier_code`` until ``until``
    (inclusive, local date), whatever they qualify for. Invitation-only tiers are reached
    this way. Replaces an earlier override."""
    s = require_structure(session, program_id)
    tier = tier_by_code(s, tier_code)
    if until is not None and until < local_today(tenant):
        raise Conflict(
            f"until {until.isoformat()} is in the past; give a future end date or none",
            code="override_in_past",
            extra={"field": "until"},
        )

    def change(st: State) -> tuple[str, dict[str, Any]]:
        st.override_tier_id, st.override_until, st.override_reason = tier.id, until, reason
        return "override", {
            "tier": tier.code,
            "until": until.isoformat() if until else None,
            "note": reason,
        }

    return _apply(session, tenant, s, member_id, change, actor=actor)


def clear_override(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    actor: str,
) -> State:
    s = require_structure(session, program_id)

    def change(st: State) -> tuple[str, dict[str, Any]] | None:
        if st.override_tier_id is None:
            return None
        ended = s.tier(st.override_tier_id)
        st.override_tier_id, st.override_until, st.override_reason = None, None, None
        return "override_ended", {"tier": ended.code, "removed_by": actor}

    return _apply(session, tenant, s, member_id, change, actor=actor)


def set_plan_benefit(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    tier_code: str,
    mode: str,
    until: date | None,
    actor: str,
    reference: str,
) -> None:
    """A paid membership grants (``grant``: the tier is a floor) or protects (``protect``: no
    downgrade below the earned tier) a tier until ``until`` (inclusive, tenant's local date;
    None = until cleared). Raises NotFound (code ``tier_not_found``) for an unknown tier code.
    Does nothing when the program has no tier set. Idempotent."""
    s = structure(session, program_id)
    if s is None:
        return
    tier = tier_by_code(s, tier_code)
    if mode not in ("grant", "protect"):
        raise ValueError(mode)

    def change(st: State) -> tuple[str, dict[str, Any]] | None:
        if (st.plan_tier_id, st.plan_mode, st.plan_until) == (tier.id, mode, until):
            return None
        st.plan_tier_id, st.plan_mode, st.plan_until = tier.id, mode, until
        if mode == "protect" and s.tier(st.earned_tier_id).rank >= tier.rank:
            st.at_risk_notified_for = None
        return "plan", {
            "tier": tier.code,
            "mode": mode,
            "until": until.isoformat() if until else None,
            "reference": reference,
        }

    _apply(session, tenant, s, member_id, change, actor=actor)


def clear_plan_benefit(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    actor: str,
    reference: str,
) -> None:
    """The membership ended (lapsed, cancelled, refunded): the plan's tier benefit goes.
    The member keeps what they earned; a downgrade still waits for the next evaluation."""
    s = structure(session, program_id)
    if s is None:
        return

    def change(st: State) -> tuple[str, dict[str, Any]] | None:
        if st.plan_tier_id is None:
            return None
        ended = s.tier(st.plan_tier_id)
        st.plan_tier_id, st.plan_mode, st.plan_until = None, None, None
        return "plan_ended", {"tier": ended.code, "reference": reference}

    _apply(session, tenant, s, member_id, change, actor=actor)


# ---------------------------------------------------------------------- evaluation


@dataclass
class EvaluationReport:
    tier_set_id: uuid.UUID
    on: date
    members_seen: int = 0
    upgraded: int = 0
    downgraded: int = 0
    requalified: int = 0
    overrides_ended: int = 0
    plans_ended: int = 0
    at_risk: int = 0
    skipped_concurrent: int = 0


def evaluate_chunk(
    session: Session,
    tenant: Tenant,
    s: Structure,
    day: date,
    after: uuid.UUID | None,
    report: EvaluationReport,
    *,
    limit: int = CHUNK,
) -> uuid.UUID | None:
    """Evaluate up to ``limit`` members after ``after`` (member id order). Returns the last
    member id seen, or None at the end. Writes only what changes."""
    keys = select(_mt.c.member_id).where(_mt.c.tier_set_id == s.id)
    if after is not None:
        keys = keys.where(_mt.c.member_id > after)
    # The chunk's bounds (PostgreSQL has no min() of a uuid; the ids of one chunk are few).
    ids = session.execute(keys.order_by(_mt.c.member_id).limit(limit)).scalars().all()
    if not ids:
        return None
    seen, first, last = len(ids), ids[0], ids[-1]
    report.members_seen += seen
    zero = [Decimal(0)] * len(s.metrics)
    base_id = s.base.id
    if s.window["kind"] == "anniversary_year":
        in_chunk = [_mt.c.tier_set_id == s.id, _mt.c.member_id >= first, _mt.c.member_id <= last]
        rows = session.execute(select(*_STATE).where(*in_chunk).order_by(_mt.c.member_id)).all()
        per_day = _anniversary_days(session, s, first, last, day)
    else:
        rows, figures = _candidates(session, s, first, last, day)
    now = utcnow()
    n = 1 + len(FIELDS)
    for row in rows:
        member_id = row[0]
        before = State(*row[1:n])
        if s.window["kind"] == "anniversary_year":
            start = rules.anniversary_start(before.anchor_day or day, day)
            values = list(zero)
            for d, vals in per_day.get(member_id, ()):
                if d >= start:
                    values = [a + b for a, b in zip(values, vals, strict=True)]
        else:
            values = figures.get(member_id, zero)
        if (
            before.earned_tier_id == base_id
            and before.tier_id == base_id
            and before.override_tier_id is None
            and before.plan_tier_id is None
            and before.revoked_on is None
            and s.qualified(values).rank == 0
        ):
            continue  # in the base tier with nothing to change: the common case, kept cheap
        revoked = (
            qualification_figures(session, s, member_id, before, day)
            if before.revoked_on is not None
            else None
        )
        out = rules.decide_evaluation(s, before, values, day, now, qualification_values=revoked)
        if not _changed(before, out):
            continue
        try:
            with session.begin_nested():
                _save(session, tenant, s, member_id, before, out, day)
        except ConcurrentChange:
            report.skipped_concurrent += 1
            continue
        report.upgraded += out.upgraded
        report.downgraded += out.downgraded
        report.requalified += out.requalified and not out.upgraded
        report.at_risk += out.at_risk is not None
        report.overrides_ended += any(c.reason == "override_ended" for c in out.changes)
        report.plans_ended += any(c.reason == "plan_ended" for c in out.changes)
    return last if seen == limit else None


def _candidates(
    session: Session, s: Structure, first: uuid.UUID, last: uuid.UUID, day: date
) -> tuple[Sequence[Any], dict[uuid.UUID, list[Decimal]]]:
    """The state and window figures of the members from ``first`` to ``last`` that the
    evaluation may have to change, in one statement. Left in the database: members with no
    override, plan or revocation whose figures are below every tier above their earned tier
    that qualification reaches (with a margin of 1: SQLite sums in floating point), and who
    are either plainly in the base tier or secure long enough that neither a requalification
    (``secure_until`` already at least what qualifying today would give), a downgrade nor an
    at-risk warning can be due. ``decide_evaluation`` changes nothing for them, so only
    members it would leave alone are left out."""
    start, _end = s.window_for(day, day)
    conds = [
        _act.c.program_id == s.program_id,
        _act.c.member_id >= first,
        _act.c.member_id <= last,
        _act.c.day <= day,
    ]
    if start is not None:
        conds.append(_act.c.day >= start)
    sums = (
        select(_act.c.member_id, *[a.label(f"m{i}") for i, a in enumerate(_aggregates(s))])
        .where(*conds)
        .group_by(_act.c.member_id)
        .subquery()
    )
    values = [func.coalesce(sums.c[f"m{i}"], 0) for i in range(len(s.metrics))]
    join = and_ if s.combine == "all" else or_
    reach = [
        and_(
            _mt.c.earned_tier_id.in_([u.id for u in s.tiers if u.rank < t.rank]),
            join(*[v >= literal(float(x) - 1) for v, x in zip(values, t.thresholds, strict=True)]),
        )
        for t in s.tiers[1:]
        if not t.invitation_only
    ]
    base = s.base.id
    untouched = and_(
        _mt.c.override_tier_id.is_(None),
        _mt.c.plan_tier_id.is_(None),
        _mt.c.revoked_on.is_(None),
    )
    secure_enough = max(
        s.retention_end(day, None), day + timedelta(days=s.at_risk_days - s.grace_days)
    )
    plain = or_(
        and_(_mt.c.tier_id == base, _mt.c.earned_tier_id == base),
        and_(
            _mt.c.tier_id == _mt.c.earned_tier_id,
            _mt.c.secure_until.is_not(None),
            _mt.c.secure_until >= secure_enough,
        ),
    )
    stmt = (
        select(*_STATE, *values)
        .select_from(_mt.outerjoin(sums, sums.c.member_id == _mt.c.member_id))
        .where(
            _mt.c.tier_set_id == s.id,
            _mt.c.member_id >= first,
            _mt.c.member_id <= last,
            or_(not_(and_(untouched, plain)), *reach),
        )
        .order_by(_mt.c.member_id)  # one lock order for concurrent runs (PostgreSQL)
    )
    rows = session.execute(stmt).all()
    n = 1 + len(FIELDS)
    return rows, {row[0]: _figures(row[n:]) for row in rows}


def _anniversary_days(
    session: Session, s: Structure, first: uuid.UUID, last: uuid.UUID, day: date
) -> dict[uuid.UUID, list[tuple[date, list[Decimal]]]]:
    """Per member and day over the last year: each member's window starts on their own
    anniversary, so the last step of the sum is done per member."""
    stmt = (
        select(_act.c.member_id, _act.c.day, *_aggregates(s))
        .where(
            _act.c.program_id == s.program_id,
            _act.c.member_id >= first,
            _act.c.member_id <= last,
            _act.c.day <= day,
            _act.c.day > day - timedelta(days=367),
        )
        .group_by(_act.c.member_id, _act.c.day)
    )
    out: dict[uuid.UUID, list[tuple[date, list[Decimal]]]] = {}
    for row in session.execute(stmt):
        out.setdefault(row[0], []).append((row[1], _figures(row[2:])))
    return out


def evaluate(
    db: Database,
    tenant_id: uuid.UUID,
    program_id: uuid.UUID,
    on: date | None = None,
    *,
    chunk: int = CHUNK,
) -> EvaluationReport:
    """The nightly evaluation of one program's tier set, in chunks of ``chunk`` members,
    each its own transaction (memory does not grow with the number of members). Safe to
    re-run (a second run on the same day changes nothing) and to run twice at once (a
    member moved by the other run is skipped: compare-and-set)."""
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        s = require_structure(session, program_id)
        day = on or local_today(tenant)
        needs_enrolment = (
            session.execute(select(TierSet.evaluated_on).where(TierSet.id == s.id)).scalar_one()
            is None
        )
        session.expunge(tenant)
    report = EvaluationReport(tier_set_id=s.id, on=day)
    if needs_enrolment:
        _enrol_missing(db, tenant, s, chunk)
    after: uuid.UUID | None = None
    while True:
        with db.session() as session:
            session.add(tenant)
            after = evaluate_chunk(session, tenant, s, day, after, report, limit=chunk)
            session.commit()
            session.expunge(tenant)
        if after is None:
            break
    with db.session() as session:
        session.execute(
            update(TierSet)
            .where(TierSet.id == s.id)
            .values(evaluated_on=func.coalesce(TierSet.evaluated_on, literal(day)))
        )
        session.execute(
            update(TierSet)
            .where(TierSet.id == s.id, TierSet.evaluated_on < day)
            .values(evaluated_on=day)
        )
        session.commit()
    return report


def _enrol_missing(db: Database, tenant: Tenant, s: Structure, chunk: int) -> None:
    """After the structure was created or changed: every member with activity and no
    standing yet gets one in the base tier, so this evaluation places members who qualified
    before the tiers existed (or before the thresholds were lowered). In chunks."""
    dialect = db.engine.dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    has_row = (
        select(_mt.c.member_id)
        .where(_mt.c.tier_set_id == s.id, _mt.c.member_id == _act.c.member_id)
        .exists()
    )
    after: uuid.UUID | None = None
    while True:
        with db.session() as session:
            q = (
                select(_act.c.member_id)
                .distinct()
                .where(_act.c.program_id == s.program_id, ~has_row)
            )
            if after is not None:
                q = q.where(_act.c.member_id > after)
            ids = session.execute(q.order_by(_act.c.member_id).limit(chunk)).scalars().all()
            if not ids:
                return
            created = dict(
                session.execute(
                    select(Member.id, Member.created_at).where(Member.id.in_(ids))
                ).all()
            )
            now = utcnow()
            rows = [
                {
                    "tier_set_id": s.id,
                    "member_id": m,
                    "tier_id": s.base.id,
                    "since": now,
                    "earned_tier_id": s.base.id,
                    "earned_since": now,
                    "anchor_day": local_day(tenant, created[m]),
                    "version": 1,
                }
                for m in ids
                if m in created
            ]
            if rows:
                session.execute(make(_mt).on_conflict_do_nothing(), rows)
            session.commit()
            after = ids[-1]


def due_evaluations(db: Database, now: datetime | None = None) -> Iterator[EvaluationReport]:
    """Every tier set whose tenant's day has begun since its last evaluation (the job)."""
    with db.session() as session:
        rows = session.execute(
            select(TierSet.program_id, TierSet.evaluated_on, Program.tenant_id, Tenant.timezone)
            .join(Program, Program.id == TierSet.program_id)
            .join(Tenant, Tenant.id == Program.tenant_id)
        ).all()
    for program_id, evaluated_on, tenant_id, tz in rows:
        today = as_utc(now or utcnow()).astimezone(zone(tz)).date()
        if evaluated_on is None or evaluated_on < today:
            yield evaluate(db, tenant_id, program_id, today)


# ---------------------------------------------------------------------- member merge

_EARNED = (
    "earned_tier_id",
    "earned_since",
    "qualified_on",
    "secure_until",
    "revoked_on",
    "previous_tier_id",
    "previous_secure_until",
)


def merge_members(
    session: Session, tenant: Tenant, source_id: uuid.UUID, survivor_id: uuid.UUID, *, actor: str
) -> None:
    """Fold the source member's tier standing into the survivor's: its activity counts for
    the survivor from now on, the higher earned tier (with its retention) is kept, and an
    override or plan benefit the survivor lacks is taken over. The source's history stays."""
    from setia.tiers.activity import Activity, record_many

    # By the tenant's programs and tier sets: the keys of tier_activity and member_tiers start
    # with them (a member alone would walk both tables, which grow with every purchase).
    tenant_programs = list(
        session.execute(select(Program.id).where(Program.tenant_id == tenant.id)).scalars()
    )
    rows = session.execute(
        select(TierActivity).where(
            TierActivity.program_id.in_(tenant_programs), TierActivity.member_id == source_id
        )
    ).scalars()
    moved = [
        Activity(r.program_id, survivor_id, r.day, r.kind, r.spend, r.points, r.orders, r.count)
        for r in rows
    ]
    session.execute(
        _act.delete().where(_act.c.program_id.in_(tenant_programs), _act.c.member_id == source_id)
    )
    record_many(session, moved)
    sets = dict(
        session.execute(
            select(TierSet.id, TierSet.program_id).where(TierSet.program_id.in_(tenant_programs))
        ).all()
    )
    held = session.execute(
        select(MemberTier.tier_set_id)
        .where(MemberTier.tier_set_id.in_(list(sets)), MemberTier.member_id == source_id)
        .order_by(MemberTier.tier_set_id)
    ).scalars()
    program_ids = [sets[tier_set_id] for tier_set_id in held]
    for program_id in program_ids:
        s = structure(session, program_id)
        assert s is not None
        src = load_state(session, tenant, s, source_id)
        before = load_state(session, tenant, s, survivor_id)
        st = before.copy()
        out = Outcome(st)
        day = local_today(tenant)
        if s.tier(src.earned_tier_id).rank > s.tier(st.earned_tier_id).rank:
            for f in _EARNED:
                setattr(st, f, getattr(src, f))
        if st.override_tier_id is None and src.override_tier_id is not None:
            st.override_tier_id = src.override_tier_id
            st.override_until, st.override_reason = src.override_until, src.override_reason
        if st.plan_tier_id is None and src.plan_tier_id is not None:
            st.plan_tier_id, st.plan_mode, st.plan_until = (
                src.plan_tier_id,
                src.plan_mode,
                src.plan_until,
            )
        rules._moved(
            s, st, out, before.tier_id, "merged", {"source": str(source_id)}, day, utcnow()
        )
        _save(session, tenant, s, survivor_id, before, out, day, actor=actor)
        session.execute(_mt.delete().where(_mt.c.tier_set_id == s.id, _mt.c.member_id == source_id))
