"""The tier rules as pure functions: windows, qualification, and what an event or an
evaluation does to a member's standing. No database here, so every edge (first and last day
of a window, leap days, grace, retention) is testable on its own.

Invariants (tested in tests/tiers):

1. The earned tier goes up only when the member qualifies for a higher tier (at once, on
   the event's day) and down only at an evaluation: after ``secure_until + grace_days``
   (one level or straight to the qualified level), or when a refund revoked the
   qualification that reached it (back to what the member qualifies for, or the tier held
   before, if that was still secure).
2. The effective tier is the highest of the earned tier, an active override and an active
   plan grant; an active plan ``protect`` keeps the earned tier from falling below the plan's.
3. ``decide_evaluation`` is idempotent: applied twice on the same day with the same
   figures, the second application changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta

FOREVER = date(9999, 12, 31)
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class TierDef:
    id: uuid.UUID
    code: str
    rank: int
    thresholds: tuple[Decimal, ...]
    invitation_only: bool
    names: dict[str, str]


@dataclass(frozen=True)
class Structure:
    """A tier set, read once and shared by every member it is applied to."""

    id: uuid.UUID
    program_id: uuid.UUID
    metrics: tuple[dict[str, Any], ...]
    combine: str
    window: dict[str, Any]
    retention: dict[str, Any]
    downgrade: str
    grace_days: int
    at_risk_days: int
    tiers: tuple[TierDef, ...]  # by rank

    @property
    def base(self) -> TierDef:
        return self.tiers[0]

    def by_id(self, tier_id: uuid.UUID | None) -> TierDef | None:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        return None

    def tier(self, tier_id: uuid.UUID) -> TierDef:
        t = self.by_id(tier_id)
        return t if t is not None else self.base

    # ------------------------------------------------------------------ qualification

    def meets(self, tier: TierDef, values: Sequence[Decimal]) -> bool:
        checks = [v >= need for v, need in zip(values, tier.thresholds, strict=True)]
        return all(checks) if self.combine == "all" else any(checks)

    def qualified(self, values: Sequence[Decimal]) -> TierDef:
        """The highest tier reachable by qualification whose thresholds the figures meet."""
        for t in reversed(self.tiers):
            if not t.invitation_only and self.meets(t, values):
                return t
        return self.base

    def next_tier(self, above: TierDef) -> TierDef | None:
        for t in self.tiers:
            if t.rank > above.rank and not t.invitation_only:
                return t
        return None

    def one_below(self, tier: TierDef) -> TierDef:
        lower = [t for t in self.tiers if t.rank < tier.rank and not t.invitation_only]
        return lower[-1] if lower else self.base

    # ------------------------------------------------------------------ windows

    def window_for(self, day: date, anchor: date | None) -> tuple[date | None, date | None]:
        """First and last local day of the window that holds ``day`` (None: open)."""
        kind = self.window["kind"]
        if kind == "lifetime":
            return None, None
        if kind == "calendar_year":
            return date(day.year, 1, 1), date(day.year, 12, 31)
        if kind == "rolling":
            return day - relativedelta(months=int(self.window["months"])) + ONE_DAY, day
        start = anniversary_start(anchor or day, day)
        k = start.year - (anchor or day).year
        end = (anchor or day) + relativedelta(years=k + 1) - ONE_DAY
        return start, end

    def retention_end(self, day: date, anchor: date | None) -> date:
        """The last day a tier reached (or qualified for again) on ``day`` is kept."""
        if self.window["kind"] == "lifetime":
            return FOREVER
        kind = self.retention["kind"]
        if kind == "none":
            return day
        if kind == "months":
            return day + relativedelta(months=int(self.retention["months"]))
        _start, end = self.window_for(day, anchor)
        assert end is not None
        _next_start, next_end = self.window_for(end + ONE_DAY, anchor)
        assert next_end is not None
        return next_end


def anniversary_start(anchor: date, day: date) -> date:
    """The last anniversary of ``anchor`` on or before ``day`` (29 Feb falls on 28 Feb)."""
    start = anchor + relativedelta(years=day.year - anchor.year)
    if start > day:
        start = anchor + relativedelta(years=day.year - anchor.year - 1)
    return start


# ---------------------------------------------------------------------- member state


@dataclass
class State:
    tier_id: uuid.UUID
    since: datetime
    earned_tier_id: uuid.UUID
    earned_since: datetime
    qualified_on: date | None = None
    secure_until: date | None = None
    revoked_on: date | None = None
    previous_tier_id: uuid.UUID | None = None
    previous_secure_until: date | None = None
    override_tier_id: uuid.UUID | None = None
    override_until: date | None = None
    override_reason: str | None = None
    plan_tier_id: uuid.UUID | None = None
    plan_mode: str | None = None
    plan_until: date | None = None
    anchor_day: date | None = None
    at_risk_notified_for: date | None = None
    evaluated_on: date | None = None
    version: int = 0

    def copy(self) -> State:
        return replace(self)


FIELDS = tuple(State.__dataclass_fields__)


@dataclass(frozen=True)
class Change:
    reason: str  # upgraded downgraded revoked override override_ended plan plan_ended
    from_tier_id: uuid.UUID | None
    to_tier_id: uuid.UUID
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    state: State
    changes: list[Change] = field(default_factory=list)
    requalified: bool = False
    at_risk: dict[str, Any] | None = None

    @property
    def upgraded(self) -> bool:
        return any(c.reason == "upgraded" for c in self.changes)

    @property
    def downgraded(self) -> bool:
        return any(c.reason in ("downgraded", "revoked") for c in self.changes)


def active_until(until: date | None, day: date) -> bool:
    return until is None or until >= day


def effective(s: Structure, st: State, day: date) -> TierDef:
    best = s.tier(st.earned_tier_id)
    if st.override_tier_id is not None and active_until(st.override_until, day):
        o = s.tier(st.override_tier_id)
        best = o if o.rank > best.rank else best
    if st.plan_tier_id is not None and st.plan_mode == "grant" and active_until(st.plan_until, day):
        p = s.tier(st.plan_tier_id)
        best = p if p.rank > best.rank else best
    return best


def protected_floor(s: Structure, st: State, day: date) -> TierDef | None:
    if (
        st.plan_tier_id is not None
        and st.plan_mode == "protect"
        and active_until(st.plan_until, day)
    ):
        return s.tier(st.plan_tier_id)
    return None


def _settle(s: Structure, st: State, out: Outcome, day: date, now: datetime, reason: str) -> None:
    """Recompute the effective tier; if it moved, stamp ``since``."""
    eff = effective(s, st, day)
    if eff.id != st.tier_id:
        if not out.changes or out.changes[-1].to_tier_id != eff.id:
            out.changes.append(Change(reason, st.tier_id, eff.id, {}))
        st.tier_id = eff.id
        st.since = now


def _moved(
    s: Structure,
    st: State,
    out: Outcome,
    before: uuid.UUID,
    reason: str,
    details: dict[str, Any],
    day: date,
    now: datetime,
) -> None:
    """An override or plan benefit was set or ended: one history line, effective recomputed."""
    eff = effective(s, st, day)
    out.changes.append(Change(reason, before, eff.id, details))
    if eff.id != st.tier_id:
        st.tier_id = eff.id
        st.since = now


def _earned_move(
    s: Structure,
    st: State,
    out: Outcome,
    to: TierDef,
    reason: str,
    day: date,
    details: dict[str, Any],
) -> None:
    before_eff = effective(s, st, day)
    earned = s.tier(st.earned_tier_id)
    st.earned_tier_id = to.id
    after_eff = effective(s, st, day)
    out.changes.append(
        Change(
            reason,
            before_eff.id,
            after_eff.id,
            {"earned_from": earned.code, "earned_to": to.code, **details},
        )
    )


def _qualify(
    s: Structure, st: State, out: Outcome, values: Sequence[Decimal], day: date, now: datetime
) -> TierDef:
    q = s.qualified(values)
    earned = s.tier(st.earned_tier_id)
    if q.rank > earned.rank:
        st.previous_tier_id, st.previous_secure_until = earned.id, st.secure_until
        _earned_move(s, st, out, q, "upgraded", day, {"figures": [str(v) for v in values]})
        st.earned_since = now
        st.qualified_on = day
        st.secure_until = s.retention_end(day, st.anchor_day)
        st.revoked_on = None
        st.at_risk_notified_for = None
    elif q.rank == earned.rank and q.rank > 0:
        secure = s.retention_end(day, st.anchor_day)
        if st.revoked_on is not None or st.secure_until is None or secure > st.secure_until:
            st.secure_until = max(secure, st.secure_until or secure)
            st.qualified_on = day
            st.revoked_on = None
            out.requalified = True
    return q


def decide_activity(
    s: Structure, st: State, values: Sequence[Decimal], day: date, now: datetime
) -> Outcome:
    """After an event: upgrade at once if the window holding ``day`` now qualifies higher;
    extend the current tier's retention if it qualifies again. Never a downgrade."""
    st = st.copy()
    out = Outcome(st)
    _qualify(s, st, out, values, day, now)
    _settle(s, st, out, day, now, "upgraded")
    return out


