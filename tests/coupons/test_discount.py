"""Invariants of the discount computation (no database): whatever the cart and campaign, a
discount is never negative, never more than what it applies to, never over its cap, and in
the currency's precision; a refusal gives nothing and names a known reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from setia.coupons.discount import REASONS, Cart, Line, applies, evaluate
from setia.coupons.models import Coupon, CouponCampaign

NOW = datetime(2026, 12, 12, 3, 0, tzinfo=UTC)
SKUS = ["KOPI", "TEH", "ROTI", "MUG"]
CATEGORIES = ["drinks", "food", "merch", None]

money = st.integers(min_value=0, max_value=500_000).map(Decimal)
line = st.builds(
    Line,
    sku=st.sampled_from(SKUS),
    category=st.sampled_from(CATEGORIES),
    quantity=st.integers(min_value=1, max_value=5),
    unit_price=money,
)
carts = st.builds(
    Cart,
    currency=st.just("IDR"),
    lines=st.lists(line, min_size=1, max_size=6).map(tuple),
    shipping=st.one_of(st.none(), money),
)


@st.composite
def campaigns(draw: st.DrawFn) -> CouponCampaign:
    kind = draw(st.sampled_from(["fixed", "percent", "free_item", "free_shipping"]))
    subset = st.lists(st.sampled_from(SKUS), max_size=2, unique=True)
    cats = st.lists(st.sampled_from(["drinks", "food", "merch"]), max_size=2, unique=True)
    return CouponCampaign(
        id=uuid.uuid4(),
        discount_type=kind,
        currency="IDR",
        status="active",
        amount=(
            Decimal(draw(st.integers(min_value=1, max_value=500_000))) if kind == "fixed" else None
        ),
        percent=(
            Decimal(draw(st.integers(min_value=1, max_value=10000))) / 100
            if kind == "percent"
            else None
        ),
        max_discount=None if kind == "fixed" else draw(st.one_of(st.none(), money)),
        free_item_skus=(
            draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True))
            if kind == "free_item"
            else []
        ),
        skus=draw(subset),
        categories=draw(cats),
        exclude_skus=draw(subset),
        exclude_categories=draw(cats),
        min_spend=draw(st.one_of(st.none(), money)),
        valid_from=None,
        valid_until=None,
        max_uses=None,
        uses=0,
        per_member_limit=None,
        member_bound=False,
    )


def code_of(campaign: CouponCampaign) -> Coupon:
    return Coupon(
        id=uuid.uuid4(),
        campaign_id=campaign.id,
        code="X",
        status="active",
        max_uses=1,
        uses=0,
        member_id=None,
        expires_at=None,
    )


@settings(max_examples=400, deadline=None)
@given(campaigns(), carts)
def test_discount_bounds(campaign: CouponCampaign, cart: Cart) -> None:
    out = evaluate(campaign, code_of(campaign), cart, member_id=None, member_uses=0, now=NOW)
    lines = [x for x in cart.lines if applies(campaign, x)]
    subtotal = sum((x.total for x in lines), Decimal(0))
    if not out.valid:
        assert out.discount == 0
        assert out.reason_code in REASONS
        if out.reason_code == "min_spend_not_met":
            assert campaign.min_spend is not None
            assert Decimal(out.params["shortfall"]) == campaign.min_spend - subtotal > 0
        return
    d = out.discount
    assert d >= 0
    assert d == d.quantize(Decimal(1))  # IDR: no decimals
    if campaign.max_discount is not None:
        assert d <= campaign.max_discount
    if campaign.min_spend is not None:
        assert subtotal >= campaign.min_spend
    if campaign.discount_type == "fixed":
        assert d == min(campaign.amount or 0, subtotal)
    elif campaign.discount_type == "percent":
        assert d <= subtotal
        assert subtotal * (campaign.percent or 0) / 100 - d < 1 or d == campaign.max_discount
    elif campaign.discount_type == "free_item":
        free = [x for x in lines if x.sku in campaign.free_item_skus]
        assert free
        assert d <= max(x.unit_price for x in free)
    else:
        assert cart.shipping
        assert d <= cart.shipping


@settings(max_examples=200, deadline=None)
@given(campaigns(), carts, line)
def test_more_of_an_applicable_item_never_falls_below_the_minimum(
    campaign: CouponCampaign, cart: Cart, extra: Line
) -> None:
    before = evaluate(campaign, code_of(campaign), cart, member_id=None, member_uses=0, now=NOW)
    bigger = Cart(cart.currency, (*cart.lines, extra), cart.shipping)
    after = evaluate(campaign, code_of(campaign), bigger, member_id=None, member_uses=0, now=NOW)
    if before.valid:
        assert after.valid
        if campaign.discount_type in ("fixed", "percent", "free_item"):
            assert after.discount >= before.discount
