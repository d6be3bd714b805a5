"""Property tests of the pure tier rules (``setia.tiers.rules``), independent of a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from setia.tiers import rules
from setia.tiers.rules import State, Structure, TierDef

DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2032, 12, 31))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def structures(draw: st.DrawFn) -> Structure:
    n_metrics = draw(st.integers(1, 2))
    n_tiers = draw(st.integers(2, 5))
    thresholds: list[tuple[Decimal, ...]] = [tuple(Decimal(0) for _ in range(n_metrics))]
    for _ in range(n_tiers - 1):
        thresholds.append(tuple(p + Decimal(draw(st.integers(0, 50))) for p in thresholds[-1]))
    invitation = [False] + [draw(st.booleans()) for _ in range(n_tiers - 1)]
    window = draw(
        st.sampled_from(
            [
                {"kind": "calendar_year"},
                {"kind": "anniversary_year"},
                {"kind": "lifetime"},
                {"kind": "rolling", "months": 1},
                {"kind": "rolling", "months": 12},
            ]
        )
    )
    retentions: list[dict[str, Any]] = [{"kind": "none"}, {"kind": "months", "months": 3}]
    if window["kind"] in ("calendar_year", "anniversary_year"):
        retentions.append({"kind": "end_of_next_window"})
    return Structure(
        id=uuid.uuid4(),
        program_id=uuid.uuid4(),
        metrics=tuple({"metric": "spend"} for _ in range(n_metrics)),
        combine=draw(st.sampled_from(["all", "any"])),
        window=window,
        retention=draw(st.sampled_from(retentions)),
        downgrade=draw(st.sampled_from(["one_level", "to_qualified"])),
        grace_days=draw(st.integers(0, 30)),
        at_risk_days=draw(st.integers(0, 60)),
        tiers=tuple(
            TierDef(uuid.uuid4(), f"t{i}", i, thresholds[i], invitation[i], {})
            for i in range(n_tiers)
        ),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Structure, State, list[Decimal], date, list[Decimal] | None]:
    s = draw(structures())
    tier_ids = [t.id for t in s.tiers]
    any_tier = st.sampled_from(tier_ids)
    maybe_day = st.none() | DAYS
    earned = draw(any_tier)
    state = State(
        tier_id=earned,
        since=NOW,
        earned_tier_id=earned,
        earned_since=NOW,
        qualified_on=draw(maybe_day),
        secure_until=draw(maybe_day),
        revoked_on=draw(maybe_day),
        # Set at an upgrade: the tier held before, lower than the one reached.
        previous_tier_id=draw(
            st.none() | st.sampled_from([t.id for t in s.tiers if t.id != earned][:1] or [None])
        ),
        previous_secure_until=draw(maybe_day),
        override_tier_id=draw(st.none() | any_tier),
        override_until=draw(maybe_day),
        plan_tier_id=None,
        anchor_day=draw(DAYS),
        at_risk_notified_for=draw(maybe_day),
        version=3,
    )
    if draw(st.booleans()):
        state.plan_tier_id = draw(any_tier)
        state.plan_mode = draw(st.sampled_from(["grant", "protect"]))
        state.plan_until = draw(maybe_day)
    # The stored effective tier is what the rules made it when last written.
    state.tier_id = rules.effective(s, state, draw(DAYS)).id
    figures = st.lists(
        st.integers(0, 250).map(Decimal), min_size=len(s.metrics), max_size=len(s.metrics)
    )
    values = draw(figures)
    qualification = draw(st.none() | figures)
    return s, state, values, draw(DAYS), qualification


def rank(s: Structure, tier_id: uuid.UUID | None) -> int:
    return s.tier(tier_id).rank if tier_id is not None else -1


@settings(max_examples=400, deadline=None)
@given(cases())
def test_evaluation_is_idempotent_on_the_same_day(
    case: tuple[Structure, State, list[Decimal], date, list[Decimal] | None],
) -> None:
    s, state, values, day, qual = case
    first = rules.decide_evaluation(s, state, values, day, NOW, qualification_values=qual)
    later = NOW + timedelta(hours=3)
    second = rules.decide_evaluation(s, first.state, values, day, later, qualification_values=qual)
    assert second.state == first.state
    assert second.changes == []
    assert second.at_risk is None
    assert not second.requalified


@settings(max_examples=400, deadline=None)
@given(cases())
def test_effective_tier_is_the_highest_of_earned_override_and_grant(
    case: tuple[Structure, State, list[Decimal], date, list[Decimal] | None],
) -> None:
    s, state, values, day, qual = case
    out = rules.decide_evaluation(s, state, values, day, NOW, qualification_values=qual)
    after = out.state
    floors = [rank(s, after.earned_tier_id)]
    if after.override_tier_id is not None and rules.active_until(after.override_until, day):
        floors.append(rank(s, after.override_tier_id))
    if after.plan_mode == "grant" and rules.active_until(after.plan_until, day):
        floors.append(rank(s, after.plan_tier_id))
    assert rank(s, after.tier_id) == max(floors)
    # An override or grant still active on the day is never dropped by the evaluation.
    if state.override_tier_id is not None and rules.active_until(state.override_until, day):
        assert after.override_tier_id == state.override_tier_id
    if state.plan_tier_id is not None and rules.active_until(state.plan_until, day):
        assert (after.plan_tier_id, after.plan_mode) == (state.plan_tier_id, state.plan_mode)
    # Every change is recorded, and the last one lands on the effective tier.
    if after.tier_id != state.tier_id:
        assert out.changes
        assert out.changes[-1].to_tier_id == after.tier_id


@settings(max_examples=400, deadline=None)
@given(cases())
def test_earned_tier_moves_only_as_the_rules_allow(
    case: tuple[Structure, State, list[Decimal], date, list[Decimal] | None],
) -> None:
    s, state, values, day, qual = case
    out = rules.decide_evaluation(s, state, values, day, NOW, qualification_values=qual)
    before, after = rank(s, state.earned_tier_id), rank(s, out.state.earned_tier_id)
    if after > before:  # up only to what the figures qualify for
        assert s.tier(out.state.earned_tier_id) == s.qualified(values)
    if after < before:  # down only when revoked or after retention and grace
        assert state.revoked_on is not None or (
            state.secure_until is not None
            and day > state.secure_until + timedelta(days=s.grace_days)
        )
        assert after >= s.qualified(values).rank
        protect = rules.protected_floor(s, state, day)
        if s.downgrade == "one_level" and state.revoked_on is None:
            assert s.tier(out.state.earned_tier_id) in (
                s.one_below(s.tier(state.earned_tier_id)),
                s.qualified(values),
                protect,
            )
        if protect is not None:
            assert after >= min(before, protect.rank)
    if out.at_risk is not None:  # about the tier now earned, once per retention end
        assert out.at_risk["tier"] == s.tier(out.state.earned_tier_id).code
        assert out.state.at_risk_notified_for == out.state.secure_until
        assert after == before or state.at_risk_notified_for != out.state.secure_until


@settings(max_examples=300, deadline=None)
@given(cases())
def test_an_event_never_downgrades(
    case: tuple[Structure, State, list[Decimal], date, list[Decimal] | None],
) -> None:
    s, state, values, day, _ = case
    out = rules.decide_activity(s, state, values, day, NOW)
    assert rank(s, out.state.earned_tier_id) >= rank(s, state.earned_tier_id)
    assert rank(s, out.state.tier_id) >= rank(s, state.tier_id) or state.tier_id != (
        rules.effective(s, state, day).id
    )
    assert not out.downgraded


def test_anniversary_start_for_leap_days() -> None:
    leap = date(2024, 2, 29)
    assert rules.anniversary_start(leap, date(2024, 2, 29)) == leap
    assert rules.anniversary_start(leap, date(2025, 2, 27)) == leap
    assert rules.anniversary_start(leap, date(2025, 2, 28)) == date(2025, 2, 28)
    assert rules.anniversary_start(leap, date(2025, 3, 1)) == date(2025, 2, 28)
    assert rules.anniversary_start(leap, date(2028, 2, 28)) == date(2027, 2, 28)
    assert rules.anniversary_start(leap, date(2028, 2, 29)) == date(2028, 2, 29)


@given(DAYS, DAYS)
def test_anniversary_start_is_the_last_anniversary(anchor: date, day: date) -> None:
    if day < anchor:
        anchor, day = day, anchor
    start = rules.anniversary_start(anchor, day)
    assert start <= day
    assert (start.month, start.day) in ((anchor.month, anchor.day), (2, 28))
    if (start.month, start.day) != (anchor.month, anchor.day):
        assert (anchor.month, anchor.day) == (2, 29)
    # No later anniversary fits: a year after the start is after the day.
    nxt = date(start.year + 1, start.month, 1) + timedelta(days=start.day - 1)
    if (anchor.month, anchor.day) == (2, 29):
        nxt = date(start.year + 1, 3, 1) - timedelta(days=1)
    assert nxt > day
    # The window holding the day runs from that start for a year.
    s = Structure(
        uuid.uuid4(), uuid.uuid4(), ({"metric": "spend"},), "all",
        {"kind": "anniversary_year"}, {"kind": "none"}, "one_level", 0, 0,
        (TierDef(uuid.uuid4(), "b", 0, (Decimal(0),), False, {}),),
    )  # fmt: skip
    first, last = s.window_for(day, anchor)
    assert first == start
    assert last is not None
    assert first <= day <= last
    assert (last - first).days in (364, 365)
