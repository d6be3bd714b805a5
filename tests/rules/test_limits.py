"""Limits per member per period in the tenant's time zone, per order, and budgets."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.ledger.verify import verify
from tests.conftest import make_tenant
from tests.rules.helpers import Api, by_rule, local, not_fired


def bonus(res: dict[str, Any], name: str = "Bonus") -> int:
    return by_rule(res).get(name, 0)


def limited(api: Api, *limits: dict[str, Any], points: int = 100, **kw: Any) -> dict[str, Any]:
    return api.add_rule(
        name="Bonus", effect={"type": "fixed", "points": points}, limits=list(limits), **kw
    )


def test_daily_limit_follows_the_jakarta_day_not_the_utc_day(api: Api, db: Database) -> None:
    limited(api, {"period": "day", "max_points": 150})
    # 5 Jan 23:50 and 6 Jan 00:10 in Jakarta are 16:50 and 17:10 UTC on 5 Jan.
    first = api.purchase(at=local(2026, 1, 5, 23, 50))
    second = api.purchase(at=local(2026, 1, 5, 23, 55))
    third = api.purchase(at=local(2026, 1, 6, 0, 10))
    assert first["occurred_at"][:10] == third["occurred_at"][:10] == "2026-01-05"
    assert (bonus(first), bonus(second), bonus(third)) == (100, 50, 100)
    fourth = api.purchase(at=local(2026, 1, 6, 23, 59))
    assert bonus(fourth) == 50
    fifth = api.purchase(at=local(2026, 1, 6, 12, 0))  # late arrival for the same day
    assert bonus(fifth) == 0
    skip = not_fired(fifth)["Bonus"]
    assert skip["reason"] == "limit_reached"
    assert skip["details"] == {"period": "day", "max_points": 150, "used_points": 150}
    with db.session() as s:
        assert verify(s).ok


def test_a_utc_tenant_counts_the_same_two_purchases_in_one_day(
    client: TestClient, db: Database
) -> None:
    api = Api(client, make_tenant(db, name="UTC shop", timezone="UTC"))
    limited(api, {"period": "day", "max_count": 1})
    first = api.purchase(at=local(2026, 1, 5, 23, 50))
    second = api.purchase(at=local(2026, 1, 6, 0, 10))
    assert (bonus(first), bonus(second)) == (100, 0)
    assert not_fired(second)["Bonus"]["details"] == {
        "period": "day",
        "max_count": 1,
        "used_count": 1,
    }


def test_limits_are_per_member(api: Api) -> None:
    limited(api, {"period": "day", "max_count": 1})
    at = local(2026, 1, 5, 10)
    assert bonus(api.purchase(at=at, member="A")) == 100
    assert bonus(api.purchase(at=at, member="A")) == 0
    assert bonus(api.purchase(at=at, member="B")) == 100


def test_weekly_limit_turns_over_from_sunday_to_monday(api: Api) -> None:
    limited(api, {"period": "week", "max_count": 1})
    # 2026-01-11 is a Sunday; Monday 00:30 in Jakarta is still Sunday in UTC.
    assert bonus(api.purchase(at=local(2026, 1, 5, 0, 5))) == 100  # Monday
    assert bonus(api.purchase(at=local(2026, 1, 11, 23, 30))) == 0  # Sunday, same week
    assert bonus(api.purchase(at=local(2026, 1, 12, 0, 30))) == 100  # Monday, new week
    assert bonus(api.purchase(at=local(2026, 1, 18, 23, 59))) == 0


def test_monthly_limit_at_month_end(api: Api) -> None:
    limited(api, {"period": "month", "max_points": 250})
    assert bonus(api.purchase(at=local(2026, 1, 1, 0, 0))) == 100  # 31 Dec 17:00 UTC
    assert bonus(api.purchase(at=local(2026, 1, 20, 12))) == 100
    assert bonus(api.purchase(at=local(2026, 1, 31, 23, 30))) == 50
    assert bonus(api.purchase(at=local(2026, 1, 31, 23, 45))) == 0
    # 1 Feb 00:30 in Jakarta is 31 Jan 17:30 UTC: a new month here.
    assert bonus(api.purchase(at=local(2026, 2, 1, 0, 30))) == 100
    # February 2026 ends on the 28th.
    assert bonus(api.purchase(at=local(2026, 2, 28, 23, 59))) == 100
    assert bonus(api.purchase(at=local(2026, 3, 1, 0, 1))) == 100


def test_yearly_and_lifetime_limits(api: Api) -> None:
    api.add_rule(
        name="Yearly",
        effect={"type": "fixed", "points": 10},
        limits=[{"period": "year", "max_count": 1}],
    )
    limited(api, {"period": "lifetime", "max_count": 2})
    a = api.purchase(at=local(2025, 12, 31, 23, 30))
    b = api.purchase(at=local(2025, 12, 31, 23, 40))
    c = api.purchase(at=local(2026, 1, 1, 0, 30))  # 31 Dec 17:30 UTC
    d = api.purchase(at=local(2026, 6, 1))
    assert [bonus(x, "Yearly") for x in (a, b, c, d)] == [10, 0, 10, 0]
    assert [bonus(x) for x in (a, b, c, d)] == [100, 100, 0, 0]
    assert not_fired(d)["Bonus"]["details"] == {
        "period": "lifetime",
        "max_count": 2,
        "used_count": 2,
    }


def test_several_limits_the_tightest_binds(api: Api) -> None:
    limited(api, {"period": "day", "max_points": 150}, {"period": "month", "max_points": 220})
    assert bonus(api.purchase(at=local(2026, 1, 5, 9))) == 100
    assert bonus(api.purchase(at=local(2026, 1, 5, 10))) == 50  # the day
    assert bonus(api.purchase(at=local(2026, 1, 6, 9))) == 70  # the month
    res = api.purchase(at=local(2026, 1, 7, 9))
    assert bonus(res) == 0
    assert not_fired(res)["Bonus"]["details"] == {
        "period": "month",
        "max_points": 220,
        "used_points": 220,
    }


def test_per_order_cap(api: Api) -> None:
    api.add_rule(
        name="Bonus",
        effect={"type": "per_amount", "points": 10, "per": "1000"},
        limits=[{"period": "order", "max_points": 500}],
    )
    assert bonus(api.purchase(30_000)) == 300
    assert bonus(api.purchase(85_000)) == 500  # 850, capped
    assert bonus(api.purchase(85_000)) == 500  # per order: no memory between orders
    # A zero cap never gives, and says why.
    api.add_rule(
        name="Zero",
        effect={"type": "fixed", "points": 5},
        limits=[{"period": "order", "max_points": 0}],
    )
    res = api.purchase(10_000)
    assert not_fired(res)["Zero"] == {
        **not_fired(res)["Zero"],
        "reason": "limit_reached",
        "details": {"period": "order", "max_points": 0, "used_points": 0},
    }


def test_limits_count_only_this_rule(api: Api) -> None:
    limited(api, {"period": "day", "max_points": 100})
    api.add_rule(name="Other", effect={"type": "fixed", "points": 1000})
    at = local(2026, 1, 5, 9)
    assert by_rule(api.purchase(at=at)) == {"Base earn rate": 100, "Bonus": 100, "Other": 1000}
    assert by_rule(api.purchase(at=at)) == {"Base earn rate": 100, "Other": 1000}


def test_limits_count_awards_of_every_revision(api: Api) -> None:
    r = limited(api, {"period": "day", "max_points": 150})
    at = local(2026, 1, 5, 9)
    assert bonus(api.purchase(at=at)) == 100
    changed = api.put(
        f"/v1/rules/{r['id']}",
        {
            "name": "Bonus",
            "triggers": ["purchase"],
            "effect": {"type": "fixed", "points": 120},
            "limits": [{"period": "day", "max_points": 150}],
        },
    )
    assert changed.json()["revision"] == 2
    assert bonus(api.purchase(at=at)) == 50


# --------------------------------------------------------------------------- budgets


def test_rule_budget_is_shared_by_every_member(api: Api) -> None:
    limited(api, budget_points=250)
    assert bonus(api.purchase(member="A")) == 100
    assert bonus(api.purchase(member="B")) == 100
    assert bonus(api.purchase(member="C")) == 50
    res = api.purchase(member="D")
    assert bonus(res) == 0
    assert not_fired(res)["Bonus"]["reason"] == "limit_reached"
    assert not_fired(res)["Bonus"]["details"] == {"budget_points": 250, "scope": "rule"}


def test_campaign_budget_is_shared_by_its_rules_even_within_one_event(api: Api) -> None:
    campaign = api.add_campaign(name="Harbolnas 12.12", budget_points=500)
    api.add_rule(
        name="A", effect={"type": "fixed", "points": 200}, campaign_id=campaign["id"], priority=150
    )
    api.add_rule(
        name="B", effect={"type": "fixed", "points": 200}, campaign_id=campaign["id"], priority=160
    )
    first = by_rule(api.purchase(10_000, member="A"))
    assert (first["A"], first["B"]) == (200, 200)
    second = api.purchase(10_000, member="B")
    assert (bonus(second, "A"), bonus(second, "B")) == (100, 0)
    details = not_fired(second)["B"]["details"]
    assert details == {"budget_points": 500, "scope": "campaign", "campaign": "Harbolnas 12.12"}
    got = api.get(f"/v1/campaigns/{campaign['id']}").json()
    assert got["points_awarded"] == 500


def test_budget_within_one_event_for_a_single_rule_with_an_order_cap(api: Api) -> None:
    api.add_rule(
        name="Bonus",
        effect={"type": "per_amount", "points": 1, "per": "100"},
        budget_points=1000,
        limits=[{"period": "order", "max_points": 700}],
    )
    assert bonus(api.purchase(100_000)) == 700
    assert bonus(api.purchase(100_000)) == 300
    assert bonus(api.purchase(100_000)) == 0


@pytest.mark.parametrize("period", ["day", "week", "month", "year", "lifetime"])
def test_a_zero_count_limit_never_fires(api: Api, period: str) -> None:
    limited(api, {"period": period, "max_count": 0})
    res = api.purchase()
    assert bonus(res) == 0
    assert not_fired(res)["Bonus"]["reason"] == "limit_reached"
