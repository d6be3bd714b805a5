"""A full refund restores the order's coupons once (when the program says so); a partial
refund never does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.checkout.conftest import Till

CART = {"currency": "IDR", "items": [{"sku": "KOPI", "quantity": 2, "unit_price": "50000"}]}


def coupon_code(till: Till, campaign: str = "promo") -> str:
    camp = till.ok(
        till.post(
            "/v1/coupon-campaigns",
            {
                "code": campaign,
                "names": {"id": "Potongan 10rb", "en": "10k off"},
                "discount": {"type": "fixed", "amount": "10000"},
                "uses_per_code": 1,
            },
        ),
        201,
    )
    till.ok(
        till.post(f"/v1/coupon-campaigns/{camp['id']}/codes/generate", {"count": 1}),
        201,
    )
    codes = till.ok(till.get(f"/v1/coupon-campaigns/{camp['id']}/codes"))["data"]
    return str(codes[0]["code"])


def use(till: Till, code: str, member: str, order: str) -> dict[str, Any]:
    body = {"code": code, "member_id": member, "order_id": order, "cart": CART}
    return till.ok(till.post("/v1/coupons/redeem", body), 201)


def code_state(till: Till, code: str) -> tuple[str, int]:
    out = till.ok(till.get(f"/v1/coupons/{code}"))
    return out["status"], out["uses"]


@pytest.mark.parametrize("by_event", [True, False])
def test_full_refund_restores_the_coupon_once(till: Till, by_event: bool) -> None:
    m = till.member()
    till.grant(m, 10_000)
    code = coupon_code(till)
    redemption = use(till, code, m, "C-1")
    till.paid(m, "C-1", 5_000, total="90000")
    assert code_state(till, code)[1] == 1
    if by_event:
        till.purchase(m, "C-1", "90000")
        first = till.refund_event(m, "C-1", "30000", "c-ref-1")["refund"]["checkout"]
    else:
        first = till.ok(till.refund("C-1", "30000"), 201)
    assert first["coupons_restored"] == []  # a partial refund never restores it
    assert code_state(till, code)[1] == 1
    if by_event:
        last = till.refund_event(m, "C-1", "60000", "c-ref-2")["refund"]["checkout"]
        again = till.refund_event(m, "C-1", "60000", "c-ref-2")["refund"]["checkout"]
        assert again == last
    else:
        last = till.ok(till.refund("C-1", "60000", key="c-full"), 201)
        assert till.refund("C-1", "60000", key="c-full").json()["coupons_restored"] == [
            redemption["id"]
        ]
    assert last["coupons_restored"] == [redemption["id"]]
    assert last["points_returned"] == 5_000 - first["points_returned"]
    assert code_state(till, code)[1] == 0
    order = till.order("C-1")
    assert [r["status"] for r in order["coupon_redemptions"]] == ["voided"]
    assert order["coupon_redemptions"][0]["code"] == code
    assert [r["coupons_restored"] for r in order["refunds"]] == [[], [redemption["id"]]]
    assert till.available(m) == 10_000
    # The code is usable again, once, on another order.
    use(till, code, m, "C-2")
    assert code_state(till, code)[1] == 1
    till.sound()


def test_coupon_only_order_refunded_by_event(till: Till) -> None:
    """No points paid: the hook still restores the coupon of a fully refunded order."""
    m = till.member()
    code = coupon_code(till)
    redemption = use(till, code, m, "C-3")
    till.purchase(m, "C-3", "90000")
    out = till.refund_event(m, "C-3", "90000", "c-ref-3")["refund"]
    assert out["checkout"] == {
        "points_payment_id": None,
        "points_returned": 0,
        "return_transfer_id": None,
        "coupons_restored": [redemption["id"]],
        "points_released": 0,
    }
    assert code_state(till, code)[1] == 0
    till.sound()


def test_program_that_keeps_coupons_on_refund(till: Till) -> None:
    till.configure(refund_restores_coupon=False, points_payment_rate=Decimal("1"))
    m = till.member()
    till.grant(m, 1_000)
    code = coupon_code(till)
    use(till, code, m, "C-4")
    till.paid(m, "C-4", 1_000, total="90000")
    till.purchase(m, "C-4", "90000")
    out = till.refund_event(m, "C-4", "90000", "c-ref-4")["refund"]["checkout"]
    assert (out["coupons_restored"], out["points_returned"]) == ([], 1_000)
    assert code_state(till, code)[1] == 1
    till.sound()
