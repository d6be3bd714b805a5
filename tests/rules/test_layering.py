"""Layering (stackable, exclusive, universal, priority) and schedules (rules and campaigns)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rules.helpers import Api, by_rule, local, not_fired

GOLD = {"field": "member.tags", "op": "contains", "value": "gold"}


def fixed(api: Api, name: str, points: int, **kw: Any) -> dict[str, Any]:
    return api.add_rule(name=name, effect={"type": "fixed", "points": points}, **kw)


# --------------------------------------------------------------------------- layering


def test_stackable_rules_all_fire(api: Api) -> None:
    fixed(api, "A", 10, priority=150)
    fixed(api, "B", 20, priority=250)
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "A": 10, "B": 20}
    assert res["points"]["earned"] == 80
    assert res["points"]["not_fired"] == []


def test_exclusive_stops_later_stackables_but_not_universal_rules(api: Api) -> None:
    before = fixed(api, "Before", 1, priority=120)
    excl = fixed(api, "Exclusive", 100, priority=150, mode="exclusive")
    fixed(api, "Later stackable", 20, priority=200)
    fixed(api, "Later exclusive", 30, priority=210, mode="exclusive")
    fixed(api, "Universal", 5, priority=300, mode="universal")
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "Before": 1, "Exclusive": 100, "Universal": 5}
    skipped = not_fired(res)
    assert set(skipped) == {"Later stackable", "Later exclusive"}
    for s in skipped.values():
        assert s["reason"] == "stopped_by_exclusive_rule"
        assert s["details"] == {"rule": excl["id"], "rule_name": "Exclusive"}
    assert before["id"] not in {s["rule_id"] for s in skipped.values()}


def test_the_first_reason_is_reported_in_a_fixed_order(api: Api) -> None:
    """State, then schedules, then an exclusive rule earlier, then conditions, then limits:
    a rule stopped by an exclusive one says so even when its conditions are false too."""
    fixed(api, "Exclusive", 100, priority=150, mode="exclusive")
    off = fixed(api, "Off and false", 1, priority=200, conditions=GOLD)
    api.post(f"/v1/rules/{off['id']}/disable")
    fixed(api, "Closed and false", 1, priority=210, conditions=GOLD, schedule={"days": ["sun"]})
    fixed(api, "Stopped and false", 1, priority=220, conditions=GOLD)
    fixed(api, "Universal but false", 1, priority=230, mode="universal", conditions=GOLD)
    fixed(api, "Universal, used up", 1, priority=240, mode="universal",
          limits=[{"period": "day", "max_count": 0}], conditions={"not": GOLD})  # fmt: skip
    res = api.purchase(50_000, at=local(2026, 1, 7, 12))  # a Wednesday
    assert {n: s["reason"] for n, s in not_fired(res).items()} == {
        "Off and false": "disabled",
        "Closed and false": "schedule_inactive",
        "Stopped and false": "stopped_by_exclusive_rule",
        "Universal but false": "condition_false",
        "Universal, used up": "limit_reached",
    }


def test_an_exclusive_rule_that_does_not_fire_stops_nothing(api: Api) -> None:
    fixed(api, "Gold only", 100, priority=150, mode="exclusive", conditions=GOLD)
    fixed(api, "Later", 20, priority=200)
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "Later": 20}
    assert not_fired(res)["Gold only"]["reason"] == "condition_false"


def test_the_first_of_two_exclusive_rules_wins_by_priority(api: Api) -> None:
    fixed(api, "Second", 20, priority=300, mode="exclusive")
    first = fixed(api, "First", 10, priority=200, mode="exclusive")
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "First": 10}
    assert not_fired(res)["Second"]["details"]["rule"] == first["id"]


def test_an_exclusive_rule_after_stackables_does_not_undo_them(api: Api) -> None:
    fixed(api, "Early", 10, priority=150)
    fixed(api, "Exclusive", 100, priority=400, mode="exclusive")
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "Early": 10, "Exclusive": 100}


def test_exclusive_before_the_base_rate_replaces_it(api: Api) -> None:
    api.add_rule(
        name="Karyawan rate",
        effect={"type": "per_amount", "points": 5, "per": "1000"},
        priority=50,
        mode="exclusive",
        conditions={"field": "event.store", "op": "eq", "value": "kantor-pusat"},
    )
    fixed(api, "Stackable", 10, priority=200)
    fixed(api, "Universal", 1, priority=250, mode="universal")
    staff = api.purchase(40_000, store="kantor-pusat")
    assert by_rule(staff) == {"Karyawan rate": 200, "Universal": 1}
    skipped = not_fired(staff)
    assert skipped["Base earn rate"]["reason"] == "stopped_by_exclusive_rule"
    assert skipped["Base earn rate"]["rule"] == "base"
    assert skipped["Stackable"]["reason"] == "stopped_by_exclusive_rule"
    # Elsewhere the exclusive rule does not fire and the base rate applies.
    other = api.purchase(40_000, store="bandung-dago")
    assert by_rule(other) == {"Base earn rate": 40, "Stackable": 10, "Universal": 1}


def test_the_base_rate_wins_a_priority_tie(api: Api) -> None:
    fixed(api, "Tie", 10, priority=100, mode="exclusive")
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "Tie": 10}
    assert [a["rule_name"] for a in res["points"]["awards"]] == ["Base earn rate", "Tie"]


def test_awards_are_listed_in_evaluation_order(api: Api) -> None:
    fixed(api, "C", 3, priority=300)
    fixed(api, "A", 1, priority=10)
    fixed(api, "B", 2, priority=200)
    res = api.purchase(50_000)
    assert [a["rule_name"] for a in res["points"]["awards"]] == ["A", "Base earn rate", "B", "C"]


def test_a_disabled_rule_does_not_fire_and_says_so(api: Api) -> None:
    r = fixed(api, "Off", 10)
    assert api.post(f"/v1/rules/{r['id']}/disable").json()["enabled"] is False
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50}
    assert not_fired(res)["Off"]["reason"] == "disabled"
    assert not_fired(res)["Off"]["revision"] == 2
    api.post(f"/v1/rules/{r['id']}/enable")
    assert by_rule(api.purchase(50_000))["Off"] == 10


def test_rules_of_other_triggers_are_not_listed(api: Api) -> None:
    api.add_rule(
        name="Review", triggers=["review.submitted"], effect={"type": "fixed", "points": 5}
    )
    res = api.purchase(50_000)
    assert res["points"]["not_fired"] == []


# --------------------------------------------------------------------------- schedules


def test_active_from_and_to(api: Api) -> None:
    fixed(
        api,
        "Ramadan",
        50,
        schedule={"active_from": local(2026, 2, 18, 0, 0), "active_to": local(2026, 3, 20, 0, 0)},
    )
    before = api.purchase(at=local(2026, 2, 17, 23, 59))
    assert "Ramadan" not in by_rule(before)
    assert not_fired(before)["Ramadan"]["reason"] == "schedule_inactive"
    assert not_fired(before)["Ramadan"]["details"]["why"] == "not started"
    assert by_rule(api.purchase(at=local(2026, 2, 18, 0, 0)))["Ramadan"] == 50
    assert by_rule(api.purchase(at=local(2026, 3, 19, 23, 59)))["Ramadan"] == 50
    after = api.purchase(at=local(2026, 3, 20, 0, 0))  # the end is exclusive
    assert not_fired(after)["Ramadan"]["details"]["why"] == "ended"


def test_days_of_week_are_local(api: Api) -> None:
    fixed(api, "Weekend", 50, schedule={"days": ["sat", "sun"]})
    # Saturday 06:30 in Jakarta is Friday 23:30 UTC.
    sat = api.purchase(at=local(2026, 1, 10, 6, 30))
    assert sat["occurred_at"].startswith("2026-01-09T23:30")
    assert by_rule(sat)["Weekend"] == 50
    fri = api.purchase(at=local(2026, 1, 9, 23, 59))
    assert not_fired(fri)["Weekend"]["details"] == {
        "why": "day of week",
        "days": ["sat", "sun"],
        "actual": "fri",
    }
    assert by_rule(api.purchase(at=local(2026, 1, 11, 23, 59)))["Weekend"] == 50
    assert "Weekend" not in by_rule(api.purchase(at=local(2026, 1, 12, 0, 0)))


@pytest.mark.parametrize(
    ("hh", "mm", "fires"),
    [(5, 59, False), (6, 0, True), (9, 59, True), (10, 0, False), (23, 0, False)],
)
def test_hours_start_inclusive_end_exclusive(api: Api, hh: int, mm: int, fires: bool) -> None:
    fixed(api, "Breakfast", 20, schedule={"hours": {"start": "06:00", "end": "10:00"}})
    res = api.purchase(at=local(2026, 1, 7, hh, mm))
    assert ("Breakfast" in by_rule(res)) is fires
    if not fires:
        assert not_fired(res)["Breakfast"]["details"] == {
            "why": "hours",
            "hours": {"start": "06:00", "end": "10:00"},
            "actual": f"{hh:02d}:{mm:02d}",
        }


@pytest.mark.parametrize(
    ("hh", "mm", "fires"),
    [(21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True), (1, 59, True), (2, 0, False), (12, 0, False)],
)  # fmt: skip
def test_overnight_hours(api: Api, hh: int, mm: int, fires: bool) -> None:
    fixed(api, "Night owl", 20, schedule={"hours": {"start": "22:00", "end": "02:00"}})
    res = api.purchase(at=local(2026, 1, 7, hh, mm))
    assert ("Night owl" in by_rule(res)) is fires


def test_days_and_hours_together(api: Api) -> None:
    fixed(
        api,
        "Friday night",
        20,
        schedule={"days": ["fri"], "hours": {"start": "18:00", "end": "23:00"}},
    )
    assert "Friday night" in by_rule(api.purchase(at=local(2026, 1, 9, 19)))
    assert not_fired(api.purchase(at=local(2026, 1, 8, 19)))["Friday night"]["details"]["why"] == (
        "day of week"
    )
    assert not_fired(api.purchase(at=local(2026, 1, 9, 17)))["Friday night"]["details"]["why"] == (
        "hours"
    )


def test_schedule_is_checked_before_conditions(api: Api) -> None:
    fixed(api, "Gold weekend", 20, schedule={"days": ["sat"]}, conditions=GOLD)
    res = api.purchase(at=local(2026, 1, 7, 12))  # a Wednesday, and not gold
    assert not_fired(res)["Gold weekend"]["reason"] == "schedule_inactive"


def test_campaign_schedule_and_state(api: Api) -> None:
    window = {"active_from": local(2026, 12, 12, 0, 0), "active_to": local(2026, 12, 13, 0, 0)}
    campaign = api.add_campaign(name="12.12", schedule={"days": ["sat", "sun"]})
    fixed(api, "Campaign rule", 120, campaign_id=campaign["id"])
    sat = api.purchase(at=local(2026, 1, 10, 12))
    assert by_rule(sat)["Campaign rule"] == 120
    wed = api.purchase(at=local(2026, 1, 7, 12))
    skip = not_fired(wed)["Campaign rule"]
    assert skip["reason"] == "campaign_schedule_inactive"
    assert skip["details"] == {
        "campaign": "12.12",
        "why": "day of week",
        "days": ["sat", "sun"],
        "actual": "wed",
    }
    # Disable the campaign: its rules stop, whatever their own state.
    r = api.put(
        f"/v1/campaigns/{campaign['id']}",
        {"name": "12.12", "schedule": {"days": ["sat", "sun"]}, "enabled": False},
    )
    assert r.status_code == 200, r.text
    off = api.purchase(at=local(2026, 1, 10, 12))
    assert not_fired(off)["Campaign rule"]["reason"] == "campaign_disabled"
    assert not_fired(off)["Campaign rule"]["details"] == {"campaign": "12.12"}
    # A window that has not started yet (the campaign's own active_from/to).
    r = api.put(f"/v1/campaigns/{campaign['id']}", {"name": "12.12", "schedule": window})
    assert r.status_code == 200, r.text
    early = api.purchase(at=local(2026, 1, 10, 12))
    assert not_fired(early)["Campaign rule"]["details"]["why"] == "not started"


def test_rule_and_campaign_schedules_both_apply(api: Api) -> None:
    campaign = api.add_campaign(name="January", schedule={
        "active_from": local(2026, 1, 1, 0, 0), "active_to": local(2026, 2, 1, 0, 0)})  # fmt: skip
    fixed(api, "Jan weekends", 30, campaign_id=campaign["id"], schedule={"days": ["sat", "sun"]})
    assert "Jan weekends" in by_rule(api.purchase(at=local(2026, 1, 10, 12)))
    assert not_fired(api.purchase(at=local(2026, 1, 7, 12)))["Jan weekends"]["reason"] == (
        "schedule_inactive"
    )
    feb = api.purchase(at=local(2026, 2, 7, 12))
    assert not_fired(feb)["Jan weekends"]["reason"] == "campaign_schedule_inactive"


def test_schedule_validation(api: Api) -> None:
    bad = [
        ({"days": ["saturday"]}, "days"),
        ({"days": []}, "days"),
        ({"hours": {"start": "6:00", "end": "10:00"}}, "start"),
        ({"hours": {"start": "06:00", "end": "24:00"}}, "end"),
        ({"active_from": "2026-01-01T00:00:00"}, "active_from"),  # naive
        ({"active_from": local(2026, 2, 1), "active_to": local(2026, 1, 1)}, "active_to"),
    ]
    for schedule, word in bad:
        r = api.post(
            "/v1/rules",
            {"name": "x", "triggers": ["purchase"], "effect": {"type": "fixed", "points": 1},
             "schedule": schedule},
        )  # fmt: skip
        assert r.status_code == 422, (schedule, r.text)
        assert word in r.text, (schedule, r.text)
