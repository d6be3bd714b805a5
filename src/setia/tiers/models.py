"""Tier sets, tiers, each member's tier status, its history, and the activity tiers count.

``tier_activity`` holds one row per (program, member, local day, kind): what counted that
day (spend, points earned, orders, custom events). Events add to it in their own
transaction; refunds subtract on the day of the purchase they refund. A window's figure is a
``SUM`` over its days, so the nightly evaluation is one grouped scan, and "how much more to
reach Gold?" is one indexed range read.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow

PURCHASE = "purchase"  # kind of activity row for purchases and their refunds
EVENT_PREFIX = "event:"  # kind of activity row for a custom event type: "event:review.submitted"


class TierSet(Base):
    """The tier structure of one program: how members qualify and how they move."""

    __tablename__ = "tier_sets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # [{"metric": "spend"|"points"|"orders"|"visits"|"event", "event_type": str?}], 1 or 2
    metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    combine: Mapped[str] = mapped_column(String(3), default="all")  # all | any
    # {"kind": "rolling", "months": 12} | calendar_year | anniversary_year | lifetime
    window: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # {"kind": "months", "months": 12} | {"kind": "end_of_next_window"} | {"kind": "none"}
    retention: Mapped[dict[str, Any]] = mapped_column(JSONType)
    downgrade: Mapped[str] = mapped_column(String(20), default="one_level")  # or to_qualified
    grace_days: Mapped[int] = mapped_column(default=0)
    at_risk_days: Mapped[int] = mapped_column(default=30)
    revision: Mapped[int] = mapped_column(default=1)
    evaluated_on: Mapped[date | None] = mapped_column(default=None)  # last complete evaluation
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Tier(Base):
    """One level. Rank 0 is the base tier every member starts in (thresholds of zero)."""

    __tablename__ = "tiers"
    __table_args__ = (
        UniqueConstraint("tier_set_id", "code"),
        UniqueConstraint("tier_set_id", "rank"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tier_set_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tier_sets.id"))
    code: Mapped[str] = mapped_column(String(40))
    rank: Mapped[int]
    names: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"id": "Emas", "ms": ..., "en": ...}
    thresholds: Mapped[list[str]] = mapped_column(JSONType)  # aligned with TierSet.metrics
    invitation_only: Mapped[bool] = mapped_column(default=False)
    earn_multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 4), default=Decimal(1))
    perks: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    support_priority: Mapped[int] = mapped_column(default=0)
    color: Mapped[str | None] = mapped_column(String(20), default=None)


class MemberTier(Base):
    """A member's standing in a tier set. Rows change only by compare-and-set on ``version``,
    so two evaluations (or an evaluation and an event) never both move a member.

    * earned: what qualification gave, ``secure_until`` the last local day it is kept
      without requalifying; ``revoked_on`` set when a refund undid the qualification.
    * override: an admin's assignment, a floor until ``override_until`` (inclusive).
    * plan: a paid membership's tier, ``grant`` (a floor) or ``protect`` (no downgrade).
    * ``tier_id`` is the effective tier: the highest of the three.
    """

    __tablename__ = "member_tiers"
    __table_args__ = (Index("ix_member_tiers_tier", "tier_set_id", "tier_id"),)

    tier_set_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tier_sets.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tiers.id"))
    since: Mapped[datetime]
    earned_tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tiers.id"))
    earned_since: Mapped[datetime]
    qualified_on: Mapped[date | None] = mapped_column(default=None)
    secure_until: Mapped[date | None] = mapped_column(default=None)
    revoked_on: Mapped[date | None] = mapped_column(default=None)
    previous_tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    previous_secure_until: Mapped[date | None] = mapped_column(default=None)
    override_tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    override_until: Mapped[date | None] = mapped_column(default=None)
    override_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    plan_tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    plan_mode: Mapped[str | None] = mapped_column(String(10), default=None)  # grant | protect
    plan_until: Mapped[date | None] = mapped_column(default=None)
    anchor_day: Mapped[date | None] = mapped_column(default=None)  # enrolment day (anniversaries)
    at_risk_notified_for: Mapped[date | None] = mapped_column(default=None)
    evaluated_on: Mapped[date | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=1)


class TierChange(Base):
    """Every change of a member's effective or earned tier, with its reason. Append-only."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index("ix_tier_changes_member", "member_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tier_set_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tier_sets.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    from_tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    to_tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tiers.id"))
    # upgraded | requalified | downgraded | revoked | override | override_ended | plan | plan_ended
    reason: Mapped[str] = mapped_column(String(30))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    on_day: Mapped[date]


class TierActivity(Base):
    """What counted towards tiers on one local day (see the module docstring)."""

    __tablename__ = "tier_activity"

    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(80), primary_key=True)
    spend: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(default=0)
    count: Mapped[int] = mapped_column(default=0)
