"""Tables of the coupons domain: campaigns, their codes, generation batches and redemptions.

A campaign holds the discount and every condition; a code (``coupons``) is what a customer
types at the till. A campaign's public code (``HARBOLNAS``) is an ordinary row of
``coupons`` with ``is_public`` set and no per-code limit, so one lookup by
``(tenant_id, code)`` finds any code. ``uses`` counters on the code and the campaign count
the *active* redemptions: redeeming adds one with a guarded ``UPDATE``, voiding takes it off.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow

DISCOUNT_TYPES = ("fixed", "percent", "free_item", "free_shipping")
CAMPAIGN_STATUSES = ("active", "paused", "archived")


class CouponCampaign(Base):
    __tablename__ = "coupon_campaigns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_coupon_campaigns_tenant", "tenant_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("programs.id"), default=None)
    code: Mapped[str] = mapped_column(String(60))
    names: Mapped[dict[str, Any]]
    descriptions: Mapped[dict[str, Any]]
    discount_type: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    # fixed: amount off; percent: percent off (0 < p <= 100); max_discount caps percent,
    # free_item and free_shipping discounts.
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4), default=None)
    max_discount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    free_item_skus: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Which cart lines the coupon applies to (empty lists: the whole cart).
    skus: Mapped[list[str]] = mapped_column(JSONType, default=list)
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    exclude_skus: Mapped[list[str]] = mapped_column(JSONType, default=list)
    exclude_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Minimum spend, on the subtotal of the applicable lines.
    min_spend: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    valid_from: Mapped[datetime | None] = mapped_column(default=None)
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
    max_uses: Mapped[int | None] = mapped_column(default=None)
    uses: Mapped[int] = mapped_column(default=0)
    per_member_limit: Mapped[int | None] = mapped_column(default=None)
    uses_per_code: Mapped[int | None]
    member_bound: Mapped[bool] = mapped_column(default=False)
    code_pattern: Mapped[str | None] = mapped_column(String(64), default=None)
    public_code: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(10), default="active")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CouponBatch(Base):
    """One generation or import request: what made a group of codes (and its idempotency)."""

    __tablename__ = "coupon_batches"
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupon_campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    count: Mapped[int]
    pattern: Mapped[str | None] = mapped_column(String(64), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Coupon(Base):
    """One code. ``max_uses`` is fixed when the code is made (the campaign's
    ``uses_per_code``, 1 for a code issued for a reward, none for a public code)."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        # Partial indexes: most codes (generated, imported, public) have no member and no
        # source, and bulk generation then writes two index entries fewer per code.
        Index(
            "uq_coupons_source",
            "tenant_id",
            "source_type",
            "source_id",
            unique=True,
            sqlite_where=text("source_type IS NOT NULL"),
            postgresql_where=text("source_type IS NOT NULL"),
        ),
        Index("ix_coupons_campaign", "campaign_id", "id"),
        Index(
            "ix_coupons_member",
            "member_id",
            sqlite_where=text("member_id IS NOT NULL"),
            postgresql_where=text("member_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupon_campaigns.id"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("coupon_batches.id"), default=None, index=True
    )
    code: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), default=None)
    is_public: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    source_type: Mapped[str | None] = mapped_column(String(40), default=None)
    source_id: Mapped[str | None] = mapped_column(String(200), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CouponRedemption(Base):
    """A code used on an order. ``active_key`` (coupon id and order id) is set while the
    redemption is active and unique, so one order uses one code at most once at a time."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_coupon_redemptions_order", "tenant_id", "order_id"),
        Index("ix_coupon_redemptions_coupon", "coupon_id", "id"),
        Index("ix_coupon_redemptions_member", "campaign_id", "member_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    coupon_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupon_campaigns.id"))
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), default=None)
    order_id: Mapped[str] = mapped_column(String(200))
    discount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="active")
    active_key: Mapped[str | None] = mapped_column(String(240), unique=True, default=None)
    cart: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    void_reason: Mapped[str | None] = mapped_column(String(200), default=None)
