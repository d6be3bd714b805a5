"""Refunds of orders paid partly with points: the points paid come back exactly once."""

from __future__ import annotations

import itertools
from decimal import ROUND_FLOOR, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.checkout.conftest import Till


def expected(captured: int, refunded: int, total: int) -> int:
    if refunded >= total:
        return captured
    return int((Decimal(captured) * refunded / total).to_integral_value(rounding=ROUND_FLOOR))


def test_partial_then_full_refund_event_returns_exactly_the_captured_points(till: Till) -> None:
    m = till.member()
    till.grant(m, 20_000)
    till.paid(m, "INV-1", 15_000, total="85000")
    till.purchase(m, "INV-1", "85000")  # earns 85 points (1 per 1000)
    assert till.available(m) == 5_000 + 85
    out = till.refund_event(m, "INV-1", "30000", "ref-1")["refund"]
    # floor(15000 x 30000 / 85000) = 5294 paid points back; floor(85 x 30/85) = 30 reversed.
    assert out["points_reversed"] == 30
    assert out["checkout"]["points_returned"] == 5_294
    assert till.available(m) == 5_000 + 85 - 30 + 5_294
    # A resent event answers the first result and gives nothing back twice.
    again = till.refund_event(m, "INV-1", "30000", "ref-1")["refund"]
    assert again == out
    assert till.available(m) == 5_000 + 85 - 30 + 5_294
    out = till.refund_event(m, "INV-1", "55000", "ref-2")["refund"]
    assert (out["points_reversed"], out["checkout"]["points_returned"]) == (55, 15_000 - 5_294)
    assert till.available(m) == 20_000
    order = till.order("INV-1")
    assert order["points_returned"] == 15_000
    assert [r["points_returned"] for r in order["refunds"]] == [5_294, 9_706]
    assert [r["fully_refunded"] for r in order["refunds"]] == [False, True]
    assert order["purchase"]["points_reversed"] == 85
    till.sound()


def test_refund_reverses_earned_points_and_returns_paid_points_in_one_step(till: Till) -> None:
    """Member has 10,000. Pays 4,000 points on an order of 50,000 (46,000 in cash, the
    purchase event records 50,000 and earns 50). Spends 5,000 elsewhere, keeping 1,050.
    A full refund reverses the 50 earned and gives back the 4,000 paid: 1,050 - 50 + 4,000
    = 5,000, exactly the 10,000 less the 5,000 spent elsewhere."""
    m = till.member()
    till.grant(m, 10_000)
    till.paid(m, "INV-2", 4_000, total="50000")
    till.purchase(m, "INV-2", "50000")
    till.ok(
        till.post(f"/v1/members/{m}/points/redeem", {"points": 5_000, "reference": "x"}, key="r"),
        201,
    )
    assert till.available(m) == 1_050
    out = till.refund_event(m, "INV-2", "50000", "ref-full")["refund"]
    assert out["points_reversed"] == 50
    assert out["checkout"]["points_returned"] == 4_000
    bal = till.balance(m)
    assert (bal["available"], bal["debt"], bal["held"]) == (5_000, 0, 0)
    till.sound()


def test_reversal_shortfall_becomes_debt_that_the_returned_points_repay(till: Till) -> None:
    """Every available point was paid or spent when the refund comes: the earned points
    cannot be taken back from the balance (debt), and the paid points coming back repay it."""
    m = till.member()
    till.grant(m, 3_000)
    till.paid(m, "INV-3", 3_000, total="100000")
    till.purchase(m, "INV-3", "100000")  # earns 100
    till.ok(
        till.post(f"/v1/members/{m}/points/redeem", {"points": 100, "reference": "y"}, key="s"),
        201,
    )
    assert till.available(m) == 0
    out = till.refund_event(m, "INV-3", "100000", "ref-3")["refund"]
    assert (out["points_reversed"], out["debt"], out["checkout"]["points_returned"]) == (
        100,
        100,
        3_000,
    )
    bal = till.balance(m)
    assert (bal["available"], bal["debt"]) == (2_900, 0)
    till.sound()


