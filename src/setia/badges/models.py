"""Tables of the badges domain: definitions (badges and challenges), each member's running
progress per period (tallies), completions, and members' consent to appear on leaderboards."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow

KINDS = ("badge", "challenge")
STATUSES = ("active", "archived")
MEASURES = ("count", "sum", "distinct", "streak", "first")
PERIODS = ("all_time", "month", "campaign")
STREAK_UNITS = ("day", "week", "month")
ALL_TIME = "all"  # the period key of a definition that is not recurring


class BadgeDefinition(Base):
    """A badge or a challenge of a program: what counts, how much is needed, when, and what
    completing it gives.

    ``event_type`` is the event that counts (``purchase``, ``review.submitted``, ...);
    ``conditions`` filters those events (the rules' condition language, event fields and
    items tests only); ``items_where`` picks the order lines a ``distinct`` or ``sum`` over
    items reads. ``measure`` is one of ``count``, ``sum`` (of ``field``), ``distinct``
    (values of ``field``), ``streak`` (events in ``target`` consecutive local
    ``streak_unit``\\s) or ``first`` (the first such event). ``period`` is ``all_time``,
    ``month`` (``recurring``: progress starts again each local calendar month) or
    ``campaign``; ``starts_at``/``ends_at`` bound the events that count (a campaign's window,
    or the month of a one-off monthly challenge), UTC, end exclusive. The code never
    changes (rules and ``member.badges`` name it).
    """

    __tablename__ = "badge_definitions"
    __table_args__ = (
        UniqueConstraint("program_id", "code"),
        Index("ix_badge_definitions_program", "program_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="active")
    names: Mapped[dict[str, Any]]
    descriptions: Mapped[dict[str, Any]]
    image_url: Mapped[str | None] = mapped_column(String(500), default=None)
    event_type: Mapped[str] = mapped_column(String(60))
    conditions: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    items_where: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    measure: Mapped[str] = mapped_column(String(10))
    field: Mapped[str | None] = mapped_column(String(120), default=None)
    target: Mapped[Decimal] = mapped_column(Numeric(24, 6))
    streak_unit: Mapped[str | None] = mapped_column(String(8), default=None)
    period: Mapped[str] = mapped_column(String(10), default="all_time")
    recurring: Mapped[bool] = mapped_column(default=False)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    reward_points: Mapped[int] = mapped_column(BigInteger, default=0)
    reward_coupon_campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("coupon_campaigns.id"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)


class BadgeTally(Base):
    """A member's running progress on every definition of a program in one period (``all``
    for definitions that are not recurring, ``YYYY-MM`` local for monthly ones): one row per
    member and period, so an event that counts toward a dozen definitions writes one row.

    ``entries`` maps a definition's id (its canonical text, with hyphens) to ``[value, events, last_event_at,
    completed_at, state]``: the value as decimal text (the count, the sum, the number of
    distinct values, the longest streak, 0/1), the number of events counted, two ISO 8601
    instants (UTC; ``completed_at`` null until complete) and what a distinct or streak
    measure needs (the values seen, the local day/week/month numbers; null for others and
    once complete). A completed entry also has its ``BadgeProgress`` row, the earned record.
    """

    __tablename__ = "badge_tallies"
    __table_args__ = (
        UniqueConstraint("member_id", "program_id", "period_key"),
        Index("ix_badge_tallies_program", "program_id", "period_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    period_key: Mapped[str] = mapped_column(String(8))
    entries: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BadgeProgress(Base):
    """A completion: a member's progress on one definition in one period (``all`` for a
    definition that is not recurring, ``YYYY-MM`` local for a monthly one) once it reached
    the target. Progress short of the target lives in the member's ``BadgeTally`` of the
    period; the row is written, with the tally's numbers, by the run that completes it.

    ``value`` is the count, the sum, the number of distinct values, the longest streak or
    0/1; ``state`` holds what a distinct or streak measure needed. ``completed_at`` is the
    time of the event that completed it; the row no longer changes, except for the reward's
    outcome.
    """

    __tablename__ = "badge_progress"
    __table_args__ = (
        UniqueConstraint("member_id", "definition_id", "period_key"),
        Index("ix_badge_progress_board", "definition_id", "period_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    definition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("badge_definitions.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    period_key: Mapped[str] = mapped_column(String(8))
    value: Mapped[Decimal] = mapped_column(Numeric(24, 6), default=Decimal(0))
    state: Mapped[dict[str, Any]]
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    last_event_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    reward: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class LeaderboardConsent(Base):
    """A member's choice to appear on the program's public challenge leaderboards, and the
    display name shown there (nothing else of the member is ever shown). The latest row per
    member is the one in force; every change is kept."""

    __tablename__ = "badge_leaderboard_consents"
    __table_args__ = (Index("ix_badge_leaderboard_consents_member", "member_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    opted_in: Mapped[bool]
    display_name: Mapped[str | None] = mapped_column(String(40), default=None)
    source: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
