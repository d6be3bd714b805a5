"""Whether a code can be used on a cart, and the discount it gives (no database here).

``evaluate`` checks the conditions in a fixed order and answers with the first that fails
(its stable ``reason_code``), or with the discount. The caller gives it what needs the
database: the code, its campaign, the member's active redemptions in the campaign.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from setia.core.i18n import babel_locale
from setia.core.money import display, precision, to_str
from setia.core.time import as_utc, zone
from setia.coupons.models import Coupon, CouponCampaign

# Every reason a code is refused, with its message in Indonesian, Malay and English.
# ``{shortfall}``, ``{min_spend}``, ``{currency}``, ``{cart_currency}`` are filled in.
REASONS: dict[str, dict[str, str]] = {
    "unknown": {
        "id": "Kode kupon tidak dikenal.",
        "ms": "Kod kupon tidak dikenali.",
        "en": "Unknown coupon code.",
    },
    "cancelled": {
        "id": "Kupon ini sudah dibatalkan.",
        "ms": "Kupon ini telah dibatalkan.",
        "en": "This coupon was cancelled.",
    },
    "campaign_paused": {
        "id": "Promo ini sedang dihentikan sementara.",
        "ms": "Promosi ini dihentikan buat sementara.",
        "en": "This promotion is paused.",
    },
    "campaign_archived": {
        "id": "Promo ini sudah berakhir.",
        "ms": "Promosi ini telah tamat.",
        "en": "This promotion has ended.",
    },
    "not_started": {
        "id": "Kupon ini belum berlaku (mulai {starts_at}).",
        "ms": "Kupon ini belum sah (bermula {starts_at}).",
        "en": "This coupon is not valid yet (starts {starts_at}).",
    },
    "expired": {
        "id": "Kupon ini sudah kedaluwarsa.",
        "ms": "Kupon ini telah tamat tempoh.",
        "en": "This coupon has expired.",
    },
    "member_required": {
        "id": "Kupon ini hanya untuk member: masukkan member terlebih dahulu.",
        "ms": "Kupon ini untuk ahli sahaja: masukkan ahli dahulu.",
        "en": "This coupon is for members only: identify the member first.",
    },
    "wrong_member": {
        "id": "Kupon ini milik member lain.",
        "ms": "Kupon ini milik ahli lain.",
        "en": "This coupon belongs to another member.",
    },
    "used_up": {
        "id": "Kupon ini sudah terpakai.",
        "ms": "Kupon ini telah digunakan.",
        "en": "This coupon has already been used.",
    },
    "budget_exhausted": {
        "id": "Kuota promo ini sudah habis.",
        "ms": "Kuota promosi ini telah habis.",
        "en": "This promotion has run out.",
    },
    "member_limit_reached": {
        "id": "Member ini sudah memakai promo ini sebanyak batas maksimal.",
        "ms": "Ahli ini telah menggunakan promosi ini sebanyak had maksimum.",
        "en": "This member has used this promotion the maximum number of times.",
    },
    "currency_mismatch": {
        "id": "Kupon ini berlaku untuk {currency}, bukan {cart_currency}.",
        "ms": "Kupon ini untuk {currency}, bukan {cart_currency}.",
        "en": "This coupon is for {currency}, not {cart_currency}.",
    },
    "no_applicable_items": {
        "id": "Tidak ada produk di keranjang yang berlaku untuk kupon ini.",
        "ms": "Tiada produk dalam troli yang layak untuk kupon ini.",
        "en": "No item in the cart qualifies for this coupon.",
    },
    "min_spend_not_met": {
        "id": "Minimal belanja {min_spend}; tambah {shortfall} lagi.",
        "ms": "Perbelanjaan minimum {min_spend}; tambah {shortfall} lagi.",
        "en": "Minimum spend is {min_spend}; add {shortfall} more.",
    },
    "no_shipping": {
        "id": "Pesanan ini tidak memiliki ongkos kirim untuk digratiskan.",
        "ms": "Pesanan ini tiada caj penghantaran untuk dikecualikan.",
        "en": "This order has no shipping charge to waive.",
    },
}
LOCALES = ("id", "ms", "en")
_AMOUNTS = ("min_spend", "shortfall")


def message(
    reason_code: str, locale: str, params: dict[str, Any], tz_name: str | None = None
) -> str:
    """The reason in ``locale`` (id, ms or en; English otherwise), amounts written the
    local way (``Rp44.000``) and, with ``tz_name``, times in that zone (``2026-12-12 00:00``)."""
    texts = REASONS[reason_code]
    text = texts.get(locale) or texts["en"]
    if not params:
        return text
    shown = dict(params)
    if tz_name and isinstance(shown.get("starts_at"), str):
        starts = datetime.fromisoformat(shown["starts_at"])
        shown["starts_at"] = as_utc(starts).astimezone(zone(tz_name)).strftime("%Y-%m-%d %H:%M")
    currency = params.get("currency")
    if currency:
        for key in _AMOUNTS:
            if key in shown:
                shown[key] = display(
                    Decimal(shown[key]),
                    currency,
                    babel_locale(locale if locale in LOCALES else "en"),
                )
    return text.format(**shown)


@dataclass(frozen=True)
class Line:
    sku: str
    category: str | None
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Cart:
    """A checked cart: the currency is a known ISO code, prices are parsed, none negative."""

    currency: str
    lines: tuple[Line, ...]
    shipping: Decimal | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))


@dataclass
class Outcome:
    valid: bool
    discount: Decimal
    reason_code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def effective_expiry(coupon: Coupon, campaign: CouponCampaign) -> datetime | None:
    """The earlier of the code's own expiry and the campaign's end."""
    ends = [as_utc(t) for t in (coupon.expires_at, campaign.valid_until) if t is not None]
    return min(ends) if ends else None


def needs_member(coupon: Coupon, campaign: CouponCampaign) -> bool:
    return (
        coupon.member_id is not None
        or campaign.member_bound
        or campaign.per_member_limit is not None
    )


def applies(campaign: CouponCampaign, line: Line) -> bool:
    """A line counts for the coupon: in the listed skus or categories (none listed: every
    line), and not excluded by sku or category."""
    if line.sku in (campaign.exclude_skus or []) or (
        line.category is not None and line.category in (campaign.exclude_categories or [])
    ):
        return False
    skus, categories = campaign.skus or [], campaign.categories or []
    if not skus and not categories:
        return True
    return line.sku in skus or (line.category is not None and line.category in categories)


def _floor(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-precision(currency)), rounding=ROUND_DOWN)


def _refuse(reason: str, **params: Any) -> Outcome:
    return Outcome(valid=False, discount=Decimal(0), reason_code=reason, params=params)


def evaluate(
    campaign: CouponCampaign,
    coupon: Coupon,
    cart: Cart,
    *,
    member_id: uuid.UUID | None,
    member_uses: int,
    now: datetime,
) -> Outcome:
    """The first failing condition, in this order, or the discount:
    cancelled, campaign paused/archived, not started, expired, member required, wrong
    member, code used up, campaign budget exhausted, member limit, currency, applicable
    items, minimum spend (on the applicable lines), shipping to waive."""
    if coupon.status == "cancelled":
        return _refuse("cancelled")
    if campaign.status in ("paused", "archived"):
        return _refuse(f"campaign_{campaign.status}")
    if campaign.valid_from is not None and as_utc(campaign.valid_from) > now:
        return _refuse("not_started", starts_at=as_utc(campaign.valid_from).isoformat())
    ends = effective_expiry(coupon, campaign)
    if ends is not None and ends <= now:
        return _refuse("expired", expired_at=ends.isoformat())
    if needs_member(coupon, campaign) and member_id is None:
        return _refuse("member_required")
    if coupon.member_id is not None and coupon.member_id != member_id:
        return _refuse("wrong_member")
    if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
        return _refuse("used_up")
    if campaign.max_uses is not None and campaign.uses >= campaign.max_uses:
        return _refuse("budget_exhausted")
    if campaign.per_member_limit is not None and member_uses >= campaign.per_member_limit:
        return _refuse("member_limit_reached", limit=campaign.per_member_limit)
    currency = campaign.currency
    if cart.currency != currency:
        return _refuse("currency_mismatch", currency=currency, cart_currency=cart.currency)
    lines = [line for line in cart.lines if applies(campaign, line)]
    if campaign.discount_type == "free_item":
        free = set(campaign.free_item_skus or [])
        candidates = [line for line in lines if line.sku in free]
    else:
        candidates = lines
    if not candidates:
        return _refuse("no_applicable_items")
    subtotal = sum((line.total for line in lines), Decimal(0))
    if campaign.min_spend is not None and subtotal < campaign.min_spend:
        return _refuse(
            "min_spend_not_met",
            currency=currency,
            min_spend=to_str(campaign.min_spend, currency),
            shortfall=to_str(campaign.min_spend - subtotal, currency),
        )
    if campaign.discount_type == "fixed":
        assert campaign.amount is not None
        discount = min(campaign.amount, subtotal)
    elif campaign.discount_type == "percent":
        assert campaign.percent is not None
        discount = _floor(subtotal * campaign.percent / 100, currency)
    elif campaign.discount_type == "free_item":
        # One unit of the dearest qualifying item (the cap, if any, limits it).
        discount = max(line.unit_price for line in candidates)
    else:  # free_shipping
        if not cart.shipping:
            return _refuse("no_shipping")
        discount = cart.shipping
    if campaign.max_discount is not None:
        discount = min(discount, campaign.max_discount)
    return Outcome(valid=True, discount=_floor(discount, currency))
