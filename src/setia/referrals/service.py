"""Referrals: settings, personal codes, sign-ups with a code and their fraud guards, the review
queue, qualification and rewards (run by the due-work job), funnel and top advocates.

Everything runs in the caller's transaction and never commits.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, Uuid, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.db import new_id
from setia.core.errors import Conflict, InvalidInput, NotFound, SetiaError
from setia.core.i18n import pick
from setia.core.time import as_utc, utcnow, zone
from setia.events.models import Order
from setia.ledger import service as ledger
from setia.members.models import Member
from setia.outbox.service import publish
from setia.programs import service as programs
from setia.programs.models import Program
from setia.referrals.models import (
    Referral,
    ReferralCode,
    ReferralDecision,
    ReferralReward,
    ReferralSettings,
    ReferralShare,
)
from setia.tenants.models import Tenant

# No 0/O, 1/I/L: a code read aloud or copied from a screenshot cannot be mistyped into another.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 7
LOCALES = ("id", "ms", "en")
ADVOCATE_ROLES = ("referrer", "level2")
COUNTED = ("qualified", "rewarded")
SHARE_CHANNELS = ("whatsapp", "sms", "email", "copy", "qr", "other")
DEFAULT_SHARE_URL = "https://example.com/r/{code}"
DEFAULT_SHARE_TEXTS: dict[str, str] = {
    "id": (
        "Yuk gabung {program}! Daftar pakai kode saya {code} dan dapat hadiah setelah "
        "belanja pertamamu: {link}"
    ),
    "ms": (
        "Jom sertai {program}! Daftar dengan kod saya {code} dan dapatkan ganjaran selepas "
        "pembelian pertama anda: {link}"
    ),
    "en": (
        "Join {program}! Sign up with my code {code} and get a reward after your first "
        "purchase: {link}"
    ),
}
PLACEHOLDERS = ("code", "link", "program", "name")


# --------------------------------------------------------------------------- errors


class ReferralsDisabled(Conflict):
    code = "referrals_disabled"
    title = "The program has no active referral program"


class ReferralCodeNotFound(NotFound):
    code = "referral_code_not_found"
    title = "Referral code not found"


class ReferralCodeInactive(Conflict):
    code = "referral_code_inactive"
    title = "The referral code belongs to a member who was merged or erased"


class SelfReferral(Conflict):
    code = "self_referral"
    title = "A member cannot refer themself"


class DeviceReused(Conflict):
    code = "referral_device_reused"
    title = "This device already signed up with this code"


class DisposableEmail(InvalidInput):
    code = "disposable_email"
    title = "Throwaway email addresses cannot sign up with a referral code"


class AlreadyReferred(Conflict):
    code = "already_referred"
    title = "The member was already referred"


class NotNewCustomer(Conflict):
    code = "not_a_new_customer"
    title = "The member already purchased before signing up with a code"


class AttachTooLate(Conflict):
    code = "referral_attach_too_late"
    title = "The member signed up too long ago to add a referral code"


class ReferralNotFound(NotFound):
    code = "referral_not_found"
    title = "Referral not found"


class ReferralNotHeld(Conflict):
    code = "referral_not_held"
    title = "Only held referrals can be approved or rejected"


class ReferralMemberNotActive(Conflict):
    code = "member_not_active"
    title = "The member was merged or erased"


# --------------------------------------------------------------------------- helpers


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def local_month(moment: datetime, tz_name: str) -> str:
    return as_utc(moment).astimezone(zone(tz_name)).strftime("%Y-%m")


def local_bounds(
    start: date | None, end: date | None, tz_name: str
) -> tuple[datetime | None, datetime | None]:
    """[start 00:00, end+1 00:00) in the tenant's zone, as UTC instants (either may be open)."""
    tz = zone(tz_name)
    lo = None if start is None else as_utc(datetime.combine(start, time(), tzinfo=tz))
    hi = (
        None
        if end is None
        else as_utc(datetime.combine(end + timedelta(days=1), time(), tzinfo=tz))
    )
    return lo, hi


