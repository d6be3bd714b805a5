"""Staff users of the console: create, invite, accept an invite, reset a password, sign in,
change a role, disable.

Services never commit; the console's entry points do. Rules kept here (so the console and
the CLI agree): only an owner invites, changes or disables an owner (or makes someone one);
nobody changes their own role or disables themself; the last active owner of a tenant
cannot be demoted or disabled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from setia.core.time import utcnow
from setia.web import security
from setia.web.models import ROLES, StaffToken, StaffUser

INVITE_DAYS = 7
RESET_HOURS = 1


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"{email!r} is not an email address: {exc}", code="invalid_email"
        ) from None


def find_by_email(session: Session, email: str) -> StaffUser | None:
    return session.scalars(
        select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower())
    ).first()


@dataclass
class NewStaff:
    user: StaffUser
    invite_token: str | None  # the invite link's secret, shown once; None when a password was set


def create_user(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    email: str,
    role: str,
    name: str = "",
    locale: str = "id",
    password: str | None = None,
) -> NewStaff:
    """A staff user: active with ``password`` (the CLI, the demo), else invited (a link token
    is returned for the invite)."""
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; use one of {', '.join(ROLES)}", code="invalid_role"
        )
    address = normalize_email(email)
    if find_by_email(session, address) is not None:
        raise Conflict(
            f"a staff user with email {address} already exists", code="staff_email_taken"
        )
    user = StaffUser(
        tenant_id=tenant_id, email=address, role=role, name=name.strip(), locale=locale
    )
    token: str | None = None
    if password is not None:
        problem = security.password_problem(password, email=address)
        if problem:
            raise InvalidInput(problem, code="weak_password")
        user.password_hash = security.hash_password(password)
        user.status = "active"
    session.add(user)
    session.flush()
    if password is None:
        token = issue_token(session, user, "invite")
    return NewStaff(user, token)


def issue_token(
    session: Session, user: StaffUser, purpose: str, *, now: datetime | None = None
) -> str:
    """A one-use link token (``invite``: 7 days, ``reset``: 1 hour); earlier unused tokens of
    the same purpose stop working. Returns the secret for the link (only its digest is kept)."""
    now = now or utcnow()
    lifetime = timedelta(days=INVITE_DAYS) if purpose == "invite" else timedelta(hours=RESET_HOURS)
    for old in session.scalars(
        select(StaffToken).where(
            StaffToken.staff_user_id == user.id,
            StaffToken.purpose == purpose,
            StaffToken.used_at.is_(None),
        )
    ):
        old.used_at = now
    token = security.new_token()
    session.add(
        StaffToken(
            staff_user_id=user.id,
            purpose=purpose,
            digest=security.digest(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return token


def find_token(
    session: Session, token: str, purpose: str, *, now: datetime | None = None
) -> tuple[StaffToken, StaffUser] | None:
    """The live token (unused, unexpired) and its user, or None."""
    now = now or utcnow()
    row = session.scalars(
        select(StaffToken).where(
            StaffToken.digest == security.digest(token), StaffToken.purpose == purpose
        )
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    user = session.get(StaffUser, row.staff_user_id)
    if user is None or user.status == "disabled":
        return None
    if purpose == "invite" and user.status != "invited":
        return None
    return row, user


def set_password(user: StaffUser, password: str) -> None:
    problem = security.password_problem(password, email=user.email)
    if problem:
        raise InvalidInput(problem, code="weak_password")
    user.password_hash = security.hash_password(password)
    user.updated_at = utcnow()


def use_token(
    session: Session,
    row: StaffToken,
    user: StaffUser,
    *,
    password: str,
    name: str | None = None,
    now: datetime | None = None,
) -> None:
    """Accept an invite (``name`` and a password; the user becomes active) or finish a reset
    (a new password; every session of the user is revoked). The token is spent."""
    now = now or utcnow()
    set_password(user, password)
    if name is not None:
        user.name = name.strip()
    row.used_at = now
    if row.purpose == "invite":
        user.status = "active"
    else:
        security.end_sessions_of(session, staff_user_id=user.id, now=now)
    audit.record(
        session,
        tenant_id=user.tenant_id,
        actor=f"staff:{user.id}",
        action="staff.invite_accepted" if row.purpose == "invite" else "staff.password_reset",
        subject_type="staff_user",
        subject_id=user.id,
        details={"email": user.email},
    )
    session.flush()


def list_users(session: Session, tenant_id: uuid.UUID) -> list[StaffUser]:
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.tenant_id == tenant_id)
            .order_by(StaffUser.status, StaffUser.email)
        )
    )


def get_user(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"staff user {user_id} not found", code="staff_not_found")
    return user


def active_owners(session: Session, tenant_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(
                StaffUser.tenant_id == tenant_id,
                StaffUser.role == "owner",
                StaffUser.status == "active",
            )
        )
        or 0
    )


def check_may_invite(actor: StaffUser | None, role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; use one of {', '.join(ROLES)}", code="invalid_role"
        )
    if role == "owner" and actor is not None and actor.role != "owner":
        raise Forbidden("only an owner may invite an owner", code="owner_only")


def change_role(session: Session, actor: StaffUser | None, user: StaffUser, role: str) -> bool:
    """Give ``user`` another role; False when it already had it. ``actor`` None: the operator
    (CLI), bound only by the last-owner rule."""
    check_may_invite(actor, role)
    if role == user.role:
        return False
    if actor is not None:
        if actor.id == user.id:
            raise Conflict("you cannot change your own role", code="self")
        if user.role == "owner" and actor.role != "owner":
            raise Forbidden("only an owner may change an owner", code="owner_only")
    if (
        user.role == "owner"
        and user.status == "active"
        and active_owners(session, user.tenant_id) <= 1
    ):
        raise Conflict("a tenant keeps at least one active owner", code="last_owner")
    before = user.role
    user.role = role
    user.updated_at = utcnow()
    audit.record(
        session,
        tenant_id=user.tenant_id,
        actor=f"staff:{actor.id}" if actor else "cli",
        action="staff.role_changed",
        subject_type="staff_user",
        subject_id=user.id,
        details={"email": user.email, "before": before, "after": role},
    )
    session.flush()
    return True


def set_enabled(session: Session, actor: StaffUser | None, user: StaffUser, enabled: bool) -> bool:
    """Disable (sessions revoked at once) or enable again (active with a password, else back
    to invited); False when nothing changed."""
    if actor is not None:
        if actor.id == user.id:
            raise Conflict("you cannot disable yourself", code="self")
        if user.role == "owner" and actor.role != "owner":
            raise Forbidden("only an owner may change an owner", code="owner_only")
    status = ("active" if user.password_hash else "invited") if enabled else "disabled"
    if status == user.status:
        return False
    if (
        not enabled
        and user.role == "owner"
        and user.status == "active"
        and active_owners(session, user.tenant_id) <= 1
    ):
        raise Conflict("a tenant keeps at least one active owner", code="last_owner")
    user.status = status
    user.updated_at = utcnow()
    if not enabled:
        security.end_sessions_of(session, staff_user_id=user.id)
    audit.record(
        session,
        tenant_id=user.tenant_id,
        actor=f"staff:{actor.id}" if actor else "cli",
        action="staff.enabled" if enabled else "staff.disabled",
        subject_type="staff_user",
        subject_id=user.id,
        details={"email": user.email},
    )
    session.flush()
    return True
