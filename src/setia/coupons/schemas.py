"""Request and response bodies of the coupons API."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from setia.core.i18n import Localized
from setia.core.money import MAX_AMOUNT, MoneyError, check_currency, parse_amount
from setia.coupons.discount import Cart, Line

DiscountType = Literal["fixed", "percent", "free_item", "free_shipping"]
CampaignStatus = Literal["active", "paused", "archived"]
Sku = Field(min_length=1, max_length=100)
SkuList = list[str]


class Discount(BaseModel):
    """What the coupon takes off. ``fixed``: ``amount`` off the applicable lines;
    ``percent``: ``percent`` of them, at most ``max_amount``; ``free_item``: one unit of the
    dearest cart line whose sku is in ``skus`` (at most ``max_amount``); ``free_shipping``:
    the cart's ``shipping`` (at most ``max_amount``)."""

    model_config = ConfigDict(extra="forbid")

    type: DiscountType
    amount: str | None = Field(default=None, examples=["10000"])
    percent: str | None = Field(default=None, examples=["15"], description="0 < percent <= 100")
    max_amount: str | None = Field(default=None, examples=["25000"], description="A cap")
    skus: list[str] | None = Field(default=None, max_length=500, description="free_item only")


FIRST_YEAR, LAST_YEAR = 1900, 9998  # any zone's local time in between is a UTC instant


def _in_range(value: datetime | None) -> datetime | None:
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"use a time between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


When = Annotated[datetime | None, AfterValidator(_in_range)]


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_from: When = Field(default=None, description="Without an offset: the tenant's local time")
    valid_until: When = Field(default=None, description="Exclusive end")
    min_spend: str | None = Field(
        default=None, description="On the subtotal of the applicable lines", examples=["50000"]
    )
    skus: list[str] | None = Field(default=None, max_length=2000)
    categories: list[str] | None = Field(default=None, max_length=500)
    exclude_skus: list[str] | None = Field(default=None, max_length=2000)
    exclude_categories: list[str] | None = Field(default=None, max_length=500)
    max_uses: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Campaign budget: active redemptions of all its codes",
    )
    per_member_limit: int | None = Field(default=None, ge=1, le=1_000_000_000)


class CampaignIn(BaseModel):
    """A new campaign. Its ``code`` names it for operators (unique per tenant);
    ``public_code`` is a code anyone can type (``HARBOLNAS``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "harbolnas-2026",
                    "names": {"id": "Harbolnas 12.12", "en": "Harbolnas 12.12"},
                    "discount": {"type": "percent", "percent": "20", "max_amount": "50000"},
                    "currency": "IDR",
                    "conditions": {
                        "valid_from": "2026-12-12T00:00:00",
                        "valid_until": "2026-12-13T00:00:00",
                        "min_spend": "100000",
                        "max_uses": 5000,
                        "per_member_limit": 1,
                    },
                    "public_code": "HARBOLNAS",
                }
            ]
        },
    )

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,59}$", examples=["harbolnas-2026"])
    program_id: uuid.UUID | None = None
    names: Localized
    descriptions: Localized | None = None
    discount: Discount
    currency: str | None = Field(default=None, description="Defaults to the program's currency")
    conditions: Conditions = Field(default_factory=Conditions)
    uses_per_code: int | None = Field(
        default=1,
        ge=1,
        le=1_000_000_000,
        description="1: single-use codes; null: unlimited (public code: always)",
    )
    member_bound: bool = Field(
        default=False, description="Every code belongs to one member and only they may use it"
    )
    code_pattern: str | None = Field(default=None, examples=["KOPI-####-????"])
    public_code: str | None = Field(default=None, examples=["HARBOLNAS"])
    status: CampaignStatus = "active"


class CampaignPatch(BaseModel):
    """Fields to change; the others stay. ``uses_per_code`` applies to codes made after."""

    model_config = ConfigDict(extra="forbid")

    names: Localized | None = None
    descriptions: Localized | None = None
    status: CampaignStatus | None = None
    conditions: Conditions | None = Field(
        default=None, description="Given fields replace the campaign's; null clears one"
    )
    max_amount: str | None = Field(default=None, description="The discount's cap")
    uses_per_code: int | None = Field(default=None, ge=1, le=1_000_000_000)
    code_pattern: str | None = None


class CampaignOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID | None
    code: str
    names: dict[str, Any]
    descriptions: dict[str, Any]
    discount: dict[str, Any]
    currency: str
    conditions: dict[str, Any]
    uses_per_code: int | None
    member_bound: bool
    code_pattern: str | None
    public_code: str | None
    status: str
    uses: int = Field(description="Active redemptions of all the campaign's codes")
    timezone: str
    valid_from_local: str | None
    valid_until_local: str | None
    created_at: datetime
    updated_at: datetime
    created: bool = False


def _end_of_day(value: Any) -> Any:
    """A date alone (``2026-12-31``) is the end of that day: the next day's midnight, read
    in the tenant's zone like any time without an offset (as in a CSV import)."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            return value
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            return value  # refused by _in_range
        return datetime.combine(day + timedelta(days=1), time())
    return value


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=100_000)
    pattern: str | None = Field(
        default=None,
        examples=["KOPI-####-????"],
        description="Defaults to the campaign's code_pattern, then ****-****-****",
    )
    expires_at: Annotated[When, BeforeValidator(_end_of_day)] = Field(
        default=None,
        description="The codes' own expiry (the campaign's end applies anyway); without an "
        "offset the tenant's local time, a date alone the end of that day",
    )


