"""Tiers created (or thresholds lowered) after members already bought: the next evaluation
places them; before it, nobody is moved retroactively."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from tests.conftest import TenantFixture
from tests.rules.helpers import Api, local
from tests.tiers.helpers import evaluate, member_id, setup, tier_set, view


def test_the_first_evaluation_places_members_who_qualified_before_the_tiers(
    client: TestClient, tenant: TenantFixture
) -> None:
    api = Api(client, tenant)
    big = member_id(api.purchase(5_500_000, at=local(2026, 3, 1), member="BIG"))
    mid = member_id(api.purchase(1_200_000, at=local(2026, 3, 2), member="MID"))
    small = member_id(api.purchase(100_000, at=local(2026, 3, 3), member="SMALL"))
    setup(api)
    assert view(api, big)["tier"]["code"] == "bronze"  # not moved by creating the tiers
    report = evaluate(api, date(2026, 3, 4))
    assert report["upgraded"] == 2
    assert [view(api, m)["tier"]["code"] for m in (big, mid, small)] == ["gold", "silver", "bronze"]
    assert evaluate(api, date(2026, 3, 4))["upgraded"] == 0


def test_lowering_a_threshold_takes_effect_at_the_next_evaluation(
    client: TestClient, tenant: TenantFixture
) -> None:
    api = Api(client, tenant)
    setup(api)
    m = member_id(api.purchase(800_000, at=local(2026, 3, 1)))
    assert view(api, m)["tier"]["code"] == "bronze"
    lower = tier_set()
    lower["tiers"][1]["thresholds"] = ["750000"]
    r = api.put(f"/v1/programs/{tenant.program_id}/tier-set", lower)
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    assert evaluate(api, date(2026, 3, 2))["upgraded"] == 1
    assert view(api, m)["tier"]["code"] == "silver"
