"""Tiers in the rules engine: ``member.tier_multiplier`` as a multiplier effect and
``member.tier`` in a condition, end to end through POST /v1/events."""

from __future__ import annotations

from tests.rules.helpers import Api, by_rule, not_fired
from tests.tiers.helpers import member_id, setup


def test_tier_multiplier_effect_and_tier_condition(api: Api) -> None:
    setup(api)  # Perak ×1.25 from Rp 1.000.000, Emas ×1.5 from Rp 5.000.000
    api.add_rule(
        name="Tier bonus", effect={"type": "multiplier", "factor": "member.tier_multiplier"}
    )
    api.add_rule(
        name="Gold coffee",
        effect={"type": "fixed", "points": 10},
        conditions={"all": [{"field": "member.tier", "op": "eq", "value": "gold"}]},
    )
    # Perunggu (×1): the base only; the tier bonus has nothing to give.
    first = api.purchase(100_000)
    m = member_id(first)
    assert by_rule(first) == {"Base earn rate": 100}
    assert not_fired(first)["Tier bonus"]["reason"] == "no_points"
    assert not_fired(first)["Gold coffee"]["reason"] == "condition_false"
    # The purchase that reaches Emas is earned at the tier held before it (Perunggu).
    reach = api.purchase(4_900_000)
    assert by_rule(reach) == {"Base earn rate": 4900}
    assert api.get(f"/v1/members/{m}/tier").json()["tier"]["code"] == "gold"
    # Emas: 1.5 × base (a bonus of half the base), and the Gold-only rule fires.
    gold = api.purchase(100_000)
    assert by_rule(gold) == {"Base earn rate": 100, "Tier bonus": 50, "Gold coffee": 10}
    assert gold["points"]["earned"] == 160


def test_silver_multiplier_and_override(api: Api) -> None:
    setup(api)
    api.add_rule(
        name="Tier bonus", effect={"type": "multiplier", "factor": "member.tier_multiplier"}
    )
    m = member_id(api.purchase(1_000_000))
    assert by_rule(api.purchase(100_000)) == {"Base earn rate": 100, "Tier bonus": 25}
    # An override to Emas counts as Emas for the rules.
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "gold", "reason": "tamu penting"})
    assert r.status_code == 200, r.text
    assert by_rule(api.purchase(100_000)) == {"Base earn rate": 100, "Tier bonus": 50}
