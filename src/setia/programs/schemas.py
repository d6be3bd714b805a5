from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    points_name: str
    currency: str
    is_default: bool
    earn_points: int
    earn_per_amount: Decimal
    rounding: str
    pending_days: int
    expiry_policy: str
    expiry_months: int
    expiry_period: str | None
    min_redeem_points: int
    cost_per_point: Decimal
    refund_shortfall: str
    allow_member_transfers: bool
    hold_timeout_minutes: int
    points_payment_rate: Decimal | None = Field(
        description="Currency value of one point when paying with points; null: not offered"
    )
    points_payment_max_percent: int
    coupon_cancel_returns_points: bool
    refund_restores_coupon: bool
    revision: int
    updated_at: datetime


class ProgramUpdate(BaseModel):
    """Changes apply from now on; points already earned keep their dates."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    points_name: str | None = Field(default=None, min_length=1, max_length=50)
    earn_points: int | None = Field(default=None, ge=0, le=1_000_000)
    earn_per_amount: Decimal | None = Field(
        default=None, gt=0, le=10**12, decimal_places=4, description="Up to 4 decimals"
    )
    rounding: Literal["floor", "ceil", "round"] | None = None
    pending_days: int | None = Field(default=None, ge=0, le=365)
    expiry_policy: Literal["none", "after_duration", "end_of_period", "inactivity"] | None = None
    expiry_months: int | None = Field(default=None, ge=0, le=600)
    expiry_period: Literal["month", "quarter", "year"] | None = None
    min_redeem_points: int | None = Field(default=None, ge=0, le=10**9)
    cost_per_point: Decimal | None = Field(
        default=None, ge=0, le=10**9, decimal_places=6, description="Up to 6 decimals"
    )
    refund_shortfall: Literal["debt", "write_off"] | None = None
    allow_member_transfers: bool | None = None
    hold_timeout_minutes: int | None = Field(
        default=None, gt=0, le=43_200, description="At most 30 days (43,200 minutes)"
    )
    points_payment_rate: Decimal | None = Field(
        default=None,
        gt=0,
        le=10**9,
        decimal_places=6,
        description="Currency value of one point at checkout (up to 6 decimals)",
    )
    points_payment_max_percent: int | None = Field(default=None, ge=1, le=100)
    coupon_cancel_returns_points: bool | None = None
    refund_restores_coupon: bool | None = None


class RevisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    revision: int
    settings: dict[str, Any]
    changed_by: str
    created_at: datetime


class LiabilityOut(BaseModel):
    program_id: uuid.UUID
    points_outstanding: int
    cost_per_point: Decimal
    liability: Decimal
    currency: str
