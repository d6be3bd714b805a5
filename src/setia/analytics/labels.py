"""Happy-vs-loyal labels and loyalty types per member, computed on demand (nothing stored).

From a program's :class:`~setia.analytics.members.Analysis` (orders, refunds, redemptions,
local purchase days, P(alive) when the purchase model could be fitted) plus three
set-based, portable queries grouped by member:

- **promotion orders**: the member's orders at or before ``as_of`` whose purchase event got
  points from a rule other than the program's base rate (a ``rule_awards`` row with a
  ``rule_id`` — the base rate writes none; campaigns' rules are rules too), leaving out the
  status benefits (a multiplier by the member's tier or paid plan, :func:`benefit_rules`);
- **advocacy events**: the member's events of the advocacy types (default
  ``review.submitted``) at or before ``as_of``;
- **qualified referrals**: the member's referrals as referrer (``referrals`` rows) that
  qualified — status ``qualified`` or ``rewarded`` (:data:`setia.referrals.service.COUNTED`),
  with ``qualified_at`` at or before ``as_of``; pending, held, rejected and cancelled ones do
  not count. Surveys (promoter scores) are not recorded by the service yet;
- the **local purchase days** of each member (streamed ordered by member, chunked, as
  ``members.summarise_program`` does) for the gaps between purchase days.

Exactly one label per member, the first that applies in :data:`PRECEDENCE`. Thresholds are
a :class:`Thresholds` (defaults below); per tenant they are accepted as API query parameters
and CLI options for now — stored per-tenant settings are a later slice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.analytics import members
from setia.core.errors import InvalidInput
from setia.events.models import Event, Order
from setia.referrals.models import Referral
from setia.referrals.service import COUNTED
from setia.rules.conditions import BENEFIT_FACTORS
from setia.rules.models import Rule, RuleAward

LABELS = ("none", "dissatisfied", "new", "lost", "loyal", "at_risk", "happy")
PRECEDENCE = LABELS  # checked in this order; the first that applies wins
TYPES = ("habitual", "transactional", "emotional")
PRIMARY = (*TYPES, "none")


@dataclass(frozen=True)
class Thresholds:
    """Label and loyalty-type thresholds (days are local calendar days)."""

    loyal_min_days: int = 3  # N: purchase days for a repeat buyer
    loyal_min_tenure_days: int = 30  # M: days from the first purchase to as_of
    active_p_alive: float = 0.5  # p: P(alive) at or above this is still active
    active_days: int = 45  # K: or a purchase within this many days
    new_days: int = 30  # D: first purchase fewer than D days ago
    lost_days: int = 180  # L: no purchase for L days or more
    lost_p_alive: float = 0.0  # q: P(alive) below this is lost (0: off, lost is by days)
    min_gaps: int = 2  # gaps between purchase days needed for a habitual score
    min_weeks: int = 4  # whole weeks from the first to the last purchase a habit needs
    min_orders: int = 3  # orders needed before promotions and redemptions score
    redemptions_per_order_full: float = 0.5  # redemptions per order that score 1
    advocacy_full: int = 3  # advocacy events plus qualified referrals that score 1
    primary_min_score: float = 0.5  # a primary type needs at least this score
    advocacy_types: tuple[str, ...] = ("review.submitted",)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> InvalidInput:
            return InvalidInput(f"{name} {why}", code="bad_threshold", extra={"field": name})

        for name in ("loyal_min_days", "advocacy_full", "min_weeks", "min_orders"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        for name in ("loyal_min_tenure_days", "active_days", "new_days", "min_gaps"):
            if getattr(self, name) < 0:
                raise bad(name, "must be 0 or more")
        if self.lost_days <= self.active_days:
            raise bad("lost_days", f"must be more than active_days ({self.active_days})")
        for name in ("active_p_alive", "lost_p_alive", "primary_min_score"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must be between 0 and 1")
        if self.lost_p_alive > self.active_p_alive:
            raise bad("lost_p_alive", f"must not exceed active_p_alive ({self.active_p_alive})")
        if self.redemptions_per_order_full <= 0:
            raise bad("redemptions_per_order_full", "must be positive")
        if not self.advocacy_types or any(not t for t in self.advocacy_types):
            raise bad("advocacy_types", "needs at least one event type")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["advocacy_types"] = list(self.advocacy_types)
        return out


@dataclass(frozen=True)
class MemberLabel:
    member_id: uuid.UUID
    label: str
    evidence: dict[str, Any]
    scores: dict[str, float]
    primary: str
    loyalty_evidence: dict[str, Any] = field(default_factory=dict)


def benefit_rules(session: Session, program_id: uuid.UUID) -> list[uuid.UUID]:
    """Rules whose multiplier is a status benefit (the member's tier's or paid plan's factor,
    ``rules.conditions.BENEFIT_FACTORS``): they pay on every order of a member of that tier or
    plan, so they say nothing about the member's sensitivity to promotions."""
    found = []
    for rid, definition in session.execute(
        select(Rule.id, Rule.definition).where(Rule.program_id == program_id)
    ):
        effect = (definition or {}).get("effect") or {}
        if isinstance(effect, dict) and effect.get("factor") in BENEFIT_FACTORS:
            found.append(rid)
    return found


