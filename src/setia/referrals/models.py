"""Tables of the referrals domain: the referral settings of a program, members' personal codes,
shares, referrals, the rewards they gave and every review decision."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow

# pending: waiting for the referee's qualifying order and its return window;
# held: waiting for an admin (velocity burst or review required);
# qualified: the order qualified (rewards are given in the same step unless capped);
# rewarded: at least one reward was given; rejected: an admin said no;
# cancelled: the qualifying order was refunded inside its return window (or a merge made
# the referral meaningless).
STATUSES = ("pending", "held", "qualified", "rewarded", "rejected", "cancelled")
ROLES = ("referrer", "referee", "level2")


class ReferralSettings(Base):
    """The referral program of a points program (one row per program).

    The qualifying event is the referee's first purchase of at least ``min_amount`` in the
    program's currency; it counts once the program's ``pending_days`` (the return window)
    have passed since the order. Caps limit the rewards an advocate (as referrer or as
    second level) gets per local month and in total. ``level2_*`` is the optional second
    level (the referrer's own referrer); there is never a third.
    """

    __tablename__ = "referral_settings"
    __table_args__ = (UniqueConstraint("program_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    enabled: Mapped[bool] = mapped_column(default=False)
    min_amount: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    referrer_points: Mapped[int] = mapped_column(BigInteger, default=0)
    referee_points: Mapped[int] = mapped_column(BigInteger, default=0)
    referrer_campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("coupon_campaigns.id"), default=None
    )
    referee_campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("coupon_campaigns.id"), default=None
    )
    level2_enabled: Mapped[bool] = mapped_column(default=False)
    level2_points: Mapped[int] = mapped_column(BigInteger, default=0)
    level2_campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("coupon_campaigns.id"), default=None
    )
    cap_per_month: Mapped[int | None] = mapped_column(default=None)
    cap_lifetime: Mapped[int | None] = mapped_column(default=None)
    velocity_count: Mapped[int] = mapped_column(default=5)
    velocity_minutes: Mapped[int] = mapped_column(default=10)
    review_required: Mapped[bool] = mapped_column(default=False)
    attach_within_days: Mapped[int] = mapped_column(default=7)
    disposable_add: Mapped[list[str]] = mapped_column(JSONType, default=list)
    disposable_remove: Mapped[list[str]] = mapped_column(JSONType, default=list)
    share_url: Mapped[str] = mapped_column(String(500))
    share_texts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferralCode(Base):
    """A member's personal code, one per member and tenant (made on first ask). Random (no
    personal data in it), from an alphabet without 0, 1, I, L and O."""

    __tablename__ = "referral_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        UniqueConstraint("tenant_id", "member_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    code: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferralShare(Base):
    """One time a member shared their link (counted for the funnel)."""

    __tablename__ = "referral_shares"
    __table_args__ = (Index("ix_referral_shares_member", "tenant_id", "member_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(20), default="whatsapp")
    device_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Referral(Base):
    """A referee who signed up with a referrer's code, in one program. A member is referred
    at most once per program (unique ``referee_id``)."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("program_id", "referee_id"),
        Index("ix_referrals_status", "program_id", "status", "id"),
        Index("ix_referrals_referrer", "referrer_id", "created_at"),
        # A referrer's referrals in a program (their counts, caps and funnel); a member as
        # referee (fraud checks, merge, erasure).
        Index("ix_referrals_program_referrer", "program_id", "referrer_id", "status"),
        Index("ix_referrals_referee", "referee_id"),
        Index("ix_referrals_code_time", "code_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    code_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_codes.id"))
    code: Mapped[str] = mapped_column(String(16))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    referee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    held_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    device_id: Mapped[str | None] = mapped_column(String(200), default=None)
    source: Mapped[str] = mapped_column(String(40), default="api")
    order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    order_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    cancelled_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(100), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    qualified_at: Mapped[datetime | None] = mapped_column(default=None)
    rewarded_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferralReward(Base):
    """What one role of a referral got: exactly one row per (referral, role), the key that
    makes a retried or concurrent job award once. ``status`` is ``given`` or ``capped`` (a
    cap stopped it; nothing was written to the ledger). ``local_month`` (YYYY-MM in the
    tenant's zone) is what the monthly cap counts."""

    __tablename__ = "referral_rewards"
    __table_args__ = (
        UniqueConstraint("referral_id", "role"),
        Index("ix_referral_rewards_member", "member_id", "local_month"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    role: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), default=None
    )
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("coupons.id"), default=None)
    local_month: Mapped[str] = mapped_column(String(7))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferralDecision(Base):
    """Every change of a referral's status with who, when and why. Append-only."""

    __tablename__ = "referral_decisions"
    __table_args__ = (Index("ix_referral_decisions_referral", "referral_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    from_status: Mapped[str | None] = mapped_column(String(10), default=None)
    to_status: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