@lru_cache(maxsize=1)
def shipped_disposable_domains() -> frozenset[str]:
    """The maintained list shipped with Setia (``disposable_domains.txt``)."""
    text = resources.files("setia.referrals").joinpath("disposable_domains.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def disposable_domains(settings: ReferralSettings) -> frozenset[str]:
    return (shipped_disposable_domains() | {d.lower() for d in settings.disposable_add}) - {
        d.lower() for d in settings.disposable_remove
    }


def is_disposable(email: str | None, settings: ReferralSettings) -> bool:
    if not email or "@" not in email:
        return False
    domain = email.rsplit("@", 1)[1].lower().rstrip(".")
    listed = disposable_domains(settings)
    parts = domain.split(".")
    return any(".".join(parts[i:]) in listed for i in range(len(parts) - 1))


def canonical_email(email: str | None) -> str | None:
    """One mailbox, however it is spelled: lower case, ``+tag`` dropped, and Gmail's dots."""
    if not email or "@" not in email:
        return None
    local, domain = email.lower().rsplit("@", 1)
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _digits(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-9:] if len(digits) >= 9 else digits or None


def normalize_code(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch not in " -_\t")


# --------------------------------------------------------------------------- settings


def get_settings(session: Session, program_id: uuid.UUID) -> ReferralSettings | None:
    return session.execute(
        select(ReferralSettings).where(ReferralSettings.program_id == program_id)
    ).scalar_one_or_none()


def default_settings(program: Program) -> ReferralSettings:
    """What a program that never configured referrals has (not saved)."""
    now = utcnow()
    return ReferralSettings(
        id=new_id(),
        tenant_id=program.tenant_id,
        program_id=program.id,
        enabled=False,
        min_amount=Decimal(0),
        referrer_points=0,
        referee_points=0,
        referrer_campaign_id=None,
        referee_campaign_id=None,
        level2_enabled=False,
        level2_points=0,
        level2_campaign_id=None,
        cap_per_month=None,
        cap_lifetime=None,
        velocity_count=5,
        velocity_minutes=10,
        review_required=False,
        attach_within_days=7,
        disposable_add=[],
        disposable_remove=[],
        share_url=DEFAULT_SHARE_URL,
        share_texts=dict(DEFAULT_SHARE_TEXTS),
        created_at=now,
        updated_at=now,
    )


def settings_of(session: Session, program: Program) -> ReferralSettings:
    return get_settings(session, program.id) or default_settings(program)


SETTING_FIELDS = (
    "enabled",
    "min_amount",
    "referrer_points",
    "referee_points",
    "referrer_campaign_id",
    "referee_campaign_id",
    "level2_enabled",
    "level2_points",
    "level2_campaign_id",
    "cap_per_month",
    "cap_lifetime",
    "velocity_count",
    "velocity_minutes",
    "review_required",
    "attach_within_days",
    "disposable_add",
    "disposable_remove",
    "share_url",
    "share_texts",
)


def _check_template(text: str, field: str) -> None:
    """Only the placeholders themselves: no format spec, conversion, attribute or index
    (``{code:>99999999}`` would build a huge text on every share)."""
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise InvalidInput(
            f"{field} may only use the placeholders {allowed} ({exc}; write a brace as {{{{ or }}}})",
            extra={"field": field},
        ) from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise InvalidInput(
                f"{field} may only use the placeholders {allowed}, as they are: "
                f"not {_as_written(name, spec, conversion)}",
                extra={"field": field},
            )


def _as_written(name: str, spec: str | None, conversion: str | None) -> str:
    """A replacement field as the template wrote it."""
    return (
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    )


def put_settings(
    session: Session, tenant: Tenant, program: Program, data: dict[str, Any], *, actor: str
) -> tuple[ReferralSettings, bool]:
    """Create or replace the program's referral settings (the fields given; the others keep
    their value or default). Audited."""
    from setia.coupons import service as coupons

    row = get_settings(session, program.id)
    created = row is None
    if row is None:
        row = default_settings(program)
    before = {k: _jsonable(getattr(row, k)) for k in SETTING_FIELDS}
    for key, value in data.items():
        if key not in SETTING_FIELDS:
            raise InvalidInput(f"unknown referral setting {key!r}", extra={"field": key})
        setattr(row, key, value)
    for field in ("referrer_campaign_id", "referee_campaign_id", "level2_campaign_id"):
        campaign_id = getattr(row, field)
        if campaign_id is not None:
            try:
                coupons.get_campaign(session, tenant.id, campaign_id)
            except NotFound:
                raise InvalidInput(
                    f"{field}: no coupon campaign {campaign_id} in this tenant",
                    extra={"field": field},
                ) from None
    if "{code}" not in row.share_url:
        raise InvalidInput(
            "share_url must contain {code}, e.g. https://kopi.example/r/{code}",
            extra={"field": "share_url"},
        )
    _check_template(row.share_url, "share_url")
    texts = {k: v for k, v in (row.share_texts or {}).items() if v}
    if not (texts.get("id") or texts.get("en")):
        raise InvalidInput(
            "share_texts needs the text in id or en at least", extra={"field": "share_texts"}
        )
    for lang, text in texts.items():
        if lang not in LOCALES:
            raise InvalidInput(
                f"share_texts: unknown language {lang!r}; use id, ms or en",
                extra={"field": "share_texts"},
            )
        _check_template(str(text), f"share_texts.{lang}")
    row.share_texts = texts
    row.disposable_add = sorted({d.strip().lower() for d in row.disposable_add if d.strip()})
    row.disposable_remove = sorted({d.strip().lower() for d in row.disposable_remove if d.strip()})
    row.min_amount = Decimal(row.min_amount)
    row.updated_at = utcnow()
    if created:
        session.add(row)
    session.flush()
    after = {k: _jsonable(getattr(row, k)) for k in SETTING_FIELDS}
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="referrals.settings_changed",
        subject_type="program",
        subject_id=program.id,
        details={
            "before": None if created else before,
            "after": after,
        },
    )
    return row, created


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


