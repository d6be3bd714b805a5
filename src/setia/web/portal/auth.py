"""Member portal sign-in by one-time code (email or WhatsApp, through the outbox), sign-out,
language switch.

The member types a phone number (any local format, read with the shop's country) or an email
address. If a member of this shop has it, a 6-digit code valid for 10 minutes is queued in the
outbox (``portal.sign_in_code``, by WhatsApp for a phone, by email for an address, in the
member's language) and written to the server log (logger ``setia.portal``, WARNING), which is
how the demo delivers it. The page says the same whether or not the member exists.

Limits: 3 codes per member per 15 minutes; 5 wrong tries kill a code; per network address,
10 code requests and 20 wrong codes per 15 minutes.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from setia.core.api import get_session
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.members import service as members
from setia.members.models import Member
from setia.outbox.service import publish
from setia.tenants.models import Tenant
from setia.web import i18n, security
from setia.web.deps import (
    ANON_CSRF_COOKIE,
    LANG_COOKIE,
    MEMBER_COOKIE,
    AnonForm,
    MemberWeb,
    PortalForm,
    WebForbidden,
    flash,
    parse_uuid,
    set_cookie,
)
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.models import PortalCode
from setia.web.portal.common import (
    TENANT_COOKIE,
    YEAR,
    anon_web,
    client_address,
    find_tenant,
    safe_next,
)
from setia.web.templating import render, translate

router = APIRouter(include_in_schema=False)
log = logging.getLogger("setia.portal")

SessionDep = Annotated[Session, Depends(get_session)]

CODE_DIGITS = 6
CODE_MINUTES = 10
MAX_WRONG_TRIES = 5
MEMBER_CODES = security.Limit(3, timedelta(minutes=15))
SEND_LIMIT = security.Limit(10, timedelta(minutes=15))
CODE_LIMIT = security.Limit(20, timedelta(minutes=15))
TOPIC = "portal.sign_in_code"


def code_digest(member_id: uuid.UUID, code: str) -> str:
    """What is stored for a code: bound to its member, so a code is worth nothing for another."""
    return security.digest(f"portal-code:{member_id}:{code}")


def _mask(value: str) -> str:
    if "@" in value:
        name, _, domain = value.partition("@")
        return f"{name[:2]}***@{domain}"
    return value[:5] + "*" * max(0, len(value) - 9) + value[-4:]


def find_by_login(session: Session, tenant: Tenant, login: str) -> tuple[Member | None, str, str]:
    """(member or None, channel, normalised address); raises ``InvalidPhone`` /
    ``InvalidEmail`` when the text is neither."""
    if "@" in login:
        email = members.normalize_email(login)
        return members.find_member(session, tenant, email=email), "email", email
    phone = members.normalize_phone(login, tenant.country)
    return members.find_member(session, tenant, phone=phone), "whatsapp", phone


def send_code(
    session: Session, tenant: Tenant, member: Member, channel: str, to: str
) -> PortalCode:
    """Make a code for ``member``, queue it in the outbox and log it (the demo's delivery)."""
    now = utcnow()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = PortalCode(
        tenant_id=tenant.id,
        member_id=member.id,
        channel=channel,
        digest=code_digest(member.id, code),
        created_at=now,
        expires_at=now + timedelta(minutes=CODE_MINUTES),
        attempts=0,
    )
    session.add(row)
    session.flush()
    lang = i18n.choose_locale(member.locale, tenant.locale)
    message = translate(
        lang,
        "%(code)s is your sign-in code for %(shop)s. It works for 10 minutes. Never share it with anyone.",
        code=code,
        shop=tenant.name,
    )
    publish(
        session,
        tenant.id,
        TOPIC,
        {
            "member_id": str(member.id),
            "channel": channel,
            "to": to,
            "locale": lang,
            "code": code,
            "message": message,
            "expires_at": row.expires_at.isoformat(),
        },
    )
    log.warning(
        "Portal sign-in code for %s at %s: %s (member %s, by %s; valid %d minutes)",
        _mask(to),
        tenant.name,
        code,
        member.id,
        channel,
        CODE_MINUTES,
    )
    return row


def _codes_lately(session: Session, member_id: uuid.UUID) -> int:
    since = utcnow() - MEMBER_CODES.window
    return int(
        session.scalar(
            select(func.count())
            .select_from(PortalCode)
            .where(PortalCode.member_id == member_id, PortalCode.created_at >= since)
        )
        or 0
    )


def _signed_in(session: Session, request: Request, tenant: Tenant) -> bool:
    row = security.find_session(session, request.cookies.get(MEMBER_COOKIE), "member")
    return row is not None and row.tenant_id == tenant.id and row.member_id is not None


def _no_tenant(request: Request) -> HTMLResponse:
    return page(request, 404)


# --- sign-in: ask for a code ------------------------------------------------------------------


@router.get("/portal/{tenant_id}/sign-in", response_model=None)
def sign_in_page(request: Request, tenant_id: str, session: SessionDep) -> Response:
    tenant = find_tenant(session, tenant_id)
    if tenant is None:
        return _no_tenant(request)
    if _signed_in(session, request, tenant):
        session.commit()
        return redirect(request, safe_next(request.query_params.get("next")))
    anon_web(request, session, tenant)
    form = {"login": request.query_params.get("login", "")[:320]}
    return render(
        request,
        "portal/sign_in.html",
        {"tenant": tenant, "form": form, "next": safe_next(request.query_params.get("next"))},
    )


@router.post("/portal/{tenant_id}/sign-in", response_model=None)
def request_code(request: Request, tenant_id: str, form: AnonForm, session: SessionDep) -> Response:
    tenant = find_tenant(session, tenant_id)
    if tenant is None:
        return _no_tenant(request)
    web = anon_web(request, session, tenant)
    errors = FieldErrors(web)
    login = errors.text(form, "login", required=True, max_length=320)
    nxt = safe_next(str(form.get("next") or ""))
    ctx: dict[str, Any] = {"tenant": tenant, "form": form, "errors": errors, "next": nxt}
    if login is None:
        return render(request, "portal/sign_in.html", ctx, status_code=422)
    address_key = f"portal-send:{client_address(request)}"
    if security.blocked(session, address_key, SEND_LIMIT):
        errors.add(
            "login",
            "Too many codes were asked for from this network. Wait 15 minutes and try again.",
        )
        return render(request, "portal/sign_in.html", ctx, status_code=429)
    try:
        member, channel, to = find_by_login(session, tenant, login)
    except SetiaError:
        errors.add(
            "login",
            "Enter a phone number such as %(phone)s, or an email address.",
            phone=i18n.phone_example(tenant.country),
        )
        return render(request, "portal/sign_in.html", ctx, status_code=422)
    security.record_attempt(session, address_key, success=False)
    challenge = uuid.uuid4()  # the same kind of link when nobody has this number
    if (
        member is not None
        and member.status == "active"
        and member.tenant_id == tenant.id
        and _codes_lately(session, member.id) < MEMBER_CODES.failures
    ):
        challenge = send_code(session, tenant, member, channel, to).id
    session.commit()
    query = urlencode({"c": str(challenge), "login": login, "next": nxt})
    return redirect(request, f"/portal/{tenant.id}/code?{query}")


# --- sign-in: enter the code ------------------------------------------------------------------


def _code_ctx(tenant: Tenant, form: Any, errors: FieldErrors | None = None) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "form": form,
        "errors": errors,
        "challenge": str(form.get("c") or ""),
        "login": str(form.get("login") or "")[:320],
        "next": safe_next(str(form.get("next") or "")),
    }


