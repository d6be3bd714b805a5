"""Staff users of the console: create, invite, accept an invite, reset a password, sign in.

Services never commit; the console's entry points do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.errors import Conflict, InvalidInput
from setia.core.time import utcnow
from setia.web import security
from setia.web.models import ROLES, StaffUser


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
        from setia.web.models import StaffToken

        token = security.new_token()
        from datetime import timedelta

        session.add(
            StaffToken(
                staff_user_id=user.id,
                purpose="invite",
                digest=security.digest(token),
                expires_at=utcnow() + timedelta(days=7),
            )
        )
        session.flush()
    return NewStaff(user, token)