# --------------------------------------------------------------------------- codes


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def code_of(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> ReferralCode | None:
    return session.execute(
        select(ReferralCode).where(
            ReferralCode.tenant_id == tenant_id, ReferralCode.member_id == member_id
        )
    ).scalar_one_or_none()


def ensure_code(session: Session, tenant_id: uuid.UUID, member: Member) -> ReferralCode:
    """The member's personal code, made on first ask (a concurrent first ask loses on the
    unique key and the entry point's retry finds the winner's code)."""
    if member.status != "active":
        raise ReferralMemberNotActive(
            f"member {member.id} is {member.status}; its referral code can no longer be used"
        )
    found = code_of(session, tenant_id, member.id)
    if found is not None:
        return found
    for _ in range(20):
        candidate = _new_code()
        taken = session.execute(
            select(ReferralCode.id).where(
                ReferralCode.tenant_id == tenant_id, ReferralCode.code == candidate
            )
        ).first()
        if taken is None:
            break
    else:  # pragma: no cover - 31^7 codes
        raise Conflict("could not find a free referral code; try again")
    row = ReferralCode(
        id=new_id(), tenant_id=tenant_id, member_id=member.id, code=candidate, created_at=utcnow()
    )
    session.add(row)
    session.flush()
    return row


def find_code(
    session: Session, tenant_id: uuid.UUID, raw: str, *, field: str = "referral_code"
) -> ReferralCode:
    """The code's row; ``field`` names the request field that gave it, for the problem."""
    code = normalize_code(raw)
    row = (
        session.execute(
            select(ReferralCode).where(
                ReferralCode.tenant_id == tenant_id, ReferralCode.code == code
            )
        ).scalar_one_or_none()
        if code
        else None
    )
    if row is None:
        raise ReferralCodeNotFound(
            f"no member of this business has the referral code {raw!r}; check the spelling",
            extra={"field": field},
        )
    return row


def share_link(settings: ReferralSettings, code: str) -> str:
    return settings.share_url.replace("{code}", quote(code))


def share_texts(
    settings: ReferralSettings, program: Program, member: Member, code: str
) -> dict[str, str]:
    link = share_link(settings, code)
    values = {"code": code, "link": link, "program": program.name, "name": member.name or ""}
    texts = settings.share_texts or DEFAULT_SHARE_TEXTS
    out: dict[str, str] = {}
    for lang in LOCALES:
        text = pick(texts, lang)
        if text:
            out[lang] = _fill(text, values)
    return out


def _fill(text: str, values: dict[str, str]) -> str:
    """The placeholders of a share text replaced as they are, nothing else of ``format``
    (a text saved before ``_check_template`` refused specs is filled safely too; anything
    it cannot read is left as written)."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return text
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if name in values and not spec and not conversion:
            out.append(values[name])
        else:  # written back as it was, unfilled
            out.append(_as_written(name, spec, conversion))
    return "".join(out)


def record_share(
    session: Session,
    tenant_id: uuid.UUID,
    member: Member,
    *,
    channel: str,
    device_id: str | None,
) -> int:
    if member.status != "active":
        raise ReferralMemberNotActive(f"member {member.id} is {member.status}")
    if channel not in SHARE_CHANNELS:
        raise InvalidInput(
            f"channel must be one of {', '.join(SHARE_CHANNELS)}", extra={"field": "channel"}
        )
    session.add(
        ReferralShare(
            id=new_id(),
            tenant_id=tenant_id,
            member_id=member.id,
            channel=channel,
            device_id=device_id,
            created_at=utcnow(),
        )
    )
    session.flush()
    return int(
        session.execute(
            select(func.count())
            .select_from(ReferralShare)
            .where(ReferralShare.tenant_id == tenant_id, ReferralShare.member_id == member.id)
        ).scalar_one()
    )


# --------------------------------------------------------------------------- sign-up


def _decide(
    session: Session,
    referral: Referral,
    to_status: str,
    *,
    actor: str,
    reason: str,
    from_status: str | None = None,
    at: datetime | None = None,
) -> None:
    session.add(
        ReferralDecision(
            id=new_id(),
            tenant_id=referral.tenant_id,
            referral_id=referral.id,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason[:500],
            created_at=at or utcnow(),
        )
    )


def _payload(r: Referral) -> dict[str, Any]:
    return {
        "referral_id": str(r.id),
        "program_id": str(r.program_id),
        "referrer_id": str(r.referrer_id),
        "referee_id": str(r.referee_id),
        "code": r.code,
        "status": r.status,
    }


def _referrer_devices(session: Session, tenant_id: uuid.UUID, referrer: Member) -> set[str]:
    devices: set[str] = set()
    attr = (referrer.attributes or {}).get("device_id")
    if isinstance(attr, str) and attr:
        devices.add(attr)
    devices |= {
        d
        for d in session.execute(
            select(ReferralShare.device_id).where(
                ReferralShare.tenant_id == tenant_id,
                ReferralShare.member_id == referrer.id,
                ReferralShare.device_id.is_not(None),
            )
        ).scalars()
        if d
    }
    devices |= {
        d
        for d in session.execute(
            select(Referral.device_id).where(
                Referral.referee_id == referrer.id, Referral.device_id.is_not(None)
            )
        ).scalars()
        if d
    }
    return devices


def _check_self(
    session: Session,
    tenant_id: uuid.UUID,
    referrer: Member,
    referee: Member,
    device_id: str | None,
) -> None:
    if referrer.id == referee.id:
        raise SelfReferral("a member cannot use their own referral code", extra={"match": "member"})
    if _digits(referrer.phone) and _digits(referrer.phone) == _digits(referee.phone):
        raise SelfReferral(
            "the new member has the referrer's phone number", extra={"match": "phone"}
        )
    if canonical_email(referrer.email) and canonical_email(referrer.email) == canonical_email(
        referee.email
    ):
        raise SelfReferral(
            "the new member has the referrer's email address", extra={"match": "email"}
        )
    if device_id and device_id in _referrer_devices(session, tenant_id, referrer):
        raise SelfReferral(
            "the new member signed up on the referrer's own device", extra={"match": "device"}
        )


def attach(
    session: Session,
    tenant: Tenant,
    program: Program,
    referee: Member,
    raw_code: str,
    *,
    device_id: str | None = None,
    actor: str,
    source: str = "api",
    now: datetime | None = None,
    code_field: str = "referral_code",
) -> tuple[Referral, bool]:
    """Link a new member to the owner of ``raw_code``. Idempotent: the same member with the
    same code returns the referral already made (``created`` False). Every guard raises
    before anything is written. A burst on one code is accepted but held for review; the
    sign-ups of a burst a person already decided on keep that decision."""
    now = now or utcnow()
    settings = get_settings(session, program.id)
    if settings is None or not settings.enabled:
        raise ReferralsDisabled(
            f"the program {program.name!r} has no active referral program; "
            "enable it with PUT /v1/referrals/settings"
        )
    code = find_code(session, tenant.id, raw_code, field=code_field)
    existing = session.execute(
        select(Referral).where(Referral.program_id == program.id, Referral.referee_id == referee.id)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.code_id == code.id:
            return existing, False
        raise AlreadyReferred(
            f"member {referee.id} was already referred with code {existing.code}",
            extra={"referral_id": str(existing.id)},
        )
    if referee.tenant_id != tenant.id:  # pragma: no cover - callers load the member by tenant
        raise ReferralCodeNotFound("unknown member")
    if referee.status != "active":
        raise ReferralMemberNotActive(f"member {referee.id} is {referee.status}")
    if _pg(session):
        # One sign-up at a time per code, so the velocity count below sees the others.
        session.execute(select(ReferralCode.id).where(ReferralCode.id == code.id).with_for_update())
    referrer = session.get(Member, code.member_id)
    assert referrer is not None
    if referrer.status != "active":
        raise ReferralCodeInactive(
            f"the referral code {code.code} belongs to a member who was {referrer.status}; "
            "it can no longer be used"
        )
    _check_self(session, tenant.id, referrer, referee, device_id)
    if is_disposable(referee.email, settings):
        raise DisposableEmail(
            "throwaway email addresses cannot sign up with a referral code; "
            "use a permanent address",
            extra={"field": "email"},
        )
    # A code given with the sign-up itself is always in time (so 0 days means "only then").
    late = now - timedelta(days=settings.attach_within_days)
    if source != "signup" and as_utc(referee.created_at) < late:
        raise AttachTooLate(
            f"a referral code can be added within {settings.attach_within_days} days of signing up",
            extra={"created_at": as_utc(referee.created_at).isoformat()},
        )
    bought = session.execute(
        select(Order.order_id).where(Order.tenant_id == tenant.id, Order.member_id == referee.id)
    ).first()
    if bought is not None:
        raise NotNewCustomer(
            f"member {referee.id} already made a purchase; referral codes are for new customers"
        )
    if device_id:
        reused = session.execute(
            select(Referral.id).where(Referral.code_id == code.id, Referral.device_id == device_id)
        ).first()
        if reused is not None:
            raise DeviceReused(
                "another member already signed up with this code on this device",
                extra={"match": "device"},
            )
    window_start = now - timedelta(minutes=settings.velocity_minutes)
    recent = list(
        session.execute(
            select(Referral).where(Referral.code_id == code.id, Referral.created_at >= window_start)
        ).scalars()
    )
    burst = len(recent) + 1 >= settings.velocity_count
    status, held_reason = "pending", None
    if burst:
        status, held_reason = "held", "velocity"
    elif settings.review_required:
        status, held_reason = "held", "review_required"
    referral = Referral(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=program.id,
        code_id=code.id,
        code=code.code,
        referrer_id=referrer.id,
        referee_id=referee.id,
        status=status,
        held_reason=held_reason,
        device_id=device_id,
        source=source,
        created_at=now,
        updated_at=now,
    )
    session.add(referral)
    session.flush()
    reason = f"signed up with code {code.code}"
    if held_reason == "velocity":
        reason = (
            f"{len(recent) + 1} sign-ups on code {code.code} within "
            f"{settings.velocity_minutes} minutes (limit {settings.velocity_count}): held for review"
        )
    elif held_reason:
        reason = "the program reviews every referral"
    _decide(session, referral, status, actor=actor, reason=reason, at=now)
    publish(session, tenant.id, "referral.created", _payload(referral))
    if burst:
        # The whole burst waits for a person, not only the sign-ups past the limit.
        for other in recent:
            if other.status == "pending" and other.decided_at is None:
                other.status, other.held_reason, other.updated_at = "held", "velocity", now
                _decide(
                    session,
                    other,
                    "held",
                    from_status="pending",
                    actor="system",
                    reason=f"part of a burst of sign-ups on code {code.code}",
                    at=now,
                )
                publish(session, tenant.id, "referral.held", _payload(other))
        publish(session, tenant.id, "referral.held", _payload(referral))
    session.flush()
    return referral, True


def attach_at_signup(
    session: Session,
    tenant: Tenant,
    member: Member,
    raw_code: str,
    *,
    device_id: str | None,
    actor: str,
    program_id: uuid.UUID | None = None,
) -> Referral:
    """The hook of member creation (``referral_code`` in ``POST /v1/members``)."""
    program = programs.get_program(session, tenant.id, program_id)
    referral, _ = attach(
        session,
        tenant,
        program,
        member,
        raw_code,
        device_id=device_id,
        actor=actor,
        source="signup",
    )
    return referral


# --------------------------------------------------------------------------- review


def get_referral(session: Session, tenant_id: uuid.UUID, referral_id: uuid.UUID) -> Referral:
    row = session.execute(
        select(Referral).where(Referral.id == referral_id, Referral.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if row is None:
        raise ReferralNotFound(f"referral {referral_id} not found")
    return row


def decisions(session: Session, referral_id: uuid.UUID) -> list[ReferralDecision]:
    return list(
        session.execute(
            select(ReferralDecision)
            .where(ReferralDecision.referral_id == referral_id)
            .order_by(ReferralDecision.id)
        ).scalars()
    )


def rewards_of(session: Session, referral_ids: Iterable[uuid.UUID]) -> list[ReferralReward]:
    ids = list(referral_ids)
    if not ids:
        return []
    return list(
        session.execute(
            select(ReferralReward)
            .where(ReferralReward.referral_id.in_(ids))
            .order_by(ReferralReward.id)
        ).scalars()
    )


def review(
    session: Session,
    tenant: Tenant,
    referral_id: uuid.UUID,
    *,
    approve: bool,
    reason: str,
    actor: str,
) -> tuple[Referral, bool]:
    """Approve (back to ``pending``: it qualifies like any other) or reject a held referral.
    Repeating the same decision returns the referral unchanged (``changed`` False)."""
    if not reason.strip():
        raise InvalidInput("say why (reason)", extra={"field": "reason"})
    stmt = select(Referral).where(Referral.id == referral_id, Referral.tenant_id == tenant.id)
    if _pg(session):
        stmt = stmt.with_for_update()
    referral = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if referral is None:
        raise ReferralNotFound(f"referral {referral_id} not found")
    target = "pending" if approve else "rejected"
    if referral.status != "held":
        already = referral.decided_at is not None and (
            (not approve and referral.status == "rejected")
            or (approve and referral.status in ("pending", "qualified", "rewarded", "cancelled"))
        )
        if already:
            return referral, False
        raise ReferralNotHeld(
            f"referral {referral.id} is {referral.status}; only held referrals are reviewed",
            extra={"referral_status": referral.status},
        )
    now = utcnow()
    referral.status = target
    referral.decided_by, referral.decided_at, referral.decision_reason = actor, now, reason
    referral.updated_at = now
    _decide(
        session,
        referral,
        target,
        from_status="held",
        actor=actor,
        reason=reason,
        at=now,
    )
    action = "referral.approved" if approve else "referral.rejected"
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action=action,
        subject_type="referral",
        subject_id=referral.id,
        details={"reason": reason, "held_reason": referral.held_reason},
    )
    publish(session, tenant.id, action, {**_payload(referral), "reason": reason})
    session.flush()
    return referral, True


def list_referrals(
    session: Session,
    tenant_id: uuid.UUID,
    program_id: uuid.UUID,
    *,
    status: str | None,
    member_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Referral]:
    stmt = (
        select(Referral)
        .where(Referral.tenant_id == tenant_id, Referral.program_id == program_id)
        .order_by(Referral.id)
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Referral.status == status)
    if member_id is not None:
        stmt = stmt.where(or_(Referral.referrer_id == member_id, Referral.referee_id == member_id))
    if after is not None:
        stmt = stmt.where(Referral.id > after)
    return list(session.execute(stmt).scalars())


# --------------------------------------------------------------------------- qualification


@dataclass
class JobReport:
    qualified: int = 0
    rewarded: int = 0
    cancelled: int = 0
    capped: int = 0
    points: int = 0
    coupons: int = 0
    errors: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


def due_query(settings: ReferralSettings, program: Program, now: datetime) -> Select[Any]:
    """Pending referrals whose referee has an order of at least ``min_amount`` whose return
    window has ended (the job decides there whether it still qualifies)."""
    cutoff = now - timedelta(days=program.pending_days)
    has_order = (
        select(Order.id)
        .where(
            Order.member_id == Referral.referee_id,
            Order.program_id == program.id,
            Order.currency == program.currency,
            Order.amount >= settings.min_amount,
            Order.occurred_at <= cutoff,
        )
        .exists()
    )
    return (
        select(Referral.id)
        .where(Referral.program_id == program.id, Referral.status == "pending", has_order)
        .order_by(Referral.id)
    )


def _first_order(
    session: Session, program: Program, settings: ReferralSettings, member_id: uuid.UUID
) -> Order | None:
    return session.execute(
        select(Order)
        .where(
            Order.member_id == member_id,
            Order.program_id == program.id,
            Order.currency == program.currency,
            Order.amount >= settings.min_amount,
        )
        .order_by(Order.occurred_at, Order.id)
        .limit(1)
    ).scalar_one_or_none()


def process(
    session: Session, referral_id: uuid.UUID, now: datetime, report: JobReport | None = None
) -> str | None:
    """Qualify (and reward) or cancel one pending referral whose order's window has ended.
    Re-reads the referral under its row lock: a second worker, a retried job or a replay
    finds it no longer pending, and the reward rows' unique key stops any second award."""
    report = report or JobReport()
    stmt = select(Referral).where(Referral.id == referral_id)
    if _pg(session):
        stmt = stmt.with_for_update()
    referral = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if referral is None or referral.status != "pending":
        return None
    program = session.get(Program, referral.program_id)
    tenant = session.get(Tenant, referral.tenant_id)
    assert program is not None
    assert tenant is not None
    settings = settings_of(session, program)
    order = _first_order(session, program, settings, referral.referee_id)
    if order is None or as_utc(order.occurred_at) + timedelta(days=program.pending_days) > now:
        return None
    referral.order_id, referral.order_amount = order.order_id, order.amount
    referral.updated_at = now
    net = order.amount - order.refunded_amount
    # Refunded below the minimum, or refunded in full (with a minimum of zero, "any first
    # purchase" still means one that was kept).
    if net < settings.min_amount or (order.refunded_amount > 0 and net <= 0):
        referral.status, referral.cancelled_reason = "cancelled", "order_refunded"
        _decide(
            session,
            referral,
            "cancelled",
            from_status="pending",
            actor="job",
            reason=f"order {order.order_id} was refunded inside its return window",
            at=now,
        )
        publish(
            session,
            tenant.id,
            "referral.cancelled",
            {**_payload(referral), "order_id": order.order_id},
        )
        report.cancelled += 1
        session.flush()
        return "cancelled"
    referral.status, referral.qualified_at = "qualified", now
    _decide(
        session,
        referral,
        "qualified",
        from_status="pending",
        actor="job",
        reason=f"order {order.order_id} passed its {program.pending_days}-day return window",
        at=now,
    )
    publish(
        session,
        tenant.id,
        "referral.qualified",
        {**_payload(referral), "order_id": order.order_id, "amount": str(order.amount)},
    )
    report.qualified += 1
    session.flush()
    rewards = _reward_all(session, tenant, program, settings, referral, now, report)
    given = [r for r in rewards if r.status == "given"]
    if given:
        referral.status, referral.rewarded_at = "rewarded", now
        _decide(
            session,
            referral,
            "rewarded",
            from_status="qualified",
            actor="job",
            reason=", ".join(f"{r.role}: {r.points} points" for r in given),
            at=now,
        )
        publish(
            session,
            tenant.id,
            "referral.rewarded",
            {
                **_payload(referral),
                "rewards": [
                    {
                        "member_id": str(r.member_id),
                        "role": r.role,
                        "points": r.points,
                        "coupon_id": str(r.coupon_id) if r.coupon_id else None,
                        "transfer_id": str(r.transfer_id) if r.transfer_id else None,
                    }
                    for r in given
                ],
            },
        )
        report.rewarded += 1
    session.flush()
    return referral.status


def _upline(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> uuid.UUID | None:
    """Who referred ``member_id`` (a qualified referral): the second level. One hop only."""
    row = session.execute(
        select(Referral.referrer_id).where(
            Referral.program_id == program_id,
            Referral.referee_id == member_id,
            Referral.status.in_(COUNTED),
        )
    ).first()
    return None if row is None else row[0]


def _capped(
    session: Session,
    tenant: Tenant,
    program: Program,
    settings: ReferralSettings,
    member_id: uuid.UUID,
    month: str,
) -> str | None:
    if settings.cap_per_month is None and settings.cap_lifetime is None:
        return None
    if _pg(session):
        # Serialise the rewards of one advocate so two workers cannot both pass the cap: a
        # lock on the advocate's code, a row only this domain locks (event ingestion never
        # waits on it); a survivor of a merge without a code of its own falls back to its
        # member row.
        locked = session.execute(
            select(ReferralCode.id)
            .where(ReferralCode.tenant_id == tenant.id, ReferralCode.member_id == member_id)
            .with_for_update()
        ).first()
        if locked is None:
            session.execute(select(Member.id).where(Member.id == member_id).with_for_update())
    base = select(func.count()).where(
        ReferralReward.program_id == program.id,
        ReferralReward.member_id == member_id,
        ReferralReward.role.in_(ADVOCATE_ROLES),
        ReferralReward.status == "given",
    )
    if settings.cap_lifetime is not None:
        total = int(session.execute(base).scalar_one())
        if total >= settings.cap_lifetime:
            return f"lifetime cap of {settings.cap_lifetime} reached"
    if settings.cap_per_month is not None:
        in_month = int(
            session.execute(base.where(ReferralReward.local_month == month)).scalar_one()
        )
        if in_month >= settings.cap_per_month:
            return f"monthly cap of {settings.cap_per_month} reached for {month}"
    return None


def _reward_all(
    session: Session,
    tenant: Tenant,
    program: Program,
    settings: ReferralSettings,
    referral: Referral,
    now: datetime,
    report: JobReport,
) -> list[ReferralReward]:
    month = local_month(now, tenant.timezone)
    plan: list[tuple[str, uuid.UUID, int, uuid.UUID | None]] = [
        ("referee", referral.referee_id, settings.referee_points, settings.referee_campaign_id),
        ("referrer", referral.referrer_id, settings.referrer_points, settings.referrer_campaign_id),
    ]
    if settings.level2_enabled:
        upline = _upline(session, program.id, referral.referrer_id)
        if upline is not None and upline not in (referral.referee_id, referral.referrer_id):
            plan.append(("level2", upline, settings.level2_points, settings.level2_campaign_id))
    out = []
    for role, member_id, points, campaign_id in plan:
        if points <= 0 and campaign_id is None:
            continue
        row = _reward(
            session,
            tenant,
            program,
            settings,
            referral,
            role,
            member_id,
            points,
            campaign_id,
            now=now,
            month=month,
            report=report,
        )
        if row is not None:
            out.append(row)
    return out


def _reward(
    session: Session,
    tenant: Tenant,
    program: Program,
    settings: ReferralSettings,
    referral: Referral,
    role: str,
    member_id: uuid.UUID,
    points: int,
    campaign_id: uuid.UUID | None,
    *,
    now: datetime,
    month: str,
    report: JobReport,
) -> ReferralReward | None:
    from setia.coupons import service as coupons

    found = session.execute(
        select(ReferralReward.id).where(
            ReferralReward.referral_id == referral.id, ReferralReward.role == role
        )
    ).first()
    if found is not None:
        return None
    member = session.get(Member, member_id)
    status, details = "given", {}
    if member is None or member.status != "active":
        status = "skipped"
        details["reason"] = f"member is {member.status if member else 'missing'}"
    elif role in ADVOCATE_ROLES and (
        cap := _capped(session, tenant, program, settings, member_id, month)
    ):
        status = "capped"
        details["reason"] = cap
        report.capped += 1
    row = ReferralReward(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=program.id,
        referral_id=referral.id,
        member_id=member_id,
        role=role,
        status=status,
        points=0,
        local_month=month,
        details=details,
        created_at=now,
    )
    # The row goes in first: its unique key (referral, role) is the award's exactly-once key.
    session.add(row)
    session.flush()
    if status != "given":
        return row
    if points > 0:
        ctx = ledger.Context(
            program_id=program.id,
            idempotency_key=f"referral:{referral.id}:{role}",
            request_hash=ledger.request_hash({"referral": str(referral.id), "role": role}),
            source_type="referral",
            source_id=str(referral.id),
            actor="job",
            program_revision=program.revision,
            effective_at=now,
            details={"referral_id": str(referral.id), "role": role},
        )
        res = ledger.earn(
            session,
            ctx,
            member_id=member_id,
            amount=points,
            earned_at=now,
            pending_until=None,
            expires_at=programs.expires_at(program, now, tenant.timezone),
        )
        row.points, row.transfer_id = points, res.transfer_id
        report.points += points
        publish(
            session,
            tenant.id,
            "points.earned",
            {
                "member_id": str(member_id),
                "program_id": str(program.id),
                "points": points,
                "order_id": None,
                "referral_id": str(referral.id),
                "pending_until": None,
            },
        )
    if campaign_id is not None:
        try:
            with session.begin_nested():
                coupon = coupons.issue_code(
                    session,
                    tenant_id=tenant.id,
                    campaign_id=campaign_id,
                    member_id=member_id,
                    source_type="referral",
                    source_id=f"{referral.id}:{role}",
                )
            row.coupon_id = coupon.id
            report.coupons += 1
        except SetiaError as exc:
            row.details = {**row.details, "coupon_error": exc.detail}
    session.flush()
    return row


# --------------------------------------------------------------------------- counts & funnel


# Built once, bound per call: an event asks when a rule reads member.referral_count.
_COUNTS = (
    select(Referral.referrer_id, func.count())
    .where(
        Referral.program_id == bindparam("program_id", type_=Uuid()),
        Referral.referrer_id.in_(bindparam("member_ids", expanding=True, type_=Uuid())),
        Referral.status.in_(COUNTED),
    )
    .group_by(Referral.referrer_id)
)


def referral_counts(
    session: Session, program_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Qualified referrals per referrer in one program (``member.referral_count``)."""
    ids = list(dict.fromkeys(member_ids))
    out = dict.fromkeys(ids, 0)
    if not ids:
        return out
    rows = session.execute(_COUNTS, {"program_id": program_id, "member_ids": ids})
    for member_id, n in rows:
        out[member_id] = int(n)
    return out


def referral_count(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> int:
    """Qualified referrals of a member in every program of the tenant (the member record)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Referral)
            .where(
                Referral.tenant_id == tenant_id,
                Referral.referrer_id == member_id,
                Referral.status.in_(COUNTED),
            )
        ).scalar_one()
    )


