"""Due checkout work: points payments whose hold passed its deadline become ``expired``.

The ledger's hold job (``setia.jobs.service.run_due``) expires the hold itself; this job,
called at the end of that run, marks the payment and frees its order for a new attempt.
It also expires a hold the ledger job has not reached yet, with the ledger job's own key,
so exactly one of them writes the expiry. Safe to run twice and in parallel: payments are
claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and re-checked under their lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from setia.checkout import service
from setia.checkout.models import HELD, PointsPayment
from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.ledger import service as ledger

BATCH = 200


@dataclass
class CheckoutReport:
    expired_payments: int = 0
    # Holds resolved through the generic holds API, mirrored onto their payment.
    reconciled_payments: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def run_due(db: Database, now: datetime | None = None) -> CheckoutReport:
    now = now or utcnow()
    report = CheckoutReport()
    done: set[uuid.UUID] = set()
    while True:
        with db.session() as session:
            ledger.set_clock(session, now)  # the ledger judges expiry at the run's time
            stmt = (
                select(PointsPayment.id)
                .where(PointsPayment.status == HELD, PointsPayment.expires_at <= now)
                .order_by(PointsPayment.expires_at, PointsPayment.id)
                .limit(BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            ids = [i for i in session.execute(stmt).scalars() if i not in done]
            if not ids:
                return report
            for payment_id in ids:
                done.add(payment_id)
                try:
                    with session.begin_nested():
                        payment = session.execute(
                            select(PointsPayment)
                            .where(PointsPayment.id == payment_id)
                            .with_for_update()
                            .execution_options(populate_existing=True)
                        ).scalar_one()
                        if service.expire_payment(session, payment):
                            if payment.status == "expired":
                                report.expired_payments += 1
                            else:
                                report.reconciled_payments += 1
                except SetiaError as exc:
                    report.errors.append(f"{payment_id}: {exc.detail}")
