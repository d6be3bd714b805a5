"""Merging two members folds their tier standing: the higher earned tier and its retention
survive, and the duplicate's activity counts for the survivor afterwards."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantFixture
from tests.rules.helpers import Api, local
from tests.tiers.helpers import history, member_id, setup, view


def test_merge_keeps_the_higher_tier_and_moves_the_activity(
    client: TestClient, tenant: TenantFixture
) -> None:
    api = Api(client, tenant)
    setup(api)
    gold = member_id(api.purchase(5_200_000, at=local(2026, 2, 1), member="DUP"))
    keep = member_id(api.purchase(300_000, at=local(2026, 2, 2), member="KEEP"))
    assert view(api, gold)["tier"]["code"] == "gold"
    assert view(api, keep)["tier"]["code"] == "bronze"

    r = api.post(f"/v1/members/{keep}/merge", {"source_member_id": gold, "reason": "same person"})
    assert r.status_code == 200, r.text

    v = view(api, keep, locale="en")
    assert v["tier"]["code"] == "gold"
    assert v["secure_until"] == "2027-12-31"
    assert v["figures"][0]["value"] == "5500000"  # both members' spend now counts
    assert history(api, keep)[0]["reason"] == "merged"
