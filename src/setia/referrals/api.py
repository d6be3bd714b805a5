"""HTTP API of the referrals domain: settings (admin), a member's code, link and share text,
sign-up with a code, the review queue, funnel and top advocates."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.api import (
    AdminCaller,
    Cursor,
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
from setia.core.money import MoneyError, parse_amount, to_str
from setia.members import service as members
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.referrals import service
from setia.referrals.models import Referral, ReferralSettings, ReferralShare
from setia.referrals.schemas import (
    AdvocateOut,
    DecisionIn,
    DecisionOut,
    FunnelOut,
    MemberReferralOut,
    ReferralCounts,
    ReferralIn,
    ReferralOut,
    ReferralSettingsIn,
    ReferralSettingsOut,
    ReferralStatus,
    RewardOut,
    ShareIn,
    ShareOut,
)
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["referrals"])

ProgramQ = Annotated[
    uuid.UUID | None, Query(description="The program; default: the tenant's default program")
]
FromQ = Annotated[
    date | None, Query(alias="from", description="First local day (tenant's zone), inclusive")
]
ToQ = Annotated[date | None, Query(description="Last local day (tenant's zone), inclusive")]


def settings_out(row: ReferralSettings, program: Program) -> ReferralSettingsOut:
    return ReferralSettingsOut(
        program_id=program.id,
        enabled=row.enabled,
        min_amount=to_str(row.min_amount, program.currency),
        currency=program.currency,
        return_window_days=program.pending_days,
        referrer_points=row.referrer_points,
        referee_points=row.referee_points,
        referrer_campaign_id=row.referrer_campaign_id,
        referee_campaign_id=row.referee_campaign_id,
        level2_enabled=row.level2_enabled,
        level2_points=row.level2_points,
        level2_campaign_id=row.level2_campaign_id,
        cap_per_month=row.cap_per_month,
        cap_lifetime=row.cap_lifetime,
        velocity_count=row.velocity_count,
        velocity_minutes=row.velocity_minutes,
        review_required=row.review_required,
        attach_within_days=row.attach_within_days,
        disposable_add=list(row.disposable_add),
        disposable_remove=list(row.disposable_remove),
        disposable_domains=len(service.disposable_domains(row)),
        share_url=row.share_url,
        share_texts={k: str(v) for k, v in (row.share_texts or {}).items()},
        updated_at=row.updated_at,
    )


def referral_out(
    session: Session, referral: Referral, program: Program, *, with_decisions: bool = False
) -> ReferralOut:
    rewards = service.rewards_of(session, [referral.id])
    return _out(
        referral,
        program,
        rewards,
        service.decisions(session, referral.id) if with_decisions else None,
    )


def _out(
    referral: Referral,
    program: Program,
    rewards: list[Any],
    decisions: list[Any] | None,
) -> ReferralOut:
    return ReferralOut(
        id=referral.id,
        program_id=referral.program_id,
        code=referral.code,
        referrer_id=referral.referrer_id,
        referee_id=referral.referee_id,
        status=cast(ReferralStatus, referral.status),
        held_reason=referral.held_reason,
        source=referral.source,
        order_id=referral.order_id,
        order_amount=(
            to_str(referral.order_amount, program.currency)
            if referral.order_amount is not None
            else None
        ),
        cancelled_reason=referral.cancelled_reason,
        decided_by=referral.decided_by,
        decided_at=referral.decided_at,
        decision_reason=referral.decision_reason,
        qualified_at=referral.qualified_at,
        rewarded_at=referral.rewarded_at,
        created_at=referral.created_at,
        rewards=[RewardOut.model_validate(r) for r in rewards],
        decisions=None if decisions is None else [DecisionOut.model_validate(d) for d in decisions],
    )


def settings_data(body: ReferralSettingsIn, currency: str) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True)
    if "min_amount" in data:
        if data["min_amount"] is None:
            raise InvalidInput('min_amount cannot be null; send "0" for any purchase')
        try:
            data["min_amount"] = parse_amount(data["min_amount"], currency, allow_zero=True)
        except MoneyError as exc:
            raise InvalidInput(
                f"min_amount: {exc}", extra={"field": "min_amount"}, code=exc.code
            ) from None
    for key in (
        "enabled",
        "level2_enabled",
        "review_required",
        "velocity_count",
        "velocity_minutes",
        "attach_within_days",
        "referrer_points",
        "referee_points",
        "level2_points",
        "share_url",
        "share_texts",
        "disposable_add",
        "disposable_remove",
    ):
        if key in data and data[key] is None:
            raise InvalidInput(f"{key} cannot be null", extra={"field": key})
    return data


# --------------------------------------------------------------------------- settings


@router.get("/referrals/settings", response_model=ReferralSettingsOut, responses=problems(403, 404))
def get_settings(
    session: SessionDep, caller: ReadCaller, program_id: ProgramQ = None
) -> ReferralSettingsOut:
    """The program's referral settings (defaults, disabled, when never set)."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return settings_out(service.settings_of(session, program), program)