def _promo_orders(
    session: Session, program_id: uuid.UUID, as_of: dt.datetime, member_id: uuid.UUID | None
) -> dict[uuid.UUID, int]:
    where = [
        RuleAward.program_id == program_id,
        RuleAward.rule_id.is_not(None),
        RuleAward.points > 0,
        RuleAward.event_id.is_not(None),
    ]
    benefits = benefit_rules(session, program_id)
    if benefits:
        where.append(RuleAward.rule_id.not_in(benefits))
    bonus = select(RuleAward.event_id).where(*where).distinct().subquery()
    q = (
        select(Order.member_id, func.count())
        .join(bonus, bonus.c.event_id == Order.event_id)
        .where(Order.program_id == program_id, Order.occurred_at <= as_of)
        .group_by(Order.member_id)
    )
    if member_id is not None:
        q = q.where(Order.member_id == member_id)
    return {mid: int(n) for mid, n in session.execute(q)}


def _advocacy(
    session: Session,
    program_id: uuid.UUID,
    as_of: dt.datetime,
    types: Sequence[str],
    member_id: uuid.UUID | None,
) -> dict[uuid.UUID, int]:
    q = (
        select(Event.member_id, func.count())
        .where(
            Event.program_id == program_id,
            Event.type.in_(list(types)),
            Event.occurred_at <= as_of,
        )
        .group_by(Event.member_id)
    )
    if member_id is not None:
        q = q.where(Event.member_id == member_id)
    return {mid: int(n) for mid, n in session.execute(q)}


def _referrals(
    session: Session, program_id: uuid.UUID, as_of: dt.datetime, member_id: uuid.UUID | None
) -> dict[uuid.UUID, int]:
    """Qualified (or rewarded) referrals per referrer, qualified at or before ``as_of``."""
    q = (
        select(Referral.referrer_id, func.count())
        .where(
            Referral.program_id == program_id,
            Referral.status.in_(COUNTED),
            Referral.qualified_at.is_not(None),
            Referral.qualified_at <= as_of,
        )
        .group_by(Referral.referrer_id)
    )
    if member_id is not None:
        q = q.where(Referral.referrer_id == member_id)
    return {mid: int(n) for mid, n in session.execute(q)}


def _gaps(
    session: Session,
    program_id: uuid.UUID,
    as_of: dt.datetime,
    tz: str,
    member_id: uuid.UUID | None,
) -> dict[uuid.UUID, list[int]]:
    """Days between consecutive local purchase days, per member with two or more."""
    mids, times, _ = members._purchase_rows(session, program_id, as_of, member_id)
    days = members.local_days(times, tz)
    out: dict[uuid.UUID, list[int]] = {}
    start = 0
    n = len(mids)
    while start < n:
        end = start
        while end < n and mids[end] == mids[start]:
            end += 1
        uniq = np.unique(days[start:end])
        if uniq.shape[0] >= 2:
            out[mids[start]] = [int(g) for g in np.diff(uniq)]
        start = end
    return out


