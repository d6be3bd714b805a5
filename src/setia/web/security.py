"""Passwords, link tokens, browser sessions, CSRF tokens and sign-in rate limits.

- Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with older
  parameters is upgraded at the next successful sign-in.
- Session cookies, invite/reset links and portal codes are random; only their SHA-256 digest
  is stored, so a stolen database holds no usable secret.
- Every session has its own CSRF token, sent back in a hidden ``csrf_token`` form field or an
  ``X-CSRF-Token`` header (htmx); before sign-in a double-submit cookie does the same job.
- Failed sign-ins are counted per key (``staff:<email>``, ``ip:<address>``, ``member:<id>``)
  in the database, so the limit holds across workers and restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from setia.core.time import utcnow
from setia.web.models import SignInAttempt, WebSession

STAFF_SESSION_HOURS = 12
MEMBER_SESSION_DAYS = 30
# A session idle for longer than this must sign in again (staff only; members stay signed in).
STAFF_IDLE_MINUTES = 120
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches; spends the same argon2 time when there is no hash, so
    the answer time does not tell whether an email is known."""
    if not stored:
        with contextlib.suppress(VerificationError, InvalidHashError):
            _hasher.verify(_DUMMY, password + "x")
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


_DUMMY = _hasher.hash("setia-dummy-password")


def password_problem(password: str, *, email: str = "") -> str | None:
    """Why a new password is refused (English msgid for the console's catalogs), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "Use at least 10 characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    if email and password.lower() == email.lower():
        return "Do not use your email address as the password."
    return None


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --- sessions ---------------------------------------------------------------------------


@dataclass
class NewSession:
    row: WebSession
    token: str  # goes in the cookie; never stored


def start_session(
    session: Session,
    *,
    kind: str,
    tenant_id: uuid.UUID,
    staff_user_id: uuid.UUID | None = None,
    member_id: uuid.UUID | None = None,
    locale: str | None = None,
    now: datetime | None = None,
) -> NewSession:
    now = now or utcnow()
    token = new_token()
    lifetime = (
        timedelta(hours=STAFF_SESSION_HOURS)
        if kind == "staff"
        else timedelta(days=MEMBER_SESSION_DAYS)
    )
    row = WebSession(
        kind=kind,
        digest=digest(token),
        tenant_id=tenant_id,
        staff_user_id=staff_user_id,
        member_id=member_id,
        csrf_token=new_token(24),
        locale=locale,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return NewSession(row, token)


def find_session(
    session: Session, token: str | None, kind: str, now: datetime | None = None
) -> WebSession | None:
    """The live session for a cookie value, touched (last seen); None when unknown, revoked,
    expired or (staff) idle too long."""
    if not token:
        return None
    now = now or utcnow()
    row = session.scalars(
        select(WebSession).where(WebSession.digest == digest(token), WebSession.kind == kind)
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if kind == "staff" and now - row.last_seen_at > timedelta(minutes=STAFF_IDLE_MINUTES):
        return None
    if now - row.last_seen_at > timedelta(minutes=1):
        row.last_seen_at = now
    return row


def end_session(session: Session, row: WebSession, now: datetime | None = None) -> None:
    row.revoked_at = now or utcnow()


def end_sessions_of(
    session: Session,
    *,
    staff_user_id: uuid.UUID | None = None,
    member_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> int:
    """Revoke every live session of a staff user (password reset, disabled) or a member
    (erased, merged away)."""
    stmt = update(WebSession).where(WebSession.revoked_at.is_(None))
    if staff_user_id is not None:
        stmt = stmt.where(WebSession.staff_user_id == staff_user_id)
    elif member_id is not None:
        stmt = stmt.where(WebSession.member_id == member_id)
    else:
        raise ValueError("give staff_user_id or member_id")
    result = session.execute(stmt.values(revoked_at=now or utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


# --- rate limiting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    failures: int
    window: timedelta


# 5 wrong passwords per account in 15 minutes; 30 per address (a shared office NAT).
ACCOUNT_LIMIT = Limit(5, timedelta(minutes=15))
ADDRESS_LIMIT = Limit(30, timedelta(minutes=15))


def blocked(session: Session, key: str, limit: Limit, now: datetime | None = None) -> bool:
    """True when ``key`` has had ``limit.failures`` failed attempts within the window since
    its last success."""
    now = now or utcnow()
    since = now - limit.window
    last_ok = session.scalar(
        select(func.max(SignInAttempt.at)).where(
            SignInAttempt.key == key, SignInAttempt.success.is_(True), SignInAttempt.at >= since
        )
    )
    start = max(since, last_ok) if last_ok is not None else since
    failures = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.key == key, SignInAttempt.success.is_(False), SignInAttempt.at > start)
    )
    return int(failures or 0) >= limit.failures


def record_attempt(
    session: Session, key: str, *, success: bool, now: datetime | None = None
) -> None:
    session.add(SignInAttempt(key=key, success=success, at=now or utcnow()))


def prune_attempts(session: Session, older_than: timedelta = timedelta(days=1)) -> int:
    result = session.execute(delete(SignInAttempt).where(SignInAttempt.at < utcnow() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
