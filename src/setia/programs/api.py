from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from setia.core.api import AdminCaller, ReadCaller, SessionDep, problems, write
from setia.ledger import queries
from setia.programs import service
from setia.programs.schemas import LiabilityOut, ProgramOut, ProgramUpdate, RevisionOut

router = APIRouter(prefix="/v1/programs", tags=["programs"])


@router.get("", response_model=list[ProgramOut], responses=problems(403))
def list_programs(session: SessionDep, caller: ReadCaller) -> Any:
    """The tenant's points programs with their current settings."""
    return service.list_programs(session, caller.tenant.id)


@router.get("/{program_id}", response_model=ProgramOut, responses=problems(403, 404))
def get_program(program_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> Any:
    """One program: earn rate, pending days, expiry policy and the current revision."""
    return service.get_program(session, caller.tenant.id, program_id)


@router.patch("/{program_id}", response_model=ProgramOut, responses=problems(403, 404))
def update_program(
    program_id: uuid.UUID, body: ProgramUpdate, session: SessionDep, caller: AdminCaller
) -> Any:
    """Change settings. A new revision is recorded; history is never rewritten."""
    changes = body.model_dump(exclude_unset=True)
    return write(
        session,
        lambda: service.update_program(
            session,
            service.get_program(session, caller.tenant.id, program_id),
            changes,
            actor=caller.actor,
        ),
    )


@router.get(
    "/{program_id}/revisions", response_model=list[RevisionOut], responses=problems(403, 404)
)
def list_revisions(program_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> Any:
    """Every revision of the program's settings, oldest first; awards name the revision used."""
    program = service.get_program(session, caller.tenant.id, program_id)
    return service.revisions(session, program.id)


@router.get("/{program_id}/liability", response_model=LiabilityOut, responses=problems(403, 404))
def liability(program_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> LiabilityOut:
    """Points outstanding (available, held and pending) and what they cost at cost_per_point."""
    program = service.get_program(session, caller.tenant.id, program_id)
    points = queries.liability(session, program.id)
    return LiabilityOut(
        program_id=program.id,
        points_outstanding=points,
        cost_per_point=program.cost_per_point,
        liability=points * program.cost_per_point,
        currency=program.currency,
    )
