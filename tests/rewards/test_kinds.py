"""Each reward kind end to end: what is issued, what the points do, what cancel does."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.coupons.models import Coupon
from setia.jobs.service import run_due
from setia.outbox.models import OutboxMessage
from tests.causes.support import put_cause
from tests.coupons.conftest import make_campaign
from tests.ledger.support import assert_db_sound, configure
from tests.rewards.helpers import Api, counts, refused, reward


def coupon_row(db: Database, coupon_id: str) -> Coupon:
    with db.session() as s:
        row = s.get(Coupon, uuid.UUID(coupon_id))
        assert row is not None
        s.expunge(row)
        return row


def topics(db: Database) -> list[str]:
    with db.session() as s:
        return [
            t
            for (t,) in s.execute(
                select(OutboxMessage.topic)
                .where(OutboxMessage.topic.like("reward.%"))
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
            )
        ]


def test_coupon_kinds_issue_a_unique_code_for_the_member(api: Api, db: Database) -> None:
    campaign = make_campaign(db, api.tenant, code_pattern="KOPI-####-????")
    for n, kind in enumerate(("discount_coupon", "free_product", "free_shipping")):
        api.put_reward(
            f"C{n}",
            reward(kind, 50, coupon_campaign_id=str(campaign), coupon_validity_days=30),
        )
    m = api.member()
    api.give(m, 500)
    codes = set()
    for n in range(3):
        red = api.redeem_ok(m, f"C{n}")
        assert red["status"] == "issued"
        assert red["coupon_code"].startswith("KOPI-")
        codes.add(red["coupon_code"])
        coupon = coupon_row(db, red["coupon_id"])
        assert str(coupon.member_id) == m
        assert coupon.expires_at is not None
        assert coupon.expires_at - utcnow() > timedelta(days=29)
        assert api.redemption(red["id"])["coupon_code"] == red["coupon_code"]
    assert len(codes) == 3
    assert api.available(m) == 350
    assert topics(db) == ["reward.redeemed"] * 3
    assert_db_sound(db)


def test_cancel_unused_coupon_returns_points_once(api: Api, db: Database) -> None:
    campaign = make_campaign(db, api.tenant)
    api.put_reward(
        "DISC", reward("discount_coupon", 100, coupon_campaign_id=str(campaign), stock_total=1)
    )
    m = api.member()
    api.give(m, 300)
    red = api.redeem_ok(m, "DISC")
    assert api.available(m) == 200
    r = api.cancel(red["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert coupon_row(db, red["coupon_id"]).status == "cancelled"
    assert api.available(m) == 300
    before = counts(db)
    assert api.cancel(red["id"]).status_code == 200
    assert counts(db) == before
    assert api.available(m) == 300
    # the unit of stock came back
    api.redeem_ok(m, "DISC")
    assert_db_sound(db)


def test_cancel_coupon_keeps_points_when_the_program_says_so(api: Api, db: Database) -> None:
    configure(db, api.tenant, coupon_cancel_returns_points=False)
    campaign = make_campaign(db, api.tenant)
    api.put_reward("DISC", reward("discount_coupon", 100, coupon_campaign_id=str(campaign)))
    m = api.member()
    api.give(m, 300)
    red = api.redeem_ok(m, "DISC")
    r = api.cancel(red["id"])
    assert r.status_code == 200
    assert r.json()["return_transfer_id"] is None
    assert api.available(m) == 200
    assert_db_sound(db)


def test_used_coupon_cannot_be_cancelled(api: Api, db: Database) -> None:
    from setia.coupons import service as coupons
    from tests.coupons.conftest import cart

    campaign = make_campaign(db, api.tenant)
    api.put_reward("DISC", reward("discount_coupon", 100, coupon_campaign_id=str(campaign)))
    m = api.member()
    api.give(m, 300)
    red = api.redeem_ok(m, "DISC")
    with db.session() as s:
        coupons.redeem(
            s,
            api.tenant.tenant_id,
            code=red["coupon_code"],
            order_id="ORD-1",
            cart=cart(("KOPI", "", 2, "50000")),
            member_id=uuid.UUID(m),
        )
    before = counts(db)
    refused(api.cancel(red["id"]), 409, "coupon_used")
    assert counts(db) == before
    assert api.available(m) == 200
    # a used coupon does not expire back into points either
    assert run_due(db, utcnow() + timedelta(days=3650)).rewards == {}
    assert api.available(m) == 200


def test_cashback_and_gift_card_credit_the_wallet(api: Api, db: Database) -> None:
    api.put_reward("CB", reward("cashback", 200, cashback_amount="10000"))
    api.put_reward("GC", reward("gift_card", 500, value="50000"))
    m = api.member()
    api.give(m, 1000)
    cb = api.redeem_ok(m, "CB")
    gc = api.redeem_ok(m, "GC")
    assert cb["status"] == gc["status"] == "issued"
    assert cb["wallet_transfer_id"]
    assert gc["wallet_transfer_id"]
    r = api.get(f"/v1/members/{m}/wallet")
    assert r.status_code == 200, r.text
    assert r.json()["available"] == "60000"
    assert api.available(m) == 300
    before = counts(db)
    body = refused(api.cancel(cb["id"]), 409, "not_cancellable")
    assert "wallet" in body["detail"]
    refused(api.cancel(gc["id"]), 409, "not_cancellable")
    assert counts(db) == before
    assert_db_sound(db)


def test_donation_gives_the_points_to_the_cause(api: Api, db: Database) -> None:
    cause = put_cause(db, api.tenant)
    api.put_reward("TREE", reward("donation", 250, cause_id=str(cause)))
    m = api.member()
    api.give(m, 1000)
    red = api.redeem_ok(m, "TREE")
    assert red["status"] == "issued"
    assert red["donation_id"]
    assert red["hold_transfer_id"] is None
    assert api.available(m) == 750
    refused(api.cancel(red["id"]), 409, "not_cancellable")
    # held, then confirmed: the hold is voided and the donation spends the points
    held = api.redeem_ok(m, "TREE", confirm=False)
    assert held["status"] == "held"
    assert api.available(m) == 500
    r = api.post(f"/v1/redemptions/{held['id']}/confirm")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "issued"
    assert r.json()["donation_id"]
    assert api.available(m) == 500
    assert api.points(m)["held"] == 0
    assert_db_sound(db)


def test_held_then_confirm_and_held_then_timeout(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 100, stock_total=2))
    m = api.member()
    api.give(m, 1000)
    held = api.redeem_ok(m, "MUG", confirm=False)
    assert held["status"] == "held"
    assert held["capture_transfer_id"] is None
    assert api.points(m)["held"] == 100
    assert api.available(m) == 900
    r = api.post(f"/v1/redemptions/{held['id']}/confirm")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "requested"
    assert r.json()["capture_transfer_id"]
    assert api.points(m)["held"] == 0
    assert api.available(m) == 900
    # confirming again changes nothing
    assert api.post(f"/v1/redemptions/{held['id']}/confirm").json()["status"] == "requested"

    second = api.redeem_ok(m, "MUG", confirm=False)
    refused(api.redeem(m, "MUG"), 409, "out_of_stock")
    report = run_due(db, utcnow() + timedelta(minutes=31))
    assert report.rewards == {"expired_holds": 1}
    assert report.errors == []
    assert api.redemption(second["id"])["status"] == "expired"
    assert api.available(m) == 900
    assert api.points(m)["held"] == 0
    refused(api.post(f"/v1/redemptions/{second['id']}/confirm"), 409, "invalid_transition")
    refused(api.cancel(second["id"]), 409, "not_cancellable")
    # the unit came back; a second run does nothing
    assert run_due(db, utcnow() + timedelta(minutes=31)).rewards == {}
    api.redeem_ok(m, "MUG")
    assert_db_sound(db)


def test_cancel_a_held_redemption_voids_the_hold(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 100, stock_total=1))
    m = api.member()
    api.give(m, 1000)
    held = api.redeem_ok(m, "MUG", confirm=False)
    r = api.cancel(held["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert api.available(m) == 1000
    assert api.points(m)["held"] == 0
    api.redeem_ok(m, "MUG")
    assert_db_sound(db)


def test_coupon_expiry_returns_points_once(api: Api, db: Database) -> None:
    campaign = make_campaign(db, api.tenant)
    api.put_reward(
        "DISC",
        reward("discount_coupon", 100, coupon_campaign_id=str(campaign), coupon_validity_days=7),
    )
    m = api.member()
    api.give(m, 300)
    red = api.redeem_ok(m, "DISC")
    assert api.available(m) == 200
    assert run_due(db, utcnow() + timedelta(days=6)).rewards == {}
    report = run_due(db, utcnow() + timedelta(days=8))
    assert report.rewards == {"expired_coupons": 1, "points_returned": 100}
    assert api.redemption(red["id"])["status"] == "expired"
    assert api.available(m) == 300
    assert run_due(db, utcnow() + timedelta(days=9)).rewards == {}
    assert api.available(m) == 300
    refused(api.cancel(red["id"]), 409, "not_cancellable")
    assert "reward.expired" in topics(db)
    assert_db_sound(db)


def test_coupon_expiry_keeps_points_when_the_program_says_so(api: Api, db: Database) -> None:
    configure(db, api.tenant, coupon_cancel_returns_points=False)
    campaign = make_campaign(db, api.tenant)
    api.put_reward(
        "DISC",
        reward("discount_coupon", 100, coupon_campaign_id=str(campaign), coupon_validity_days=7),
    )
    m = api.member()
    api.give(m, 300)
    red = api.redeem_ok(m, "DISC")
    report = run_due(db, utcnow() + timedelta(days=8))
    assert report.rewards == {"expired_coupons": 1}
    assert api.redemption(red["id"])["status"] == "expired"
    assert api.available(m) == 200
    assert_db_sound(db)


def test_a_free_reward_held_without_points_still_times_out(api: Api, db: Database) -> None:
    api.put_reward("SAMPLE", reward("physical", 0, stock_total=1))
    m = api.member()
    held = api.redeem_ok(m, "SAMPLE", confirm=False)
    assert held["hold_transfer_id"] is None
    assert held["hold_expires_at"] is not None
    refused(api.redeem(api.member(), "SAMPLE"), 409, "out_of_stock")
    assert run_due(db, utcnow() + timedelta(minutes=31)).rewards == {"expired_holds": 1}
    assert api.redemption(held["id"])["status"] == "expired"
    api.redeem_ok(api.member(), "SAMPLE")
    assert_db_sound(db)
