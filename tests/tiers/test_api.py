"""The tiers API: validation messages, business conflicts, tenant isolation, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from tests.conftest import TenantFixture, make_tenant
from tests.rules.helpers import Api, local
from tests.tiers.conftest import Clock
from tests.tiers.helpers import member_id, names, setup, tier_set


def put_set(api: Api, body: dict[str, Any]) -> Any:
    return api.put(f"/v1/programs/{api.tenant.program_id}/tier-set", body)


def _tiers(*thresholds: str, invitation: int | None = None) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(thresholds):
        tier: dict[str, Any] = {"code": f"t{i}", "names": names("A", "B", "C"), "thresholds": [t]}
        if i == invitation:
            tier["invitation_only"] = True
        out.append(tier)
    return out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"tiers": _tiers("0", "5000000", "1000000")}, "t2: thresholds must not be lower"),
        ({"tiers": _tiers("10", "100")}, "the first tier is where every member starts"),
        ({"tiers": _tiers("0", "abc")}, "threshold 'abc' must be a number of 0 or more"),
        ({"tiers": _tiers("0", "-5")}, "threshold '-5' must be a number of 0 or more"),
        ({"tiers": _tiers("0", "NaN")}, "threshold 'NaN' must be a number of 0 or more"),
        ({"tiers": _tiers("0", "1", invitation=0)}, "the first tier cannot be invitation-only"),
        ({"tiers": [*_tiers("0", "1"), _tiers("0", "2")[1]]}, "tier codes must be unique"),
        ({"metrics": [{"metric": "spend"}, {"metric": "visits"}]}, "give one threshold per metric"),
        ({"metrics": [{"metric": "event"}]}, "event_type is needed for metric event"),
        ({"window": {"kind": "rolling"}}, "months is needed for a rolling window"),
        ({"window": {"kind": "calendar_year", "months": 12}}, "months is needed for a rolling"),
        ({"retention": {"kind": "months"}}, "months is needed for retention kind months"),
        (
            {"window": {"kind": "rolling", "months": 12}},
            "retention end_of_next_window needs a calendar or anniversary window, not rolling",
        ),
        ({"tiers": [{**_tiers("0")[0], "code": "Gold!"}]}, "code must be lowercase letters"),
        ({"grace_days": -1}, "grace_days"),
        ({"tiers": []}, "tiers"),
    ],
)
def test_put_tier_set_says_what_to_fix(api: Api, change: dict[str, Any], says: str) -> None:
    r = put_set(api, tier_set(**change))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    assert says in body["detail"] or any(
        says in e["msg"] or says in ".".join(map(str, e["loc"])) for e in body["errors"]
    ), body


def test_invitation_only_tier_may_sit_between_and_any_order_of_its_threshold(api: Api) -> None:
    r = put_set(api, tier_set(tiers=_tiers("0", "1000", "0", "5000", invitation=2)))
    assert r.status_code == 200, r.text
    assert [(t["code"], t["rank"]) for t in r.json()["tiers"]] == [
        ("t0", 0),
        ("t1", 1),
        ("t2", 2),
        ("t3", 3),
    ]


def test_removing_a_tier_with_members_is_refused(api: Api, clock: Clock) -> None:
    saved = setup(api)
    assert saved["revision"] == 1
    api.purchase(1_500_000, at=local(2025, 5, 1))
    body = tier_set()
    body["tiers"] = [t for t in body["tiers"] if t["code"] != "silver"]
    r = put_set(api, body)
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["tier"], r.json()["members"]) == ("tier_in_use", "silver", 1)
    # Nothing was half-written: the structure is as it was.
    got = api.get(f"/v1/programs/{api.tenant.program_id}/tier-set").json()
    assert ([t["code"] for t in got["tiers"]], got["revision"]) == (["bronze", "silver", "gold"], 1)
    # Removing an unused tier, renaming and reordering thresholds is fine.
    body = tier_set()
    body["tiers"] = [t for t in body["tiers"] if t["code"] != "gold"]
    body["tiers"][1]["names"] = names("Perak Baru", "Perak", "Silver")
    r = put_set(api, body)
    assert r.status_code == 200, r.text
    assert ([t["code"] for t in r.json()["tiers"]], r.json()["revision"]) == (
        ["bronze", "silver"],
        2,
    )


def test_override_errors(api: Api, db: Database, clock: Clock) -> None:
    m = member_id(api.purchase(10_000))
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "gold", "reason": "tamu"})
    assert (r.status_code, r.json()["code"]) == (404, "tier_set_not_found")
    setup(api)
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "platinum", "reason": "tamu"})
    assert (r.status_code, r.json()["code"]) == (404, "tier_not_found")
    assert "bronze, silver, gold" in r.json()["detail"]
    clock.set(2025, 6, 1)
    r = api.put(
        f"/v1/members/{m}/tier/override",
        {"tier": "gold", "until": "2025-05-31", "reason": "tamu"},
    )
    assert (r.status_code, r.json()["code"]) == (409, "override_in_past")
    assert "give a future end date" in r.json()["detail"]
    # The last day may be today (the tenant's).
    r = api.put(
        f"/v1/members/{m}/tier/override",
        {"tier": "gold", "until": "2025-06-01", "reason": "tamu"},
    )
    assert r.status_code == 200, r.text
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "gold", "reason": "x"})
    assert r.status_code == 422  # a reason of a few letters at least
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "gold"})
    assert r.status_code == 422


def test_another_tenants_member_is_not_found(
    api: Api, db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    setup(api)
    other = make_tenant(db, name="Toko Lain")
    other_api = Api(client, other)
    setup(other_api)
    theirs = member_id(other_api.purchase(2_000_000, member="X"))
    for method, path, body in [
        ("get", f"/v1/members/{theirs}/tier", None),
        ("get", f"/v1/members/{theirs}/tier/history", None),
        ("put", f"/v1/members/{theirs}/tier/override", {"tier": "gold", "reason": "coba"}),
        ("delete", f"/v1/members/{theirs}/tier/override", None),
    ]:
        r = client.request(method, path, json=body, headers=api.headers)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "member_not_found", r.json()
    # Nor its program.
    r = api.get(f"/v1/programs/{other.program_id}/tier-set")
    assert r.status_code == 404
    r = other_api.get(f"/v1/members/{theirs}/tier")
    assert r.json()["tier"]["code"] == "silver"


def test_program_without_tiers(api: Api) -> None:
    r = api.get(f"/v1/programs/{api.tenant.program_id}/tier-set")
    assert (r.status_code, r.json()["code"]) == (404, "tier_set_not_found")
    m = member_id(api.purchase(10_000))
    for path in (f"/v1/members/{m}/tier", f"/v1/members/{m}/tier/history"):
        r = api.get(path)
        assert (r.status_code, r.json()["code"]) == (404, "tier_set_not_found"), path
    r = api.post(f"/v1/programs/{api.tenant.program_id}/tier-set/evaluate", {})
    assert (r.status_code, r.json()["code"]) == (404, "tier_set_not_found")


def test_openapi_lists_the_tier_paths(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    expected = {
        "/v1/programs/{program_id}/tier-set": {"get", "put"},
        "/v1/programs/{program_id}/tier-set/summary": {"get"},
        "/v1/programs/{program_id}/tier-set/evaluate": {"post"},
        "/v1/members/{member_id}/tier": {"get"},
        "/v1/members/{member_id}/tier/history": {"get"},
        "/v1/members/{member_id}/tier/override": {"put", "delete"},
    }
    for path, methods in expected.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), path
    override = doc["paths"]["/v1/members/{member_id}/tier/override"]["put"]
    assert {"404", "409", "422"} <= set(override["responses"])
    tier = doc["paths"]["/v1/members/{member_id}/tier"]["get"]
    schema = tier["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/MemberTierOut"}
    assert {"progress", "next_evaluation", "at_risk", "secure_until"} <= set(
        doc["components"]["schemas"]["MemberTierOut"]["properties"]
    )
