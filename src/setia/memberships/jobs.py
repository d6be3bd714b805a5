"""Due membership work: period ends (cancel, past due, lapse) and monthly bonus points.

Safe to run twice and in parallel: candidates are claimed with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL (SQLite serialises writers with ``BEGIN IMMEDIATE``), each one is re-read
under its lock and re-checked before it changes, the row's ``version`` makes the update a
compare-and-set, and every bonus is a ledger transfer keyed by subscription and month.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.ledger import service as ledger
from setia.memberships import service
from setia.memberships.models import LIVE, Subscription
from setia.tenants.models import Tenant

BATCH = 200


@dataclass
class MembershipReport:
    cancelled: int = 0
    past_due: int = 0
    lapsed: int = 0
    bonus_grants: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _claim(session: Session, stmt: Select[Any]) -> list[uuid.UUID]:
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [row[0] for row in session.execute(stmt.limit(BATCH))]


def _locked(session: Session, sub_id: uuid.UUID) -> Subscription | None:
    return session.execute(
        select(Subscription)
        .where(Subscription.id == sub_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _loop(
    db: Database,
    due: Select[Any],
    work: Callable[[Session, Subscription], None],
    report: MembershipReport,
    at: datetime,
) -> None:
    """Claim due subscriptions a batch at a time, in id order after the last batch (so one
    that is due but has nothing to do yet, a past-due one inside its grace days, never
    holds up the others), each in its own savepoint."""
    after: uuid.UUID | None = None
    while True:
        with db.session() as session:
            ledger.set_clock(session, at)  # the ledger judges expiry at the run's time
            stmt = due
            if after is not None:
                stmt = stmt.where(Subscription.id > after)
            ids = _claim(session, stmt.order_by(Subscription.id))
            if not ids:
                return
            after = ids[-1]
            for sub_id in ids:
                try:
                    with session.begin_nested():
                        sub = _locked(session, sub_id)
                        if sub is not None:
                            work(session, sub)
                except (SetiaError, StaleDataError) as exc:
                    report.errors.append(f"subscription {sub_id}: {exc}")


def run_due(db: Database, now: datetime | None = None) -> MembershipReport:
    """Advance every subscription whose period ended, then give due monthly bonuses."""
    at = now or utcnow()
    report = MembershipReport()

    def tenant_of(session: Session, sub: Subscription) -> Tenant:
        tenant = session.get(Tenant, sub.tenant_id)  # from the session's identity map
        assert tenant is not None
        return tenant

    ended = select(Subscription.id).where(
        Subscription.status.in_(LIVE), Subscription.current_period_end <= at
    )

    def advance(session: Session, sub: Subscription) -> None:
        before = sub.status
        # Bonuses due before the period ended are given first, whatever happens next.
        report.bonus_grants += service.grant_bonuses(session, tenant_of(session, sub), sub, at)
        did = service.advance(session, tenant_of(session, sub), sub, at)
        if did == "cancelled":
            report.cancelled += 1
        elif did == "lapsed":
            report.lapsed += 1
            if before != "past_due":
                report.past_due += 1
        elif did == "past_due" and before != "past_due":
            report.past_due += 1
        session.flush()

    bonus_due = select(Subscription.id).where(
        Subscription.next_bonus_at.is_not(None), Subscription.next_bonus_at <= at
    )

    def bonus(session: Session, sub: Subscription) -> None:
        report.bonus_grants += service.grant_bonuses(session, tenant_of(session, sub), sub, at)

    _loop(db, ended, advance, report, at)
    _loop(db, bonus_due, bonus, report, at)
    return report
