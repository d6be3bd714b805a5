from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow


class Program(Base):
    """A points program. Settings apply to what happens from now on: every lot keeps the
    pending and expiry dates it was given, and every award names the program revision."""

    __tablename__ = "programs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    points_name: Mapped[str] = mapped_column(String(50), default="Poin")
    currency: Mapped[str] = mapped_column(String(3))
    is_default: Mapped[bool] = mapped_column(default=False)
    # Base earn rate: earn_points for every earn_per_amount of currency spent.
    earn_points: Mapped[int] = mapped_column(default=1)
    earn_per_amount: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(1000))
    rounding: Mapped[str] = mapped_column(String(8), default="floor")
    pending_days: Mapped[int] = mapped_column(default=0)
    # Expiry: none | after_duration | end_of_period | inactivity
    expiry_policy: Mapped[str] = mapped_column(String(16), default="none")
    expiry_months: Mapped[int] = mapped_column(default=12)
    expiry_period: Mapped[str | None] = mapped_column(String(8), default=None)
    min_redeem_points: Mapped[int] = mapped_column(default=0)
    cost_per_point: Mapped[Decimal] = mapped_column(Numeric(18, 6), default=Decimal(0))
    # What a refund does when its points were already spent: debt | write_off
    refund_shortfall: Mapped[str] = mapped_column(String(16), default="debt")
    allow_member_transfers: Mapped[bool] = mapped_column(default=False)
    hold_timeout_minutes: Mapped[int] = mapped_column(default=30)
    # Paying with points at checkout: the currency value of one point (None: not offered)
    # and the largest share of an order's total that points may pay, in percent.
    points_payment_rate: Mapped[Decimal | None] = mapped_column(Numeric(18, 6), default=None)
    points_payment_max_percent: Mapped[int] = mapped_column(default=100)
    # An unused reward coupon that is cancelled or expires gives its points back.
    coupon_cancel_returns_points: Mapped[bool] = mapped_column(default=True)
    # A fully refunded order makes the coupon it used usable again.
    refund_restores_coupon: Mapped[bool] = mapped_column(default=True)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProgramRevision(Base):
    """A snapshot of a program's settings, written on creation and on every change."""

    __tablename__ = "program_revisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    revision: Mapped[int]
    settings: Mapped[dict[str, Any]]
    changed_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
