"""Due rewards work: held redemptions past their hold deadline, and issued coupons that
expired unused.

Safe to run twice and in parallel: candidates are claimed with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL (SQLite serialises writers with ``BEGIN IMMEDIATE``), each redemption is
re-read under its row lock and re-checked before it changes, and every ledger write is
keyed by the redemption (``reward:<id>:return``), so points come back at most once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.coupons.models import Coupon
from setia.ledger import service as ledger
from setia.rewards import service
from setia.rewards.models import RewardRedemption

BATCH = 200


@dataclass
class RewardsReport:
    expired_holds: int = 0
    expired_coupons: int = 0
    points_returned: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _claim(session: Session, at: datetime, after: uuid.UUID | None) -> list[uuid.UUID]:
    # Due work, and coupon redemptions that had nothing left to do because their coupon was
    # used, but whose use was voided since (a refunded order) and whose coupon has expired:
    # that coupon expired unused after all.
    restored = and_(
        RewardRedemption.due_at.is_(None),
        RewardRedemption.status == "issued",
        exists().where(
            Coupon.id == RewardRedemption.coupon_id, Coupon.uses == 0, Coupon.expires_at <= at
        ),
    )
    stmt = select(RewardRedemption.id).where(
        or_(and_(RewardRedemption.due_at.is_not(None), RewardRedemption.due_at <= at), restored)
    )
    if after is not None:
        stmt = stmt.where(RewardRedemption.id > after)
    stmt = stmt.order_by(RewardRedemption.id).limit(BATCH)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [row[0] for row in session.execute(stmt)]


def run_due(db: Database, now: datetime | None = None) -> RewardsReport:
    """Expire held redemptions past their deadline and coupon redemptions whose coupon
    expired unused, a batch at a time, each in its own savepoint."""
    at = now or utcnow()
    report = RewardsReport()
    after: uuid.UUID | None = None
    while True:
        with db.session() as session:
            ledger.set_clock(session, at)  # the ledger judges expiry at the run's time
            ids = _claim(session, at, after)
            if not ids:
                return report
            after = ids[-1]
            for red_id in ids:
                try:
                    with session.begin_nested():
                        red = service._lock(session, red_id)
                        if red is None or (red.due_at is not None and red.due_at > at):
                            continue
                        if red.due_at is None and red.status != "issued":
                            continue
                        if red.status == "held":
                            if service.expire_held(session, red, at):
                                report.expired_holds += 1
                        else:
                            returned = service.expire_coupon(session, red, at)
                            if returned is not None:
                                report.expired_coupons += 1
                                report.points_returned += returned
                        session.flush()
                except SetiaError as exc:
                    report.errors.append(f"redemption {red_id}: {exc.detail}")
