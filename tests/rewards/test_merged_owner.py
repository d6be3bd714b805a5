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
