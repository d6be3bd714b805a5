"""Request and response bodies of the memberships API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from setia.core.i18n import Localized

Period = Literal["monthly", "yearly"]
TierMode = Literal["grant", "protect"]
PaymentStatus = Literal["paid", "failed", "refunded", "pending"]
SubscriptionStatus = Literal["trialing", "active", "past_due", "lapsed", "cancelled"]


class PlanFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: Localized | None = None
    price: str | None = Field(
        default=None, description="Decimal string in the currency's precision", examples=["49000"]
    )
    currency: str | None = Field(default=None, examples=["IDR"])
    period: Period | None = None
    trial_days: int | None = Field(default=None, ge=0, le=366)
    grace_days: int | None = Field(
        default=None,
        ge=0,
        le=90,
        description="Days after a missed renewal during which benefits continue (past_due)",
    )
    tier_code: str | None = Field(default=None, max_length=60)
    tier_mode: TierMode | None = None
    earn_multiplier: Decimal | None = Field(default=None, ge=1, le=100)
    monthly_bonus_points: int | None = Field(default=None, ge=0, le=10_000_000)
    perks: list[Localized] | None = Field(default=None, max_length=50)
    active: bool | None = None


class PlanIn(PlanFields):
    """A new plan. ``currency`` must be the program's; ``tier_mode`` needs ``tier_code``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "member-plus",
                    "names": {"id": "Member Plus", "ms": "Ahli Plus", "en": "Member Plus"},
                    "price": "49000",
                    "currency": "IDR",
                    "period": "monthly",
                    "trial_days": 0,
                    "grace_days": 7,
                    "tier_code": "gold",
                    "tier_mode": "protect",
                    "earn_multiplier": "1.5",
                    "monthly_bonus_points": 500,
                    "perks": [{"id": "Gratis upsize", "en": "Free upsize"}],
                }
            ]
        },
    )

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$", examples=["member-plus"])
    names: Localized
    price: str
    currency: str
    period: Period


class PlanPatch(PlanFields):
    """Fields to change; the others stay. Every change makes a new revision; subscriptions
    already sold keep their terms."""


class PlanOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    names: dict[str, Any]
    price: str
    currency: str
    period: Period
    trial_days: int
    grace_days: int
    tier_code: str | None
    tier_mode: str | None
    earn_multiplier: str
    monthly_bonus_points: int
    perks: list[dict[str, Any]]
    active: bool
    revision: int
    created_at: datetime
    updated_at: datetime


class InitialPayment(BaseModel):
    """The payment that starts the subscription (its first period)."""

    model_config = ConfigDict(extra="forbid")

    gateway: str = Field(min_length=1, max_length=40, examples=["midtrans"])
    external_id: str = Field(min_length=1, max_length=200, examples=["ORDER-101-1"])
    amount: str = Field(examples=["49000"])
    currency: str = Field(examples=["IDR"])
    occurred_at: AwareDatetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class SubscriptionIn(BaseModel):
    """Start a subscription: with the first payment, or without one on a plan with a trial."""

    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID
    plan: str = Field(description="The plan's code", examples=["member-plus"])
    program_id: uuid.UUID | None = None
    started_at: AwareDatetime | None = Field(
        default=None, description="Defaults to now; not in the future"
    )
    payment: InitialPayment | None = None


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    program_id: uuid.UUID
    plan_id: uuid.UUID
    plan: str
    plan_revision: int
    price: str
    currency: str
    period: Period
    status: SubscriptionStatus
    started_at: datetime
    trial_ends_at: datetime | None
    current_period_start: datetime
    current_period_end: datetime
    benefits_until: str = Field(description="Last local day (tenant's zone) benefits last")
    periods_paid: int
    cancel_at_period_end: bool
    past_due_since: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    bonus_months: int
    created: bool = Field(default=False, description="False when an idempotent retry found it")


class PaymentIn(BaseModel):
    """A payment notification, as the business's payment system received it from the gateway.

    Idempotent by (gateway, external_id, status): the same notification again answers 200;
    the same ones with another body is 409 ``payment_id_reused``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subscription_id": "0193a1c2-0000-7000-8000-000000000001",
                    "gateway": "midtrans",
                    "external_id": "SUB-0193A1C2-2",
                    "status": "paid",
                    "amount": "49000",
                    "currency": "IDR",
                    "occurred_at": "2026-11-20T09:15:00+07:00",
                    "payload": {"transaction_status": "settlement", "gross_amount": "49000.00"},
                }
            ]
        },
    )

    subscription_id: uuid.UUID | None = Field(
        default=None, description="Required unless status is refunded"
    )
    gateway: str = Field(min_length=1, max_length=40)
    external_id: str = Field(min_length=1, max_length=200)
    status: PaymentStatus
    amount: str
    currency: str
    occurred_at: AwareDatetime
    refund_of: str | None = Field(
        default=None,
        max_length=200,
        description="For a refund with its own id: the external_id of the refunded payment",
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="The raw webhook body")


class PaymentOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    gateway: str
    external_id: str
    status: PaymentStatus
    amount: str
    currency: str
    occurred_at: datetime
    outcome: str = Field(
        description="What it did: started, renewed, past_due, refunded_and_ended, recorded"
    )
    created: bool
    subscription: SubscriptionOut


class MonthOut(BaseModel):
    month: str = Field(examples=["2026-11"])
    paid_members: int = Field(description="Paid (non-trial) live subscriptions at month end")
    new: int = Field(description="Subscriptions whose first payment fell in the month")
    churned: int
    lapsed: int
    cancelled: int
    churn_rate: str | None = Field(description="churned / paid members at the month's start")
    revenue: dict[str, str] = Field(description="Paid minus refunded, per currency")


class ReportOut(BaseModel):
    program_id: uuid.UUID
    timezone: str
    months: list[MonthOut]
