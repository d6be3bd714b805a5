"""Members: identities, profile, consent, merge, export and erasure (UU PDP / PDPA)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import String, Uuid, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.db import new_id
from setia.core.errors import Conflict, InvalidInput, NotFound
from setia.core.time import utcnow, zone
from setia.ledger import queries as ledger_queries
from setia.ledger import service as ledger
from setia.members.chains import merged_ids, survivor_id
from setia.members.models import ConsentChange, Member
from setia.outbox.service import publish, publish_many
from setia.programs.models import Program
from setia.tenants.models import Tenant

CHANNELS = ("email", "whatsapp", "sms")
LOCALES = ("id", "ms", "en")
PROFILE_FIELDS = (
    "external_id",
    "name",
    "phone",
    "email",
    "locale",
    "birthday",
    "timezone",
    "tags",
    "attributes",
)


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "Member not found"


class IdentityTaken(Conflict):
    code = "member_identity_taken"
    title = "Another member already has this identity"


class InvalidPhone(InvalidInput):
    code = "invalid_phone"
    title = "Invalid phone number"


class InvalidEmail(InvalidInput):
    code = "invalid_email"
    title = "Invalid email address"


class MemberNotActive(Conflict):
    code = "member_not_active"
    title = "The member was merged or erased"


class OpenHolds(Conflict):
    code = "member_has_open_holds"
    title = "The member has open holds"


# Parsing a number or an address is slow next to everything else an event does, and the same
# few thousand come back all day: remember them (both are pure functions; errors are raised,
# never cached).
@lru_cache(maxsize=65536)
def normalize_phone(raw: str, country: str) -> str:
    """E.164 from what people type: "0812-3456-7890" in ID is "+6281234567890".

    Letters are refused: the parser would read "0812-KOPI-1234" as keypad digits and
    "0812 3456 789x" as a number with an extension, a member's phone that no one typed."""
    if any(ch.isalpha() for ch in raw):
        raise InvalidPhone(f"{raw!r} is not a phone number: give digits only, e.g. 081234567890")
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"{raw!r} is not a phone number") from None
    if number.extension:
        raise InvalidPhone(f"{raw!r} is not a phone number: give it without an extension")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"{raw!r} is not a valid phone number for {country}; "
            "give it with its country code, e.g. +6281234567890"
        )
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted


@lru_cache(maxsize=65536)
def normalize_email(raw: str) -> str:
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{raw!r} is not a valid email address: {exc}") from None
    return str(info.normalized).lower()


def _clean(tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if out.get("phone") is not None:
        out["phone"] = normalize_phone(out["phone"], tenant.country)
    if out.get("email") is not None:
        out["email"] = normalize_email(out["email"])
    if out.get("locale") is not None and out["locale"] not in LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(LOCALES)}")
    if out.get("timezone") is not None:
        try:
            zone(out["timezone"])
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    if out.get("external_id") is not None and not str(out["external_id"]).strip():
        raise InvalidInput("external_id must not be blank")
    return out


def _check_unique(
    session: Session, tenant_id: uuid.UUID, data: dict[str, Any], exclude: uuid.UUID | None
) -> None:
    for field in ("external_id", "phone", "email"):
        value = data.get(field)
        if value is None:
            continue
        q = select(Member.id).where(Member.tenant_id == tenant_id, getattr(Member, field) == value)
        if exclude is not None:
            q = q.where(Member.id != exclude)
        if session.execute(q).first() is not None:
            raise IdentityTaken(
                f"another member already has {field} {value!r}",
                extra={"field": field},
            )


def create_member(
    session: Session,
    tenant: Tenant,
    data: dict[str, Any],
    *,
    source: str,
    consents: dict[str, bool] | None = None,
) -> Member:
    data = _clean(tenant, data)
    _check_unique(session, tenant.id, data, None)
    member = _new_member(tenant, data)
    session.add(member)
    session.flush()
    for program_id in session.execute(
        select(Program.id).where(Program.tenant_id == tenant.id)
    ).scalars():
        ledger.open_member_accounts(session, program_id, member.id)
    for channel, granted in (consents or {}).items():
        set_consent(session, member, channel, granted, source=source)
    publish(session, tenant.id, "member.created", {"member_id": str(member.id)})
    return member


