"""Request and response bodies of the checkout API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Points = Annotated[int, Field(strict=True, gt=0, le=10**12)]
Amount = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="Decimal string in the currency's precision",
        examples=["15000"],
    ),
]
PaymentStatus = Literal["held", "captured", "released", "expired"]


class PointsPaymentIn(BaseModel):
    """Pay part of an order with points: give ``points`` or the ``amount`` to pay (not both)."""

    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID
    order_id: str = Field(min_length=1, max_length=200, examples=["INV-2026-0001"])
    points: Points | None = None
    amount: Amount | None = None
    order_total: Amount = Field(examples=["85000"])
    currency: str = Field(min_length=3, max_length=3, examples=["IDR"])
    timeout_minutes: int | None = Field(
        default=None, ge=1, le=10080, description="Default: the program's hold_timeout_minutes"
    )
    program_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one(self) -> PointsPaymentIn:
        if (self.points is None) == (self.amount is None):
            raise ValueError("give either points or amount")
        return self


class CaptureIn(BaseModel):
    """Capture all the held points (empty body), or fewer: ``points`` or ``amount``."""

    model_config = ConfigDict(extra="forbid")

    points: Points | None = None
    amount: Amount | None = None

    @model_validator(mode="after")
    def _one(self) -> CaptureIn:
        if self.points is not None and self.amount is not None:
            raise ValueError("give points or amount, not both")
        return self


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID
    order_total: Amount = Field(examples=["85000"])
    currency: str = Field(min_length=3, max_length=3, examples=["IDR"])
    program_id: uuid.UUID | None = None


class QuoteOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    currency: str
    order_total: str
    rate: str = Field(description="Currency value of one point")
    max_percent: int = Field(description="Share of an order that points may pay")
    min_redeem_points: int = Field(description="Balance needed before points can be used")
    available_points: int
    max_points: int = Field(description="Most points usable for this order (0 if none)")
    max_amount: str = Field(description="The value of max_points")
    order_max_points: int = Field(description="Most points the order allows, whatever the balance")
    usable: bool


class PointsPaymentOut(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    program_id: uuid.UUID
    order_id: str
    status: PaymentStatus
    points: int = Field(description="Held points while held; captured points once captured")
    amount: str = Field(description="Currency value of `points`")
    points_held: int
    currency: str
    order_total: str
    rate: str
    hold_id: uuid.UUID | None
    expires_at: datetime
    resolved_at: datetime | None
    points_returned: int = Field(description="Points given back by refunds of the order")
    refunded_amount: str = Field(
        description="Amount refunded through POST /checkout/orders/{id}/refund"
    )
    created_at: datetime
    created: bool = False


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    reason: str | None = Field(default=None, max_length=200)


class RefundOut(BaseModel):
    id: uuid.UUID
    order_id: str
    source: Literal["event", "api"]
    event_id: uuid.UUID | None
    amount: str
    refunded_total: str
    order_total: str
    currency: str
    fully_refunded: bool
    points_payment_id: uuid.UUID | None
    points_returned: int
    return_transfer_id: uuid.UUID | None
    coupons_restored: list[str]
    reason: str | None
    created_at: datetime
    created: bool = False


class OrderOut(BaseModel):
    order_id: str
    points_payments: list[PointsPaymentOut]
    points_paid: int = Field(description="Points captured for the order")
    amount_paid_with_points: str | None
    points_returned: int
    coupon_redemptions: list[dict[str, Any]]
    refunds: list[RefundOut]
    purchase: dict[str, Any] | None = Field(
        description="The purchase event's order (amount, refunded, points earned/reversed)"
    )
