"""Due work: release pending lots, expire lots and holds. Safe to run often and in parallel.

Each unit of work (one lot, one hold) re-checks its state after taking the member's
account lock, and every ledger write is keyed, so two workers racing on the same lot
write it once. On PostgreSQL candidates are claimed with ``FOR UPDATE SKIP LOCKED`` so
parallel workers split the work instead of queueing behind each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Select, literal, select
from sqlalchemy.orm import Session, aliased

from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.ledger import service as ledger
from setia.ledger.models import POINTS, Account, Lot, Transfer
from setia.members.models import Member
from setia.outbox.service import publish
from setia.programs.models import Program
from setia.rules.jobs import run_date_triggers
from setia.tiers import service as tiers

BATCH = 200


@dataclass
class JobReport:
    released_lots: int = 0
    released_points: int = 0
    expired_lots: int = 0
    expired_points: int = 0
    expired_holds: int = 0
    triggered_awards: int = 0
    tier_upgrades: int = 0
    tier_downgrades: int = 0
    memberships: dict[str, Any] = field(default_factory=dict)
    rewards: dict[str, Any] = field(default_factory=dict)
    checkout: dict[str, Any] = field(default_factory=dict)
    analytics: dict[str, Any] = field(default_factory=dict)
    referrals: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def _claim(session: Session, stmt: Select[Any], of: type | None = None) -> list[uuid.UUID]:
    """Pick due items. On PostgreSQL lock what the work will lock first, skipping rows another
    worker holds: for lots that is the member's account (accounts are always locked before
    lots), so claiming never waits and never deadlocks with a redemption."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = (
            stmt.with_for_update(skip_locked=True, of=of)
            if of is not None
            else stmt.with_for_update(skip_locked=True)
        )
    return [row[0] for row in session.execute(stmt.limit(BATCH))]


def _tenant_of(session: Session, program_id: uuid.UUID) -> uuid.UUID:
    tenant_id: uuid.UUID = session.execute(
        select(Program.tenant_id).where(Program.id == program_id)
    ).scalar_one()
    return tenant_id


def _loop(
    db: Database,
    find: Callable[[Session, datetime], list[uuid.UUID]],
    work: Callable[[Session, uuid.UUID, datetime], None],
    now: datetime,
    report: JobReport,
) -> None:
    """Claim a batch, work it in one transaction, repeat until nothing is due."""
    done: set[uuid.UUID] = set()
    while True:
        with db.session() as session:
            ledger.set_clock(session, now)  # the ledger judges expiry at the run's time
            ids = [i for i in find(session, now) if i not in done]
            if not ids:
                return
            for item_id in ids:
                done.add(item_id)
                try:
                    with session.begin_nested():
                        work(session, item_id, now)
                except SetiaError as exc:
                    report.errors.append(f"{item_id}: {exc.detail}")


