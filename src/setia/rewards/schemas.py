"""Request and response bodies of the rewards API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from setia.core.i18n import Localized

FIRST_YEAR, LAST_YEAR = 1900, 9998  # any zone's local time in between is a UTC instant


def _in_range(value: datetime | None) -> datetime | None:
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"use a time between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


Moment = Annotated[AwareDatetime | None, AfterValidator(_in_range)]

Kind = Literal[
    "discount_coupon",
    "free_product",
    "free_shipping",
    "cashback",
    "gift_card",
    "physical",
    "donation",
]
StockPeriod = Literal["day", "week", "month"]
LimitPeriod = Literal["day", "week", "month", "year", "lifetime"]
Status = Literal["active", "paused", "archived"]
Locale = Literal["id", "ms", "en"]
RedemptionStatus = Literal[
    "held", "issued", "requested", "shipped", "delivered", "cancelled", "expired"
]


class Eligibility(BaseModel):
    """Who may redeem. Empty lists mean everyone."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[str] = Field(
        default_factory=list, max_length=20, description="Tier codes that may redeem"
    )
    tiers_or_above: bool = Field(
        default=False, description="Also tiers ranked above the lowest listed tier"
    )
    requires_membership: bool = Field(
        default=False, description="Only members with a live paid membership"
    )
    tags: list[str] = Field(
        default_factory=list, max_length=50, description="Member tags, any one of them"
    )


class RewardIn(BaseModel):
    """A reward definition (PUT replaces the whole of it)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    names: Localized
    descriptions: Localized | None = None
    terms: Localized | None = None
    image_url: str | None = Field(default=None, max_length=500)
    points: int = Field(ge=0, le=1_000_000_000, description="Cost in points")
    cash_price: str | None = Field(
        default=None,
        description="Points plus cash: the cash part, collected by the till",
        examples=["15000"],
    )
    coupon_campaign_id: uuid.UUID | None = Field(
        default=None, description="Coupon kinds: the campaign whose coupon is issued"
    )
    coupon_validity_days: int | None = Field(
        default=None, ge=1, le=3650, description="Coupon kinds: days the coupon stays valid"
    )
    cashback_amount: str | None = Field(
        default=None, description="cashback: money credited to the wallet", examples=["10000"]
    )
    value: str | None = Field(
        default=None, description="gift_card: stored value credited to the wallet"
    )
    cause_id: uuid.UUID | None = Field(default=None, description="donation: the cause")
    stock_total: int | None = Field(
        default=None, ge=0, le=1_000_000_000, description="null = unlimited"
    )
    stock_per_period: int | None = Field(default=None, ge=0, le=1_000_000_000)
    stock_period: StockPeriod | None = None
    member_limit: int | None = Field(
        default=None, ge=1, le=1_000_000_000, description="Units per member"
    )
    member_limit_period: LimitPeriod | None = None
    available_from: Moment = None
    available_until: Moment = None
    visible: bool = Field(default=True, description="false: redeemable by code but not listed")
    eligibility: Eligibility = Field(default_factory=Eligibility)
    status: Status = "active"

    @model_validator(mode="after")
    def _consistent(self) -> RewardIn:
        if (self.stock_per_period is None) != (self.stock_period is None):
            raise ValueError("give stock_per_period and stock_period together")
        if self.member_limit is not None and self.member_limit_period is None:
            raise ValueError("give member_limit_period with member_limit")
        if (
            self.available_from is not None
            and self.available_until is not None
            and self.available_until <= self.available_from
        ):
            raise ValueError("available_until must be after available_from")
        return self


class RewardPatch(BaseModel):
    """Change some fields; the result must still be a valid definition."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    names: Localized | None = None
    descriptions: Localized | None = None
    terms: Localized | None = None
    image_url: str | None = Field(default=None, max_length=500)
    points: int | None = Field(default=None, ge=0, le=1_000_000_000)
    cash_price: str | None = None
    coupon_campaign_id: uuid.UUID | None = None
    coupon_validity_days: int | None = Field(default=None, ge=1, le=3650)
    cashback_amount: str | None = None
    value: str | None = None
    cause_id: uuid.UUID | None = None
    stock_total: int | None = Field(default=None, ge=0, le=1_000_000_000)
    stock_per_period: int | None = Field(default=None, ge=0, le=1_000_000_000)
    stock_period: StockPeriod | None = None
    member_limit: int | None = Field(default=None, ge=1, le=1_000_000_000)
    member_limit_period: LimitPeriod | None = None
    available_from: Moment = None
    available_until: Moment = None
    visible: bool | None = None
    eligibility: Eligibility | None = None
    status: Status | None = None


class StockOut(BaseModel):
    total: int | None
    used: int
    left: int | None = Field(description="Units left of the total; null = unlimited")
    per_period: int | None
    period: str | None
    current_period: str | None = Field(description="First local day of the current period")
    used_this_period: int | None
    left_this_period: int | None


class RewardOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    kind: str
    names: dict[str, Any]
    descriptions: dict[str, Any] | None
    terms: dict[str, Any] | None
    image_url: str | None
    points: int
    cash_price: str | None
    coupon_campaign_id: uuid.UUID | None
    coupon_validity_days: int | None
    cashback_amount: str | None
    value: str | None
    cause_id: uuid.UUID | None
    stock_total: int | None
    stock_per_period: int | None
    stock_period: str | None
    member_limit: int | None
    member_limit_period: str | None
    available_from: datetime | None
    available_until: datetime | None
    visible: bool
    eligibility: Eligibility
    status: str
    revision: int
    stock: StockOut
    created_at: datetime
    updated_at: datetime
    created: bool = False


class Reason(BaseModel):
    code: str = Field(examples=["insufficient_points"])
    message: str = Field(description="In the requested language")
    points_missing: int | None = None
    available_from: datetime | None = None


class MemberRewardOut(BaseModel):
    id: uuid.UUID
    code: str
    kind: str
    name: str
    description: str | None
    terms: str | None
    image_url: str | None
    points: int
    cash_price: str | None
    currency: str
    stock_left: int | None = Field(
        description="Units left now (total or this period); null = no limit"
    )
    available_until: datetime | None
    redeemable: bool
    reason: Reason | None


class MemberRewardsOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    locale: str
    points_available: int
    rewards: list[MemberRewardOut]


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: str = Field(min_length=1, max_length=60, description="The reward's code or id")
    quantity: int = Field(
        default=1, ge=1, le=100, description="Units; coupon kinds take 1 per redemption"
    )
    channel: Literal["portal", "pos"] = "portal"
    confirm: bool = Field(
        default=True,
        description="false: hold the points and the stock until confirm or cancel (or timeout)",
    )
    shipping_address: dict[str, Any] | None = Field(default=None, description="physical rewards")
    program_id: uuid.UUID | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200)


class FulfilmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["shipped", "delivered"]
    tracking: str | None = Field(default=None, max_length=200)


class RedemptionOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    reward_id: uuid.UUID
    reward_code: str
    kind: str
    member_id: uuid.UUID
    status: str
    quantity: int
    points: int
    cash_price: str | None
    currency: str
    channel: str
    coupon_id: uuid.UUID | None
    coupon_code: str | None
    coupon_expires_at: datetime | None
    wallet_transfer_id: uuid.UUID | None
    donation_id: uuid.UUID | None
    hold_transfer_id: uuid.UUID | None
    capture_transfer_id: uuid.UUID | None
    return_transfer_id: uuid.UUID | None
    hold_expires_at: datetime | None
    fulfilment_status: str | None
    tracking: str | None
    shipping_address: dict[str, Any] | None
    cancel_reason: str | None
    issued_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created: bool = False
