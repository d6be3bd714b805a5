"""A coupon reward never promises more than its campaign: the code's expiry is the earlier of
``coupon_validity_days`` and the campaign's end, and an ended campaign issues nothing (the
member's points are not spent on a code that can no longer be used)."""

from __future__ import annotations

from datetime import datetime, timedelta

from setia.core.db import Database
from setia.core.time import as_utc, utcnow
from setia.jobs.service import run_due
from tests.coupons.conftest import make_campaign
from tests.ledger.support import assert_db_sound
from tests.rewards.helpers import TABLES, Api, counts, refused, reward
from tests.rewards.test_kinds import coupon_row


def test_reward_coupon_expiry_never_outlives_its_campaign(api: Api, db: Database) -> None:
    ends = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    campaign = make_campaign(db, api.tenant, conditions={"valid_until": ends.isoformat()})
    api.put_reward(
        "DISC",
        reward("discount_coupon", 100, coupon_campaign_id=str(campaign), coupon_validity_days=30),
    )
    m = api.member()
    api.give(m, 300)
    red = api.redeem_ok(m, "DISC")
    assert datetime.fromisoformat(red["coupon_expires_at"]) == ends
    assert as_utc(coupon_row(db, red["coupon_id"]).expires_at) == ends
    # The unused coupon expires with its campaign, and its points come back then.
    report = run_due(db, utcnow() + timedelta(days=4))
    assert report.rewards == {"expired_coupons": 1, "points_returned": 100}
    assert api.available(m) == 300
    assert_db_sound(db)


def test_no_coupon_reward_from_an_ended_campaign(api: Api, db: Database) -> None:
    ended = utcnow() - timedelta(seconds=1)
    campaign = make_campaign(db, api.tenant, conditions={"valid_until": ended.isoformat()})
    api.put_reward("DISC", reward("discount_coupon", 100, coupon_campaign_id=str(campaign)))
    m = api.member()
    api.give(m, 300)
    before = counts(db, TABLES)
    refused(api.redeem(m, "DISC"), 409, "campaign_ended")
    assert counts(db, TABLES) == before
    assert api.available(m) == 300
    assert_db_sound(db)
