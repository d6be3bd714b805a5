"""Read side of the ledger: balances and statements."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.errors import NotFound
from setia.ledger.models import ISSUANCE, Account, Entry, Lot, Transfer
from setia.ledger.service import MemberAccounts, due_points, member_accounts
from setia.members.chains import merged_ids


def balance(
    session: Session,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    now: datetime,
    soon_days: int = 30,
    lifetime: bool = True,
) -> dict[str, Any]:
    """Available, held, pending (with dates), expiring soon (with dates), debt and, unless
    ``lifetime`` is False (it costs as much as the rest together), lifetime totals."""
    accounts = member_accounts(session, program_id, member_id)
    rows = {
        r.id: r
        for r in session.execute(
            select(Account).where(
                Account.id.in_([accounts.points, accounts.pending, accounts.debt])
            )
        ).scalars()
    }
    pts, pend, debt = rows[accounts.points], rows[accounts.pending], rows[accounts.debt]
    pending_rows = session.execute(
        select(Lot.pending_until, func.sum(Lot.remaining))
        .where(Lot.account_id == accounts.pending, Lot.remaining > 0)
        .group_by(Lot.pending_until)
        .order_by(Lot.pending_until)
    ).all()
    # Lots past their expiry date that the expiry job has not reached yet are not the
    # member's any more: neither available nor "expiring soon" (spending expires them first).
    due = due_points(session, program_id, member_id, accounts.points, now)
    expiring_rows = session.execute(
        select(Lot.expires_at, func.sum(Lot.remaining))
        .where(
            # pending points too: they will be available only until then
            Lot.account_id.in_([accounts.points, accounts.pending]),
            Lot.remaining > 0,
            Lot.expires_at > now,
            Lot.expires_at <= now + timedelta(days=soon_days),
        )
        .group_by(Lot.expires_at)
        .order_by(Lot.expires_at)
    ).all()
    totals = _lifetime(session, program_id, member_id, accounts) if lifetime else None
    return {
        "available": pts.credits_posted - pts.debits_posted - pts.debits_pending - due,
        "held": pts.debits_pending,
        "pending": pend.credits_posted - pend.debits_posted,
        "pending_lots": [
            {"points": int(total), "available_at": until} for until, total in pending_rows
        ],
        "expiring_soon": [{"points": int(total), "expires_at": at} for at, total in expiring_rows],
        "expiring_within_days": soon_days,
        "debt": debt.debits_posted - debt.credits_posted,
        "lifetime": totals,
    }


def spendable(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID, *, now: datetime
) -> int:
    """The member's available points (``balance``'s ``available``) alone: 0 for a member
    without accounts in the program (none are opened by asking)."""
    try:
        accounts = member_accounts(session, program_id, member_id, create=False)
    except NotFound:
        return 0
    points = session.get(Account, accounts.points)
    assert points is not None
    held = points.credits_posted - points.debits_posted - points.debits_pending
    return held - due_points(session, program_id, member_id, accounts.points, now)


def _lifetime(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID, accounts: MemberAccounts
) -> dict[str, int]:
    """Lifetime totals by transfer code, from the member's point of view.

    A member's lifetime is the person's: the records merged into it (and those merged into
    them) count with it, so a merge does not lose what the duplicate earned, redeemed or saw
    expire. The MERGE transfers between them are moves inside that one person and count as
    none of these.

    Read through the member's entries (every transfer writes one on each of its two
    accounts; indexed by account) rather than the transfers' account columns, which have no
    index: that walked the program's whole ledger on every balance."""
    member_accs = [accounts.points, accounts.pending]
    for merged_id in merged_ids(session, member_id):
        try:
            merged = member_accounts(session, program_id, merged_id, create=False)
        except NotFound:  # merged before it ever had an account in this program
            continue
        member_accs += [merged.points, merged.pending]

    def totals(side: Any, kinds: list[str], codes: list[str]) -> dict[str, Any]:
        return dict(
            session.execute(
                select(Transfer.code, func.sum(Transfer.amount))
                .select_from(Entry)
                .join(Transfer, Transfer.id == Entry.transfer_id)
                .where(
                    Entry.account_id.in_(member_accs),
                    side == Entry.account_id,
                    Transfer.kind.in_(kinds),
                    Transfer.code.in_(codes),
                )
                .group_by(Transfer.code)
            ).all()
        )

    credited = totals(Transfer.credit_account_id, ["POSTED"], ["EARN"])
    debited = totals(
        Transfer.debit_account_id, ["POSTED", "POST_PENDING"], ["REDEEM", "EXPIRE", "REVERSAL"]
    )
    return {
        "earned": int(credited.get("EARN") or 0),
        "redeemed": int(debited.get("REDEEM") or 0),
        "expired": int(debited.get("EXPIRE") or 0),
        "reversed": int(debited.get("REVERSAL") or 0),
    }


ACCOUNT_LABELS = {"POINTS": "available", "PENDING": "pending", "DEBT": "debt"}


def statement(
    session: Session,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    limit: int,
    before: uuid.UUID | None,
) -> list[dict[str, Any]]:
    """Entries of the member's accounts, newest first, with the transfer that made each."""
    accounts = member_accounts(session, program_id, member_id)
    code_of = {
        accounts.points: "available",
        accounts.pending: "pending",
        accounts.debt: "debt",
    }
    q = (
        select(Entry, Transfer)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(Entry.account_id.in_(list(code_of)))
        .order_by(Entry.id.desc())
        .limit(limit)
    )
    if before is not None:
        q = q.where(Entry.id < before)
    out = []
    for entry, transfer in session.execute(q).all():
        out.append(
            {
                "id": entry.id,
                "at": transfer.effective_at,
                "recorded_at": entry.created_at,
                "balance": code_of[entry.account_id],
                "change": entry.amount,
                "balance_after": entry.balance_after,
                "transfer_id": transfer.id,
                "code": transfer.code,
                "kind": transfer.kind,
                "amount": transfer.amount,
                "source_type": transfer.source_type,
                "source_id": transfer.source_id,
                "reason": transfer.reason,
                "program_revision": transfer.program_revision,
            }
        )
    return out


def liability(session: Session, program_id: uuid.UUID) -> int:
    """Points outstanding to members (available + held + pending), from the issuance side."""
    value = session.execute(
        select(func.coalesce(func.sum(Account.credits_posted - Account.debits_posted), 0)).where(
            Account.program_id == program_id, Account.code.in_(["POINTS", "PENDING"])
        )
    ).scalar_one()
    return int(value)


__all__ = ["ISSUANCE", "balance", "liability", "spendable", "statement"]