class BatchOut(BaseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    kind: str
    count: int
    pattern: str | None
    expires_at: datetime | None
    created_at: datetime
    created: bool
    codes: list[str] | None = Field(
        description="The codes, when at most 1,000 were made; else export them"
    )


class RedemptionOut(BaseModel):
    id: uuid.UUID
    coupon_id: uuid.UUID
    code: str
    campaign_id: uuid.UUID
    member_id: uuid.UUID | None
    order_id: str
    discount: str
    currency: str
    status: str
    created_at: datetime
    voided_at: datetime | None
    void_reason: str | None
    created: bool = False


class CodeOut(BaseModel):
    id: uuid.UUID
    code: str
    campaign_id: uuid.UUID
    batch_id: uuid.UUID | None
    member_id: uuid.UUID | None
    is_public: bool
    status: str
    uses: int
    max_uses: int | None
    expires_at: datetime | None = Field(description="The code's own expiry")
    effective_expires_at: datetime | None = Field(
        description="The earlier of expires_at and the campaign's valid_until"
    )
    source_type: str | None
    source_id: str | None
    created_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None
    redemptions: list[RedemptionOut] | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


def _amount_text(value: Any) -> Any:
    """Amounts travel as strings; an integer is taken as one, a float is refused."""
    if isinstance(value, bool | float):
        raise ValueError('send amounts as strings, e.g. "25000" or "12.50", not as floats')
    return str(value) if isinstance(value, int) else value


def _amount_value(text: str) -> str:
    """A decimal number, finite, zero or more (the currency's decimals are checked with the
    cart's currency)."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    if amount < 0:
        raise ValueError("an amount cannot be negative")
    if amount >= MAX_AMOUNT:
        raise ValueError(f"an amount must be less than {MAX_AMOUNT:,}")
    return text.strip()


AmountText = Annotated[str, BeforeValidator(_amount_text), AfterValidator(_amount_value)]


class CartItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=100)
    category: str | None = Field(default=None, min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: AmountText = Field(examples=["25000"], description="Decimal string, zero or more")


class CartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(examples=["IDR"])
    items: list[CartItem] = Field(min_length=1, max_length=1000)
    shipping: AmountText | None = Field(default=None, examples=["15000"])

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return check_currency(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _money(self) -> CartIn:
        # Each amount is a valid number already; here: no more decimals than the currency has.
        for i, item in enumerate(self.items):
            try:
                parse_amount(item.unit_price, self.currency, allow_zero=True)
            except MoneyError as exc:
                raise ValueError(f"items[{i}].unit_price: {exc}") from None
        if self.shipping is not None:
            try:
                parse_amount(self.shipping, self.currency, allow_zero=True)
            except MoneyError as exc:
                raise ValueError(f"shipping: {exc}") from None
        return self

    def to_cart(self) -> Cart:
        return Cart(
            currency=self.currency,
            lines=tuple(
                Line(
                    sku=i.sku,
                    category=i.category,
                    quantity=i.quantity,
                    unit_price=parse_amount(i.unit_price, self.currency, allow_zero=True),
                )
                for i in self.items
            ),
            shipping=(
                None
                if self.shipping is None
                else parse_amount(self.shipping, self.currency, allow_zero=True)
            ),
        )


class ValidateIn(BaseModel):
    """A code and a cart to check; ``order_id`` is optional here."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "HARBOLNAS",
                    "member_id": None,
                    "order_id": "POS-1-000123",
                    "cart": {
                        "currency": "IDR",
                        "items": [
                            {
                                "sku": "KOPI-SUSU",
                                "category": "drinks",
                                "quantity": 2,
                                "unit_price": "28000",
                            }
                        ],
                        "shipping": "0",
                    },
                }
            ]
        },
    )

    code: str = Field(min_length=1, max_length=64)
    member_id: uuid.UUID | None = None
    order_id: str | None = Field(default=None, min_length=1, max_length=200)
    cart: CartIn


class RedeemIn(BaseModel):
    """Use a code on an order. The same code on the same order again returns the first
    redemption."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    member_id: uuid.UUID | None = None
    order_id: str = Field(min_length=1, max_length=200)
    cart: CartIn


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=200, examples=["order_cancelled"])


class CampaignRef(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    discount_type: str


class ValidationOut(BaseModel):
    valid: bool
    code: str
    discount: str
    currency: str
    reason_code: str | None = Field(description="Stable; null when valid")
    reason: str | None = Field(description="The reason in the requested locale")
    reason_params: dict[str, Any] = Field(default_factory=dict)
    campaign: CampaignRef | None
    coupon_id: uuid.UUID | None
    redemption_id: uuid.UUID | None = Field(
        default=None, description="Set when the code is already redeemed on `order_id`"
    )
