"""A reward coupon bought with points stays usable when its member is merged into another:
the survivor holds the merged member's codes (and nobody else does)."""

from __future__ import annotations

from setia.core.db import Database
from tests.coupons.conftest import make_campaign
from tests.coupons.test_validate import check, redeem
from tests.ledger.support import assert_db_sound
from tests.rewards.helpers import Api, reward


def test_survivor_uses_the_merged_members_reward_coupon(api: Api, db: Database) -> None:
    campaign = make_campaign(db, api.tenant)
    api.put_reward("DISC", reward("discount_coupon", 100, coupon_campaign_id=str(campaign)))
    source, survivor, stranger = api.member(), api.member(), api.member()
    api.give(source, 300)
    code = api.redeem_ok(source, "DISC")["coupon_code"]
    r = api.post(
        f"/v1/members/{survivor}/merge",
        {"source_member_id": source, "reason": "same person, two phones"},
    )
    assert r.status_code == 200, r.text
    assert check(api.client, api.tenant, code, member_id=survivor)["valid"] is True
    assert check(api.client, api.tenant, code, member_id=stranger)["reason_code"] == "wrong_member"
    r = redeem(api.client, api.tenant, code, "ORD-1", member_id=survivor)
    assert r.status_code == 201, r.text
    assert r.json()["member_id"] == survivor
    assert_db_sound(db)


def test_validate_for_a_merged_member_is_a_documented_409(api: Api, db: Database) -> None:
    campaign = make_campaign(db, api.tenant, public_code="SEMUA")
    assert campaign
    source, survivor = api.member(), api.member()
    r = api.post(f"/v1/members/{survivor}/merge", {"source_member_id": source, "reason": "dup"})
    assert r.status_code == 200, r.text
    r = api.post(
        "/v1/coupons/validate",
        {
            "code": "SEMUA",
            "member_id": source,
            "cart": {"currency": "IDR", "items": [{"sku": "A", "quantity": 1, "unit_price": "1"}]},
        },
    )
    assert (r.status_code, r.json()["code"]) == (409, "member_not_active")
    spec = api.client.get("/openapi.json").json()
    assert "409" in spec["paths"]["/v1/coupons/validate"]["post"]["responses"]
    assert (
        "413"
        in spec["paths"]["/v1/coupon-campaigns/{campaign_id}/codes/import"]["post"]["responses"]
    )
