"""Tables of the analytics domain (the statistical models live in ``models.py``).

* ``analytics_settings``: one row per tenant, the settings in force (``version`` counts
  changes); ``analytics_settings_changes`` keeps every version with who set it
  (append-only).
* ``analytics_fits``: one row per recompute of a program: the fitted BG/NBD and Gamma-Gamma
  parameters, log-likelihoods, fit time, and the settings version used.
* ``member_scores``: one row per member per program, the last recompute's results.
* ``analytics_segments``: saved segments (named filters over scores and member data).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow


class AnalyticsSettings(Base):
    __tablename__ = "analytics_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(default=1)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnalyticsSettingsChange(Base):
    """Append-only: every version of a tenant's analytics settings."""

    __tablename__ = "analytics_settings_changes"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    version: Mapped[int]
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    actor: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnalyticsFit(Base):
    """One recompute of a program's scores and the model parameters it used."""

    __tablename__ = "analytics_fits"
    __table_args__ = (Index("ix_analytics_fits_program", "program_id", "computed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    computed_at: Mapped[datetime]
    as_of: Mapped[datetime]
    settings_version: Mapped[int]
    members: Mapped[int]
    purchasers: Mapped[int]
    model: Mapped[str | None] = mapped_column(String(20), default=None)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    log_likelihood: Mapped[float | None] = mapped_column(default=None)
    spend_params: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    spend_log_likelihood: Mapped[float | None] = mapped_column(default=None)
    fit_seconds: Mapped[float]
    total_seconds: Mapped[float]
    predictions_missing: Mapped[str | None] = mapped_column(String(500), default=None)
    spend_missing: Mapped[str | None] = mapped_column(String(500), default=None)
    horizon_weeks: Mapped[float]
    months: Mapped[int]
    discount_rate: Mapped[float]


class MemberScore(Base):
    """A member's stored analytics in a program (the last recompute's values)."""

    __tablename__ = "member_scores"
    __table_args__ = (
        Index("ix_member_scores_tenant", "tenant_id", "program_id", "member_id"),
        Index("ix_member_scores_segment", "program_id", "rfm_segment"),
    )

    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    fit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("analytics_fits.id"))
    computed_at: Mapped[datetime]
    as_of: Mapped[datetime]
    orders: Mapped[int]
    spend: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    refunds: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    redemptions: Mapped[int]
    purchase_days: Mapped[int]
    first_order_at: Mapped[datetime | None] = mapped_column(default=None)
    last_order_at: Mapped[datetime | None] = mapped_column(default=None)
    first_purchase_day: Mapped[date | None] = mapped_column(default=None)
    last_purchase_day: Mapped[date | None] = mapped_column(default=None)
    recency_days: Mapped[int | None] = mapped_column(default=None)
    frequency: Mapped[float]  # x: purchase days - 1
    recency: Mapped[float]  # t_x, weeks
    age: Mapped[float]  # T, weeks
    monetary: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    p_alive: Mapped[float | None] = mapped_column(default=None)
    expected_purchases: Mapped[float | None] = mapped_column(default=None)
    expected_spend: Mapped[Decimal | None] = mapped_column(Numeric(20, 4), default=None)
    clv: Mapped[Decimal | None] = mapped_column(Numeric(20, 4), default=None)
    rfm_r: Mapped[int | None] = mapped_column(default=None)
    rfm_f: Mapped[int | None] = mapped_column(default=None)
    rfm_m: Mapped[int | None] = mapped_column(default=None)
    rfm_segment: Mapped[str | None] = mapped_column(String(32), default=None)
    loyalty_label: Mapped[str] = mapped_column(String(16))
    loyalty_type: Mapped[str] = mapped_column(String(16))
    habitual: Mapped[float]
    transactional: Mapped[float]
    emotional: Mapped[float]


class AnalyticsSegment(Base):
    """A saved segment: a named filter over stored scores and member data."""

    __tablename__ = "analytics_segments"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    key: Mapped[str] = mapped_column(String(64))
    names: Mapped[dict[str, Any]] = mapped_column(JSONType)
    descriptions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    filter: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
