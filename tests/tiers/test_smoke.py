from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from tests.conftest import TenantFixture
from tests.rules.helpers import Api, local
from tests.tiers.helpers import evaluate, history, member_id, setup, view


def test_upgrade_at_once_and_downgrade_only_after_retention(
    client: TestClient, tenant: TenantFixture
) -> None:
    api = Api(client, tenant)
    setup(api)
    first = api.purchase(600_000, at=local(2024, 3, 1))
    m = member_id(first)
    assert view(api, m, locale="en")["tier"]["code"] == "bronze"
    api.purchase(500_000, at=local(2024, 3, 2))
    v = view(api, m, locale="en")
    assert v["tier"]["code"] == "silver"
    assert v["secure_until"] == "2025-12-31"
    assert [h["reason"] for h in history(api, m)] == ["upgraded"]
    # 2025: nothing bought. Evaluations during 2025 keep Silver (retention to end of 2025).
    assert evaluate(api, date(2025, 6, 1))["downgraded"] == 0
    assert evaluate(api, date(2025, 12, 31))["downgraded"] == 0
    report = evaluate(api, date(2026, 1, 1))
    assert report["downgraded"] == 1
    again = evaluate(api, date(2026, 1, 1))
    assert again["downgraded"] == 0
    assert again["upgraded"] == 0
    assert view(api, m)["tier"]["code"] == "bronze"
    assert [h["reason"] for h in history(api, m)] == ["downgraded", "upgraded"]


def test_progress_sentence(client: TestClient, tenant: TenantFixture) -> None:
    api = Api(client, tenant)
    setup(api)
    m = member_id(api.purchase(750_000))
    v = view(api, m, locale="id")
    assert v["progress"]["remaining"][0]["missing"] == "250000"
    assert v["progress"]["message"].startswith("Rp")
    assert "Perak" in v["progress"]["message"]
    en = view(api, m, locale="en")["progress"]["message"]
    assert en.startswith("Rp\xa0250,000 to go before 31 Dec")
    assert en.endswith("for Silver")


def test_a_member_never_moved_has_been_in_the_base_tier_since_joining(
    client: TestClient, tenant: TenantFixture
) -> None:
    api = Api(client, tenant)
    setup(api)
    m = member_id(api.purchase(10_000))
    joined = api.get(f"/v1/members/{m}").json()["created_at"]
    v = view(api, m)
    assert v["tier"]["code"] == "bronze"
    assert v["since"] == joined
