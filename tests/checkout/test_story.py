"""One member's story across rewards, coupons, paying with points and refunds, through the API.

A reward coupon is redeemed, used on an order that is also partly paid with points, the
order is fully refunded (by a refund event, sent twice), and the reward is then cancelled.
Balances, the coupon and the reward's stock come back exactly once, and the ledger verifies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.checkout.conftest import Till

CART = {"currency": "IDR", "items": [{"sku": "KOPI", "quantity": 2, "unit_price": "25000"}]}


def reward_stock(till: Till) -> Any:
    rewards = till.ok(till.get(f"/v1/programs/{till.t.program_id}/rewards"))
    listed = rewards["data"] if isinstance(rewards, dict) and "data" in rewards else rewards
    (reward,) = [r for r in listed if r["code"] == "potongan-10rb"]
    return reward["stock"]["left"]


def test_refund_and_cancel_give_everything_back_exactly_once(till: Till) -> None:
    till.configure(points_payment_rate=Decimal(10), points_payment_max_percent=50)
    m = till.member()
    till.purchase(m, "O-1", "5000000")  # earns 5,000 points (1 per Rp 1.000)
    assert till.available(m) == 5_000

    campaign = till.ok(
        till.post(
            "/v1/coupon-campaigns",
            {
                "code": "hadiah-10rb",
                "names": {"id": "Potongan Rp 10.000", "en": "Rp 10,000 off"},
                "discount": {"type": "fixed", "amount": "10000"},
                "conditions": {"min_spend": "30000"},
                "member_bound": True,
            },
        ),
        201,
    )
    r = till.c.put(
        f"/v1/programs/{till.t.program_id}/rewards/potongan-10rb",
        json={
            "kind": "discount_coupon",
            "names": {"id": "Potongan Rp 10.000", "en": "Rp 10,000 off"},
            "points": 1_000,
            "coupon_campaign_id": campaign["id"],
            "coupon_validity_days": 30,
            "stock_total": 2,
        },
        headers=till.t.headers,
    )
    assert r.status_code == 201, r.text
    redemption = till.ok(
        till.post(f"/v1/members/{m}/redemptions", {"reward": "potongan-10rb"}, key="red-1"), 201
    )
    code = redemption["coupon_code"]
    assert code
    assert till.available(m) == 4_000
    assert reward_stock(till) == 1

    # Checkout of order O-2 (Rp 50.000): the coupon takes Rp 10.000, points pay Rp 10.000.
    check = till.ok(till.post("/v1/coupons/validate", {"code": code, "member_id": m, "cart": CART}))
    assert check["valid"] is True
    assert Decimal(check["discount"]) == 10_000
    till.ok(
        till.post(
            "/v1/coupons/redeem", {"code": code, "member_id": m, "order_id": "O-2", "cart": CART}
        ),
        201,
    )
    till.paid(m, "O-2", 1_000, total="50000")
    assert till.available(m) == 3_000
    till.purchase(m, "O-2", "50000")  # earns 50
    assert till.available(m) == 3_050
    used = till.ok(till.post("/v1/coupons/validate", {"code": code, "member_id": m, "cart": CART}))
    assert used["valid"] is False

    # The whole order comes back: earned points reversed, paid points returned, coupon usable.
    first = till.refund_event(m, "O-2", "50000", "refund-O-2")
    again = till.refund_event(m, "O-2", "50000", "refund-O-2")
    assert again == first
    assert first["refund"]["points_reversed"] == 50
    assert first["refund"]["checkout"]["points_returned"] == 1_000
    assert till.available(m) == 4_000
    usable = till.ok(
        till.post("/v1/coupons/validate", {"code": code, "member_id": m, "cart": CART})
    )
    assert usable["valid"] is True

    # The member no longer wants the reward: the unused coupon is cancelled, points and stock
    # come back, once.
    cancelled = till.ok(till.post(f"/v1/redemptions/{redemption['id']}/cancel", {}))
    assert cancelled["status"] == "cancelled"
    assert till.available(m) == 5_000
    assert reward_stock(till) == 2
    twice = till.ok(till.post(f"/v1/redemptions/{redemption['id']}/cancel", {}))
    assert twice["status"] == "cancelled"
    assert till.available(m) == 5_000
    assert reward_stock(till) == 2
    gone = till.ok(till.post("/v1/coupons/validate", {"code": code, "member_id": m, "cart": CART}))
    assert gone["valid"] is False
    assert gone["reason_code"] == "cancelled"
    till.sound()


def test_a_reward_coupon_restored_by_a_refund_after_its_expiry_returns_its_points(
    till: Till,
) -> None:
    from datetime import timedelta

    from setia.core.time import utcnow
    from setia.jobs.service import run_due

    m = till.member()
    till.purchase(m, "O-1", "3000000")
    campaign = till.ok(
        till.post(
            "/v1/coupon-campaigns",
            {
                "code": "hadiah",
                "names": {"id": "Potongan", "en": "Off"},
                "discount": {"type": "fixed", "amount": "10000"},
                "member_bound": True,
            },
        ),
        201,
    )
    r = till.c.put(
        f"/v1/programs/{till.t.program_id}/rewards/potongan",
        json={
            "kind": "discount_coupon",
            "names": {"id": "Potongan", "en": "Off"},
            "points": 1_000,
            "coupon_campaign_id": campaign["id"],
            "coupon_validity_days": 7,
        },
        headers=till.t.headers,
    )
    assert r.status_code == 201, r.text
    red = till.ok(till.post(f"/v1/members/{m}/redemptions", {"reward": "potongan"}, key="r"), 201)
    body = {"code": red["coupon_code"], "member_id": m, "order_id": "O-2", "cart": CART}
    till.ok(till.post("/v1/coupons/redeem", body), 201)
    assert till.available(m) == 2_000
    later = utcnow() + timedelta(days=8)
    # Used: its expiry changes nothing.
    assert run_due(till.db, now=later).rewards == {}
    assert till.ok(till.get(f"/v1/redemptions/{red['id']}"))["status"] == "issued"
    # The order is cancelled after the coupon's expiry: the coupon was never really used.
    till.ok(
        till.post(
            "/v1/coupons/void",
            {"code": red["coupon_code"], "order_id": "O-2", "reason": "order cancelled"},
        )
    )
    report = run_due(till.db, now=later + timedelta(hours=1))
    assert report.rewards["expired_coupons"] == 1
    assert report.rewards["points_returned"] == 1_000
    assert till.ok(till.get(f"/v1/redemptions/{red['id']}"))["status"] == "expired"
    assert till.available(m) == 3_000
    assert run_due(till.db, now=later + timedelta(hours=2)).rewards == {}
    assert till.available(m) == 3_000
    till.sound()
