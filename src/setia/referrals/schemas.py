"""Request and response bodies of the referrals API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ReferralStatus = Literal["pending", "held", "qualified", "rewarded", "rejected", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReferralSettingsIn(Strict):
    """Only the fields sent change; the others keep their value (or default)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "min_amount": "50000",
                    "referrer_points": 500,
                    "referee_points": 250,
                    "level2_enabled": True,
                    "level2_points": 100,
                    "cap_per_month": 10,
                    "cap_lifetime": 100,
                    "velocity_count": 5,
                    "velocity_minutes": 10,
                    "share_url": "https://kopi.example/r/{code}",
                }
            ]
        },
    )

    enabled: bool | None = None
    min_amount: str | None = Field(
        default=None,
        max_length=30,
        description="The qualifying first purchase: at least this, in the program's currency",
    )
    referrer_points: int | None = Field(default=None, ge=0, le=10_000_000)
    referee_points: int | None = Field(default=None, ge=0, le=10_000_000)
    referrer_campaign_id: uuid.UUID | None = Field(
        default=None, description="A coupon campaign: the referrer also gets a code of it"
    )
    referee_campaign_id: uuid.UUID | None = None
    level2_enabled: bool | None = Field(
        default=None, description="Reward the referrer's own referrer too (never a third level)"
    )
    level2_points: int | None = Field(default=None, ge=0, le=10_000_000)
    level2_campaign_id: uuid.UUID | None = None
    cap_per_month: int | None = Field(
        default=None,
        ge=0,
        description="Advocate rewards per member per calendar month (tenant's zone); null: none",
    )
    cap_lifetime: int | None = Field(default=None, ge=0)
    velocity_count: int | None = Field(
        default=None, ge=2, le=10_000, description="This many sign-ups on one code..."
    )
    velocity_minutes: int | None = Field(
        default=None, ge=1, le=10_080, description="...within this many minutes are held"
    )
    review_required: bool | None = Field(default=None, description="Hold every referral")
    attach_within_days: int | None = Field(default=None, ge=0, le=365)
    disposable_add: list[str] | None = Field(default=None, max_length=10_000)
    disposable_remove: list[str] | None = Field(default=None, max_length=10_000)
    share_url: str | None = Field(default=None, min_length=8, max_length=500)
    share_texts: dict[str, str] | None = Field(
        default=None,
        description="{id, ms, en}; placeholders {code}, {link}, {program}, {name}",
    )


class ReferralSettingsOut(BaseModel):
    program_id: uuid.UUID
    enabled: bool
    min_amount: str
    currency: str
    return_window_days: int = Field(description="The program's pending_days")
    referrer_points: int
    referee_points: int
    referrer_campaign_id: uuid.UUID | None
    referee_campaign_id: uuid.UUID | None
    level2_enabled: bool
    level2_points: int
    level2_campaign_id: uuid.UUID | None
    cap_per_month: int | None
    cap_lifetime: int | None
    velocity_count: int
    velocity_minutes: int
    review_required: bool
    attach_within_days: int
    disposable_add: list[str]
    disposable_remove: list[str]
    disposable_domains: int = Field(description="Domains refused now (shipped list ± changes)")
    share_url: str
    share_texts: dict[str, str]
    updated_at: datetime


class ReferralCounts(BaseModel):
    shares: int
    signups: int
    pending: int
    held: int
    qualified: int
    rewarded: int
    rejected: int
    cancelled: int


class MemberReferralOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    enabled: bool
    code: str
    link: str
    locale: str
    share_text: str
    share_texts: dict[str, str]
    whatsapp_url: str
    referral_count: int = Field(description="Qualified referrals (member.referral_count)")
    counts: ReferralCounts
    referred_by: uuid.UUID | None = Field(description="Who referred this member, if anyone")


class ShareIn(Strict):
    channel: Literal["whatsapp", "sms", "email", "copy", "qr", "other"] = "whatsapp"
    device_id: str | None = Field(default=None, min_length=1, max_length=200)


class ShareOut(BaseModel):
    member_id: uuid.UUID
    shares: int


class ReferralIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"member_id": "0193f3c2-6d1e-7b2a-9c41-1f2e3d4c5b6a", "code": "K7QM3PX"}]
        },
    )

    member_id: uuid.UUID = Field(description="The new member (the referee)")
    code: str = Field(min_length=1, max_length=40, description="The referrer's code")
    device_id: str | None = Field(default=None, min_length=1, max_length=200)
    program_id: uuid.UUID | None = Field(default=None, description="Default: the default program")


class DecisionIn(Strict):
    reason: str = Field(min_length=3, max_length=500, examples=["same household, checked by phone"])


class RewardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    member_id: uuid.UUID
    role: Literal["referrer", "referee", "level2"]
    status: Literal["given", "capped", "skipped"]
    points: int
    transfer_id: uuid.UUID | None
    coupon_id: uuid.UUID | None
    local_month: str
    details: dict[str, str]
    created_at: datetime


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    actor: str
    reason: str
    created_at: datetime


class ReferralOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    referrer_id: uuid.UUID
    referee_id: uuid.UUID
    status: ReferralStatus
    held_reason: str | None
    source: str
    order_id: str | None
    order_amount: str | None
    cancelled_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    qualified_at: datetime | None
    rewarded_at: datetime | None
    created_at: datetime
    rewards: list[RewardOut] = Field(default_factory=list)
    decisions: list[DecisionOut] | None = Field(
        default=None, description="Every status change (single-referral answers only)"
    )


class FunnelOut(BaseModel):
    program_id: uuid.UUID
    member_id: uuid.UUID | None
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None
    timezone: str
    shares: int
    signups: int
    pending: int
    held: int
    qualified: int
    rewarded: int
    rejected: int
    cancelled: int
    signups_per_share: float | None
    qualified_per_signup: float | None

    model_config = ConfigDict(populate_by_name=True)


class AdvocateOut(BaseModel):
    rank: int
    member_id: uuid.UUID
    name: str | None
    code: str | None
    signups: int
    qualified: int
    rewarded: int
    referee_spend: str
    currency: str
