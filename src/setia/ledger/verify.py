"""Proof that the ledger's cached counters, log and lots agree (``setia ledger verify``).

Each check is one aggregate query, so it runs where the data lives and scales with the
database, not with Python. Every check returns human-readable problems; none means sound.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from setia.ledger.models import WALLET_CODES, Account, Entry, Lot, LotMovement, Transfer


@dataclass
class Report:
    checks: dict[str, list[str]] = field(default_factory=dict)
    accounts: int = 0
    transfers: int = 0

    @property
    def ok(self) -> bool:
        return not any(self.checks.values())


def verify(session: Session, limit: int = 20) -> Report:
    report = Report()
    report.accounts = session.execute(select(func.count()).select_from(Account)).scalar_one()
    report.transfers = session.execute(select(func.count()).select_from(Transfer)).scalar_one()
    report.checks["programs balance (debits = credits)"] = _program_sums(session)
    report.checks["account counters equal their transfers"] = _counters(session, limit)
    report.checks["account versions equal entry counts"] = _versions(session, limit)
    report.checks["no overdraft / no overcredit"] = _limits(session, limit)
    report.checks["each hold resolved at most once"] = _holds(session, limit)
    report.checks["lots match balances"] = _lots(session, limit)
    report.checks["no transfer crosses assets (points / wallet)"] = _assets(session, limit)
    report.checks["returns never exceed their spend"] = _returns(session, limit)
    return report


def _assets(session: Session, limit: int) -> list[str]:
    debit, credit = aliased(Account), aliased(Account)
    wallet = sorted(WALLET_CODES)
    rows = session.execute(
        select(Transfer.id, debit.code, credit.code)
        .join(debit, debit.id == Transfer.debit_account_id)
        .join(credit, credit.id == Transfer.credit_account_id)
        .where(debit.code.in_(wallet) != credit.code.in_(wallet))
        .limit(limit)
    ).all()
    return [f"transfer {t} moves value from {d} to {c}" for t, d, c in rows]


def _returns(session: Session, limit: int) -> list[str]:
    spend = aliased(Transfer)
    rows = session.execute(
        select(spend.id, spend.amount, func.sum(Transfer.amount))
        .join(spend, spend.id == Transfer.reverses_id)
        .group_by(spend.id, spend.amount)
        .having(func.sum(Transfer.amount) > spend.amount)
        .limit(limit)
    ).all()
    return [f"spend {i} of {a} was given back {r}" for i, a, r in rows]


def _program_sums(session: Session) -> list[str]:
    rows = session.execute(
        select(
            Account.program_id,
            func.sum(Account.debits_posted),
            func.sum(Account.credits_posted),
            func.sum(Account.debits_pending),
            func.sum(Account.credits_pending),
        ).group_by(Account.program_id)
    ).all()
    out = []
    for program_id, dp, cp, dpend, cpend in rows:
        if dp != cp:
            out.append(f"program {program_id}: posted debits {dp} != credits {cp}")
        if dpend != cpend:
            out.append(f"program {program_id}: pending debits {dpend} != credits {cpend}")
    return out


def _counters(session: Session, limit: int) -> list[str]:
    """Recompute every counter from the transfers and compare."""
    t = Transfer
    hold = aliased(Transfer)
    posted = func.sum(case((t.kind.in_(["POSTED", "POST_PENDING"]), t.amount), else_=0))
    opened = func.sum(case((t.kind == "PENDING", t.amount), else_=0))
    closed = func.sum(case((t.pending_id.is_not(None), hold.amount), else_=0))
    sums: dict[object, dict[str, tuple[int, int]]] = defaultdict(dict)
    for side, col in (("d", t.debit_account_id), ("c", t.credit_account_id)):
        rows = session.execute(
            select(col, posted, opened, closed)
            .outerjoin(hold, hold.id == t.pending_id)
            .group_by(col)
        ).all()
        for account_id, p, o, c in rows:
            sums[account_id][side] = (int(p or 0), int(o or 0) - int(c or 0))
    out = []
    for acc in session.execute(select(Account)).scalars():
        d_posted, d_pending = sums.get(acc.id, {}).get("d", (0, 0))
        c_posted, c_pending = sums.get(acc.id, {}).get("c", (0, 0))
        expected = (d_posted, c_posted, d_pending, c_pending)
        actual = (acc.debits_posted, acc.credits_posted, acc.debits_pending, acc.credits_pending)
        if expected != actual:
            out.append(
                f"account {acc.id} ({acc.code}): counters {actual} but transfers give {expected}"
            )
            if len(out) >= limit:
                break
    return out


def _versions(session: Session, limit: int) -> list[str]:
    counts = (
        select(
            Entry.account_id, func.count().label("n"), func.max(Entry.account_version).label("mx")
        )
        .group_by(Entry.account_id)
        .subquery()
    )
    rows = session.execute(
        select(Account.id, Account.code, Account.version, counts.c.n, counts.c.mx)
        .outerjoin(counts, counts.c.account_id == Account.id)
        .where(
            (Account.version != func.coalesce(counts.c.n, 0))
            | (Account.version != func.coalesce(counts.c.mx, 0))
        )
        .limit(limit)
    ).all()
    return [
        f"account {i} ({c}): version {v}, {n or 0} entries, last {mx}" for i, c, v, n, mx in rows
    ]


def _limits(session: Session, limit: int) -> list[str]:
    a = Account
    rows = session.execute(
        select(a.id, a.code, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
        .where(
            (a.no_overdraft & (a.debits_posted + a.debits_pending > a.credits_posted))
            | (a.no_overcredit & (a.credits_posted + a.credits_pending > a.debits_posted))
        )
        .limit(limit)
    ).all()
    return [f"account {r[0]} ({r[1]}) breaks its limit: {tuple(r[2:])}" for r in rows]


def _holds(session: Session, limit: int) -> list[str]:
    rows = session.execute(
        select(Transfer.pending_id, func.count())
        .where(Transfer.pending_id.is_not(None))
        .group_by(Transfer.pending_id)
        .having(func.count() > 1)
        .limit(limit)
    ).all()
    return [f"hold {pid} resolved {n} times" for pid, n in rows]


def _lots(session: Session, limit: int) -> list[str]:
    out = []
    lot_sums = (
        select(Lot.account_id, func.sum(Lot.remaining).label("remaining"))
        .group_by(Lot.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.id,
            Account.code,
            Account.credits_posted - Account.debits_posted - Account.debits_pending,
            func.coalesce(lot_sums.c.remaining, 0),
        )
        .outerjoin(lot_sums, lot_sums.c.account_id == Account.id)
        .where(
            Account.code.in_(["POINTS", "PENDING"]),
            Account.credits_posted - Account.debits_posted - Account.debits_pending
            != func.coalesce(lot_sums.c.remaining, 0),
        )
        .limit(limit)
    ).all()
    out += [f"account {i} ({c}): available {b} but lots hold {r}" for i, c, b, r in rows]
    moves = (
        select(LotMovement.lot_id, func.sum(LotMovement.amount).label("moved"))
        .group_by(LotMovement.lot_id)
        .subquery()
    )
    rows = session.execute(
        select(Lot.id, Lot.amount, Lot.remaining, func.coalesce(moves.c.moved, 0))
        .outerjoin(moves, moves.c.lot_id == Lot.id)
        .where(Lot.remaining != Lot.amount + func.coalesce(moves.c.moved, 0))
        .limit(limit)
    ).all()
    out += [f"lot {i}: amount {a}, remaining {r}, movements {m}" for i, a, r, m in rows]
    return out