def _label(
    row: members.MemberRow,
    recency: int | None,
    tenure: int | None,
    p_alive: float | None,
    th: Thresholds,
    advocacy: int = 0,
) -> tuple[str, dict[str, Any]]:
    ev: dict[str, Any] = {
        "purchase_days": row.purchase_days,
        "refunds": str(row.refunds),
        "recency_days": recency,
        "tenure_days": tenure,
        "p_alive": p_alive,
    }
    if row.purchase_days == 0 or recency is None or tenure is None:
        if row.refunds > 0:
            return "dissatisfied", {**ev, "rule": "no purchase left after refunds"}
        return "none", {**ev, "rule": "no purchase"}
    if tenure < th.new_days:
        return "new", {**ev, "rule": "tenure_days < new_days", "new_days": th.new_days}
    if recency >= th.lost_days:
        return "lost", {**ev, "rule": "recency_days >= lost_days", "lost_days": th.lost_days}
    if p_alive is not None and p_alive < th.lost_p_alive:
        return "lost", {**ev, "rule": "p_alive < lost_p_alive", "lost_p_alive": th.lost_p_alive}
    repeat = row.purchase_days >= th.loyal_min_days and tenure >= th.loyal_min_tenure_days
    active_by = (
        "p_alive >= active_p_alive"
        if p_alive is not None and p_alive >= th.active_p_alive
        else "recency_days <= active_days"
        if recency <= th.active_days
        else None
    )
    rep = {
        "loyal_min_days": th.loyal_min_days,
        "loyal_min_tenure_days": th.loyal_min_tenure_days,
        "active_p_alive": th.active_p_alive,
        "active_days": th.active_days,
    }
    if repeat and active_by is not None:
        # Advocacy (reviews, qualified referrals) is the loyal member's evidence where known;
        # it does not decide the label, which needs repeat buying, tenure and activity.
        return "loyal", {
            **ev,
            **rep,
            "advocacy": advocacy,
            "rule": f"repeat buyer, active ({active_by})",
        }
    if repeat:
        return "at_risk", {**ev, **rep, "rule": "repeat buyer, no longer active"}
    if row.refunds == 0:
        return "happy", {**ev, **rep, "rule": "bought, no refunds, not yet a repeat buyer"}
    return "dissatisfied", {**ev, "rule": "refunds, not a repeat buyer"}


