"""Tables of the rewards domain: the catalog, its stock and limit counters, redemptions.

Stock and per-member limits are counters changed only by guarded updates
(``UPDATE ... SET used = used + n WHERE used + n <= limit RETURNING``), so two redemptions
can never both take the last unit, on either database:

* ``rewards.stock_used`` counts units taken from ``stock_total`` (null total = unlimited);
* ``reward_stock_periods`` counts units taken in one period (``stock_per_period``), keyed by
  the period's first local day in the tenant's time zone;
* ``reward_member_usage`` counts one member's units in one period (``member_limit``), keyed
  the same way (``lifetime`` for a lifetime limit).

A redemption remembers the period keys it counted in, so a cancellation gives the unit back
to the period it was taken from.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow

COUPON_KINDS = ("discount_coupon", "free_product", "free_shipping")
WALLET_KINDS = ("cashback", "gift_card")
KINDS = (*COUPON_KINDS, *WALLET_KINDS, "physical", "donation")


class Reward(Base):
    """One reward of a program's catalog."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("program_id", "code"),
        CheckConstraint("stock_used >= 0", name="stock_used_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    names: Mapped[dict[str, Any]]
    descriptions: Mapped[dict[str, Any]]
    terms: Mapped[dict[str, Any]]
    image_url: Mapped[str | None] = mapped_column(String(500), default=None)
    points: Mapped[int] = mapped_column(BigInteger)
    cash_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    coupon_campaign_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    coupon_validity_days: Mapped[int | None] = mapped_column(default=None)
    cashback_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    value: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    cause_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    stock_total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    stock_used: Mapped[int] = mapped_column(BigInteger, default=0)
    stock_per_period: Mapped[int | None] = mapped_column(BigInteger, default=None)
    stock_period: Mapped[str | None] = mapped_column(String(8), default=None)
    member_limit: Mapped[int | None] = mapped_column(default=None)
    member_limit_period: Mapped[str | None] = mapped_column(String(10), default=None)
    available_from: Mapped[datetime | None] = mapped_column(default=None)
    available_until: Mapped[datetime | None] = mapped_column(default=None)
    visible: Mapped[bool] = mapped_column(default=True)
    eligible_tiers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    tiers_or_above: Mapped[bool] = mapped_column(default=False)
    requires_membership: Mapped[bool] = mapped_column(default=False)
    eligible_tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(10), default="active")
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RewardStockPeriod(Base):
    """Units of a reward taken in one stock period (``period`` = its first local day)."""

    __tablename__ = "reward_stock_periods"
    __table_args__ = (CheckConstraint("used >= 0", name="used_not_negative"),)

    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)


class RewardMemberUsage(Base):
    """Units of a reward one member took in one limit period (``lifetime`` or a local day)."""

    __tablename__ = "reward_member_usage"
    __table_args__ = (CheckConstraint("used >= 0", name="used_not_negative"),)

    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(default=0)


class RewardRedemption(Base):
    """A member's redemption of a reward and everything it wrote.

    ``due_at`` is when the job next has something to do with it (a held redemption's hold
    deadline, an issued coupon's expiry); null when nothing is left to do.
    """

    __tablename__ = "reward_redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_reward_redemptions_member", "member_id", "id"),
        Index("ix_reward_redemptions_program", "program_id", "status", "id"),
        Index("ix_reward_redemptions_due", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"), index=True)
    reward_code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(10))
    quantity: Mapped[int] = mapped_column(default=1)
    points: Mapped[int] = mapped_column(BigInteger)
    cash_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(10))
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    coupon_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    wallet_transfer_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    donation_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    hold_transfer_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    capture_transfer_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    return_transfer_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    hold_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    fulfilment_status: Mapped[str | None] = mapped_column(String(10), default=None)
    tracking: Mapped[str | None] = mapped_column(String(200), default=None)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    stock_period: Mapped[str | None] = mapped_column(String(10), default=None)
    member_period: Mapped[str | None] = mapped_column(String(10), default=None)
    counted: Mapped[bool] = mapped_column(default=True)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    actor: Mapped[str] = mapped_column(String(100))
    cancel_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    issued_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