def _new_member(tenant: Tenant, data: dict[str, Any]) -> Member:
    now = utcnow()
    data = dict(data)
    return Member(
        id=new_id(),
        tenant_id=tenant.id,
        locale=data.pop("locale", None) or tenant.locale,
        tags=sorted(set(data.pop("tags", None) or [])),
        attributes=data.pop("attributes", None) or {},
        status="active",
        created_at=now,
        updated_at=now,
        **data,
    )


def prepare_member(tenant: Tenant, data: dict[str, Any]) -> Member:
    """A new member as :func:`create_member` would make it, validated but not yet written
    (raises like it on bad input). The caller must know its identities are free, and writes
    it with :func:`insert_members`."""
    return _new_member(tenant, _clean(tenant, data))


def insert_members(session: Session, tenant: Tenant, new: list[Member]) -> None:
    """Write members made by :func:`prepare_member`, set-based: the rows (in list order),
    their accounts in every program of the tenant and their ``member.created`` messages, as
    :func:`create_member` writes them one by one (without consents)."""
    if not new:
        return
    session.add_all(new)
    session.flush()
    program_ids = list(
        session.execute(select(Program.id).where(Program.tenant_id == tenant.id)).scalars()
    )
    ledger.open_member_accounts_many(session, [(p, m.id) for m in new for p in program_ids])
    publish_many(session, tenant.id, "member.created", [{"member_id": str(m.id)} for m in new])


def update_member(
    session: Session, tenant: Tenant, member: Member, changes: dict[str, Any], *, actor: str
) -> Member:
    _active(member)
    changes = _clean(tenant, changes)
    _check_unique(session, tenant.id, changes, member.id)
    if "tags" in changes:
        changes["tags"] = sorted(set(changes["tags"] or []))
    before = {k: _audit_value(k, getattr(member, k)) for k in changes}
    for k, v in changes.items():
        setattr(member, k, v)
    member.updated_at = utcnow()
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="member.updated",
        subject_type="member",
        subject_id=member.id,
        details={"before": before, "after": {k: _audit_value(k, v) for k, v in changes.items()}},
    )
    session.flush()
    return member


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


# The audit log is append-only, so erasure could not remove personal data written there:
# it records that these fields changed, never their values.
PERSONAL_FIELDS = frozenset({"external_id", "name", "phone", "email", "birthday", "attributes"})


def _audit_value(field: str, value: Any) -> Any:
    if field in PERSONAL_FIELDS:
        return None if value is None else "(personal data)"
    return _jsonable(value)


def _active(member: Member) -> None:
    if member.status != "active":
        raise MemberNotActive(
            f"member {member.id} is {member.status}"
            + (f"; use {member.merged_into_id}" if member.merged_into_id else "")
        )


