"""The simulator (what an event would earn, and why a rule would not fire), replay ("what
if" over recorded events), and the explanations kept on every recorded event. The
simulator and replay write nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.programs import service as programs
from setia.programs.models import Program
from tests.conftest import TenantFixture, make_tenant
from tests.rules.helpers import Api, by_rule, counts, item, local, not_fired, rule

GOLD = {"field": "member.tags", "op": "contains", "value": "gold"}


def event(amount: int = 100_000, at: str | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "purchase",
        "order_id": "SIM-1",
        "amount": str(amount),
        "currency": "IDR",
        "occurred_at": at or local(2026, 1, 7, 12),  # a Wednesday
        **kw,
    }
    return out


def points(sim: dict[str, Any]) -> dict[str, int]:
    return {a["rule_name"]: a["points"] for a in sim["awards"]}


def reasons(sim: dict[str, Any]) -> dict[str, str]:
    return {s["rule_name"]: s["reason"] for s in sim["not_fired"]}


def test_simulator_gives_every_reason(api: Api, db: Database) -> None:
    camp_off = api.add_campaign(name="Old promo", enabled=False)
    camp_later = api.add_campaign(
        name="12.12",
        schedule={"active_from": local(2026, 12, 12, 0, 0), "active_to": local(2026, 12, 13, 0, 0)},
    )
    api.add_rule(name="Weekend", schedule={"days": ["sat", "sun"]}, priority=110)
    api.add_rule(
        name="Big basket",
        conditions={"all": [GOLD, {"field": "event.amount", "op": "gte", "value": "500000"}]},
        priority=111,
    )
    api.add_rule(name="Gold", conditions=GOLD, priority=112)
    api.add_rule(name="Once a day", limits=[{"period": "day", "max_count": 1}], priority=120)
    api.add_rule(name="Exclusive", mode="exclusive", priority=150)
    api.add_rule(name="After exclusive", priority=300)
    api.add_rule(
        name="Universal", mode="universal", priority=400, effect={"type": "fixed", "points": 7}
    )
    off = api.add_rule(name="Switched off")
    api.post(f"/v1/rules/{off['id']}/disable")
    api.add_rule(name="Old", campaign_id=camp_off["id"])
    api.add_rule(name="Not yet", campaign_id=camp_later["id"])
    # A real member who already used today's "Once a day".
    member_id = api.purchase(at=local(2026, 1, 7, 8), member="siti")["member_id"]
    before = counts(db)
    sim = api.simulate(event(), member_id=member_id)
    assert counts(db) == before
    assert points(sim) == {"Base earn rate": 100, "Exclusive": 10, "Universal": 7}
    assert sim["points"] == 117
    assert reasons(sim) == {
        "Weekend": "schedule_inactive",
        "Big basket": "condition_false",
        "Gold": "condition_false",
        "Once a day": "limit_reached",
        "After exclusive": "stopped_by_exclusive_rule",
        "Switched off": "disabled",
        "Old": "campaign_disabled",
        "Not yet": "campaign_schedule_inactive",
    }
    why = {s["rule_name"]: s["details"] for s in sim["not_fired"]}
    assert why["Weekend"] == {"why": "day of week", "days": ["sat", "sun"], "actual": "wed"}
    # The first false comparison, with both values.
    assert why["Big basket"] == {
        "field": "member.tags",
        "op": "contains",
        "expected": "gold",
        "actual": [],
    }
    assert why["Once a day"] == {"period": "day", "max_count": 1, "used_count": 1}
    assert why["After exclusive"]["rule_name"] == "Exclusive"
    assert why["Not yet"]["why"] == "not started"
    # The same event as a gold member with a made-up profile, and a big basket.
    sim = api.simulate(event(600_000), member={"tags": ["gold"]})
    assert set(points(sim)) == {"Base earn rate", "Big basket", "Gold", "Once a day",
                                "Exclusive", "Universal"}  # fmt: skip
    assert reasons(sim)["After exclusive"] == "stopped_by_exclusive_rule"
    assert counts(db) == before


def test_simulator_shows_the_condition_values_compared(api: Api) -> None:
    api.add_rule(
        name="Coffee lovers",
        conditions={
            "items": {
                "where": {"field": "item.category", "op": "eq", "value": "coffee"},
                "min_quantity": 3,
            }
        },
    )
    api.add_rule(
        name="Morning",
        conditions={"field": "event.local_time", "op": "between", "value": ["06:00", "10:00"]},
    )
    sim = api.simulate(
        event(at=local(2026, 1, 7, 14, 5), items=[item("KOPI", 2, 25000, category="coffee"),
                                                  item("ROTI", 2, 25000, category="bakery")]),
    )  # fmt: skip
    why = {s["rule_name"]: s["details"] for s in sim["not_fired"]}
    assert why["Coffee lovers"] == {
        "items": {"where": {"field": "item.category", "op": "eq", "value": "coffee"},
                  "min_quantity": 3},
        "matching_lines": 1,
        "quantity": "2",
        "amount": "50000",
    }  # fmt: skip
    assert why["Morning"] == {
        "field": "event.local_time",
        "op": "between",
        "expected": ["06:00", "10:00"],
        "actual": "14:05",
    }


def test_simulator_with_a_profile(api: Api) -> None:
    api.add_rule(
        name="First purchase",
        conditions={"field": "member.is_first_purchase", "op": "eq", "value": True},
        effect={"type": "fixed", "points": 1000},
    )
    api.add_rule(
        name="Birthday month",
        conditions={"field": "member.birthday_month", "op": "eq", "value": True},
    )
    api.add_rule(
        name="Loyal",
        conditions={"field": "member.tenure_days", "op": "gte", "value": 365},
    )
    new = api.simulate(event(), member={})
    assert set(points(new)) == {"Base earn rate", "First purchase"}
    assert new["member"]["order_count"] == 0
    old = api.simulate(
        event(),
        member={"order_count": 4, "birthday": "1990-01-30", "created_at": "2024-01-01T00:00:00Z"},
    )
    assert set(points(old)) == {"Base earn rate", "Birthday month", "Loyal"}
    assert not_fired(old)["First purchase"]["details"]["actual"] is False


def test_simulator_on_a_real_member_reads_their_orders_and_tags(api: Api, db: Database) -> None:
    api.add_rule(
        name="First purchase",
        conditions={"field": "member.is_first_purchase", "op": "eq", "value": True},
    )
    res = api.purchase(at=local(2026, 1, 5, 9), member="budi")
    assert "First purchase" in by_rule(res)
    r = api.client.patch(
        f"/v1/members/{res['member_id']}", json={"tags": ["gold"]}, headers=api.headers
    )
    assert r.status_code == 200, r.text
    api.add_rule(name="Gold", conditions=GOLD)
    before = counts(db)
    sim = api.simulate(event(at=local(2026, 1, 6, 9)), member_id=res["member_id"])
    assert set(points(sim)) == {"Base earn rate", "Gold"}
    assert sim["member"]["order_count"] == 1
    assert sim["member"]["tags"] == ["gold"]
    # An event dated before that first order is still a first purchase.
    sim = api.simulate(event(at=local(2026, 1, 4, 9)), member_id=res["member_id"])
    assert "First purchase" in points(sim)
    assert counts(db) == before


def test_simulator_with_a_proposed_rule_set(api: Api, db: Database) -> None:
    api.add_rule(name="Current", effect={"type": "fixed", "points": 5})
    before = counts(db)
    sim = api.simulate(
        event(),
        rules=[rule(name="Proposed", effect={"type": "multiplier", "factor": "3"})],
    )
    assert points(sim) == {"Base earn rate": 100, "Proposed": 200}
    assert counts(db) == before


def test_simulator_shows_dates_of_each_award(api: Api, db: Database, tenant: TenantFixture) -> None:
    with db.session() as s:
        program = s.get(Program, tenant.program_id)
        assert program is not None
        programs.update_program(s, program, {"pending_days": 7}, actor="test")
    api.add_rule(name="Instant", effect={"type": "fixed", "points": 5, "pending_days": 0,
                                         "expiry_months": 1})  # fmt: skip
    sim = api.simulate(event(at="2026-01-31T10:00:00+07:00"))
    awards = {a["rule_name"]: a for a in sim["awards"]}
    assert awards["Base earn rate"]["pending_until"] == "2026-02-07T03:00:00Z"
    assert awards["Instant"]["pending_until"] is None
    assert awards["Instant"]["expires_at"] == "2026-02-28T03:00:00Z"


def test_simulator_for_a_custom_event(api: Api) -> None:
    api.add_rule(
        name="Review",
        triggers=["review.submitted"],
        conditions={"field": "event.attributes.rating", "op": "gte", "value": 4},
        effect={"type": "fixed", "points": 50},
    )
    good = api.simulate({"type": "review.submitted", "attributes": {"rating": 5}})
    assert points(good) == {"Review": 50}
    bad = api.simulate({"type": "review.submitted", "attributes": {"rating": 2}})
    assert points(bad) == {}
    assert not_fired(bad)["Review"]["details"]["actual"] == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"event": {"type": "purchase", "amount": "1000", "currency": "IDR"}}, "order_id"),
        ({"event": event(amount=-5)}, "amount"),
        ({"event": {**event(), "amount": "lima"}}, "amount"),
        ({"event": {**event(), "colour": "red"}}, "colour"),
        ({"event": event(), "rules": [{"name": "x"}]}, "rules"),
        ({"event": event(), "member": {"order_count": -1}}, "order_count"),
        ({"event": {**event(), "items": [item("A", 1, 1000) | {"unit_price": "lima"}]}}, "unit_price"),
        ({"event": {**event(), "currency": "XYZ"}}, "currency"),
    ],
    ids=["no-order", "negative", "not-a-number", "unknown-field", "bad-rule", "bad-profile",
         "bad-unit-price", "bad-currency"],
)  # fmt: skip
def test_simulator_refuses_bad_input(
    api: Api, db: Database, body: dict[str, Any], words: str
) -> None:
    before = counts(db)
    r = api.post("/v1/rules/simulate", body)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert counts(db) == before


def test_simulator_refuses_a_purchase_recording_would_refuse(api: Api, db: Database) -> None:
    r = api.post("/v1/rules/simulate", {"event": {**event(), "currency": "MYR"}})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "currency_mismatch"
    r = api.post("/v1/rules/simulate", {"event": {**event(), "amount": "100000.5"}})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "too_many_decimals"


def test_simulator_reads_a_custom_event_as_recording_does(api: Api) -> None:
    """Only a purchase has an amount to earn on; a custom event's lines need no price check."""
    api.add_rule(
        name="Any amount",
        triggers=["review.submitted"],
        conditions={"field": "event.amount", "op": "exists"},
    )
    odd = {
        "type": "review.submitted",
        "amount": "50000",
        "currency": "IDR",
        "items": [item("KOPI", 1, 1) | {"unit_price": "gratis"}],
    }
    sim = api.simulate(odd)
    recorded = api.custom(**{k: v for k, v in odd.items() if k != "type"}, type_="review.submitted")
    assert sim["points"] == recorded["points"]["earned"] == 0
    assert not_fired(sim)["Any amount"]["details"] == not_fired(recorded)["Any amount"]["details"]


