"""Helpers shared by the ledger tests: one unit of work per call, like the API's entry points."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.events import service as events
from setia.events.schemas import EventIn
from setia.ledger import queries
from setia.ledger.models import Account, Lot, Transfer
from setia.ledger.verify import verify
from setia.members import service as members
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture

T = TypeVar("T")


def tx(db: Database, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in its own transaction: committed if it returns, rolled back if it raises."""
    with db.session() as session:
        return fn(session)


def configure(db: Database, t: TenantFixture, **changes: Any) -> None:
    def run(s: Session) -> None:
        program = s.get(Program, t.program_id)
        assert program is not None
        programs.update_program(s, program, changes, actor="test")

    tx(db, run)


def new_member(db: Database, t: TenantFixture, external_id: str) -> uuid.UUID:
    def run(s: Session) -> uuid.UUID:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        return members.create_member(s, tenant, {"external_id": external_id}, source="test").id

    return tx(db, run)


def member_by_external_id(db: Database, t: TenantFixture, external_id: str) -> uuid.UUID:
    def run(s: Session) -> uuid.UUID:
        member_id: uuid.UUID = s.execute(
            select(Member.id).where(
                Member.tenant_id == t.tenant_id, Member.external_id == external_id
            )
        ).scalar_one()
        return member_id

    return tx(db, run)


def post_event(db: Database, t: TenantFixture, payload: dict[str, Any]) -> events.Recorded:
    """Record an event through the service, in its own transaction (as the API does)."""

    def run(s: Session) -> events.Recorded:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        return events.record_event(s, tenant, EventIn.model_validate(payload))

    return tx(db, run)


def balance(db: Database, t: TenantFixture, member_id: uuid.UUID, now: Any) -> dict[str, Any]:
    return tx(db, lambda s: queries.balance(s, t.program_id, member_id, now=now))


def assert_ledger_sound(session: Session) -> None:
    """``setia ledger verify`` must find nothing wrong; the report is printed when it does."""
    report = verify(session)
    problems = {name: found for name, found in report.checks.items() if found}
    assert report.ok, "ledger verify failed:\n" + "\n".join(
        f"- {name}:\n    " + "\n    ".join(found) for name, found in problems.items()
    )


def assert_db_sound(db: Database) -> None:
    tx(db, assert_ledger_sound)


def lots_of(db: Database, t: TenantFixture, member_id: uuid.UUID) -> list[Lot]:
    """The member's lots (available and pending), oldest first."""

    def run(s: Session) -> list[Lot]:
        return list(
            s.execute(
                select(Lot)
                .join(Account, Account.id == Lot.account_id)
                .where(Account.program_id == t.program_id, Account.member_id == member_id)
                .order_by(Lot.id)
            ).scalars()
        )

    return tx(db, run)


def count_transfers(db: Database, program_id: uuid.UUID, **where: Any) -> int:
    def run(s: Session) -> int:
        q = select(func.count()).select_from(Transfer).where(Transfer.program_id == program_id)
        for column, value in where.items():
            q = q.where(getattr(Transfer, column) == value)
        return int(s.execute(q).scalar_one())

    return tx(db, run)