def decide_refund(
    s: Structure, st: State, values_at_qualification: Sequence[Decimal], day: date
) -> Outcome:
    """After a refund: if the figures of the window in which the earned tier was reached (or
    last qualified for) no longer reach it, the qualification is revoked; the next
    evaluation moves the member (downgrades happen only at evaluation)."""
    st = st.copy()
    out = Outcome(st)
    earned = s.tier(st.earned_tier_id)
    if earned.rank == 0 or st.qualified_on is None or st.revoked_on is not None:
        return out
    if s.qualified(values_at_qualification).rank < earned.rank:
        st.revoked_on = day
    return out


def decide_evaluation(
    s: Structure,
    st: State,
    values: Sequence[Decimal],
    day: date,
    now: datetime,
    *,
    qualification_values: Sequence[Decimal] | None = None,
) -> Outcome:
    """The nightly decision for one member. ``values`` are the figures of the window holding
    ``day``; ``qualification_values`` those of the window the earned tier was reached in (up
    to ``day``), needed only when a refund revoked it: the member then falls to the highest
    of what that window still reaches (kept as long as it was), the tier held before (if
    still secure) and what ``values`` reach."""
    st = st.copy()
    out = Outcome(st)
    if st.override_tier_id is not None and not active_until(st.override_until, day):
        ended, before = s.tier(st.override_tier_id), st.tier_id
        st.override_tier_id, st.override_until, st.override_reason = None, None, None
        _moved(s, st, out, before, "override_ended", {"tier": ended.code}, day, now)
    if st.plan_tier_id is not None and not active_until(st.plan_until, day):
        ended, before = s.tier(st.plan_tier_id), st.tier_id
        st.plan_tier_id, st.plan_mode, st.plan_until = None, None, None
        _moved(s, st, out, before, "plan_ended", {"tier": ended.code}, day, now)
    q = _qualify(s, st, out, values, day, now)
    earned = s.tier(st.earned_tier_id)
    floor = protected_floor(s, st, day)
    figures = {"figures": [str(v) for v in values], "qualified": q.code}
    revoked_move = False
    if st.revoked_on is not None:
        prev = s.by_id(st.previous_tier_id)
        prev_ok = prev is not None and (st.previous_secure_until or date.min) >= day
        if prev_ok and qualification_values is not None and st.qualified_on is not None:
            # The tier before counts only if it was reached in an earlier window (its
            # retention ends sooner); reached in the same window, the refunded figures may
            # be what reached it, and what that window still reaches is known exactly.
            prev_ok = (st.previous_secure_until or date.min) < s.retention_end(
                st.qualified_on, st.anchor_day
            )
        target = prev if prev is not None and prev_ok and prev.rank > q.rank else q
        secure = st.previous_secure_until if prev is not None and target.id == prev.id else None
        # The day the new earned tier was qualified for: a later refund can revoke only a
        # tier that figures reached (not one kept by retention or a one-level step).
        since: date | None = day if target.id == q.id else None
        if qualification_values is not None and st.qualified_on is not None:
            still = s.qualified(qualification_values)
            kept = s.retention_end(st.qualified_on, st.anchor_day)
            if still.rank > target.rank and still.rank < earned.rank and kept >= day:
                target, secure, since = still, kept, st.qualified_on
        if floor is not None and floor.rank > target.rank:
            target = floor if floor.rank < earned.rank else earned
            secure, since = None, None
        if target.rank < earned.rank:
            _earned_move(s, st, out, target, "revoked", day, figures)
            st.earned_since = now
            st.secure_until = (
                secure
                if secure is not None
                else (s.retention_end(day, st.anchor_day) if target.rank > 0 else None)
            )
            st.qualified_on = since if target.rank > 0 else None
            revoked_move = True
        st.revoked_on = None
        st.previous_tier_id, st.previous_secure_until = None, None
    # A revocation that moved nothing (a floor, or nothing lower to go to) does not shield
    # the tier from the ordinary end of its retention.
    downgrade_on = _downgrade_on(s, st)
    if not revoked_move and earned.rank > q.rank and downgrade_on is not None:
        assert st.secure_until is not None
        target = _downgrade_target(s, earned, q, floor)
        if target.rank < earned.rank and day >= downgrade_on:
            _earned_move(
                s, st, out, target, "downgraded", day,
                {**figures, "secure_until": st.secure_until.isoformat()},
            )  # fmt: skip
            st.earned_since = now
            st.previous_tier_id, st.previous_secure_until = None, None
            st.secure_until = s.retention_end(day, st.anchor_day) if target.rank > 0 else None
            st.qualified_on = day if target.rank > 0 and target.id == q.id else None
            st.at_risk_notified_for = None
    # At risk: the tier now earned (perhaps just reached by a move above) would be lowered
    # within ``at_risk_days``. Sent once per ``secure_until``.
    earned = s.tier(st.earned_tier_id)
    downgrade_on = _downgrade_on(s, st)
    if earned.rank > q.rank and downgrade_on is not None:
        target = _downgrade_target(s, earned, q, floor)
        if (
            target.rank < earned.rank
            and downgrade_on - timedelta(days=s.at_risk_days) <= day < downgrade_on
            and st.at_risk_notified_for != st.secure_until
        ):
            st.at_risk_notified_for = st.secure_until
            out.at_risk = {
                "tier": earned.code,
                "would_become": target.code,
                "on": downgrade_on.isoformat(),
                "qualified": q.code,
            }
    _settle(s, st, out, day, now, "downgraded" if out.downgraded else "upgraded")
    return out


def _downgrade_target(s: Structure, earned: TierDef, q: TierDef, floor: TierDef | None) -> TierDef:
    """Where a downgrade from ``earned`` lands: one level down or straight to the qualified
    tier (never below it), and never below an active plan's protected tier."""
    target = q if s.downgrade == "to_qualified" else s.one_below(earned)
    if target.rank < q.rank:
        target = q
    if floor is not None and floor.rank > target.rank:
        target = floor if floor.rank < earned.rank else earned
    return target


def _downgrade_on(s: Structure, st: State) -> date | None:
    """The first evaluation day a downgrade may happen (None: never, e.g. kept forever)."""
    if st.secure_until is None or st.secure_until >= FOREVER - timedelta(days=s.grace_days + 1):
        return None
    return st.secure_until + timedelta(days=s.grace_days + 1)