@router.put(
    "/referrals/settings",
    response_model=ReferralSettingsOut,
    responses={**problems(403, 404), **answered(ReferralSettingsOut, 201)},
)
def put_settings(
    body: ReferralSettingsIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    program_id: ProgramQ = None,
) -> ReferralSettingsOut:
    """Create (`201`) or change (`200`) the program's referral settings; only the fields sent
    change. Refusals: `422 invalid_input` (a campaign of another tenant, a `share_url` without
    `{code}`, an unknown placeholder in a share text, no `id` or `en` text)."""

    def run() -> tuple[ReferralSettings, Program, bool]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        row, created = service.put_settings(
            session,
            caller.tenant,
            program,
            settings_data(body, program.currency),
            actor=caller.actor,
        )
        return row, program, created

    row, program, created = write(session, run)
    response.status_code = 201 if created else 200
    return settings_out(row, program)


# --------------------------------------------------------------------------- members


def _counts(
    session: Session, tenant_id: uuid.UUID, program_id: uuid.UUID, member_id: uuid.UUID
) -> ReferralCounts:
    by_status = dict(
        session.execute(
            select(Referral.status, func.count())
            .where(Referral.program_id == program_id, Referral.referrer_id == member_id)
            .group_by(Referral.status)
        ).all()
    )
    shares = session.execute(
        select(func.count())
        .select_from(ReferralShare)
        .where(ReferralShare.tenant_id == tenant_id, ReferralShare.member_id == member_id)
    ).scalar_one()
    return ReferralCounts(
        shares=int(shares),
        signups=int(sum(by_status.values())),
        **{
            s: int(by_status.get(s, 0))
            for s in ("pending", "held", "qualified", "rewarded", "rejected", "cancelled")
        },
    )


def member_view(
    session: Session, tenant: Tenant, member: Member, program: Program, locale: str | None
) -> MemberReferralOut:
    """A member's code (made on first ask), link, share texts and counts."""
    settings = service.settings_of(session, program)
    code = service.ensure_code(session, tenant.id, member)
    texts = service.share_texts(settings, program, member, code.code)
    loc = locale or member.locale or tenant.locale
    text = texts.get(loc) or texts.get("id") or next(iter(texts.values()), "")
    counts = _counts(session, tenant.id, program.id, member.id)
    referred_by = session.execute(
        select(Referral.referrer_id).where(
            Referral.program_id == program.id, Referral.referee_id == member.id
        )
    ).scalar_one_or_none()
    return MemberReferralOut(
        member_id=member.id,
        program_id=program.id,
        enabled=settings.enabled,
        code=code.code,
        link=service.share_link(settings, code.code),
        locale=loc,
        share_text=text,
        share_texts=texts,
        whatsapp_url="https://wa.me/?text=" + quote(text, safe=""),
        referral_count=counts.qualified + counts.rewarded,
        counts=counts,
        referred_by=referred_by,
    )


@router.get(
    "/members/{member_id}/referral",
    response_model=MemberReferralOut,
    responses=problems(403, 404, 409),
)
def member_referral(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: ProgramQ = None,
    locale: Annotated[
        str | None, Query(pattern="^(id|ms|en)$", description="Default: the member's language")
    ] = None,
) -> MemberReferralOut:
    """The member's personal code (made on first ask), share link, ready share texts in
    id/ms/en (`share_text` in the member's language) with a WhatsApp link, and how their
    referrals are doing. A merged or erased member has no code (`409 member_not_active`)."""

    def run() -> MemberReferralOut:
        member = members.get_member(session, caller.tenant.id, member_id)
        program = programs.get_program(session, caller.tenant.id, program_id)
        return member_view(session, caller.tenant, member, program, locale)

    return write(session, run)


@router.post(
    "/members/{member_id}/referral/shares",
    response_model=ShareOut,
    status_code=201,
    responses=problems(403, 404, 409),
)
def share(member_id: uuid.UUID, body: ShareIn, session: SessionDep, caller: PosCaller) -> ShareOut:
    """Count one share of the member's link (for the funnel). A counter: a retried call
    counts again. `device_id` (optional) is the sharer's device: a sign-up from that device
    with this member's code is refused as a self-referral."""

    def run() -> int:
        member = members.get_member(session, caller.tenant.id, member_id)
        return service.record_share(
            session, caller.tenant.id, member, channel=body.channel, device_id=body.device_id
        )

    return ShareOut(member_id=member_id, shares=write(session, run))


# --------------------------------------------------------------------------- referrals


