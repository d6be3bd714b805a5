"""HTTP API of the badges domain: definitions (admin), what a member earned and where they
stand, public leaderboards of members who opted in, and that opt-in."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.orm import Session

from setia.badges import service
from setia.badges.models import BadgeDefinition
from setia.badges.schemas import (
    ConsentIn,
    ConsentOut,
    DefinitionIn,
    DefinitionOut,
    DefinitionPatch,
    LeaderboardOut,
    LeaderRow,
    MemberBadgesOut,
    ProgressOut,
)
from setia.core.api import AdminCaller, PosCaller, ReadCaller, SessionDep, answered, problems, write
from setia.core.i18n import LOCALES, pick
from setia.members import service as members
from setia.programs import service as programs
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["badges"])

ProgramQ = Annotated[
    uuid.UUID | None, Query(description="The program; default: the tenant's default program")
]
LocaleQ = Annotated[
    Literal["id", "ms", "en"] | None,
    Query(description="Language of names and texts; default: the member's, else the tenant's"),
]
BadgeRef = Annotated[str, Path(description="The badge's id, or its code")]


def _locale(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate:
            short = candidate.split("_")[0].split("-")[0].lower()
            if short in LOCALES:
                return short
    return "id"


def definition_out(d: BadgeDefinition, tenant: Tenant, locale: str) -> DefinitionOut:
    return DefinitionOut(
        id=d.id,
        program_id=d.program_id,
        code=d.code,
        kind=d.kind,
        status=d.status,
        name=pick(d.names, locale) or d.code,
        description=pick(d.descriptions, locale),
        names=d.names,
        descriptions=d.descriptions,
        image_url=d.image_url,
        criteria=service.criteria_of(d),
        period=service.period_of(d, tenant.timezone),
        rewards=service.rewards_of(d),
        created_at=d.created_at,
        updated_at=d.updated_at,
        archived_at=d.archived_at,
    )


# --------------------------------------------------------------------------- definitions


@router.post(
    "/badges",
    response_model=DefinitionOut,
    status_code=201,
    responses={**problems(400, 403, 404, 409), **answered(DefinitionOut, 200)},
)
def create_badge(
    body: DefinitionIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> DefinitionOut:
    """Define a badge or a challenge. The code is the natural key: sending the same
    definition again answers `200` with it; another definition under a taken code is
    `409 badge_code_taken`. A bad definition is `422 invalid_badge` with `field` naming what
    to fix (`criteria.field`, `criteria.conditions.all[0].value`, `period.ends_at`, ...).
    Progress counts events recorded from now on."""

    def run() -> tuple[BadgeDefinition, bool]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return service.create_definition(session, caller.tenant, program, body)

    d, created = write(session, run)
    response.status_code = 201 if created else 200
    return definition_out(d, caller.tenant, _locale(locale, caller.tenant.locale))


@router.get("/badges", response_model=list[DefinitionOut], responses=problems(403, 404))
def list_badges(
    session: SessionDep,
    caller: ReadCaller,
    program_id: ProgramQ = None,
    status: Annotated[
        Literal["active", "archived", "all"], Query(description="Which definitions")
    ] = "active",
    kind: Annotated[Literal["badge", "challenge"] | None, Query()] = None,
    locale: LocaleQ = None,
) -> list[DefinitionOut]:
    """The program's badges and challenges, by code."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = service.list_definitions(
        session, program.id, status=None if status == "all" else status, kind=kind
    )
    loc = _locale(locale, caller.tenant.locale)
    return [definition_out(d, caller.tenant, loc) for d in rows]


def _definition(
    session: Session, tenant_id: uuid.UUID, badge: str, program_id: uuid.UUID | None
) -> BadgeDefinition:
    """The definition ``badge`` names, in ``program_id`` (a program of the tenant) if given."""
    if program_id is not None:
        program_id = programs.get_program(session, tenant_id, program_id).id
    return service.get_definition(session, tenant_id, badge, program_id)


