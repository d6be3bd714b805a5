"""HTTP API of causes: what members see (causes with progress, their donations, receipts),
what the till or portal does (donate), and what the business manages (define, close, list
donations, summary)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from setia.causes import service
from setia.causes.models import Cause, Donation
from setia.causes.schemas import (
    CauseIn,
    CauseOut,
    CauseStatus,
    CauseSummary,
    DonationIn,
    DonationOut,
    Matching,
    MemberDonations,
    Progress,
    ReceiptOut,
)
from setia.core.api import (
    AdminCaller,
    Cursor,
    IdempotencyKey,
    Limit,
    Page,
    PosCaller,
    ReadCaller,
    SessionDep,
    answered,
    decode_cursor,
    encode_cursor,
    problems,
    write,
)
from setia.core.errors import InvalidInput
from setia.core.i18n import pick
from setia.core.money import to_str
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["causes"])

ProgramQ = Annotated[
    uuid.UUID | None, Query(description="The program; default: the tenant's default program")
]
LocaleQ = Annotated[
    Literal["id", "ms", "en"] | None,
    Query(
        description="Language of names and sentences; default: the tenant's (receipts: the member's)"
    ),
]
StatusQ = Annotated[
    Literal["active", "draft", "closed", "all"],
    Query(description="Which causes; members see `active` (the default)"),
]


def _locale(value: str | None, fallback: str | None) -> str:
    for candidate in (value, fallback):
        if candidate:
            short = candidate.split("_")[0].split("-")[0].lower()
            if short in service.LOCALES:
                return short
    return "id"


def cause_out(cause: Cause, program: Program, tenant: Tenant, donors: int, locale: str) -> CauseOut:
    today = service.local_today(tenant)
    return CauseOut(
        id=cause.id,
        program_id=cause.program_id,
        code=cause.code,
        name=pick(cause.names, locale) or cause.code,
        description=pick(cause.descriptions, locale),
        image_url=pick(cause.image_urls, locale),
        names=cause.names,
        descriptions=cause.descriptions,
        image_urls=cause.image_urls,
        status=cast(CauseStatus, cause.status),
        open=service.is_open(cause, today),
        starts_on=cause.starts_on,
        ends_on=cause.ends_on,
        min_points=cause.min_points,
        max_points=cause.max_points,
        value_per_point=format(service.value_per_point(cause, program).normalize(), "f"),
        receipt_prefix=cause.receipt_prefix,
        matching=Matching(
            ratio=format(cause.match_ratio.normalize(), "f"),
            budget=cause.match_budget,
            matched=cause.matched_points,
            remaining=max(0, cause.match_budget - cause.matched_points),
            cap_per_member=cause.match_cap_per_member,
        ),
        progress=Progress(**service.progress(cause, program, donors, today, locale)),
        created_at=cause.created_at,
        updated_at=cause.updated_at,
        closed_at=cause.closed_at,
    )


def donation_out(donation: Donation, code: str) -> DonationOut:
    return DonationOut(
        id=donation.id,
        cause_id=donation.cause_id,
        cause_code=code,
        member_id=donation.member_id,
        points=donation.points,
        matched_points=donation.matched_points,
        value=to_str(donation.value, donation.currency),
        matched_value=to_str(donation.matched_value, donation.currency),
        currency=donation.currency,
        receipt_number=donation.receipt_number,
        transfer_id=donation.transfer_id,
        source_type=donation.source_type,
        source_id=donation.source_id,
        created_at=donation.created_at,
    )


def _one(session: Session, tenant: Tenant, cause: Cause, locale: str) -> CauseOut:
    program = programs.get_program(session, tenant.id, cause.program_id)
    donors = service.donors(session, [cause.id]).get(cause.id, 0)
    return cause_out(cause, program, tenant, donors, locale)


# --------------------------------------------------------------------------- members


@router.get("/causes", response_model=list[CauseOut], responses=problems(403, 404))
def list_causes(
    session: SessionDep,
    caller: ReadCaller,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
    status: StatusQ = "active",
) -> list[CauseOut]:
    """The program's causes with their progress: points given and matched, the total
    against the goal (percent), donors, the total's worth in currency and the days left.
    Members see the active ones (the default); `status=all` lists every cause."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    loc = _locale(locale, caller.tenant.locale)
    rows = service.list_causes(session, program.id, statuses=None if status == "all" else (status,))
    donors = service.donors(session, [c.id for c in rows])
    return [cause_out(c, program, caller.tenant, donors.get(c.id, 0), loc) for c in rows]


@router.get("/causes/{cause_id}", response_model=CauseOut, responses=problems(403, 404))
def get_cause(
    cause_id: uuid.UUID, session: SessionDep, caller: ReadCaller, locale: LocaleQ = None
) -> CauseOut:
    """One cause with its progress."""
    cause = service.get_cause(session, caller.tenant.id, cause_id)
    return _one(session, caller.tenant, cause, _locale(locale, caller.tenant.locale))