def get_member(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> Member:
    member = session.execute(
        select(Member).where(Member.id == member_id, Member.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if member is None:
        raise MemberNotFound(f"member {member_id} not found")
    return member


# One statement for any mix of identities (built once): an identity not given is bound as
# NULL, and ``column = NULL`` matches nothing.
_TENANT = bindparam("tenant_id", type_=Uuid())
# The tenant is repeated in each alternative so that each one is an index look-up of its own
# (the primary key, or a (tenant_id, identity) unique key); ``tenant_id = ? AND (a OR b ...)``
# made SQLite walk every member of the tenant instead (tests/test_lookup_plans.py).
_FIND_MEMBER = (
    select(Member)
    .where(
        or_(
            and_(Member.id == bindparam("member_id", type_=Uuid()), Member.tenant_id == _TENANT),
            and_(
                Member.tenant_id == _TENANT,
                Member.external_id == bindparam("external_id", type_=String()),
            ),
            and_(Member.tenant_id == _TENANT, Member.phone == bindparam("phone", type_=String())),
            and_(Member.tenant_id == _TENANT, Member.email == bindparam("email", type_=String())),
        )
    )
    .order_by(Member.id)
)


def find_member(
    session: Session,
    tenant: Tenant,
    *,
    member_id: uuid.UUID | None = None,
    external_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> Member | None:
    """Find by any identity; a merged member resolves to the member it was merged into."""
    if member_id is None and external_id is None and phone is None and email is None:
        return None
    rows = list(
        session.execute(
            _FIND_MEMBER,
            {
                "tenant_id": tenant.id,
                "member_id": member_id,
                "external_id": external_id,
                "phone": None if phone is None else normalize_phone(phone, tenant.country),
                "email": None if email is None else normalize_email(email),
            },
        ).scalars()
    )
    # A merged record stands for the member it was merged into (its identities keep finding
    # the survivor), so the survivor's own identity with a duplicate's is one member.
    found = {m.id: m for m in (_survivor(session, m) for m in rows)}
    if len(found) > 1:
        raise IdentityTaken(
            "the identities given belong to different members: " + ", ".join(str(i) for i in found),
        )
    return next(iter(found.values()), None)


def _survivor(session: Session, member: Member) -> Member:
    """The member a merged record was merged into (through a chain of merges)."""
    if member.status != "merged":
        return member
    return session.get(Member, survivor_id(session, member.id)) or member


def search_members(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    q: str | None,
    tag: str | None,
    limit: int,
    after: uuid.UUID | None,
) -> list[Member]:
    stmt = (
        select(Member)
        .where(Member.tenant_id == tenant_id, Member.status != "merged")
        .order_by(Member.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Member.id > after)
    if q:
        like = f"%{q.strip().lower()}%"
        digits = "".join(ch for ch in q if ch.isdigit())
        conds = [Member.external_id == q.strip(), Member.email.ilike(like), Member.name.ilike(like)]
        if len(digits) >= 4:
            conds.append(Member.phone.like(f"%{digits.lstrip('0')}%"))
        stmt = stmt.where(or_(*conds))
    if tag:
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.where(Member.tags.op("@>")(func.jsonb_build_array(tag)))
        else:
            stmt = stmt.where(
                text(
                    "EXISTS (SELECT 1 FROM json_each(members.tags) WHERE value = :tag)"
                ).bindparams(tag=tag)
            )
    return list(session.execute(stmt).scalars())


def set_consent(
    session: Session, member: Member, channel: str, granted: bool, *, source: str
) -> ConsentChange:
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}")
    if not source.strip():
        raise InvalidInput("say where the consent came from (source), e.g. 'pos-form' or 'portal'")
    change = ConsentChange(
        id=new_id(),
        tenant_id=member.tenant_id,
        member_id=member.id,
        channel=channel,
        granted=granted,
        source=source,
        changed_at=utcnow(),
    )
    session.add(change)
    session.flush()
    publish(
        session,
        member.tenant_id,
        "member.consent_changed",
        {"member_id": str(member.id), "channel": channel, "granted": granted},
    )
    return change


def consent_history(session: Session, member_id: uuid.UUID) -> list[ConsentChange]:
    return list(
        session.execute(
            select(ConsentChange)
            .where(ConsentChange.member_id == member_id)
            .order_by(ConsentChange.id)
        ).scalars()
    )


def current_consents(session: Session, member_id: uuid.UUID) -> dict[str, bool]:
    """Latest decision per channel; a channel never asked is ``False`` (no consent)."""
    state = dict.fromkeys(CHANNELS, False)
    for change in consent_history(session, member_id):
        state[change.channel] = change.granted
    return state


def merge_members(
    session: Session, tenant: Tenant, survivor: Member, source: Member, *, actor: str, reason: str
) -> dict[str, Any]:
    """Fold ``source`` into ``survivor``: balances, lots, debt, events, orders and consents.

    Identities the survivor lacks are taken over; the source keeps a pointer to the
    survivor, so lookups by its old identities still find the right member.
    """
    from setia.events.models import Event, Order
    from setia.tiers import service as tiers

    if survivor.id == source.id:
        raise InvalidInput("a member cannot be merged into itself")
    _active(survivor)
    _active(source)
    programs = list(
        session.execute(select(Program).where(Program.tenant_id == tenant.id)).scalars()
    )
    for program in programs:
        if ledger.open_holds(session, program.id, source.id):
            raise OpenHolds(
                f"member {source.id} has open holds in {program.name}; capture or void them first"
            )
    moved: dict[str, Any] = {}
    for program in programs:
        ctx = ledger.Context(
            program_id=program.id,
            idempotency_key=f"merge:{source.id}:{survivor.id}",
            request_hash=ledger.request_hash({"merge": [str(source.id), str(survivor.id)]}),
            source_type="merge",
            source_id=str(source.id),
            actor=actor,
            reason=reason,
            program_revision=program.revision,
        )
        moved[str(program.id)] = ledger.move_member(
            session, ctx, program_id=program.id, source=source.id, survivor=survivor.id
        )
    session.execute(update(Event).where(Event.member_id == source.id).values(member_id=survivor.id))
    session.execute(update(Order).where(Order.member_id == source.id).values(member_id=survivor.id))
    tiers.merge_members(session, tenant, source.id, survivor.id, actor=actor)
    from setia.badges import merge as badges
    from setia.referrals import service as referrals

    referrals.on_merge(session, tenant.id, source.id, survivor.id)
    badges.on_merge(session, source.id, survivor.id)
    # Consent is personal: the survivor keeps its own, the source's history is kept on the source.
    taken = {}
    for field in ("external_id", "phone", "email", "name", "birthday"):
        if getattr(survivor, field) is None and getattr(source, field) is not None:
            taken[field] = getattr(source, field)
    for field in taken:
        if field in ("external_id", "phone", "email"):
            setattr(source, field, None)
    session.flush()
    for field, value in taken.items():
        setattr(survivor, field, value)
    survivor.tags = sorted(set(survivor.tags or []) | set(source.tags or []))
    survivor.attributes = {**(source.attributes or {}), **(survivor.attributes or {})}
    if source.last_activity_at and (
        not survivor.last_activity_at or source.last_activity_at > survivor.last_activity_at
    ):
        survivor.last_activity_at = source.last_activity_at
    source.status = "merged"
    source.merged_into_id = survivor.id
    survivor.updated_at = source.updated_at = utcnow()
    details = {
        "source": str(source.id),
        "survivor": str(survivor.id),
        "reason": reason,
        "identities_taken": sorted(taken),
        "moved": moved,
    }
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="member.merged",
        subject_type="member",
        subject_id=survivor.id,
        details=details,
    )
    publish(session, tenant.id, "member.merged", details)
    session.flush()
    return details


def merged_records(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> list[Member]:
    """The members merged into this one, and those merged into them: the same person."""
    ids = merged_ids(session, member_id)
    if not ids:
        return []
    rows = {
        m.id: m
        for m in session.execute(
            select(Member).where(Member.id.in_(ids), Member.tenant_id == tenant_id)
        ).scalars()
    }
    return [rows[i] for i in ids if i in rows]


def export_member(session: Session, tenant: Tenant, member: Member) -> dict[str, Any]:
    """Everything Setia holds about a member, for a data-access request."""
    from setia.audit.models import AuditRecord
    from setia.events.models import Event

    now = utcnow()
    profile = {k: _jsonable(getattr(member, k)) for k in PROFILE_FIELDS}
    profile.update(
        id=str(member.id), status=member.status, created_at=member.created_at.isoformat()
    )
    programs = list(
        session.execute(select(Program).where(Program.tenant_id == tenant.id)).scalars()
    )
    ledgers = {}
    for program in programs:
        ledgers[program.name] = {
            "balance": ledger_queries.balance(session, program.id, member.id, now=now),
            "statement": ledger_queries.statement(
                session, program.id, member.id, limit=100_000, before=None
            ),
        }
    events = session.execute(
        select(Event).where(Event.member_id == member.id).order_by(Event.id)
    ).scalars()
    audits = session.execute(
        select(AuditRecord).where(
            # The tenant too: the audit log's index starts with it (else a walk of the log).
            AuditRecord.tenant_id == member.tenant_id,
            AuditRecord.subject_type == "member",
            AuditRecord.subject_id == str(member.id),
        )
    ).scalars()
    from setia.referrals import service as referrals

    return {
        "exported_at": now.isoformat(),
        "tenant": tenant.name,
        "profile": profile,
        "consents": [
            {
                "channel": c.channel,
                "granted": c.granted,
                "source": c.source,
                "at": c.changed_at.isoformat(),
            }
            for c in consent_history(session, member.id)
        ],
        "events": [
            {
                "id": e.client_event_id,
                "type": e.type,
                "occurred_at": e.occurred_at.isoformat(),
                "payload": e.payload,
            }
            for e in events
        ],
        "points": ledgers,
        # duplicates merged into this member: their identities still find it
        "merged_records": [
            {
                "id": str(m.id),
                **{k: _jsonable(getattr(m, k)) for k in PROFILE_FIELDS},
                "merged_into": str(m.merged_into_id),
                # a merge leaves the duplicate's consent history and some referrals on it
                "consents": [
                    {
                        "channel": c.channel,
                        "granted": c.granted,
                        "source": c.source,
                        "at": c.changed_at.isoformat(),
                    }
                    for c in consent_history(session, m.id)
                ],
                "referrals": referrals.export_member(session, tenant.id, m.id),
            }
            for m in merged_records(session, tenant.id, member.id)
        ],
        "referrals": referrals.export_member(session, tenant.id, member.id),
        "audit": [
            {
                "action": a.action,
                "actor": a.actor,
                "at": a.created_at.isoformat(),
                "details": a.details,
            }
            for a in audits
        ],
    }


def _holds_personal_data(m: Member) -> bool:
    return any(
        (m.external_id, m.name, m.phone, m.email, m.timezone, m.birthday, m.tags, m.attributes)
    )


def _clear_personal_data(session: Session, record: Member, now: datetime) -> None:
    record.external_id = record.name = record.phone = record.email = None
    record.timezone = record.birthday = None
    record.tags = []
    record.attributes = {}
    record.erased_at = record.updated_at = now
    for channel in CHANNELS:
        set_consent(session, record, channel, False, source="erasure")


def erase_member(
    session: Session, tenant: Tenant, member: Member, *, actor: str, reason: str
) -> Member:
    """Remove personal data; keep the anonymous member row so the ledger still balances."""
    from setia.events.models import Event
    from setia.referrals import service as referrals

    now = utcnow()
    # The records merged into this member (duplicates folded in, and theirs) are the same
    # person: their personal data goes too, and their identities stop resolving here.
    merged = merged_records(session, tenant.id, member.id)
    if member.status == "erased":
        # Erased before merged records were erased with it: clear what is left of them.
        left = [m for m in merged if _holds_personal_data(m)]
        for record in left:
            _clear_personal_data(session, record, now)
            referrals.on_erase(session, tenant.id, record.id)
        if left:
            ids = [m.id for m in left]
            session.execute(update(Event).where(Event.member_id.in_(ids)).values(payload={}))
            session.flush()
        return member
    for record in (member, *merged):
        _clear_personal_data(session, record, now)
    member.status = "erased"
    # Event payloads may carry names, phones and addresses: keep only what accounting needs.
    ids = [member.id, *(m.id for m in merged)]
    session.execute(update(Event).where(Event.member_id.in_(ids)).values(payload={}))
    for member_id in ids:
        referrals.on_erase(session, tenant.id, member_id)
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="member.erased",
        subject_type="member",
        subject_id=member.id,
        details={"reason": reason, "merged_records": sorted(str(m.id) for m in merged)},
    )
    publish(session, tenant.id, "member.erased", {"member_id": str(member.id)})
    session.flush()
    return member