@router.get("/badges/{badge}", response_model=DefinitionOut, responses=problems(403, 404))
def get_badge(
    badge: BadgeRef,
    session: SessionDep,
    caller: ReadCaller,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> DefinitionOut:
    """One definition (a code in the given program; without one, the default program's
    first)."""
    d = _definition(session, caller.tenant.id, badge, program_id)
    return definition_out(d, caller.tenant, _locale(locale, caller.tenant.locale))


@router.patch(
    "/badges/{badge}", response_model=DefinitionOut, responses=problems(400, 403, 404, 409)
)
def update_badge(
    badge: BadgeRef,
    body: DefinitionPatch,
    session: SessionDep,
    caller: AdminCaller,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> DefinitionOut:
    """Change names, descriptions, image, rewards or status (`archived` stops counting,
    `active` resumes). Criteria and period change only while no member has progress
    (`409 badge_has_progress`: archive it and define a new one)."""

    def run() -> BadgeDefinition:
        d = _definition(session, caller.tenant.id, badge, program_id)
        return service.update_definition(session, caller.tenant, d, body)

    d = write(session, run)
    return definition_out(d, caller.tenant, _locale(locale, caller.tenant.locale))


@router.post("/badges/{badge}/archive", response_model=DefinitionOut, responses=problems(403, 404))
def archive_badge(
    badge: BadgeRef, session: SessionDep, caller: AdminCaller, program_id: ProgramQ = None
) -> DefinitionOut:
    """Stop counting events toward it. What members earned stays (and `member.badges` keeps
    it); archiving again changes nothing."""

    def run() -> BadgeDefinition:
        d = _definition(session, caller.tenant.id, badge, program_id)
        return service.archive_definition(session, d)

    d = write(session, run)
    return definition_out(d, caller.tenant, _locale(None, caller.tenant.locale))


# --------------------------------------------------------------------------- members


@router.get(
    "/members/{member_id}/badges", response_model=MemberBadgesOut, responses=problems(403, 404)
)
def member_badges(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> MemberBadgesOut:
    """What the member earned (every completion, newest first, with its reward) and where
    they stand on each active definition in its current period ("3 of 5")."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    body = service.member_badges(
        session, caller.tenant, program, member, _locale(locale, member.locale)
    )
    return MemberBadgesOut(
        member_id=body["member_id"],
        program_id=body["program_id"],
        badges=body["badges"],
        earned=[ProgressOut(**p) for p in body["earned"]],
        in_progress=[ProgressOut(**p) for p in body["in_progress"]],
    )


def _consent_out(session: Session, member_id: uuid.UUID, tenant: Tenant) -> ConsentOut:
    member = members.get_member(session, tenant.id, member_id)
    consent = service.consent_of(session, member.id)
    return ConsentOut(
        member_id=member.id,
        opted_in=bool(consent and consent.opted_in),
        display_name=consent.display_name if consent else None,
        shown_as=service.display_name(member, consent),
        source=consent.source if consent else None,
        changed_at=consent.changed_at if consent else None,
    )


@router.put(
    "/members/{member_id}/leaderboard-consent",
    response_model=ConsentOut,
    responses=problems(400, 403, 404),
)
def set_leaderboard_consent(
    member_id: uuid.UUID, body: ConsentIn, session: SessionDep, caller: PosCaller
) -> ConsentOut:
    """Opt the member in to (or out of) the program's public leaderboards, optionally with
    the name to show. Without an opt-in a member never appears. Every change is kept."""

    def run() -> None:
        member = members.get_member(session, caller.tenant.id, member_id)
        service.set_consent(
            session,
            member,
            opted_in=body.opted_in,
            display_name=body.display_name,
            source=body.source,
        )

    write(session, run)
    return _consent_out(session, member_id, caller.tenant)


@router.get(
    "/members/{member_id}/leaderboard-consent",
    response_model=ConsentOut,
    responses=problems(403, 404),
)
def get_leaderboard_consent(
    member_id: uuid.UUID, session: SessionDep, caller: ReadCaller
) -> ConsentOut:
    """The member's current leaderboard choice and the name leaderboards show."""
    return _consent_out(session, member_id, caller.tenant)


# --------------------------------------------------------------------------- leaderboard


@router.get(
    "/badges/{badge}/leaderboard",
    response_model=LeaderboardOut,
    responses=problems(403, 404, 422),
)
def leaderboard(
    badge: BadgeRef,
    session: SessionDep,
    caller: ReadCaller,
    period: Annotated[
        str | None,
        Query(
            pattern=r"^(all|\d{4}-(0[1-9]|1[0-2]))$",
            description="`all`, or a month `YYYY-MM` of a recurring challenge; default: the "
            "current one",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> LeaderboardOut:
    """Members who opted in, best first (completed earliest, then most progress), with their
    display name only. `422 invalid_period`: `all` for a monthly challenge, or a month for
    one that counts over all time."""
    d = _definition(session, caller.tenant.id, badge, program_id)
    key = (
        service.check_period(d, period)
        if period
        else service.current_period(d, caller.tenant.timezone)
    )
    rows = service.leaderboard(session, d, key, limit)
    return LeaderboardOut(
        badge_id=d.id,
        code=d.code,
        name=pick(d.names, _locale(locale, caller.tenant.locale)) or d.code,
        period=key,
        target=service._number_text(d.target),
        data=[LeaderRow(**r) for r in rows],
    )
