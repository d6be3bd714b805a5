"""Tenants (businesses) and their API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError
from sqlalchemy import String, bindparam, select, update
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.errors import InvalidInput, NotFound, Unauthorized
from setia.core.money import MoneyError, check_currency
from setia.core.time import utcnow, zone
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import ApiKey, Tenant

SCOPES = ("admin", "pos", "read")
LOCALES = ("id", "ms", "en")
# What each scope may do. ``pos`` records events, looks members up and redeems.
SCOPE_GRANTS = {"admin": {"admin", "pos", "read"}, "pos": {"pos", "read"}, "read": {"read"}}


@dataclass
class NewTenant:
    tenant: Tenant
    program: Program
    key: ApiKey
    secret: str


def _digest(secret: str) -> str:
    # API keys carry 256 random bits, so a fast hash is safe here (unlike passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_country(country: str) -> str:
    country = country.strip().upper()
    if len(country) != 2 or country not in Locale("en").territories:
        raise InvalidInput(f"unknown country {country!r}; use an ISO 3166 code such as ID or MY")
    return country


def create_tenant(
    session: Session,
    *,
    name: str,
    country: str,
    currency: str,
    timezone: str,
    locale: str | None = None,
    points_name: str | None = None,
) -> NewTenant:
    if not name.strip():
        raise InvalidInput("the tenant name must not be empty")
    country = validate_country(country)
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        zone(timezone)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    locale = locale or {"ID": "id", "MY": "ms"}.get(country, "en")
    if locale not in LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(LOCALES)}")
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError):
        raise InvalidInput(f"unknown locale {locale!r}") from None
    tenant = Tenant(
        name=name.strip(), country=country, currency=currency, timezone=timezone, locale=locale
    )
    session.add(tenant)
    session.flush()
    program = programs.create_program(
        session,
        tenant,
        name=f"{tenant.name} Rewards",
        points_name=points_name or {"id": "Poin", "ms": "Mata"}.get(locale, "Points"),
        currency=currency,
        is_default=True,
        actor="setup",
    )
    key, secret = create_key(session, tenant.id, scope="admin", name="initial admin key")
    return NewTenant(tenant=tenant, program=program, key=key, secret=secret)


def get_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def update_tenant(
    session: Session, tenant_id: uuid.UUID, changes: dict[str, object], *, actor: str
) -> Tenant:
    tenant = get_tenant(session, tenant_id)
    if changes.get("timezone") is not None:
        try:
            zone(str(changes["timezone"]))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    if changes.get("locale") is not None and changes["locale"] not in LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(LOCALES)}")
    before = {k: getattr(tenant, k) for k in changes}
    for k, v in changes.items():
        if v is None:
            raise InvalidInput(f"{k} cannot be null")
        setattr(tenant, k, v)
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="tenant.updated",
        subject_type="tenant",
        subject_id=tenant.id,
        details={"before": before, "after": changes},
    )
    session.flush()
    return tenant


def create_key(
    session: Session, tenant_id: uuid.UUID, *, scope: str, name: str = ""
) -> tuple[ApiKey, str]:
    """Create an API key; the secret is returned once and only its digest is stored."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
    get_tenant(session, tenant_id)
    secret = f"sk_{scope}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        tenant_id=tenant_id, scope=scope, name=name, prefix=secret[:12], digest=_digest(secret)
    )
    session.add(key)
    session.flush()
    return key, secret


def list_keys(session: Session, tenant_id: uuid.UUID) -> list[ApiKey]:
    return list(
        session.execute(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id)
        ).scalars()
    )


def revoke_key(session: Session, key_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or (tenant_id is not None and key.tenant_id != tenant_id):
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    session.flush()
    return key


# Built once, bound per request (every API call authenticates).
_KEY_AND_TENANT = (
    select(ApiKey, Tenant)
    .join(Tenant, Tenant.id == ApiKey.tenant_id)
    .where(ApiKey.digest == bindparam("digest", type_=String()))
)


def authenticate(session: Session, secret: str) -> tuple[Tenant, ApiKey]:
    row = session.execute(_KEY_AND_TENANT, {"digest": _digest(secret)}).first()
    if row is None or row[0].revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    key, tenant = row
    now = utcnow()
    # Touch last_used_at at most once a minute: it is for operators, not for accounting.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return tenant, key