def _types(
    row: members.MemberRow,
    gaps: list[int],
    promo: int,
    advocacy: int,
    referrals: int,
    th: Thresholds,
) -> tuple[dict[str, float], str, dict[str, Any]]:
    promo_share = promo / row.orders if row.orders else 0.0
    per_order = row.redemptions / row.orders if row.orders else 0.0
    redeem_score = min(1.0, per_order / th.redemptions_per_order_full)
    enough_orders = row.orders >= th.min_orders
    cv: float | None = None
    dispersion: float | None = None
    weeks = 0
    if len(gaps) >= th.min_gaps and gaps:
        arr = np.array(gaps, dtype=np.float64)
        cv = float(arr.std() / arr.mean()) if arr.mean() > 0 else None
        # Purchase days per whole week (7-day blocks from the first purchase day) and their
        # index of dispersion (variance / mean): about 1 for a member buying at random
        # (Poisson), near 0 for a routine on fixed weekdays, whose gaps (1,1,1,1,3 for Monday
        # to Friday) are uneven though the weeks are alike.
        offsets = np.concatenate(([0], np.cumsum(arr))).astype(np.int64)
        weeks = int(offsets[-1] + 1) // 7
        if weeks >= th.min_weeks:
            per_week = np.bincount(offsets // 7, minlength=weeks)[:weeks].astype(np.float64)
            dispersion = float(per_week.var() / per_week.mean())
    irregularity = (
        None if cv is None or dispersion is None or weeks < th.min_weeks else min(cv, dispersion)
    )
    habitual = 0.0 if irregularity is None else max(0.0, 1.0 - irregularity) * (1.0 - promo_share)
    transactional = (promo_share + redeem_score) / 2.0 if enough_orders else 0.0
    emotional = min(1.0, (advocacy + referrals) / th.advocacy_full)
    scores = {
        "habitual": round(habitual, 4),
        "transactional": round(transactional, 4),
        "emotional": round(emotional, 4),
    }
    best = max(TYPES, key=lambda k: scores[k])  # ties: the order of TYPES
    primary = best if scores[best] >= th.primary_min_score and scores[best] > 0 else "none"
    evidence: dict[str, Any] = {
        "habitual": {
            "gaps_days": gaps,
            "gap_cv": None if cv is None else round(cv, 4),
            "weeks": weeks,
            "week_dispersion": None if dispersion is None else round(dispersion, 4),
            "min_gaps": th.min_gaps,
            "min_weeks": th.min_weeks,
            "promotion_share": round(promo_share, 4),
            "formula": "max(0, 1 - min(gap_cv, week_dispersion)) * (1 - promotion_share); "
            "0 without min_gaps gaps or min_weeks whole weeks",
        },
        "transactional": {
            "orders": row.orders,
            "promotion_orders": promo,
            "promotion_share": round(promo_share, 4),
            "redemptions": row.redemptions,
            "redemptions_per_order": round(per_order, 4),
            "redemptions_per_order_full": th.redemptions_per_order_full,
            "min_orders": th.min_orders,
            "formula": "(promotion_share + min(1, redemptions_per_order / full)) / 2; "
            "0 with fewer than min_orders orders",
        },
        "emotional": {
            "advocacy_events": advocacy,
            "advocacy_types": list(th.advocacy_types),
            "qualified_referrals": referrals,
            "advocacy": _advocacy_text(advocacy, referrals, th.advocacy_types),
            "advocacy_full": th.advocacy_full,
            "not_recorded": ["surveys (promoter scores)"],
            "formula": "min(1, (advocacy_events + qualified_referrals) / advocacy_full)",
        },
        "primary_min_score": th.primary_min_score,
    }
    return scores, primary, evidence


def _advocacy_text(events: int, referrals: int, types: Sequence[str]) -> list[str]:
    """The advocacy in words, e.g. ``["1 review.submitted event", "2 qualified referrals"]``."""
    out = []
    if events:
        out.append(f"{events} {'/'.join(types)} event{'s' if events != 1 else ''}")
    if referrals:
        out.append(f"{referrals} qualified referral{'s' if referrals != 1 else ''}")
    return out


def classify(
    session: Session,
    analysis: members.Analysis,
    thresholds: Thresholds | None = None,
    *,
    member_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, MemberLabel]:
    """Label and loyalty type of every member of the analysis (or only ``member_id``)."""
    th = thresholds or Thresholds()
    s = analysis.summary
    promo = _promo_orders(session, s.program_id, s.as_of, member_id)
    adv = _advocacy(session, s.program_id, s.as_of, th.advocacy_types, member_id)
    refs = _referrals(session, s.program_id, s.as_of, member_id)
    gaps = _gaps(session, s.program_id, s.as_of, s.timezone, member_id)
    p = analysis.predictions
    rows = s.rows if member_id is None else [r for r in s.rows if r.member_id == member_id]
    out: dict[uuid.UUID, MemberLabel] = {}
    for row in rows:
        recency = analysis.recency_days(row)
        tenure = (s.as_of_day - row.first_purchase_day).days if row.first_purchase_day else None
        pos = analysis.position.get(row.member_id)
        alive = None if pos is None or p.p_alive is None else round(float(p.p_alive[pos]), 4)
        advocacy, referred = adv.get(row.member_id, 0), refs.get(row.member_id, 0)
        label, evidence = _label(row, recency, tenure, alive, th, advocacy + referred)
        scores, primary, lev = _types(
            row, gaps.get(row.member_id, []), promo.get(row.member_id, 0), advocacy, referred, th
        )
        out[row.member_id] = MemberLabel(row.member_id, label, evidence, scores, primary, lev)
    return out


def counts(labelled: dict[uuid.UUID, MemberLabel]) -> dict[str, dict[str, int]]:
    """Members per label and per primary type (every label and type present, 0 included)."""
    by_label = dict.fromkeys(LABELS, 0)
    by_type = dict.fromkeys(PRIMARY, 0)
    for m in labelled.values():
        by_label[m.label] += 1
        by_type[m.primary] += 1
    return {"labels": by_label, "loyalty_types": by_type}