@router.get("/portal/{tenant_id}/code", response_model=None)
def code_page(request: Request, tenant_id: str, session: SessionDep) -> Response:
    tenant = find_tenant(session, tenant_id)
    if tenant is None:
        return _no_tenant(request)
    anon_web(request, session, tenant)
    params = dict(request.query_params)
    if not params.get("c"):
        return redirect(request, f"/portal/{tenant.id}/sign-in")
    return render(request, "portal/code.html", _code_ctx(tenant, params))


@router.post("/portal/{tenant_id}/code", response_model=None)
def check_code(request: Request, tenant_id: str, form: AnonForm, session: SessionDep) -> Response:
    tenant = find_tenant(session, tenant_id)
    if tenant is None:
        return _no_tenant(request)
    web = anon_web(request, session, tenant)
    errors = FieldErrors(web)
    ctx = _code_ctx(tenant, form, errors)
    typed = "".join(ch for ch in str(form.get("code") or "") if ch.isdigit())
    if len(typed) != CODE_DIGITS:
        errors.add("code", "Enter the 6-digit code from the message.")
        return render(request, "portal/code.html", ctx, status_code=422)
    address_key = f"portal-code:{client_address(request)}"
    if security.blocked(session, address_key, CODE_LIMIT):
        errors.add("code", "Too many wrong codes from this network. Wait 15 minutes and try again.")
        return render(request, "portal/code.html", ctx, status_code=429)
    now = utcnow()
    ident = parse_uuid(str(form.get("c") or ""))
    row = session.get(PortalCode, ident) if ident is not None else None
    if row is None or row.tenant_id != tenant.id:
        # Nobody has this number or address, or the link was edited: just a wrong code.
        security.record_attempt(session, address_key, success=False)
        session.commit()
        errors.add("code", "That code is not right. Check the message and try again.")
        return render(request, "portal/code.html", ctx, status_code=422)
    if row.used_at is not None or row.expires_at <= now or row.attempts >= MAX_WRONG_TRIES:
        security.record_attempt(session, address_key, success=False)
        session.commit()
        errors.add("code", "This code has expired or was already used. Ask for a new one.")
        return render(request, "portal/code.html", ctx, status_code=422)
    if not security.same(row.digest, code_digest(row.member_id, typed)):
        row.attempts += 1
        security.record_attempt(session, address_key, success=False)
        session.commit()
        if row.attempts >= MAX_WRONG_TRIES:
            errors.add(
                "code", "Too many wrong tries: this code no longer works. Ask for a new one."
            )
        else:
            errors.add("code", "That code is not right. Check the message and try again.")
        return render(request, "portal/code.html", ctx, status_code=422)
    member = session.get(Member, row.member_id)
    if member is None or member.status != "active" or member.tenant_id != tenant.id:
        row.used_at = now
        session.commit()
        errors.add("code", "This code has expired or was already used. Ask for a new one.")
        return render(request, "portal/code.html", ctx, status_code=422)
    # This code is used; any other open code of the member dies with it.
    session.execute(
        update(PortalCode)
        .where(PortalCode.member_id == member.id, PortalCode.used_at.is_(None))
        .values(used_at=now)
    )
    security.record_attempt(session, f"portal-member:{member.id}", success=True)
    chosen = request.cookies.get(LANG_COOKIE)
    new = security.start_session(
        session,
        kind="member",
        tenant_id=tenant.id,
        member_id=member.id,
        locale=chosen if chosen in i18n.LOCALES else None,
    )
    session.commit()
    set_cookie(
        request,
        MEMBER_COOKIE,
        new.token,
        path="/portal",
        max_age=security.MEMBER_SESSION_DAYS * 24 * 3600,
    )
    return redirect(request, ctx["next"])


