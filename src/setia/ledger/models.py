"""The points ledger: accounts, immutable transfers, per-account entries, and lots.

Invariants (checked by ``setia ledger verify`` and by the property tests):

1. Per program, Σ debits_posted = Σ credits_posted and Σ debits_pending = Σ credits_pending.
2. Each account counter equals the sum of the transfers that touch it, and ``version``
   equals the number of its entries.
3. A ``no_overdraft`` account never has debits_posted + debits_pending > credits_posted; a
   ``no_overcredit`` account (member debt) never has credits_posted > debits_posted. Member
   points accounts never go negative: a shortfall is recorded as debt or as a write-off.
4. A pending transfer (a hold) is resolved at most once (unique ``pending_id``).
5. Lots: Σ remaining of the lots in an account equals that account's available balance,
   and each lot's remaining equals its amount plus the sum of its movements.
6. Transfers are never updated or deleted (database triggers refuse it).
7. Two assets share these tables: points, and each member's wallet (money, in the minor
   unit of the program's currency). A transfer never moves value between assets: both of
   its accounts are points accounts, or both are wallet accounts.
8. A RETURN transfer names the spend it gives back (``reverses_id``); the returns of a
   spend never add up to more than the spend.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow

# Member accounts
POINTS = "POINTS"  # available (and held) points: credit-normal, no overdraft
PENDING = "PENDING"  # earned but inside the return window: credit-normal, no overdraft
DEBT = "DEBT"  # points owed after a refund of spent points: debit-normal
MEMBER_CODES = (POINTS, PENDING, DEBT)
# Program accounts (may run either way)
ISSUANCE = "ISSUANCE"
REDEEMED = "REDEEMED"
EXPIRED = "EXPIRED"
ADJUSTMENT = "ADJUSTMENT"
WRITE_OFF = "WRITE_OFF"
PROGRAM_CODES = (ISSUANCE, REDEEMED, EXPIRED, ADJUSTMENT, WRITE_OFF)
# The wallet asset: money in the minor unit of the program's currency (sen, rupiah).
WALLET = "WALLET"  # a member's wallet balance: credit-normal, no overdraft
WALLET_ISSUED = "WALLET_ISSUED"  # the source of cashback, gift cards and top-ups
WALLET_SPENT = "WALLET_SPENT"  # where wallet money goes when it is spent
WALLET_PROGRAM_CODES = (WALLET_ISSUED, WALLET_SPENT)
WALLET_CODES = frozenset((WALLET, *WALLET_PROGRAM_CODES))


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("debits_posted >= 0 AND credits_posted >= 0", name="posted_nonneg"),
        CheckConstraint("debits_pending >= 0 AND credits_pending >= 0", name="pending_nonneg"),
        CheckConstraint(
            "NOT no_overdraft OR debits_posted + debits_pending <= credits_posted",
            name="no_overdraft",
        ),
        CheckConstraint(
            "NOT no_overcredit OR credits_posted + credits_pending <= debits_posted",
            name="no_overcredit",
        ),
        UniqueConstraint("program_id", "code", "member_id"),
        # A member's accounts in a program: the unique key above has the code between the
        # two, so without this a look-up by member walked every account of the program.
        Index("ix_ledger_accounts_member", "member_id", "program_id"),
        Index(
            "uq_ledger_accounts_program_code",
            "program_id",
            "code",
            unique=True,
            sqlite_where=text("member_id IS NULL"),
            postgresql_where=text("member_id IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), default=None)
    no_overdraft: Mapped[bool] = mapped_column(default=False)
    no_overcredit: Mapped[bool] = mapped_column(default=False)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Transfer(Base):
    """An immutable movement of points between two accounts of one program.

    ``kind``: POSTED moves points now; PENDING reserves them (a hold); POST_PENDING,
    VOID_PENDING and EXPIRE_PENDING resolve a hold, naming it in ``pending_id``.
    """

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        UniqueConstraint("program_id", "idempotency_key"),
        Index(
            "uq_ledger_transfers_pending_id",
            "pending_id",
            unique=True,
            sqlite_where=text("pending_id IS NOT NULL"),
            postgresql_where=text("pending_id IS NOT NULL"),
        ),
        Index("ix_ledger_transfers_source", "program_id", "source_type", "source_id"),
        # Reports over a window of time (KPIs, the dashboard's point flows).
        Index("ix_ledger_transfers_program_effective", "program_id", "effective_at"),
        Index(
            "ix_ledger_transfers_open_holds",
            "expires_at",
            sqlite_where=text("kind = 'PENDING'"),
            postgresql_where=text("kind = 'PENDING'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="POSTED")
    pending_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), default=None
    )
    # For a RETURN: the spend (a POSTED transfer or a hold's capture) it gives back.
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), default=None, index=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    source_type: Mapped[str | None] = mapped_column(String(30), default=None)
    source_id: Mapped[str | None] = mapped_column(String(200), default=None)
    program_revision: Mapped[int | None] = mapped_column(default=None)
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    effective_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Entry(Base):
    """One line of an account's statement: how one transfer changed its available balance."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("account_id", "account_version"),
        Index("ix_ledger_entries_transfer", "transfer_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transfers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    account_version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lot(Base):
    """Points earned together, with their own pending and expiry dates.

    A lot sits in the member's PENDING account until ``pending_until``, then in POINTS.
    Spending consumes lots soonest-expiry first; ``remaining`` never goes below zero.
    """

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_range"),
        Index("ix_point_lots_account_expiry", "account_id", "expires_at"),
        Index(
            "ix_point_lots_pending",
            "pending_until",
            postgresql_where=text("released_at IS NULL"),
            sqlite_where=text("released_at IS NULL"),
        ),
        Index(
            "ix_point_lots_expiring",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        Index("ix_point_lots_source", "program_id", "source_type", "source_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transfers.id"))
    source_type: Mapped[str | None] = mapped_column(String(30), default=None)
    source_id: Mapped[str | None] = mapped_column(String(200), default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime]
    pending_until: Mapped[datetime | None] = mapped_column(default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class LotMovement(Base):
    """A change to a lot's ``remaining`` (negative: consumed; positive: given back)."""

    __tablename__ = "point_lot_movements"
    __table_args__ = (Index("ix_point_lot_movements_transfer", "transfer_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_lots.id"), index=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transfers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
