from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from setia.badges import service as badges
from setia.core.api import (
    AdminCaller,
    Cursor,
    Limit,
    Page,
    PosCaller,
    ReadCaller,
    SessionDep,
    decode_cursor,
    encode_cursor,
    problems,
    write,
)
from setia.core.errors import InvalidInput
from setia.events import service as events
from setia.members import service
from setia.members.models import Member
from setia.members.schemas import (
    ConsentIn,
    ConsentOut,
    EraseIn,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    MergeIn,
)
from setia.referrals import service as referrals

router = APIRouter(prefix="/v1/members", tags=["members"])


def _out(session: SessionDep, member: Member) -> MemberOut:
    out = MemberOut.model_validate(member)
    out.consents = service.current_consents(session, member.id)
    out.referral_count = referrals.referral_count(session, member.tenant_id, member.id)
    out.badges = badges.member_record_codes(session, member.tenant_id, member.id)
    return out


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberOut,
    responses=problems(403, 404, 409),
)
def create_member(body: MemberCreate, session: SessionDep, caller: PosCaller) -> MemberOut:
    """Enrol a member. External id, phone and email must each be unused in the tenant (409)."""
    data = body.model_dump(
        exclude_none=True, exclude={"consents", "consent_source", "referral_code", "device_id"}
    )

    def run() -> Member:
        member = service.create_member(
            session, caller.tenant, data, source=body.consent_source, consents=body.consents
        )
        if body.referral_code:
            # A refused code (unknown, self-referral, throwaway email...) refuses the sign-up.
            referrals.attach_at_signup(
                session,
                caller.tenant,
                member,
                body.referral_code,
                device_id=body.device_id,
                actor=caller.actor,
            )
        # Signup bonus rules (member.signup) fire in the same transaction.
        events.member_signed_up(session, caller.tenant, member)
        return member

    member = write(session, run)
    return _out(session, member)


@router.get("", response_model=Page[MemberOut], responses=problems(403))
def list_members(
    session: SessionDep,
    caller: ReadCaller,
    q: Annotated[str | None, Query(description="Name, email, phone digits or external id")] = None,
    tag: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MemberOut]:
    """Members, oldest first, filtered by a search term or a tag; merged members are left out."""
    rows = service.search_members(
        session, caller.tenant.id, q=q, tag=tag, limit=limit, after=decode_cursor(cursor)
    )
    return Page(
        data=[_out(session, m) for m in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.get("/lookup", response_model=MemberOut, responses=problems(403, 404))
def lookup_member(
    session: SessionDep,
    caller: PosCaller,
    external_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> MemberOut:
    """Find one member by an identity (phone in any local format). Merged ids resolve to the survivor."""
    if not (external_id or phone or email):
        raise InvalidInput("give external_id, phone or email")
    member = service.find_member(
        session, caller.tenant, external_id=external_id, phone=phone, email=email
    )
    if member is None:
        raise service.MemberNotFound("no member has this identity")
    return _out(session, member)


@router.get("/{member_id}", response_model=MemberOut, responses=problems(403, 404))
def get_member(member_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> MemberOut:
    """A member's profile, status and current consents."""
    return _out(session, service.get_member(session, caller.tenant.id, member_id))


@router.patch("/{member_id}", response_model=MemberOut, responses=problems(403, 404, 409))
def update_member(
    member_id: uuid.UUID, body: MemberUpdate, session: SessionDep, caller: PosCaller
) -> MemberOut:
    """Change profile fields; only the fields sent change. Identities must stay unique (409)."""
    changes = body.model_dump(exclude_unset=True)
    member = write(
        session,
        lambda: service.update_member(
            session,
            caller.tenant,
            service.get_member(session, caller.tenant.id, member_id),
            changes,
            actor=caller.actor,
        ),
    )
    return _out(session, member)


@router.post(
    "/{member_id}/consents",
    response_model=ConsentOut,
    status_code=201,
    responses=problems(403, 404),
)
def set_consent(
    member_id: uuid.UUID, body: ConsentIn, session: SessionDep, caller: PosCaller
) -> Any:
    """Record a consent decision; the history of every change is kept."""
    return write(
        session,
        lambda: service.set_consent(
            session,
            service.get_member(session, caller.tenant.id, member_id),
            body.channel,
            body.granted,
            source=body.source,
        ),
    )


@router.get("/{member_id}/consents", response_model=list[ConsentOut], responses=problems(403, 404))
def consent_history(member_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> Any:
    """Every consent decision for the member, oldest first, with where it came from."""
    member = service.get_member(session, caller.tenant.id, member_id)
    return service.consent_history(session, member.id)


@router.post("/{member_id}/merge", responses=problems(403, 404, 409))
def merge_member(
    member_id: uuid.UUID, body: MergeIn, session: SessionDep, caller: AdminCaller
) -> dict[str, Any]:
    """Fold a duplicate into this member: points, pending points, debt, orders and events move here."""

    def run() -> dict[str, Any]:
        survivor = service.get_member(session, caller.tenant.id, member_id)
        source = service.get_member(session, caller.tenant.id, body.source_member_id)
        return service.merge_members(
            session, caller.tenant, survivor, source, actor=caller.actor, reason=body.reason
        )

    return write(session, run)


@router.get("/{member_id}/export", responses=problems(403, 404))
def export_member(member_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> dict[str, Any]:
    """Everything held about the member (right of access, UU PDP art. 7 / PDPA s. 30)."""
    member = service.get_member(session, caller.tenant.id, member_id)
    return service.export_member(session, caller.tenant, member)


@router.post("/{member_id}/erase", response_model=MemberOut, responses=problems(403, 404))
def erase_member(
    member_id: uuid.UUID, body: EraseIn, session: SessionDep, caller: AdminCaller
) -> MemberOut:
    """Erase personal data. The anonymous ledger stays so the books still balance."""
    if not body.confirm:
        raise InvalidInput("set confirm to true: erasure cannot be undone")
    member = write(
        session,
        lambda: service.erase_member(
            session,
            caller.tenant,
            service.get_member(session, caller.tenant.id, member_id),
            actor=caller.actor,
            reason=body.reason,
        ),
    )
    return _out(session, member)
