"""Points programs. A change makes a new revision; history is never rewritten."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Uuid, bindparam, select
from sqlalchemy.orm import Session

from setia.core.db import new_id
from setia.core.errors import InvalidInput, NotFound
from setia.core.money import MAX_AMOUNT
from setia.core.time import add_months, as_utc, days, end_of_period, utcnow, zone
from setia.ledger import service as ledger
from setia.programs.models import Program, ProgramRevision
from setia.tenants.models import Tenant

SETTINGS = (
    "name",
    "points_name",
    "earn_points",
    "earn_per_amount",
    "rounding",
    "pending_days",
    "expiry_policy",
    "expiry_months",
    "expiry_period",
    "min_redeem_points",
    "cost_per_point",
    "refund_shortfall",
    "allow_member_transfers",
    "hold_timeout_minutes",
    "points_payment_rate",
    "points_payment_max_percent",
    "coupon_cancel_returns_points",
    "refund_restores_coupon",
)
DEFAULTS: dict[str, Any] = {
    "earn_points": 1,
    "earn_per_amount": Decimal(1000),
    "rounding": "floor",
    "pending_days": 0,
    "expiry_policy": "none",
    "expiry_months": 12,
    "expiry_period": None,
    "min_redeem_points": 0,
    "cost_per_point": Decimal(0),
    "refund_shortfall": "debt",
    "allow_member_transfers": False,
    "hold_timeout_minutes": 30,
    "points_payment_rate": None,
    "points_payment_max_percent": 100,
    "coupon_cancel_returns_points": True,
    "refund_restores_coupon": True,
    "revision": 1,
}
ROUNDINGS = {"floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "round": ROUND_HALF_UP}


def snapshot(program: Program) -> dict[str, Any]:
    return {
        k: str(v) if isinstance(v, Decimal) else v
        for k, v in ((k, getattr(program, k)) for k in SETTINGS)
    }


# The most points one purchase may earn at the base rate: its largest amount (MAX_AMOUNT)
# must stay far inside the ledger's 64-bit counters.
MAX_POINTS_PER_PURCHASE = 10**18


def _check(program: Program) -> None:
    if program.earn_points < 0 or program.earn_per_amount <= 0:
        raise InvalidInput("earn_points must be >= 0 and earn_per_amount > 0")
    if MAX_AMOUNT * program.earn_points / program.earn_per_amount > MAX_POINTS_PER_PURCHASE:
        raise InvalidInput(
            f"an earn rate of {program.earn_points} points per {program.earn_per_amount} would "
            "give a large purchase more points than the ledger can hold; "
            "raise earn_per_amount or lower earn_points",
            extra={"field": "earn_per_amount"},
        )
    if program.rounding not in ROUNDINGS:
        raise InvalidInput("rounding must be floor, ceil or round")
    if (
        program.pending_days < 0
        or program.min_redeem_points < 0
        or program.hold_timeout_minutes <= 0
    ):
        raise InvalidInput(
            "pending_days and min_redeem_points must be >= 0; hold_timeout_minutes > 0"
        )
    if program.expiry_policy not in ("none", "after_duration", "end_of_period", "inactivity"):
        raise InvalidInput(
            "expiry_policy must be none, after_duration, end_of_period or inactivity"
        )
    if program.expiry_policy != "none" and program.expiry_months < 0:
        raise InvalidInput("expiry_months must be >= 0")
    if program.expiry_policy == "end_of_period" and program.expiry_period not in (
        "month",
        "quarter",
        "year",
    ):
        raise InvalidInput("expiry_period must be month, quarter or year for end_of_period expiry")
    if program.refund_shortfall not in ("debt", "write_off"):
        raise InvalidInput("refund_shortfall must be debt or write_off")
    if program.points_payment_rate is not None and program.points_payment_rate <= 0:
        raise InvalidInput("points_payment_rate must be greater than 0 (or null to turn it off)")
    if not 1 <= program.points_payment_max_percent <= 100:
        raise InvalidInput("points_payment_max_percent must be between 1 and 100")


def create_program(session: Session, tenant: Tenant, *, actor: str, **fields: Any) -> Program:
    now = utcnow()
    program = Program(
        id=new_id(), tenant_id=tenant.id, created_at=now, updated_at=now, **{**DEFAULTS, **fields}
    )
    _check(program)
    session.add(program)
    session.flush()
    ledger.open_program_accounts(session, program.id)
    session.add(
        ProgramRevision(
            program_id=program.id, revision=1, settings=snapshot(program), changed_by=actor
        )
    )
    return program


def update_program(
    session: Session, program: Program, changes: dict[str, Any], *, actor: str
) -> Program:
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    if all(getattr(program, k) == v for k, v in changes.items()):
        return program
    for k, v in changes.items():
        setattr(program, k, v)
    _check(program)
    program.revision += 1
    program.updated_at = utcnow()
    session.add(
        ProgramRevision(
            program_id=program.id,
            revision=program.revision,
            settings=snapshot(program),
            changed_by=actor,
        )
    )
    session.flush()
    return program


# Built once, bound per call: every event (and most API calls) looks its program up.
_PROGRAM_BY_ID = select(Program).where(
    Program.tenant_id == bindparam("tenant_id", type_=Uuid()),
    Program.id == bindparam("program_id", type_=Uuid()),
)
_DEFAULT_PROGRAM = select(Program).where(
    Program.tenant_id == bindparam("tenant_id", type_=Uuid()), Program.is_default.is_(True)
)


def get_program(session: Session, tenant_id: uuid.UUID, program_id: uuid.UUID | None) -> Program:
    """The tenant's program by id, or its default program when no id is given."""
    if program_id:
        found = session.execute(_PROGRAM_BY_ID, {"tenant_id": tenant_id, "program_id": program_id})
    else:
        found = session.execute(_DEFAULT_PROGRAM, {"tenant_id": tenant_id})
    program = found.scalar_one_or_none()
    if program is None:
        raise NotFound(f"program {program_id or '(default)'} not found")
    return program


