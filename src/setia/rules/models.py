from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow


class Campaign(Base):
    """A named, scheduled group of rules with its own points budget."""

    __tablename__ = "campaigns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    schedule: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    budget_points: Mapped[int | None] = mapped_column(BigInteger, default=None)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Rule(Base):
    """An earning rule. ``definition`` is the current revision's body (see RuleBody)."""

    __tablename__ = "rules"
    __table_args__ = (Index("ix_rules_program_enabled", "program_id", "enabled"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    priority: Mapped[int] = mapped_column(default=200)
    revision: Mapped[int] = mapped_column(default=1)
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleRevision(Base):
    """Every saved version of a rule: who changed what, and when. Append-only."""

    __tablename__ = "rule_revisions"
    __table_args__ = (UniqueConstraint("rule_id", "revision"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rules.id"))
    revision: Mapped[int]
    definition: Mapped[dict[str, Any]]
    enabled: Mapped[bool]
    changed_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleAward(Base):
    """What a rule gave on one event: the basis of limits, budgets and explanations."""

    __tablename__ = "rule_awards"
    __table_args__ = (
        Index("ix_rule_awards_member", "rule_id", "member_id", "occurred_at"),
        Index("ix_rule_awards_campaign", "campaign_id"),
        Index("ix_rule_awards_event", "event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rules.id"), default=None)
    rule_revision: Mapped[int]
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"), default=None)
    trigger_key: Mapped[str | None] = mapped_column(String(200), default=None, unique=True)
    points: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime]
