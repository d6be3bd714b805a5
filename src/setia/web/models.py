"""Staff users, their invite/reset tokens, browser sessions (staff and members), sign-in
attempts (for rate limiting) and the one-time codes of the member portal."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, new_id
from setia.core.time import utcnow

ROLES: tuple[str, ...] = ("owner", "admin", "marketer", "cashier", "analyst")


class StaffUser(Base):
    """A person who signs in to the console. Email is unique across Setia (one sign-in page).
    ``password_hash`` is an argon2 hash; None until the invite is accepted."""

    __tablename__ = "staff_users"
    __table_args__ = (UniqueConstraint("email"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(5), default="id")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    # invited -> active -> disabled
    status: Mapped[str] = mapped_column(String(10), default="invited")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)


class StaffToken(Base):
    """A one-use link token for an invite or a password reset; only its SHA-256 is stored."""

    __tablename__ = "staff_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    staff_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))  # invite | reset
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A signed-in browser: a staff user in the console or a member in the portal. The cookie
    holds a random token; only its SHA-256 is stored. ``csrf_token`` is sent back in forms."""

    __tablename__ = "web_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(8))  # staff | member
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    staff_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_users.id"), index=True, default=None
    )
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id"), index=True, default=None
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(5), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class SignInAttempt(Base):
    """One try to sign in (password or one-time code), by key (``staff:<email>``,
    ``ip:<address>``, ``member:<id>``...), for rate limiting across workers."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (Index("ix_sign_in_attempts_key_at", "key", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(default=False)


class PortalCode(Base):
    """A one-time sign-in code for the member portal, sent by email or WhatsApp (through the
    outbox). Only a hash of the code is stored; it dies after its expiry or 5 wrong tries."""

    __tablename__ = "portal_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | whatsapp
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(default=None)