def test_simulator_for_another_tenants_member_is_not_found(
    api: Api, client: TestClient, db: Database
) -> None:
    other = Api(client, make_tenant(db, name="Other"))
    theirs = other.purchase(member="x")["member_id"]
    r = api.post("/v1/rules/simulate", {"event": event(), "member_id": theirs})
    assert r.status_code == 404


# --------------------------------------------------------------------------- explanations


def test_recorded_events_explain_their_awards_and_what_did_not_fire(
    api: Api, client: TestClient, db: Database
) -> None:
    bonus = api.add_rule(name="Bonus", effect={"type": "fixed", "points": 25})
    api.add_rule(name="Gold", conditions=GOLD)
    api.add_rule(name="Weekend", schedule={"days": ["sat", "sun"]})
    res = api.purchase(50_000, at=local(2026, 1, 7, 12))
    for key in (res["id"], res["event_id"]):
        got = api.get(f"/v1/events/{key}")
        assert got.status_code == 200, got.text
        shown = got.json()
        assert shown["points"] == res["points"]
        awards = {a["rule_name"]: a for a in shown["points"]["awards"]}
        assert awards["Bonus"]["rule_id"] == bonus["id"]
        assert awards["Bonus"]["revision"] == 1
        assert awards["Bonus"]["points"] == 25
        assert awards["Base earn rate"]["rule"] == "base"
        assert {n: s["reason"] for n, s in not_fired(shown).items()} == {
            "Gold": "condition_false",
            "Weekend": "schedule_inactive",
        }
        assert not_fired(shown)["Gold"]["details"]["field"] == "member.tags"
    # A later edit does not rewrite history.
    api.put(f"/v1/rules/{bonus['id']}", rule(name="Bonus", effect={"type": "fixed", "points": 99}))
    assert api.get(f"/v1/events/{res['id']}").json()["points"] == res["points"]
    other = Api(client, make_tenant(db, name="Other"))
    assert other.get(f"/v1/events/{res['id']}").status_code == 404
    assert other.get(f"/v1/events/{res['event_id']}").status_code == 404


