"""Qualification and rewards: only after the return window, a refund inside it cancels, caps
(month boundary in Asia/Jakarta), two levels and never three, retries and replays never award
twice, member.referral_count for rules, merge and erase."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from setia.core.time import utcnow
from setia.coupons.models import Coupon
from setia.referrals import service
from setia.referrals.models import Referral
from tests.referrals.conftest import World, after_window, utc


def test_qualifies_only_after_the_return_window(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    world.buy(budi, "75000")
    report = world.run(utcnow() + timedelta(days=6))
    assert report.qualified == 0
    assert world.referral(referral["id"])["status"] == "pending"
    assert world.referral_points(siti) == 0
    report = world.run(after_window())
    assert (report.qualified, report.rewarded, report.points) == (1, 1, 750)
    done = world.referral(referral["id"])
    assert done["status"] == "rewarded"
    assert done["order_amount"] == "75000"
    assert {(r["role"], r["status"], r["points"]) for r in done["rewards"]} == {
        ("referee", "given", 250),
        ("referrer", "given", 500),
    }
    assert [d["to_status"] for d in done["decisions"]] == ["pending", "qualified", "rewarded"]
    assert world.referral_points(siti) == 500
    assert world.referral_points(budi) == 250
    assert world.topics() == ["referral.created", "referral.qualified", "referral.rewarded"]
    member = world.client.get(f"/v1/members/{siti}", headers=world.h).json()
    assert member["referral_count"] == 1
    world.sound()


def test_a_small_first_order_does_not_qualify_a_later_big_one_does(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    world.buy(budi, "20000")
    assert world.run(after_window()).qualified == 0
    world.buy(budi, "60000")
    assert world.run(after_window()).qualified == 1
    assert world.referral(referral["id"])["order_amount"] == "60000"


def test_refund_inside_the_window_cancels(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    order = world.buy(budi, "75000")
    world.refund(budi, order, "30000")  # 45.000 left: below the 50.000 minimum
    report = world.run(after_window())
    assert (report.qualified, report.cancelled, report.points) == (0, 1, 0)
    done = world.referral(referral["id"])
    assert (done["status"], done["rewards"]) == ("cancelled", [])
    assert world.referral_points(siti) == world.referral_points(budi) == 0
    assert "referral.cancelled" in world.topics()
    # A cancelled referral stays cancelled, whatever is bought later.
    world.buy(budi, "90000")
    assert world.run(after_window(20)).qualified == 0


def test_with_no_minimum_a_fully_refunded_order_cancels_a_kept_one_qualifies(
    world: World,
) -> None:
    """A minimum of zero ("any first purchase") means a purchase that was kept."""
    world.settings(min_amount="0")
    siti = world.member("Siti")
    budi, refunded = world.referred(siti, "Budi")
    order = world.buy(budi, "60000")
    world.refund(budi, order, "60000")
    ani, kept = world.referred(siti, "Ani")
    world.buy(ani, "60000")
    report = world.run(after_window())
    assert (report.cancelled, report.rewarded) == (1, 1)
    assert world.referral(refunded["id"])["status"] == "cancelled"
    assert world.referral(kept["id"])["status"] == "rewarded"
    assert world.referral_points(budi) == 0


def test_a_small_refund_inside_the_window_still_qualifies(world: World) -> None:
    siti = world.member("Siti")
    budi, _referral = world.referred(siti, "Budi")
    order = world.buy(budi, "75000")
    world.refund(budi, order, "10000")  # 65.000 left
    assert world.run(after_window()).rewarded == 1


def test_refund_after_the_reward_leaves_the_reward(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    order = world.buy(budi, "75000")
    world.run(after_window())
    world.refund(budi, order, "75000")
    assert world.referral(referral["id"])["status"] == "rewarded"
    assert world.referral_points(siti) == 500
    assert world.referral_points(budi) == 250
    assert world.run(after_window(30)).as_dict() == {}
    world.sound()


def test_monthly_cap_counts_months_in_jakarta(world: World) -> None:
    world.settings(cap_per_month=1)
    siti = world.member("Siti")
    a, ra = world.referred(siti, "A")
    world.buy(a, "75000")
    # 23:30 on 31 January in Jakarta (16:30 UTC): January's reward.
    world.run(utc(2027, 1, 31, 16, 30))
    b, rb = world.referred(siti, "B")
    world.buy(b, "75000")
    # 00:30 on 1 February in Jakarta, still 31 January in UTC: a new month, a new reward.
    world.run(utc(2027, 1, 31, 17, 30))
    c, rc = world.referred(siti, "C")
    world.buy(c, "75000")
    report = world.run(utc(2027, 2, 20))
    assert report.capped == 1
    assert world.rewards(siti) == [
        ("referrer", "given", 500),
        ("referrer", "given", 500),
        ("referrer", "capped", 0),
    ]
    # The referee of a capped referral still gets their own reward.
    assert world.referral_points(c) == 250
    assert world.referral(rc["id"])["status"] == "rewarded"
    months = [r["local_month"] for r in world.referral(rb["id"])["rewards"]]
    assert months == ["2027-02", "2027-02"]
    assert [r["local_month"] for r in world.referral(ra["id"])["rewards"]] == ["2027-01"] * 2


def test_lifetime_cap(world: World) -> None:
    world.settings(cap_lifetime=2, referee_points=0)
    siti = world.member("Siti")
    for name in ("A", "B", "C"):
        m, _ = world.referred(siti, name)
        world.buy(m, "75000")
    report = world.run(after_window())
    assert (report.qualified, report.rewarded, report.capped) == (3, 2, 1)
    assert world.referral_points(siti) == 1000
    # The capped referral is qualified (it counts for recognition) but not rewarded.
    statuses = sorted(
        r["status"] for r in world.client.get("/v1/referrals", headers=world.h).json()["data"]
    )
    assert statuses == ["qualified", "rewarded", "rewarded"]
    assert world.client.get(f"/v1/members/{siti}", headers=world.h).json()["referral_count"] == 3


def test_two_levels_and_never_three(world: World) -> None:
    world.settings(level2_enabled=True, level2_points=100)
    a = world.member("A")
    b, _ = world.referred(a, "B")
    world.buy(b, "75000")
    world.run(after_window())
    assert world.referral_points(a) == 500
    c, rc = world.referred(b, "C")
    world.buy(c, "75000")
    world.run(after_window())
    assert {(r["role"], r["member_id"]) for r in world.referral(rc["id"])["rewards"]} == {
        ("referee", str(c)),
        ("referrer", str(b)),
        ("level2", str(a)),
    }
    assert world.referral_points(a) == 600
    d, rd = world.referred(c, "D")
    world.buy(d, "75000")
    world.run(after_window())
    roles = {(r["role"], r["member_id"]) for r in world.referral(rd["id"])["rewards"]}
    assert roles == {("referee", str(d)), ("referrer", str(c)), ("level2", str(b))}
    assert world.referral_points(a) == 600  # three levels up: nothing
    world.sound()


def test_no_second_level_while_the_upline_has_not_qualified(world: World) -> None:
    world.settings(level2_enabled=True, level2_points=100)
    a = world.member("A")
    b, _ = world.referred(a, "B")  # B never buys: A->B is not qualified
    c, rc = world.referred(b, "C")
    world.buy(c, "75000")
    world.run(after_window())
    assert {r["role"] for r in world.referral(rc["id"])["rewards"]} == {"referee", "referrer"}
    assert world.referral_points(a) == 0


def test_retried_and_replayed_jobs_never_award_twice(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    bought = utcnow() - timedelta(hours=1)
    order = world.buy(budi, "75000", at=bought)
    at = after_window()
    world.run(at)
    transfers = world.referral_transfers()
    assert transfers == 2
    # The same run again, a later run, and the purchase event replayed.
    assert world.run(at).as_dict() == {}
    assert world.run(at + timedelta(days=3)).as_dict() == {}
    world.buy(budi, "75000", at=bought, order=order)
    # A replay of the whole step (the referral seen as pending again, e.g. a restored
    # snapshot or a worker that read a stale row): the reward rows' key stops it.
    with world.db.session() as s:
        s.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(referral["id"]))
            .values(status="pending")
        )
    world.run(at)
    with world.db.session() as s:
        assert service.process(s, uuid.UUID(referral["id"]), at) in (None, "qualified")
    assert world.referral_transfers() == transfers
    assert world.referral_points(siti) == 500
    world.sound()


def test_held_referrals_wait_for_approval(world: World) -> None:
    world.settings(review_required=True)
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    world.buy(budi, "75000")
    assert world.run(after_window()).qualified == 0
    world.client.post(
        f"/v1/referrals/{referral['id']}/approve", json={"reason": "checked"}, headers=world.h
    )
    assert world.run(after_window()).rewarded == 1
    ani, rejected = world.referred(siti, "Ani")
    world.buy(ani, "75000")
    world.client.post(
        f"/v1/referrals/{rejected['id']}/reject", json={"reason": "fake"}, headers=world.h
    )
    assert world.run(after_window()).qualified == 0
    assert world.referral_points(ani) == 0


def test_coupon_rewards_are_issued_once(world: World) -> None:
    r = world.client.post(
        "/v1/coupon-campaigns",
        json={
            "code": "welcome-friend",
            "names": {"id": "Teman baru", "en": "New friend"},
            "discount": {"type": "percent", "percent": "10"},
        },
        headers={**world.h, "Idempotency-Key": "camp-ref"},
    )
    assert r.status_code == 201, r.text
    world.settings(referee_campaign_id=r.json()["id"])
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi")
    world.buy(budi, "75000")
    report = world.run(after_window())
    assert report.coupons == 1
    rewards = {x["role"]: x for x in world.referral(referral["id"])["rewards"]}
    assert rewards["referee"]["coupon_id"]
    assert rewards["referrer"]["coupon_id"] is None
    assert world.run(after_window()).as_dict() == {}
    with world.db.session() as s:
        issued = s.execute(select(Coupon).where(Coupon.source_type == "referral")).scalars().all()
    assert [(c.member_id, c.max_uses) for c in issued] == [(budi, 1)]


def test_rules_read_member_referral_count(world: World) -> None:
    r = world.client.post(
        "/v1/rules",
        json={
            "name": "Advocates earn more",
            "triggers": ["purchase"],
            "conditions": {"field": "member.referral_count", "op": "gte", "value": 1},
            "effect": {"type": "fixed", "points": 77},
        },
        headers=world.h,
    )
    assert r.status_code == 201, r.text
    siti = world.member("Siti")

    def bonus(order_id: str) -> int:
        ev = world.client.get(f"/v1/events/ev-{order_id}", headers=world.h).json()
        return sum(
            a["points"] for a in ev["points"]["awards"] if a["rule_name"] == "Advocates earn more"
        )

    assert bonus(world.buy(siti, "10000")) == 0
    budi, _ = world.referred(siti, "Budi")
    world.buy(budi, "75000")
    world.run(after_window())
    assert bonus(world.buy(siti, "10000")) == 77
    # The batch path reads it too.
    r = world.client.post(
        "/v1/events/batch",
        json={
            "events": [
                {
                    "id": "batch-1",
                    "type": "purchase",
                    "occurred_at": (utcnow() - timedelta(minutes=1)).isoformat(),
                    "member": {"id": str(siti)},
                    "order_id": "B-1",
                    "amount": "10000",
                    "currency": "IDR",
                }
            ]
        },
        headers=world.h,
    )
    assert r.status_code in (200, 201, 207), r.text
    ev = world.client.get("/v1/events/batch-1", headers=world.h).json()
    assert any(a["rule_name"] == "Advocates earn more" for a in ev["points"]["awards"])


def test_merge_moves_referrals_to_the_survivor(world: World) -> None:
    siti = world.member("Siti")
    siti2 = world.member("Siti (duplicate)")
    budi, referral = world.referred(siti2, "Budi")
    r = world.client.post(
        f"/v1/members/{siti}/merge",
        json={"source_member_id": str(siti2), "reason": "same person"},
        headers=world.h,
    )
    assert r.status_code == 200, r.text
    assert world.referral(referral["id"])["referrer_id"] == str(siti)
    world.buy(budi, "75000")
    world.run(after_window())
    assert world.referral_points(siti) == 500
    # Merging the referee into its referrer cancels a pending referral: no self-reward.
    ani, r2 = world.referred(siti, "Ani")
    world.client.post(
        f"/v1/members/{siti}/merge",
        json={"source_member_id": str(ani), "reason": "same person"},
        headers=world.h,
    )
    done = world.referral(r2["id"])
    assert (done["status"], done["referee_id"]) == ("cancelled", str(siti))


def test_erasure_keeps_anonymous_referral_rows(world: World) -> None:
    siti = world.member("Siti")
    budi = world.member("Budi", referral_code=world.code(siti), device_id="budi-phone")
    referral = world.referral_of(budi)
    world.client.post(
        f"/v1/members/{budi}/erase",
        json={"reason": "data subject request", "confirm": True},
        headers=world.h,
    )
    with world.db.session() as s:
        row = s.execute(
            select(Referral).where(Referral.id == uuid.UUID(referral["id"]))
        ).scalar_one()
        assert row.device_id is None
        assert row.referee_id == budi


def test_the_member_export_includes_referrals(world: World) -> None:
    siti = world.member("Siti")
    budi, referral = world.referred(siti, "Budi", device_id="budi-phone")
    world.buy(budi, "75000")
    world.run(after_window())
    mine = world.client.get(f"/v1/members/{siti}/export", headers=world.h).json()["referrals"]
    assert mine["code"] == world.code(siti)
    assert [(r["id"], r["role"], r["status"]) for r in mine["referrals"]] == [
        (referral["id"], "referrer", "rewarded")
    ]
    assert [(w["role"], w["points"]) for w in mine["rewards"]] == [("referrer", 500)]
    theirs = world.client.get(f"/v1/members/{budi}/export", headers=world.h).json()["referrals"]
    assert theirs["referrals"][0]["device_id"] == "budi-phone"
