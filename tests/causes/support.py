"""Helpers of the causes tests: a cause, points for a member, a donation — each in its own
transaction, like the API's entry points."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.causes import service as causes
from setia.causes.models import Cause, Donation, ReceiptSequence
from setia.causes.schemas import CauseIn
from setia.core.db import Database
from setia.core.time import utcnow
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import Transfer
from setia.members import service as members
from setia.outbox.models import OutboxMessage
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture
from tests.ledger.support import tx


def put_cause(
    db: Database, t: TenantFixture, code: str = "tanam-pohon", **fields: Any
) -> uuid.UUID:
    body: dict[str, Any] = {
        "names": {"id": "Tanam Pohon", "ms": "Tanam Pokok", "en": "Plant a Tree"},
        "status": "active",
        **fields,
    }

    def run(s: Session) -> uuid.UUID:
        program = s.get(Program, t.program_id)
        assert program is not None
        cause, _ = causes.put_cause(s, program, code, CauseIn.model_validate(body), actor="test")
        return cause.id

    return tx(db, run)


def member_with_points(
    db: Database, t: TenantFixture, points: int, *, name: str | None = "Sari Wulandari"
) -> uuid.UUID:
    def run(s: Session) -> uuid.UUID:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        member = members.create_member(
            s, tenant, {"external_id": uuid.uuid4().hex, "name": name}, source="test"
        )
        if points:
            ctx = ledger.Context(
                program_id=t.program_id,
                idempotency_key=f"seed:{member.id}",
                request_hash="seed",
                actor="test",
            )
            ledger.earn(
                s,
                ctx,
                member_id=member.id,
                amount=points,
                earned_at=utcnow(),
                pending_until=None,
                expires_at=None,
            )
        return member.id

    return tx(db, run)


def donate(
    db: Database,
    t: TenantFixture,
    cause_id: uuid.UUID,
    member_id: uuid.UUID,
    points: int,
    key: str | None = None,
    now: datetime | None = None,
) -> causes.Given:
    def run(s: Session) -> causes.Given:
        program = s.get(Program, t.program_id)
        assert program is not None
        given = causes.give(
            s,
            tenant_id=t.tenant_id,
            program=program,
            cause_id=cause_id,
            member_id=member_id,
            points=points,
            idempotency_key=key or uuid.uuid4().hex,
            actor="test",
            now=now,
        )
        s.flush()
        s.expunge(given.donation)
        return given

    return tx(db, run)


def balance(db: Database, t: TenantFixture, member_id: uuid.UUID) -> int:
    return int(
        tx(db, lambda s: queries.balance(s, t.program_id, member_id, now=utcnow()))["available"]
    )


def cause_row(db: Database, cause_id: uuid.UUID) -> Cause:
    def run(s: Session) -> Cause:
        cause = s.get(Cause, cause_id)
        assert cause is not None
        s.expunge(cause)
        return cause

    return tx(db, run)


def counts(db: Database, t: TenantFixture) -> dict[str, int]:
    """Rows a refused donation must not have written."""

    def run(s: Session) -> dict[str, int]:
        def n(q: Any) -> int:
            return int(s.execute(q).scalar_one())

        return {
            "donations": n(select(func.count()).select_from(Donation)),
            "donate_transfers": n(
                select(func.count())
                .select_from(Transfer)
                .where(Transfer.program_id == t.program_id, Transfer.code == "DONATE")
            ),
            "sequences": n(select(func.count()).select_from(ReceiptSequence)),
            "outbox_donated": n(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.topic == "cause.donated")
            ),
            "donated_points": n(select(func.coalesce(func.sum(Cause.donated_points), 0))),
            "matched_points": n(select(func.coalesce(func.sum(Cause.matched_points), 0))),
        }

    return tx(db, run)