def test_custom_events_explain_too(api: Api) -> None:
    api.add_rule(
        name="Review",
        triggers=["review.submitted"],
        effect={"type": "fixed", "points": 50},
        conditions={"field": "event.attributes.rating", "op": "gte", "value": 4},
    )
    low = api.custom("review.submitted", attributes={"rating": 3})
    shown = api.get(f"/v1/events/{low['id']}").json()
    assert shown["points"]["earned"] == 0
    assert not_fired(shown)["Review"]["details"] == {
        "field": "event.attributes.rating",
        "op": "gte",
        "expected": 4,
        "actual": 3,
    }


# --------------------------------------------------------------------------- replay


def replay_dataset(api: Api, db: Database, tenant: TenantFixture) -> None:
    """Current rules: the base rate (1 per 1000) and weekend ×2. Events (Jakarta time):

    * before the window: M1 buys 10,000 (a first purchase, outside the window);
    * Mon 5 Jan: M1 buys 50,000 with coffee;
    * Sat 10 Jan: M1 buys 100,000 (no coffee); M2 buys 30,000 with coffee (M2's first);
    * Sat 10 Jan: M2 reviews; M1 refunds part of an order (replay skips refunds);
    * after the window: M3 buys 70,000.
    """
    with db.session() as s:
        program = s.get(Program, tenant.program_id)
        assert program is not None
        programs.update_program(s, program, {"cost_per_point": Decimal(5)}, actor="test")
    api.add_rule(
        name="Weekend",
        effect={"type": "multiplier", "factor": "2"},
        conditions={"field": "event.local_day_of_week", "op": "in", "value": ["sat", "sun"]},
    )
    coffee = [item("KOPI", 1, 25000, category="coffee")]
    api.purchase(10_000, at=local(2025, 12, 20, 9), member="M1")
    api.purchase(50_000, at=local(2026, 1, 5, 9), member="M1", items=[*coffee, item("X", 1, 25000)])
    saturday = api.purchase(100_000, at=local(2026, 1, 10, 9), member="M1", order_id="SAT-M1")
    api.purchase(30_000, at=local(2026, 1, 10, 23, 30), member="M2",
                 items=[*coffee, item("Y", 1, 5000)])  # fmt: skip
    api.custom("review.submitted", at=local(2026, 1, 10, 23, 40), member="M2")
    api.send({"id": "refund-1", "type": "refund", "member": {"external_id": "M1"},
              "order_id": "SAT-M1", "amount": "50000", "occurred_at": local(2026, 1, 11, 9)})  # fmt: skip
    api.purchase(70_000, at=local(2026, 1, 12, 0, 30), member="M3")
    assert by_rule(saturday) == {"Base earn rate": 100, "Weekend": 100}