def run_due(db: Database, now: datetime | None = None, *, analytics: bool = True) -> JobReport:
    """Do all due work once, in order: release, then expire holds, then expire lots.

    ``analytics=False`` leaves out the stored-analytics recompute (the demo's replay of a
    year steps through it week by week and recomputes once, at the end)."""
    now = now or utcnow()
    report = JobReport()

    def find_pending(session: Session, at: datetime) -> list[uuid.UUID]:
        return _claim(
            session,
            select(Lot.id)
            .join(Account, Account.id == Lot.account_id)
            .where(Lot.released_at.is_(None), Lot.pending_until <= at)
            .order_by(Lot.pending_until, Lot.id),
            of=Account,
        )

    def release(session: Session, lot_id: uuid.UUID, at: datetime) -> None:
        points = ledger.release_lot(session, lot_id, now=at)
        if points:
            lot = session.get(Lot, lot_id)
            assert lot is not None
            report.released_lots += 1
            report.released_points += points
            publish(
                session,
                _tenant_of(session, lot.program_id),
                "points.available",
                {"member_id": str(lot.member_id), "points": points, "lot_id": str(lot_id)},
            )

    def find_holds(session: Session, at: datetime) -> list[uuid.UUID]:
        # Through the partial index of open holds (ix_ledger_transfers_open_holds: expires_at
        # WHERE kind = 'PENDING'), in its order, and each candidate's resolution looked up by
        # the unique pending_id: ordered by id, the claim walked the whole ledger every run
        # (and read every resolved hold's id). 'PENDING' is written into the SQL so that a
        # prepared statement's generic plan (PostgreSQL) may use the partial index too.
        resolution = aliased(Transfer)
        return _claim(
            session,
            select(Transfer.id)
            .where(
                Transfer.kind == literal("PENDING", literal_execute=True),
                Transfer.expires_at <= at,
                ~select(resolution.id).where(resolution.pending_id == Transfer.id).exists(),
            )
            .order_by(Transfer.expires_at, Transfer.id),
        )

    def expire_hold(session: Session, hold_id: uuid.UUID, at: datetime) -> None:
        hold = session.get(Transfer, hold_id)
        assert hold is not None
        ctx = ledger.Context(
            program_id=hold.program_id,
            idempotency_key=f"hold-expire:{hold_id}",
            request_hash=ledger.request_hash({"expire_hold": str(hold_id)}),
            actor="job",
            source_type=hold.source_type,
            source_id=hold.source_id,
            effective_at=at,
        )
        try:
            res = ledger.resolve_hold(session, ctx, hold, action="expire")
        except ledger.HoldNotOpen:
            return
        if res.created:
            report.expired_holds += 1

    def find_expiring(session: Session, at: datetime) -> list[uuid.UUID]:
        return _claim(
            session,
            select(Lot.id)
            .join(Account, Account.id == Lot.account_id)
            .where(Account.code == POINTS, Lot.remaining > 0, Lot.expires_at <= at)
            .order_by(Lot.expires_at, Lot.id),
            of=Account,
        )

    def expire(session: Session, lot_id: uuid.UUID, at: datetime, reason: str = "expiry") -> None:
        # the ledger writes the points.expired message with the transfer
        points = ledger.expire_lot(session, lot_id, now=at, reason=reason)
        if points:
            report.expired_lots += 1
            report.expired_points += points

    def find_inactive(session: Session, at: datetime) -> list[uuid.UUID]:
        found: list[uuid.UUID] = []
        programs = (
            session.execute(select(Program).where(Program.expiry_policy == "inactivity"))
            .scalars()
            .all()
        )
        for program in programs:
            cutoff = at - relativedelta(months=program.expiry_months)
            found += _claim(
                session,
                select(Lot.id)
                .join(Account, Account.id == Lot.account_id)
                .join(Member, Member.id == Lot.member_id)
                .where(
                    Lot.program_id == program.id,
                    Account.code == POINTS,
                    Lot.remaining > 0,
                    Member.last_activity_at < cutoff,
                )
                .order_by(Lot.id),
                of=Account,
            )
        return found

    _loop(db, find_pending, release, now, report)
    _loop(db, find_holds, expire_hold, now, report)
    _loop(db, find_expiring, expire, now, report)
    _loop(db, find_inactive, lambda s, i, at: expire(s, i, at, "inactivity"), now, report)
    report.triggered_awards = run_date_triggers(db, now)
    for evaluation in tiers.due_evaluations(db, now):
        report.tier_upgrades += evaluation.upgraded
        report.tier_downgrades += evaluation.downgraded
    from setia.memberships.jobs import run_due as run_memberships

    # Only what happened, so an idle worker pass stays quiet.
    report.memberships = {k: v for k, v in run_memberships(db, now).as_dict().items() if v}
    from setia.rewards.jobs import run_due as run_rewards

    report.rewards = {k: v for k, v in run_rewards(db, now).as_dict().items() if v}
    from setia.checkout.jobs import run_due as run_checkout

    # Points payments whose hold expired above are marked expired (only non-zero counts).
    report.checkout = {k: v for k, v in run_checkout(db, now).as_dict().items() if v}
    from setia.analytics.store import run_due as run_analytics

    # Stored member analytics older than the tenant's interval (default: one local day).
    if analytics:
        report.analytics = {k: v for k, v in run_analytics(db, now).as_dict().items() if v}
    from setia.referrals.jobs import run_due as run_referrals

    # Referrals whose referee's first qualifying order passed its return window.
    report.referrals = run_referrals(db, now).as_dict()
    return report
