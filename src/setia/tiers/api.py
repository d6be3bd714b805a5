from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from setia.core.api import AdminCaller, ReadCaller, SessionDep, get_db, problems, write
from setia.members import service as members
from setia.programs import service as programs
from setia.tiers import service, view
from setia.tiers.schemas import (
    ChangeOut,
    EvaluateIn,
    EvaluationReport,
    OverrideIn,
    TierOut,
    TierSetIn,
    TierSetOut,
)

router = APIRouter(prefix="/v1", tags=["tiers"])
ProgramQ = Annotated[
    uuid.UUID | None, Query(description="The program; default: the tenant's first program")
]
LocaleQ = Annotated[
    Literal["id", "ms", "en"] | None,
    Query(description="Language of the sentences; default: the member's"),
]


def _set_out(session: SessionDep, program_id: uuid.UUID) -> TierSetOut:
    ts = service.get_tier_set(session, program_id)
    if ts is None:
        raise service.TierSetNotFound("this program has no tiers yet; create them with PUT")
    tiers = [TierOut.model_validate(t) for t in service.tiers_of_set(session, ts.id)]
    return TierSetOut.model_validate({**ts.__dict__, "tiers": tiers})


@router.get(
    "/programs/{program_id}/tier-set", response_model=TierSetOut, responses=problems(403, 404)
)
def get_tier_set(program_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> TierSetOut:
    """The program's tiers, how members qualify (metrics, window) and how they move."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return _set_out(session, program.id)


@router.put(
    "/programs/{program_id}/tier-set", response_model=TierSetOut, responses=problems(403, 404, 409)
)
def put_tier_set(
    program_id: uuid.UUID, body: TierSetIn, session: SessionDep, caller: AdminCaller
) -> TierSetOut:
    """Create or replace the tier structure (tiers matched by code, lowest first). Removing
    a tier that members are in is refused (409 ``tier_in_use``). Members move at their next
    event or evaluation, never retroactively."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    write(
        session,
        lambda: service.put_tier_set(session, caller.tenant, program, body, actor=caller.actor),
    )
    return _set_out(session, program.id)


class TierCount(BaseModel):
    tier: str
    rank: int
    members: int


@router.get(
    "/programs/{program_id}/tier-set/summary",
    response_model=list[TierCount],
    responses=problems(403, 404),
)
def tier_summary(program_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> Any:
    """How many active members are in each tier."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return view.summary(session, caller.tenant, service.require_structure(session, program.id))


@router.post(
    "/programs/{program_id}/tier-set/evaluate",
    response_model=EvaluationReport,
    responses=problems(403, 404),
)
def evaluate(
    program_id: uuid.UUID,
    body: EvaluateIn,
    request: Request,
    session: SessionDep,
    caller: AdminCaller,
) -> Any:
    """Run the evaluation now (the worker runs it once a day at the tenant's midnight).
    Safe to repeat: a second run on the same day changes nothing."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    service.require_structure(session, program.id)
    tenant_id, program_id = caller.tenant.id, program.id
    session.rollback()  # the evaluation runs in its own transactions, chunk by chunk
    report = service.evaluate(get_db(request), tenant_id, program_id, body.on)
    return asdict(report)


class TierRefOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    rank: int


class Remaining(BaseModel):
    metric: str
    event_type: str | None
    have: str
    threshold: str
    missing: str


class Progress(BaseModel):
    next_tier: TierRefOut | None
    combine: str | None = None
    remaining: list[Remaining]
    deadline: date | None
    message: str


class NextEvaluation(BaseModel):
    on: date
    action: Literal["stay", "upgrade", "downgrade"]
    tier: TierRefOut
    message: str


class AtRisk(BaseModel):
    tier: str
    would_become: str
    on: date
    message: str


class Figure(BaseModel):
    metric: str
    event_type: str | None
    value: str


class Window(BaseModel):
    kind: str
    start: date | None
    end: date | None


class Benefits(BaseModel):
    earn_multiplier: str
    support_priority: int
    perks: list[str]


class Override(BaseModel):
    tier: str
    until: date | None
    reason: str | None


class PlanBenefit(BaseModel):
    tier: str
    mode: str | None
    until: date | None


class MemberTierOut(BaseModel):
    program_id: uuid.UUID
    member_id: uuid.UUID
    locale: str
    on: date
    tier: TierRefOut
    since: datetime
    earned_tier: TierRefOut
    secure_until: date | None
    in_grace: bool
    revoked_on: date | None
    override: Override | None
    plan: PlanBenefit | None
    window: Window
    figures: list[Figure]
    qualifies_for: TierRefOut
    progress: Progress | None
    next_evaluation: NextEvaluation
    at_risk: AtRisk | None
    benefits: Benefits


def _view(
    session: SessionDep,
    caller: Any,
    member_id: uuid.UUID,
    program_id: uuid.UUID | None,
    locale: str | None,
) -> Any:
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    return view.member_view(session, caller.tenant, program, member, locale=locale)


@router.get("/members/{member_id}/tier", response_model=MemberTierOut, responses=problems(403, 404))
def member_tier(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> Any:
    """The member's tier, since when, until when it is secure, what is missing for the next
    tier and what the next evaluation will do, with sentences in the member's language."""
    return _view(session, caller, member_id, program_id, locale)


@router.get(
    "/members/{member_id}/tier/history",
    response_model=list[ChangeOut],
    responses=problems(403, 404),
)
def member_tier_history(
    member_id: uuid.UUID, session: SessionDep, caller: ReadCaller, program_id: ProgramQ = None
) -> Any:
    """Every change of the member's tier, newest first, with its reason and figures."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    s = service.require_structure(session, program.id)
    return view.history(session, s.id, member.id)


@router.put(
    "/members/{member_id}/tier/override",
    response_model=MemberTierOut,
    responses=problems(403, 404, 409),
)
def set_override(
    member_id: uuid.UUID,
    body: OverrideIn,
    session: SessionDep,
    caller: AdminCaller,
    program_id: ProgramQ = None,
) -> Any:
    """Assign a tier by hand, with a reason and an optional last day: the member is at least
    this tier until then (invitation-only tiers are given this way). Repeating the same
    assignment is harmless."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    write(
        session,
        lambda: service.set_override(
            session,
            caller.tenant,
            program.id,
            member.id,
            tier_code=body.tier,
            until=body.until,
            reason=body.reason,
            actor=caller.actor,
        ),
    )
    return _view(session, caller, member_id, program.id, None)


@router.delete(
    "/members/{member_id}/tier/override",
    response_model=MemberTierOut,
    responses=problems(403, 404),
)
def clear_override(
    member_id: uuid.UUID, session: SessionDep, caller: AdminCaller, program_id: ProgramQ = None
) -> Any:
    """Remove a manual assignment now. The member keeps what they earned."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    write(
        session,
        lambda: service.clear_override(
            session, caller.tenant, program.id, member.id, actor=caller.actor
        ),
    )
    return _view(session, caller, member_id, program.id, None)
