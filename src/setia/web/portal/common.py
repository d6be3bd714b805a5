"""What the portal's pages share: the tenant from the URL, the language before sign-in, the
member's program, safe ``next`` targets and the cookies the portal sets."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy.orm import Session

from setia.core.time import utcnow
from setia.ledger import queries as ledger_queries
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.web import i18n
from setia.web.deps import LANG_COOKIE, WebContext, anon_csrf, parse_uuid, set_cookie
from setia.web.templating import qr_svg

# Remembers which shop's portal this browser used, so an expired session (or /portal) can
# send the member back to the right sign-in page. Not a secret: a tenant id is in the link.
TENANT_COOKIE = "setia_portal_tenant"
YEAR = 365 * 24 * 3600
EXPIRING_DAYS = 30  # as the API's balance: points expiring within 30 days


def find_tenant(session: Session, tenant_id: str) -> Tenant | None:
    ident = parse_uuid(tenant_id)
    return session.get(Tenant, ident) if ident is not None else None


def anon_web(request: Request, session: Session, tenant: Tenant) -> WebContext:
    """The context of a page before sign-in: the shop, the language (``?lang=``, then the
    language the browser chose before, then the shop's) and the pre-sign-in CSRF token."""
    token = anon_csrf(request)
    asked = request.query_params.get("lang")
    lang = i18n.choose_locale(asked, request.cookies.get(LANG_COOKIE), tenant.locale)
    if asked and asked[:2].lower() in i18n.LOCALES:
        set_cookie(request, LANG_COOKIE, lang, path="/", max_age=YEAR)
    web = WebContext(
        session=session,
        tenant=tenant,
        web_session=None,
        lang=lang,
        tz=tenant.timezone,
        csrf_token=token,
    )
    request.state.web = web
    if request.cookies.get(TENANT_COOKIE) != str(tenant.id):
        set_cookie(request, TENANT_COOKIE, str(tenant.id), path="/portal", max_age=YEAR)
    return web


def safe_next(value: str | None, default: str = "/portal") -> str:
    """Only a path inside the portal (no other site, no scheme)."""
    value = (value or "").strip()
    if (
        value.startswith("/portal")
        and not value.startswith("//")
        and "\\" not in value
        and "\n" not in value
        and "\r" not in value
    ):
        return value
    return default


def program_of(web: WebContext) -> Program:
    """The shop's default program (the one the portal shows)."""
    return programs.get_program(web.session, web.tenant.id, None)


def member_id(web: WebContext) -> uuid.UUID:
    assert web.member is not None
    return web.member.id


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def portal_balance(session: Session, program_id: uuid.UUID, member: uuid.UUID) -> dict[str, Any]:
    """What the home page shows of ``ledger.queries.balance``: available, held, pending with
    dates and expiring soon with dates (without the lifetime totals it does not show)."""
    return ledger_queries.balance(
        session, program_id, member, now=utcnow(), soon_days=EXPIRING_DAYS, lifetime=False
    )


@lru_cache(maxsize=4096)
def member_qr(ident: uuid.UUID) -> Markup:
    """The member card's QR code (``setia:member:<id>``, what the cashier page scans); drawn
    once per member and process."""
    return qr_svg(f"setia:member:{ident}")