def test_refund_of_an_order_paid_with_points_but_never_purchased(till: Till) -> None:
    m = till.member()
    till.grant(m, 10_000)
    payment = till.paid(m, "WEB-1", 7_000, total="70000")
    r = till.refund("WEB-1", "10000", key="web-ref-1")
    out = till.ok(r, 201)
    assert (out["points_returned"], out["fully_refunded"], out["refunded_total"]) == (
        1_000,
        False,
        "10000",
    )
    again = till.refund("WEB-1", "10000", key="web-ref-1")
    assert again.status_code == 200
    assert again.json()["id"] == out["id"]
    r = till.refund("WEB-1", "20000", key="web-ref-1")
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_key_reused")
    r = till.refund("WEB-1", "60001")
    assert (r.status_code, r.json()["code"], r.json()["refundable"]) == (
        409,
        "refund_exceeds_order",
        "60000",
    )
    out = till.ok(till.refund("WEB-1", "60000"), 201)
    assert (out["points_returned"], out["fully_refunded"]) == (6_000, True)
    assert till.available(m) == 10_000
    got = till.ok(till.get(f"/v1/checkout/points-payments/{payment['id']}"))
    assert (got["points_returned"], got["refunded_amount"]) == (7_000, "70000")
    r = till.refund("WEB-1", "1")
    assert (r.status_code, r.json()["code"]) == (409, "refund_exceeds_order")
    till.sound()


def test_direct_refund_refusals_write_nothing(till: Till) -> None:
    m = till.member()
    till.grant(m, 10_000)
    till.paid(m, "SHOP-1", 1_000, total="20000")
    till.purchase(m, "SHOP-1", "20000")
    till.held(m, "SHOP-2", 500)
    before = till.counts()
    for order, amount, status, code in [
        ("SHOP-1", "100", 409, "order_has_purchase_event"),
        ("SHOP-2", "100", 409, "points_payment_not_captured"),
        ("NOPE", "100", 404, "order_not_found"),
        ("WEB-X", "1.5", 404, "order_not_found"),
    ]:
        r = till.refund(order, amount)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    till.paid(m, "WEB-2", 1_000, total="20000")
    before = till.counts()
    for amount, code in [("1.5", "too_many_decimals"), ("-1", "invalid_amount"), ("x", None)]:
        r = till.refund("WEB-2", amount)
        assert r.status_code == 422, r.text
        if code:
            assert r.json()["code"] == code
    assert till.counts() == before


def test_refund_of_an_order_whose_payment_was_released_returns_nothing(till: Till) -> None:
    m = till.member()
    till.grant(m, 5_000)
    payment = till.held(m, "INV-4", 2_000, total="50000")
    till.ok(till.release(payment["id"]))
    till.purchase(m, "INV-4", "50000")
    out = till.refund_event(m, "INV-4", "50000", "ref-4")["refund"]
    assert "checkout" not in out
    assert till.available(m) == 5_000
    till.sound()


_orders = itertools.count(1)


@st.composite
def refund_plan(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    total = draw(st.integers(min_value=1, max_value=5_000_000))
    captured = draw(st.integers(min_value=1, max_value=min(total, 50_000)))
    cuts = draw(st.lists(st.integers(min_value=1, max_value=max(1, total - 1)), max_size=6))
    points = sorted({c for c in cuts if 0 < c < total} | {0, total})
    parts = [b - a for a, b in itertools.pairwise(points)]
    return total, captured, parts


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=refund_plan(), by_event=st.booleans())
def test_any_sequence_of_partial_refunds_returns_exactly_the_captured_points(
    till: Till, plan: tuple[int, int, list[int]], by_event: bool
) -> None:
    total, captured, parts = plan
    n = next(_orders)
    order = f"H-{n}"
    m = till.member(f"H{n}")
    till.grant(m, captured)
    till.paid(m, order, captured, total=str(total))
    if by_event:
        till.purchase(m, order, str(total))
    earned = till.available(m)  # what the purchase earned (paid points are spent)
    returned = 0
    refunded = 0
    for i, part in enumerate(parts):
        refunded += part
        if by_event:
            out = till.refund_event(m, order, str(part), f"H-{n}-{i}")["refund"]
            got = out.get("checkout", {}).get("points_returned", 0)
        else:
            got = till.ok(till.refund(order, str(part)), 201)["points_returned"]
        assert got >= 0
        returned += got
        # Each prefix: exactly the cumulative target, never more than captured.
        assert returned == expected(captured, refunded, total) <= captured
    assert refunded == total
    assert returned == captured
    # Everything is back: the earned points reversed, the paid points returned.
    assert till.available(m) == captured + earned - (earned if by_event else 0)
    assert till.order(order)["points_returned"] == captured
    till.sound()