def _between(column: Any, lo: datetime | None, hi: datetime | None) -> list[Any]:
    conds = []
    if lo is not None:
        conds.append(column >= lo)
    if hi is not None:
        conds.append(column < hi)
    return conds


def _check_range(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise InvalidInput("from must not be after to", extra={"field": "from"})


def funnel(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    start: date | None = None,
    end: date | None = None,
    member_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Counts per stage, each stage counted by when it happened (shares when shared, sign-ups
    when made, qualified/rewarded/rejected/cancelled when decided); ``held`` and ``pending``
    are sign-ups of the period still in that state."""
    _check_range(start, end)
    lo, hi = local_bounds(start, end, tenant.timezone)
    base = [Referral.program_id == program.id]
    if member_id is not None:
        base.append(Referral.referrer_id == member_id)

    def count(*conds: Any) -> int:
        return int(
            session.execute(
                select(func.count()).select_from(Referral).where(*base, *conds)
            ).scalar_one()
        )

    share_conds = [
        ReferralShare.tenant_id == tenant.id,
        *_between(ReferralShare.created_at, lo, hi),
    ]
    if member_id is not None:
        share_conds.append(ReferralShare.member_id == member_id)
    shares = int(
        session.execute(
            select(func.count()).select_from(ReferralShare).where(*share_conds)
        ).scalar_one()
    )
    signups = count(*_between(Referral.created_at, lo, hi))
    qualified = count(Referral.qualified_at.is_not(None), *_between(Referral.qualified_at, lo, hi))
    rewarded = count(Referral.rewarded_at.is_not(None), *_between(Referral.rewarded_at, lo, hi))
    rejected = count(Referral.status == "rejected", *_between(Referral.decided_at, lo, hi))
    cancelled = count(Referral.status == "cancelled", *_between(Referral.updated_at, lo, hi))
    held = count(Referral.status == "held", *_between(Referral.created_at, lo, hi))
    pending = count(Referral.status == "pending", *_between(Referral.created_at, lo, hi))
    return {
        "program_id": str(program.id),
        "member_id": str(member_id) if member_id else None,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "timezone": tenant.timezone,
        "shares": shares,
        "signups": signups,
        "pending": pending,
        "held": held,
        "qualified": qualified,
        "rewarded": rewarded,
        "rejected": rejected,
        "cancelled": cancelled,
        "signups_per_share": round(signups / shares, 4) if shares else None,
        "qualified_per_signup": round(qualified / signups, 4) if signups else None,
    }


def top_advocates(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    start: date | None = None,
    end: date | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Members whose code brought the most qualified referrals in the period (sign-ups made in
    the period), with what their referees spent (orders net of refunds, in the period)."""
    _check_range(start, end)
    lo, hi = local_bounds(start, end, tenant.timezone)
    rows = session.execute(
        select(Referral.referrer_id, Referral.status, func.count())
        .where(Referral.program_id == program.id, *_between(Referral.created_at, lo, hi))
        .group_by(Referral.referrer_id, Referral.status)
    ).all()
    stats: dict[uuid.UUID, dict[str, int]] = {}
    for referrer_id, status, n in rows:
        s = stats.setdefault(referrer_id, {"signups": 0, "qualified": 0, "rewarded": 0})
        s["signups"] += int(n)
        if status in COUNTED:
            s["qualified"] += int(n)
        if status == "rewarded":
            s["rewarded"] += int(n)
    if not stats:
        return []
    spend_rows = session.execute(
        select(Referral.referrer_id, func.sum(Order.amount - Order.refunded_amount))
        .join(
            Order,
            and_(Order.member_id == Referral.referee_id, Order.program_id == Referral.program_id),
        )
        .where(
            Referral.program_id == program.id,
            Referral.status.in_(COUNTED),
            Referral.referrer_id.in_(list(stats)),
            *_between(Order.occurred_at, lo, hi),
        )
        .group_by(Referral.referrer_id)
    ).all()
    spend = {r: Decimal(v or 0) for r, v in spend_rows}
    ranked = sorted(
        stats,
        key=lambda m: (
            -stats[m]["qualified"],
            -spend.get(m, Decimal(0)),
            -stats[m]["signups"],
            str(m),
        ),
    )[:limit]
    members = {
        m.id: m for m in session.execute(select(Member).where(Member.id.in_(ranked))).scalars()
    }
    codes = {
        c.member_id: c.code
        for c in session.execute(
            select(ReferralCode).where(
                ReferralCode.tenant_id == tenant.id, ReferralCode.member_id.in_(ranked)
            )
        ).scalars()
    }
    out = []
    for rank, member_id in enumerate(ranked, start=1):
        m = members.get(member_id)
        out.append(
            {
                "rank": rank,
                "member_id": str(member_id),
                "name": m.name if m else None,
                "code": codes.get(member_id),
                **stats[member_id],
                "referee_spend": spend.get(member_id, Decimal(0)),
                "currency": program.currency,
            }
        )
    return out


# --------------------------------------------------------------------------- merge & erase


def on_merge(
    session: Session, tenant_id: uuid.UUID, source_id: uuid.UUID, survivor_id: uuid.UUID
) -> dict[str, int]:
    """Move a merged member's referrals, shares and rewards to the survivor. A referral of the
    source as referee in a program where the survivor was already referred stays on the
    source, cancelled (``merged_duplicate``); one whose two sides become the same member is
    cancelled (``self_referral``) unless it was already rewarded."""
    now = utcnow()
    moved = {"as_referrer": 0, "as_referee": 0, "cancelled": 0}
    session.flush()
    session.execute(
        update(ReferralShare)
        .where(ReferralShare.tenant_id == tenant_id, ReferralShare.member_id == source_id)
        .values(member_id=survivor_id)
    )
    session.execute(
        update(ReferralReward)
        .where(ReferralReward.tenant_id == tenant_id, ReferralReward.member_id == source_id)
        .values(member_id=survivor_id)
    )
    as_referrer = list(
        session.execute(
            select(Referral.id).where(
                Referral.tenant_id == tenant_id, Referral.referrer_id == source_id
            )
        ).scalars()
    )
    if as_referrer:
        session.execute(
            update(Referral)
            .where(Referral.id.in_(as_referrer))
            .values(referrer_id=survivor_id, updated_at=now)
        )
    moved["as_referrer"] = len(as_referrer)
    for r in session.execute(
        select(Referral).where(Referral.tenant_id == tenant_id, Referral.referee_id == source_id)
    ).scalars():
        taken = session.execute(
            select(Referral.id).where(
                Referral.program_id == r.program_id, Referral.referee_id == survivor_id
            )
        ).first()
        if taken is not None:
            if r.status in ("pending", "held"):
                _cancel(
                    session,
                    r,
                    "merged_duplicate",
                    "the member was merged into a member who was already referred",
                    now,
                )
                moved["cancelled"] += 1
            continue
        r.referee_id, r.updated_at = survivor_id, now
        moved["as_referee"] += 1
    session.flush()
    for r in session.execute(
        select(Referral).where(
            Referral.tenant_id == tenant_id,
            Referral.referrer_id == survivor_id,
            Referral.referee_id == survivor_id,
            Referral.status.in_(("pending", "held")),
        )
    ).scalars():
        _cancel(
            session,
            r,
            "self_referral",
            "after the merge the referrer and referee are the same member",
            now,
        )
        moved["cancelled"] += 1
    session.flush()
    return moved


def _cancel(session: Session, r: Referral, code: str, reason: str, now: datetime) -> None:
    before = r.status
    r.status, r.cancelled_reason, r.updated_at = "cancelled", code, now
    _decide(session, r, "cancelled", from_status=before, actor="system", reason=reason, at=now)
    publish(session, r.tenant_id, "referral.cancelled", _payload(r))


def on_erase(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> None:
    """Erasure keeps the referral rows (the books and the funnel need them) but drops what
    could identify a person: device ids. Codes are random and carry no personal data; a
    code of an erased member can no longer be used."""
    session.execute(
        update(Referral)
        .where(
            Referral.tenant_id == tenant_id,
            or_(Referral.referee_id == member_id, Referral.referrer_id == member_id),
        )
        .values(device_id=None)
    )
    session.execute(
        update(ReferralShare)
        .where(ReferralShare.tenant_id == tenant_id, ReferralShare.member_id == member_id)
        .values(device_id=None)
    )
    session.flush()


def export_member(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    """What the referrals domain holds about a member (right of access)."""
    code = code_of(session, tenant_id, member_id)
    rows = session.execute(
        select(Referral)
        .where(
            Referral.tenant_id == tenant_id,
            or_(Referral.referrer_id == member_id, Referral.referee_id == member_id),
        )
        .order_by(Referral.id)
    ).scalars()
    rewards = session.execute(
        select(ReferralReward)
        .where(ReferralReward.tenant_id == tenant_id, ReferralReward.member_id == member_id)
        .order_by(ReferralReward.id)
    ).scalars()
    return {
        "code": code.code if code else None,
        "referrals": [
            {
                "id": str(r.id),
                "role": "referrer" if r.referrer_id == member_id else "referee",
                "status": r.status,
                "code": r.code,
                "device_id": r.device_id if r.referee_id == member_id else None,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ],
        "rewards": [
            {
                "referral_id": str(w.referral_id),
                "role": w.role,
                "status": w.status,
                "points": w.points,
                "at": w.created_at.isoformat(),
            }
            for w in rewards
        ],
    }