@router.get(
    "/members/{member_id}/donations", response_model=MemberDonations, responses=problems(403, 404)
)
def member_donations(
    member_id: uuid.UUID, session: SessionDep, caller: ReadCaller, program_id: ProgramQ = None
) -> MemberDonations:
    """A member's donations (oldest first) with their receipt numbers, and their totals."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = service.member_donations(session, caller.tenant.id, member_id, program.id)
    by_id = service.causes_by_id(session, {d.cause_id for d in rows})
    total_value = sum((d.value for d in rows), start=Decimal(0))
    return MemberDonations(
        member_id=member_id,
        data=[donation_out(d, by_id[d.cause_id].code) for d in rows],
        total_points=sum(d.points for d in rows),
        total_matched_points=sum(d.matched_points for d in rows),
        total_value=to_str(total_value, program.currency),
        currency=program.currency,
    )


@router.get(
    "/donations/{donation_id}/receipt",
    response_model=ReceiptOut,
    responses={
        **problems(403, 404),
        200: {
            "content": {"text/plain": {"example": "Tanda Terima Donasi\nNomor: TP-2026-000123\n"}},
            "description": "The receipt (JSON, or plain text with `format=text` or "
            "`Accept: text/plain`)",
        },
    },
)
def receipt(
    donation_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    locale: LocaleQ = None,
    format: Annotated[Literal["json", "text"], Query(description="text: plain text")] = "json",
    accept: Annotated[str | None, Header()] = None,
) -> ReceiptOut | PlainTextResponse:
    """A donation's receipt: number, date (tenant's zone), member, cause, points, worth,
    the business's match, and a thank-you sentence in `locale` (default: the member's)."""
    donation = service.get_donation(session, caller.tenant.id, donation_id)
    member = session.get(Member, donation.member_id)
    loc = _locale(locale, member.locale if member else caller.tenant.locale)
    body = service.receipt(session, caller.tenant, donation, loc)
    wants_text = format == "text" or (
        accept is not None and "text/plain" in accept and "application/json" not in accept
    )
    if wants_text:
        return PlainTextResponse(body["text"])
    return ReceiptOut(**body)


# --------------------------------------------------------------------------- till / portal


@router.post(
    "/causes/{cause_id}/donations",
    response_model=DonationOut,
    status_code=201,
    responses={**problems(400, 403, 404, 409), **answered(DonationOut, 200)},
)
def donate(
    cause_id: uuid.UUID,
    body: DonationIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DonationOut:
    """Give a member's points to the cause. Needs an `Idempotency-Key`: a retry with the same
    key and body answers `200` with the same donation; another body is `409
    idempotency_key_reused`. Refusals (nothing written): `404 cause_not_found`,
    `404 member_not_found`, `409 cause_not_active`, `409 cause_not_started`,
    `409 cause_ended` (with the dates), `422 donation_below_minimum`,
    `422 donation_above_maximum`, `409 insufficient_points`, `409 below_minimum_redeem`."""
    if not idempotency_key:
        raise InvalidInput(
            "send an Idempotency-Key header so that a retried donation is not given twice",
            code="idempotency_key_required",
        )
    key = idempotency_key

    def run() -> tuple[service.Given, str]:
        cause = service.get_cause(session, caller.tenant.id, cause_id)
        program = programs.get_program(session, caller.tenant.id, cause.program_id)
        given = service.give(
            session,
            tenant_id=caller.tenant.id,
            program=program,
            cause_id=cause.id,
            member_id=body.member_id,
            points=body.points,
            idempotency_key=key,
            actor=caller.actor,
            source_type="api",
        )
        return given, cause.code

    given, code = write(session, run)
    response.status_code = 201 if given.created else 200
    return donation_out(given.donation, code)


# --------------------------------------------------------------------------- admin


@router.put(
    "/causes/{code}",
    response_model=CauseOut,
    responses={**problems(403, 404, 409), **answered(CauseOut, 201)},
)
def put_cause(
    code: str,
    body: CauseIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    program_id: ProgramQ = None,
    locale: LocaleQ = None,
) -> CauseOut:
    """Create the cause with this code (`201`) or replace its definition (`200`); its
    donations and totals stay. A closed cause is not changed (`409 cause_closed`); the match
    budget cannot drop below what was already matched (`409 match_budget_below_matched`)."""

    def run() -> tuple[Cause, bool]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return service.put_cause(session, program, code, body, actor=caller.actor)

    cause, created = write(session, run)
    response.status_code = 201 if created else 200
    return _one(session, caller.tenant, cause, _locale(locale, caller.tenant.locale))


@router.post("/causes/{cause_id}/close", response_model=CauseOut, responses=problems(403, 404))
def close_cause(cause_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> CauseOut:
    """Stop taking donations. Donations and receipts stay; closing again changes nothing."""
    cause = write(
        session,
        lambda: service.close_cause(session, caller.tenant.id, cause_id, actor=caller.actor),
    )
    return _one(session, caller.tenant, cause, _locale(None, caller.tenant.locale))


@router.get(
    "/causes/{cause_id}/donations",
    response_model=Page[DonationOut],
    responses=problems(403, 404),
)
def cause_donations(
    cause_id: uuid.UUID,
    session: SessionDep,
    caller: AdminCaller,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[DonationOut]:
    """The cause's donations, oldest first, a page at a time."""
    cause = service.get_cause(session, caller.tenant.id, cause_id)
    rows = service.cause_donations(session, cause, after=decode_cursor(cursor), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[DonationOut](
        data=[donation_out(d, cause.code) for d in rows],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )


@router.get("/causes/{cause_id}/summary", response_model=CauseSummary, responses=problems(403, 404))
def cause_summary(cause_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> CauseSummary:
    """Totals of the cause (given, matched, worth, budget left) and donations per day in the
    tenant's time zone."""
    cause = service.get_cause(session, caller.tenant.id, cause_id)
    program = programs.get_program(session, caller.tenant.id, cause.program_id)
    return CauseSummary(**service.summary(session, caller.tenant, cause, program))