def list_programs(session: Session, tenant_id: uuid.UUID) -> list[Program]:
    return list(
        session.execute(
            select(Program).where(Program.tenant_id == tenant_id).order_by(Program.id)
        ).scalars()
    )


def revisions(session: Session, program_id: uuid.UUID) -> list[ProgramRevision]:
    return list(
        session.execute(
            select(ProgramRevision)
            .where(ProgramRevision.program_id == program_id)
            .order_by(ProgramRevision.revision)
        ).scalars()
    )


def base_points(program: Program, amount: Decimal) -> int:
    """Points the program's base rate gives for ``amount`` (the first earning rule)."""
    raw = amount * program.earn_points / program.earn_per_amount
    return int(raw.quantize(Decimal(1), rounding=ROUNDINGS[program.rounding]))


def pending_until(program: Program, earned_at: datetime) -> datetime | None:
    return earned_at + days(program.pending_days) if program.pending_days else None


def months_after(earned_at: datetime, months: int, tz_name: str) -> datetime:
    """``months`` calendar months after ``earned_at`` in the tenant's zone: bought at 00:30
    on 31 January in Jakarta (still 30 January in UTC), one month on is the last day of
    February there, not 1 March."""
    local = as_utc(earned_at).astimezone(zone(tz_name))
    return as_utc(add_months(local, months))


def expires_at(program: Program, earned_at: datetime, tz_name: str) -> datetime | None:
    """When points earned at ``earned_at`` expire, fixed at earning time."""
    if program.expiry_policy == "after_duration":
        return months_after(earned_at, program.expiry_months, tz_name)
    if program.expiry_policy == "end_of_period":
        assert program.expiry_period is not None
        return end_of_period(earned_at, tz_name, program.expiry_months, program.expiry_period)
    # "none" never expires; "inactivity" is decided by the job from the member's activity.
    return None