def test_refund_in_a_batch_takes_the_same_path(till: Till) -> None:
    m = till.member()
    till.grant(m, 5_000)
    till.paid(m, "B-1", 2_000, total="40000")
    till.purchase(m, "B-1", "40000")
    events = [
        {
            "id": f"b-ref-{i}",
            "type": "refund",
            "member": {"id": m},
            "order_id": "B-1",
            "amount": "20000",
            "currency": "IDR",
        }
        for i in range(2)
    ]
    out = till.ok(till.post("/v1/events/batch", {"events": events}))
    refunds = [r["result"]["refund"]["checkout"]["points_returned"] for r in out["results"]]
    assert refunds == [1_000, 1_000]
    assert till.available(m) == 5_000
    # The same batch again: every event is a duplicate, nothing comes back twice.
    till.ok(till.post("/v1/events/batch", {"events": events}))
    assert till.available(m) == 5_000
    till.sound()


def test_a_full_refund_before_capture_releases_the_held_payment(till: Till) -> None:
    """The till holds 6,000 points, records the purchase, then the order is returned in
    full before the payment was captured: the held points come back with the refund, the
    payment is released (a late capture is refused) and a resent refund changes nothing."""
    m = till.member()
    till.grant(m, 10_000)
    payment = till.held(m, "INV-H", 6_000, total="60000")
    till.purchase(m, "INV-H", "60000")  # earns 60
    assert till.available(m) == 4_000 + 60
    out = till.refund_event(m, "INV-H", "60000", "ref-h")["refund"]
    assert out["points_reversed"] == 60
    assert out["checkout"] == {
        "points_payment_id": payment["id"],
        "points_returned": 0,
        "return_transfer_id": None,
        "coupons_restored": [],
        "points_released": 6_000,
    }
    assert till.available(m) == 10_000
    state = till.ok(till.get(f"/v1/checkout/points-payments/{payment['id']}"))
    assert state["status"] == "released"
    late = till.capture(payment["id"])
    assert (late.status_code, late.json()["code"]) == (409, "hold_not_open")
    before = till.counts()
    again = till.refund_event(m, "INV-H", "60000", "ref-h")["refund"]
    assert again == out
    assert till.counts() == before
    assert till.available(m) == 10_000
    till.sound()


def test_a_partial_refund_before_capture_leaves_the_hold_to_the_till(till: Till) -> None:
    m = till.member()
    till.grant(m, 10_000)
    payment = till.held(m, "INV-P", 6_000, total="60000")
    till.purchase(m, "INV-P", "60000")
    out = till.refund_event(m, "INV-P", "20000", "ref-p")["refund"]
    assert (out["checkout"]["points_released"], out["checkout"]["points_returned"]) == (0, 0)
    state = till.ok(till.get(f"/v1/checkout/points-payments/{payment['id']}"))
    assert state["status"] == "held"
    assert till.available(m) == 4_000 + 60 - 20
    # The till then captures; the next (final) refund gives the whole capture back.
    till.ok(till.capture(payment["id"]))
    last = till.refund_event(m, "INV-P", "40000", "ref-p2")["refund"]
    assert last["checkout"]["points_returned"] == 6_000
    assert till.available(m) == 10_000
    till.sound()
