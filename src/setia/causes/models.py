"""Tables of the causes domain: causes members give points to, their donations, and the
counters that number the receipts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow

STATUSES = ("draft", "active", "closed")


class Cause(Base):
    """A good cause of a program ("Tanam Pohon", "Sedekah Ramadan").

    ``starts_on``/``ends_on`` are dates in the tenant's time zone, both inclusive (either may
    be open). ``donated_points`` and ``matched_points`` are running totals changed only by a
    guarded ``UPDATE`` in the donation's transaction; ``matched_points`` never exceeds
    ``match_budget``. A point given is worth ``value_per_point`` in the program's currency,
    or the program's ``cost_per_point`` when the cause sets none.
    """

    __tablename__ = "causes"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(60))
    names: Mapped[dict[str, Any]]
    descriptions: Mapped[dict[str, Any]]
    image_urls: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(8), default="draft")
    goal_points: Mapped[int | None] = mapped_column(BigInteger, default=None)
    value_per_point: Mapped[Decimal | None] = mapped_column(Numeric(18, 6), default=None)
    starts_on: Mapped[date | None] = mapped_column(default=None)
    ends_on: Mapped[date | None] = mapped_column(default=None)
    min_points: Mapped[int] = mapped_column(BigInteger, default=1)
    max_points: Mapped[int | None] = mapped_column(BigInteger, default=None)
    match_ratio: Mapped[Decimal] = mapped_column(Numeric(8, 4), default=Decimal(0))
    match_budget: Mapped[int] = mapped_column(BigInteger, default=0)
    match_cap_per_member: Mapped[int | None] = mapped_column(BigInteger, default=None)
    receipt_prefix: Mapped[str] = mapped_column(String(12))
    donated_points: Mapped[int] = mapped_column(BigInteger, default=0)
    matched_points: Mapped[int] = mapped_column(BigInteger, default=0)
    donations_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class Donation(Base):
    """Points a member gave to a cause. Append-only.

    ``matched_points`` is the business's pledge on top (never taken from a member);
    ``value``/``matched_value`` are their worth in ``currency`` at the time of giving.
    ``receipt_number`` is ``<prefix>-<year>-<number>``, the number counting up from 1 with no
    gaps per prefix and year (the year in the tenant's zone).
    """

    __tablename__ = "cause_donations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        UniqueConstraint("tenant_id", "receipt_number"),
        Index("ix_cause_donations_cause", "cause_id", "id"),
        Index("ix_cause_donations_member", "member_id", "cause_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    cause_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("causes.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    matched_points: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    matched_value: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    receipt_number: Mapped[str] = mapped_column(String(40))
    receipt_year: Mapped[int]
    receipt_seq: Mapped[int] = mapped_column(BigInteger)
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transfers.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    source_type: Mapped[str | None] = mapped_column(String(40), default=None)
    source_id: Mapped[str | None] = mapped_column(String(200), default=None)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReceiptSequence(Base):
    """The last receipt number given per tenant, prefix and year. Incremented in the
    donation's transaction (a rolled-back donation gives its number back), so numbers have
    no gaps."""

    __tablename__ = "cause_receipt_sequences"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(12), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)
