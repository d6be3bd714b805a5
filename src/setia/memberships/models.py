"""Paid membership ("Member Plus"): plans, their revisions, subscriptions and payments."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow

LIVE = ("trialing", "active", "past_due")


class MembershipPlan(Base):
    """A plan a member can subscribe to. ``revision`` grows with every change; subscriptions
    keep the revision (and price) they were sold at."""

    __tablename__ = "membership_plans"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    names: Mapped[dict[str, Any]]
    price: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(8))
    trial_days: Mapped[int] = mapped_column(default=0)
    grace_days: Mapped[int] = mapped_column(default=0)
    tier_code: Mapped[str | None] = mapped_column(String(60), default=None)
    tier_mode: Mapped[str | None] = mapped_column(String(8), default=None)
    earn_multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 4), default=Decimal(1))
    monthly_bonus_points: Mapped[int] = mapped_column(BigInteger, default=0)
    perks: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(default=True)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MembershipPlanRevision(Base):
    """Every saved version of a plan. Append-only."""

    __tablename__ = "membership_plan_revisions"
    __table_args__ = (UniqueConstraint("plan_id", "revision"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("membership_plans.id"))
    revision: Mapped[int]
    definition: Mapped[dict[str, Any]]
    changed_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A member's subscription to a plan, with the plan's terms as sold (``plan_revision``).

    Periods are counted from ``anchor_at`` in the tenant's zone (period n starts ``n``
    months or years after the anchor, never chained), ``periods_paid`` of them are paid;
    ``current_period_*`` is the last paid period (or the trial). ``live_key`` is set while the
    subscription is live and unique, so a member has at most one live subscription per program.
    ``version`` makes every change a compare-and-set.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_subscriptions_member", "member_id", "program_id"),
        Index("ix_subscriptions_due", "status", "current_period_end"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("membership_plans.id"))
    plan_revision: Mapped[int]
    plan_code: Mapped[str] = mapped_column(String(60))
    price: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(8))
    grace_days: Mapped[int]
    tier_code: Mapped[str | None] = mapped_column(String(60), default=None)
    tier_mode: Mapped[str | None] = mapped_column(String(8), default=None)
    earn_multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    monthly_bonus_points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    live_key: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)
    started_at: Mapped[datetime]
    trial_ends_at: Mapped[datetime | None] = mapped_column(default=None)
    anchor_at: Mapped[datetime]
    periods_paid: Mapped[int] = mapped_column(default=0)
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    past_due_since: Mapped[datetime | None] = mapped_column(default=None)
    first_paid_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str | None] = mapped_column(String(20), default=None)
    bonus_months: Mapped[int] = mapped_column(default=0)
    next_bonus_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class SubscriptionPayment(Base):
    """A payment notification from the business's payment system. Append-only: a status
    change of the same gateway transaction (pending → paid, paid → refunded) is a new row."""

    __tablename__ = "subscription_payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "gateway", "external_id", "status"),
        Index("ix_subscription_payments_sub", "subscription_id", "occurred_at"),
        Index("ix_subscription_payments_time", "tenant_id", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    gateway: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime]
    refund_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subscription_payments.id"), default=None
    )
    period_index: Mapped[int | None] = mapped_column(default=None)
    payload: Mapped[dict[str, Any]]
    request_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
