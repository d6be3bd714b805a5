"""The referrals part of the due-work job: qualify (and reward) or cancel the referrals whose
referee's qualifying order has passed its return window.

Nothing here runs on the event ingestion path: the job reads the orders the events wrote.
Safe to run often and in parallel: on PostgreSQL candidates are claimed with
``FOR UPDATE SKIP LOCKED``, each referral is re-read under its lock, and the reward rows'
unique key (referral, role) plus the ledger's idempotency key make every award happen once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.ledger import service as ledger
from setia.programs.models import Program
from setia.referrals import service
from setia.referrals.models import Referral, ReferralSettings

BATCH = 200


def run_due(db: Database, now: datetime | None = None) -> service.JobReport:
    now = now or utcnow()
    report = service.JobReport()
    with db.session() as session:
        program_ids = list(
            session.execute(
                select(ReferralSettings.program_id).where(ReferralSettings.enabled.is_(True))
            ).scalars()
        )
    for program_id in program_ids:
        done: set[uuid.UUID] = set()
        while True:
            with db.session() as session:
                ledger.set_clock(session, now)  # the ledger judges expiry at the run's time
                program = session.get(Program, program_id)
                settings = service.get_settings(session, program_id)
                if program is None or settings is None:
                    break
                stmt = service.due_query(settings, program, now)
                if session.get_bind().dialect.name == "postgresql":
                    stmt = stmt.with_for_update(skip_locked=True, of=Referral)
                ids = [i for i in session.execute(stmt.limit(BATCH)).scalars() if i not in done]
                if not ids:
                    break
                for referral_id in ids:
                    done.add(referral_id)
                    try:
                        with session.begin_nested():
                            service.process(session, referral_id, now, report)
                    except SetiaError as exc:
                        report.errors = [*(report.errors or []), f"{referral_id}: {exc.detail}"]
                session.commit()
    return report
