"""Program settings through the API: values the program could not work with are refused
with the field to fix, and nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantFixture
from tests.events.helpers import purchase

TOO_MUCH: list[tuple[dict[str, Any], str]] = [
    ({"earn_per_amount": "0.00001"}, "earn_per_amount"),  # the column keeps 4 decimals
    ({"earn_per_amount": "1e13"}, "earn_per_amount"),
    ({"earn_points": 10**19}, "earn_points"),
    ({"hold_timeout_minutes": 10**10}, "hold_timeout_minutes"),
    ({"min_redeem_points": 10**12}, "min_redeem_points"),
    ({"cost_per_point": "0.0000001"}, "cost_per_point"),
    ({"points_payment_rate": "1e10"}, "points_payment_rate"),
]


@pytest.mark.parametrize(("change", "field"), TOO_MUCH, ids=[f for _c, f in TOO_MUCH])
def test_a_setting_the_program_cannot_use_is_refused(
    client: TestClient, tenant: TenantFixture, change: dict[str, Any], field: str
) -> None:
    url = f"/v1/programs/{tenant.program_id}"
    before = client.get(url, headers=tenant.headers).json()
    r = client.patch(url, json=change, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert r.json()["errors"][0]["loc"][-1] == field
    assert client.get(url, headers=tenant.headers).json() == before
    # the program still earns and holds as before
    r = client.post("/v1/events", json=purchase("after"), headers=tenant.headers)
    assert r.status_code == 201, r.text
    member = r.json()["member_id"]
    r = client.post(
        f"/v1/members/{member}/points/holds", json={"points": 1}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text


def test_the_smallest_and_largest_settings_work(client: TestClient, tenant: TenantFixture) -> None:
    url = f"/v1/programs/{tenant.program_id}"
    r = client.patch(
        url,
        json={"earn_per_amount": "0.0001", "earn_points": 1, "hold_timeout_minutes": 43_200},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["earn_per_amount"] == "0.0001"
    r = client.post("/v1/events", json=purchase("tiny", amount="1"), headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.json()["points"]["earned"] == 10_000


def test_an_adjustment_beyond_the_ledger_is_refused(
    client: TestClient, tenant: TenantFixture
) -> None:
    r = client.post("/v1/events", json=purchase("e"), headers=tenant.headers)
    member = r.json()["member_id"]
    for points in (10**13, -(10**13)):
        r = client.post(
            f"/v1/members/{member}/points/adjust",
            json={"points": points, "reason": "typo"},
            headers=tenant.headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][-1] == "points"


def test_an_earn_rate_that_would_overflow_the_ledger_is_refused(
    client: TestClient, tenant: TenantFixture
) -> None:
    """Each number alone is fine; together they would give a large purchase more points
    than the ledger's counters hold."""
    url = f"/v1/programs/{tenant.program_id}"
    before = client.get(url, headers=tenant.headers).json()
    r = client.patch(
        url, json={"earn_points": 1_000_000, "earn_per_amount": "0.0001"}, headers=tenant.headers
    )
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["field"]) == ("invalid_input", "earn_per_amount")
    assert client.get(url, headers=tenant.headers).json() == before