PROPOSED = [
    rule(
        name="Coffee bonus",
        effect={"type": "fixed", "points": 100},
        conditions={"items": {"where": {"field": "item.category", "op": "eq", "value": "coffee"}}},
    ),
    rule(
        name="First purchase",
        effect={"type": "fixed", "points": 500},
        conditions={"field": "member.is_first_purchase", "op": "eq", "value": True},
    ),
]


def test_replay_totals_and_difference_on_a_known_dataset(
    api: Api, db: Database, tenant: TenantFixture
) -> None:
    replay_dataset(api, db, tenant)
    before = counts(db)
    r = api.post(
        "/v1/rules/replay",
        {"from": local(2026, 1, 5, 0, 0), "to": local(2026, 1, 12, 0, 0), "rules": PROPOSED},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert counts(db) == before
    # Window events: M1 50k (Mon), M1 100k (Sat), M2 30k (Sat), M2's review; not the refund,
    # not the purchases before or after.
    assert out["events"] == 4
    cur, prop = out["current"], out["proposed"]
    # Current: base 50 + 100 + 30 = 180, weekend bonus 100 + 30 = 130.
    assert cur["points"] == 310
    assert cur["by_rule"] == {"Base earn rate": 180, "Weekend": 130}
    assert (cur["events_awarded"], cur["members_awarded"]) == (3, 2)
    # Proposed: base 180, coffee 2 × 100, first purchase only for M2 (M1 bought in December).
    assert prop["points"] == 880
    assert prop["by_rule"] == {"Base earn rate": 180, "Coffee bonus": 200, "First purchase": 500}
    assert Decimal(cur["cost"]) == 310 * 5
    assert Decimal(prop["cost"]) == 880 * 5
    assert out["difference"]["points"] == 570
    assert Decimal(out["difference"]["cost"]) == 570 * 5
    # M1: 50 + 200 = 250 either way (coffee on Monday instead of the weekend bonus);
    # M2: 60 → 630. Only M2 is affected.
    assert out["difference"]["members_affected"] == 1
    most = [(m["current"], m["proposed"], m["difference"]) for m in out["most_affected"]]
    assert most == [(60, 630, 570)]
    assert Decimal(out["cost_per_point"]) == 5
    assert out["currency"] == "IDR"


def test_replay_counts_limits_from_the_start_of_the_window(
    api: Api, db: Database, tenant: TenantFixture
) -> None:
    replay_dataset(api, db, tenant)
    once = rule(
        name="Once",
        effect={"type": "fixed", "points": 1000},
        limits=[{"period": "lifetime", "max_count": 1}],
    )
    out = api.post(
        "/v1/rules/replay",
        {"from": local(2026, 1, 5, 0, 0), "to": local(2026, 1, 12, 0, 0), "rules": [once],
         "top": 1},
    ).json()  # fmt: skip
    assert out["proposed"]["by_rule"] == {"Base earn rate": 180, "Once": 2000}
    assert len(out["most_affected"]) == 1


def test_replay_refuses_an_empty_period(api: Api) -> None:
    r = api.post(
        "/v1/rules/replay",
        {"from": local(2026, 1, 5, 0, 0), "to": local(2026, 1, 5, 0, 0), "rules": []},
    )
    assert r.status_code == 422