# --- sign-out and language --------------------------------------------------------------------


@router.post("/portal/sign-out", response_model=None)
def sign_out(request: Request, form: PortalForm, web: MemberWeb) -> Response:
    assert web.web_session is not None
    security.end_session(web.session, web.web_session)
    web.session.commit()
    set_cookie(request, MEMBER_COOKIE, "", path="/portal", max_age=0)
    flash(request, web.t("You are signed out."), "info")
    return redirect(request, f"/portal/{web.tenant.id}/sign-in")


@router.post("/portal/lang", response_model=None)
async def switch_language(request: Request, session: SessionDep) -> Response:
    """Before sign-in: a cookie. Signed in: the session and the member's own language too."""
    form = await request.form()
    row = security.find_session(session, request.cookies.get(MEMBER_COOKIE), "member")
    expected = row.csrf_token if row is not None else request.cookies.get(ANON_CSRF_COOKIE)
    sent = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
    if not expected or not sent or not security.same(sent, expected):
        raise WebForbidden("csrf")
    lang = str(form.get("lang") or "")
    nxt = safe_next(str(form.get("next") or ""))
    if lang not in i18n.LOCALES:
        return redirect(request, nxt)
    if row is not None and row.member_id is not None:
        member = session.get(Member, row.member_id)
        tenant = session.get(Tenant, row.tenant_id)
        row.locale = lang
        if (
            member is not None
            and tenant is not None
            and member.status == "active"
            and member.locale != lang
        ):
            members.update_member(
                session, tenant, member, {"locale": lang}, actor=f"member:{member.id}"
            )
    session.commit()
    set_cookie(request, LANG_COOKIE, lang, path="/", max_age=YEAR)
    return redirect(request, nxt)


def portal_sign_in_url(tenant_id: uuid.UUID, login: str | None = None) -> str:
    """The link a shop gives its members (``?login=`` fills the field)."""
    url = f"/portal/{tenant_id}/sign-in"
    return url + (f"?login={quote(login)}" if login else "")


__all__ = ["TENANT_COOKIE", "portal_sign_in_url", "router", "send_code"]