@router.post(
    "/referrals",
    response_model=ReferralOut,
    status_code=201,
    responses={**problems(403, 404, 409, 422), **answered(ReferralOut, 200)},
)
def attach(
    body: ReferralIn, session: SessionDep, caller: PosCaller, response: Response
) -> ReferralOut:
    """Attach a referral code to a member who just signed up. Idempotent: the same member and
    code again answers `200` with the referral already made. Refusals, nothing written:
    `404 referral_code_not_found` (unknown, or another business's code), `404
    member_not_found`, `409 referral_code_inactive` (the referrer was merged or erased),
    `409 self_referral` (same member, phone, email or device; `match` says which), `409
    referral_device_reused`, `422 disposable_email`, `409 already_referred` (another code),
    `409 not_a_new_customer` (already purchased), `409 referral_attach_too_late`, `409
    referrals_disabled`. A burst of sign-ups on one code is accepted with status `held`."""

    def run() -> tuple[Referral, Program, bool]:
        member = members.get_member(session, caller.tenant.id, body.member_id)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        referral, created = service.attach(
            session,
            caller.tenant,
            program,
            member,
            body.code,
            device_id=body.device_id,
            actor=caller.actor,
            code_field="code",  # this body's name for it
        )
        return referral, program, created

    referral, program, created = write(session, run)
    response.status_code = 201 if created else 200
    return referral_out(session, referral, program, with_decisions=True)


@router.get("/referrals", response_model=Page[ReferralOut], responses=problems(403, 404))
def list_referrals(
    session: SessionDep,
    caller: AdminCaller,
    status: Annotated[ReferralStatus | None, Query(description="`held`: the review queue")] = None,
    member_id: Annotated[
        uuid.UUID | None, Query(description="Referrals where this member is referrer or referee")
    ] = None,
    program_id: ProgramQ = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ReferralOut]:
    """Referrals, oldest first; `status=held` is the review queue."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = service.list_referrals(
        session,
        caller.tenant.id,
        program.id,
        status=status,
        member_id=member_id,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    rewards: dict[uuid.UUID, list[Any]] = {}
    for r in service.rewards_of(session, [x.id for x in rows]):
        rewards.setdefault(r.referral_id, []).append(r)
    return Page[ReferralOut](
        data=[_out(r, program, rewards.get(r.id, []), None) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )


@router.get("/referrals/funnel", response_model=FunnelOut, responses=problems(403, 404))
def funnel(
    session: SessionDep,
    caller: AdminCaller,
    program_id: ProgramQ = None,
    member_id: Annotated[uuid.UUID | None, Query(description="One referrer only")] = None,
    from_: FromQ = None,
    to: ToQ = None,
) -> FunnelOut:
    """Links shared, sign-ups, pending, held, qualified, rewarded, rejected and cancelled, for
    one referrer or everyone, in a period of local days (tenant's zone). Each stage counts
    when it happened; `held`/`pending` are the period's sign-ups still in that state."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return FunnelOut.model_validate(
        service.funnel(session, caller.tenant, program, start=from_, end=to, member_id=member_id)
    )


@router.get("/referrals/top", response_model=list[AdvocateOut], responses=problems(403, 404))
def top(
    session: SessionDep,
    caller: AdminCaller,
    program_id: ProgramQ = None,
    from_: FromQ = None,
    to: ToQ = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[AdvocateOut]:
    """Top advocates: most qualified referrals among sign-ups of the period, then the most
    their referees spent (orders net of refunds, in the period)."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = service.top_advocates(session, caller.tenant, program, start=from_, end=to, limit=limit)
    return [
        AdvocateOut(**{**r, "referee_spend": to_str(r["referee_spend"], program.currency)})
        for r in rows
    ]


@router.get("/referrals/{referral_id}", response_model=ReferralOut, responses=problems(403, 404))
def get_referral(referral_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> ReferralOut:
    """One referral with its rewards and every decision (who, when, why)."""
    referral = service.get_referral(session, caller.tenant.id, referral_id)
    program = programs.get_program(session, caller.tenant.id, referral.program_id)
    return referral_out(session, referral, program, with_decisions=True)


def _review(
    session: Session, caller: Any, referral_id: uuid.UUID, body: DecisionIn, approve: bool
) -> ReferralOut:
    def run() -> Referral:
        referral, _ = service.review(
            session,
            caller.tenant,
            referral_id,
            approve=approve,
            reason=body.reason,
            actor=caller.actor,
        )
        return referral

    referral = write(session, run)
    program = programs.get_program(session, caller.tenant.id, referral.program_id)
    return referral_out(session, referral, program, with_decisions=True)


@router.post(
    "/referrals/{referral_id}/approve",
    response_model=ReferralOut,
    responses=problems(403, 404, 409),
)
def approve(
    referral_id: uuid.UUID, body: DecisionIn, session: SessionDep, caller: AdminCaller
) -> ReferralOut:
    """Approve a held referral: it goes back to `pending` and qualifies like any other.
    Recorded (who, when, reason) and audited; approving again changes nothing; a referral
    that is not held is `409 referral_not_held`."""
    return _review(session, caller, referral_id, body, True)


@router.post(
    "/referrals/{referral_id}/reject", response_model=ReferralOut, responses=problems(403, 404, 409)
)
def reject(
    referral_id: uuid.UUID, body: DecisionIn, session: SessionDep, caller: AdminCaller
) -> ReferralOut:
    """Reject a held referral: it never earns anything. Recorded and audited; rejecting again
    changes nothing."""
    return _review(session, caller, referral_id, body, False)
