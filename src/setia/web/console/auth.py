"""Staff sign-in, sign-out, invite acceptance, password reset, language switch.

- ``/console/sign-in``: email + password (argon2). Failures are counted per account
  (``staff:<email>``) and per client address (``ip:<address>``); after 5 failures in 15
  minutes the account answers "too many attempts" (429) whether or not it exists. A success
  starts a new session (HttpOnly, SameSite=Lax cookie; Secure on HTTPS).
- ``/console/invite/<token>``: an invited user picks a name and a password, then is signed in.
- ``/console/reset``: a reset link (one hour) goes to the outbox (``staff.password_reset``)
  and the server log; ``/console/reset/<token>`` sets a new password and ends every other
  session of the user.
- ``/console/lang``: the signed-in user's language (session and profile).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.core.api import get_session
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.outbox import service as outbox
from setia.web import i18n, roles, security, staff
from setia.web.console.current import tenant_programs
from setia.web.deps import (
    LANG_COOKIE,
    PROGRAM_COOKIE,
    STAFF_COOKIE,
    AnonForm,
    ConsoleForm,
    StaffWeb,
    anon_csrf,
    flash,
    parse_uuid,
    set_cookie,
)
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.models import SignInAttempt, StaffUser
from setia.web.templating import render, translate

router = APIRouter(include_in_schema=False)
log = logging.getLogger("setia.web")

SessionDep = Annotated[Session, Depends(get_session)]

WRONG = N_("The email or password is wrong.")
TOO_MANY = N_("Too many attempts. Try again in %(minutes)s minutes.")
NOT_ACTIVE = N_("This account is disabled. Ask an owner or admin of your business.")
NOT_AN_EMAIL = N_("Enter an email address, for example sari@example.com.")
MISMATCH = N_("The two passwords are not the same.")
# security.password_problem's messages, for the catalogs
PASSWORD_PROBLEMS = (
    N_("Use at least 10 characters."),
    N_("Use at most 256 characters."),
    N_("Do not use your email address as the password."),
)


def anon_lang(request: Request) -> str:
    return i18n.choose_locale(
        request.cookies.get(LANG_COOKIE), accept_language=request.headers.get("accept-language")
    )


def safe_next(value: str | None) -> str | None:
    """``next`` only when it is a local console path (never another site)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value or value.startswith("//"):
        return None
    if not (parts.path == "/console" or parts.path.startswith("/console/")):
        return None
    if parts.path.startswith(("/console/sign-in", "/console/sign-out")):
        return None
    return value


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def minutes_left(session: Session, key: str, limit: security.Limit, now: datetime) -> int:
    """Minutes until ``key`` may try again: when the oldest of the failures that block it
    leaves the window."""
    since = now - limit.window
    rows = session.scalars(
        select(SignInAttempt.at)
        .where(SignInAttempt.key == key, SignInAttempt.success.is_(False), SignInAttempt.at > since)
        .order_by(SignInAttempt.at.desc())
        .limit(limit.failures)
    ).all()
    if not rows:
        return 1
    oldest = min(rows)
    seconds = (oldest + limit.window - now).total_seconds()
    return max(1, math.ceil(seconds / 60))


def _start(request: Request, session: Session, user: StaffUser, now: datetime) -> None:
    """A new session for ``user`` (any session the browser had is ended) and its cookie."""
    old = security.find_session(session, request.cookies.get(STAFF_COOKIE), "staff", now)
    if old is not None:
        security.end_session(session, old, now)
    chosen = request.cookies.get(LANG_COOKIE)
    new = security.start_session(
        session,
        kind="staff",
        tenant_id=user.tenant_id,
        staff_user_id=user.id,
        locale=chosen if chosen in i18n.LOCALES else None,
        now=now,
    )
    user.last_sign_in_at = now
    set_cookie(
        request,
        STAFF_COOKIE,
        new.token,
        path="/",
        max_age=security.STAFF_SESSION_HOURS * 3600,
    )


# --- sign in / out ---------------------------------------------------------------------------


def _sign_in_page(
    request: Request,
    form: Any,
    errors: FieldErrors | None,
    status_code: int = 200,
    *,
    locked: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "console/auth/sign_in.html",
        {"form": form, "errors": errors, "locked": locked},
        status_code=status_code,
    )


@router.get("/console/sign-in")
def sign_in_page(request: Request, session: SessionDep, next: str = "", lang: str = "") -> Response:
    if lang:
        # the language links of the page: remember the choice, then show the page again
        if lang in i18n.LOCALES:
            set_cookie(request, LANG_COOKIE, lang, path="/", max_age=365 * 86400)
        target = "/console/sign-in" + (f"?next={_quoted(next)}" if safe_next(next) else "")
        return redirect(request, target)
    current = security.find_session(session, request.cookies.get(STAFF_COOKIE), "staff")
    if current is not None and current.staff_user_id is not None:
        user = session.get(StaffUser, current.staff_user_id)
        if user is not None and user.status == "active":
            session.commit()
            return redirect(request, safe_next(next) or roles.home_for(user.role))
    anon_csrf(request)
    return _sign_in_page(request, {"next": safe_next(next) or ""}, None)


def _quoted(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


@router.post("/console/sign-in")
def sign_in(request: Request, form: AnonForm, session: SessionDep) -> Response:
    errors = FieldErrors(lang=anon_lang(request))
    email = str(form.get("email") or "").strip().lower()
    password = str(form.get("password") or "")
    shown = {"email": email, "next": safe_next(str(form.get("next") or "")) or ""}
    if not email:
        errors.add("email", "This field is required.")
    elif "@" not in email or len(email) > 254:
        errors.add("email", NOT_AN_EMAIL)
    if not password:
        errors.add("password", "This field is required.")
    if errors:
        return _sign_in_page(request, shown, errors, 422)

    now = utcnow()
    account_key, address_key = f"staff:{email}", f"ip:{client_address(request)}"
    for key, limit in (
        (account_key, security.ACCOUNT_LIMIT),
        (address_key, security.ADDRESS_LIMIT),
    ):
        if security.blocked(session, key, limit, now):
            minutes = minutes_left(session, key, limit, now)
            session.rollback()
            text = errors.t(TOO_MANY, minutes=minutes)
            errors.add_text("__all__", text)
            return _sign_in_page(request, shown, errors, 429, locked=text)

    user = staff.find_by_email(session, email)
    ok = security.verify_password(user.password_hash if user else None, password)
    if not ok or user is None:
        security.record_attempt(session, account_key, success=False, now=now)
        security.record_attempt(session, address_key, success=False, now=now)
        session.commit()
        errors.add("__all__", WRONG)
        return _sign_in_page(request, shown, errors, 422)
    if user.status != "active":
        security.record_attempt(session, account_key, success=False, now=now)
        session.commit()
        errors.add("__all__", NOT_ACTIVE)
        return _sign_in_page(request, shown, errors, 403)

    assert user.password_hash is not None
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    security.record_attempt(session, account_key, success=True, now=now)
    _start(request, session, user, now)
    session.commit()
    return redirect(request, shown["next"] or roles.home_for(user.role))


@router.post("/console/sign-out")
def sign_out(request: Request, form: ConsoleForm, web: StaffWeb) -> Response:
    if web.web_session is not None:
        security.end_session(web.session, web.web_session)
    web.session.commit()
    set_cookie(request, STAFF_COOKIE, "", path="/", max_age=0)
    flash(request, web.t("You are signed out."), "info")
    return redirect(request, "/console/sign-in")


@router.post("/console/lang")
def switch_language(request: Request, form: ConsoleForm, web: StaffWeb) -> Response:
    lang = str(form.get("lang") or "")
    if lang in i18n.LOCALES:
        if web.web_session is not None:
            web.web_session.locale = lang
        if web.staff is not None:
            web.staff.locale = lang
        web.session.commit()
        set_cookie(request, LANG_COOKIE, lang, path="/", max_age=365 * 86400)
    return redirect(request, safe_next(str(form.get("next") or "")) or "/console")


@router.post("/console/program")
def switch_program(request: Request, form: ConsoleForm, web: StaffWeb) -> Response:
    """The top bar's program picker: remember the chosen program (one of the tenant's) for
    this browser; every program page then shows it."""
    pid = parse_uuid(str(form.get("program") or ""))
    chosen = next((p for p in tenant_programs(web) if p.id == pid), None)
    if chosen is None:
        return page(request, 422, web.t("Choose one of the options."))
    set_cookie(request, PROGRAM_COOKIE, str(chosen.id), path="/console", max_age=365 * 86400)
    flash(request, web.t("Showing %(program)s.", program=chosen.name), "info")
    return redirect(request, safe_next(str(form.get("next") or "")) or "/console")


def _next_lang(request: Request, user: StaffUser) -> str:
    """The language of the first page after signing in (the new session's)."""
    return i18n.choose_locale(request.cookies.get(LANG_COOKIE), user.locale)


@router.get("/console/lang")
def language_link(request: Request, lang: str = "", next: str = "") -> Response:
    """The language links of the pages before sign-in: a cookie, then back."""
    if lang in i18n.LOCALES:
        set_cookie(request, LANG_COOKIE, lang, path="/", max_age=365 * 86400)
    parts = urlsplit(next)
    back = next if not parts.scheme and not parts.netloc and next.startswith("/console/") else ""
    return redirect(request, back or "/console/sign-in")


# --- invite and reset --------------------------------------------------------------------


def _link_gone(request: Request) -> HTMLResponse:
    return render(request, "console/auth/link_gone.html", {}, status_code=410)


def _password_fields(
    form: Any, errors: FieldErrors, user: StaffUser, *, with_name: bool
) -> tuple[str | None, str | None]:
    name = errors.text(form, "name", required=True, max_length=200) if with_name else None
    password = str(form.get("password") or "")
    again = str(form.get("password2") or "")
    if not password:
        errors.add("password", "This field is required.")
    else:
        problem = security.password_problem(password, email=user.email)
        if problem:
            errors.add("password", problem)
        elif password != again:
            errors.add("password2", MISMATCH)
    return name, password


@router.get("/console/invite/{token}")
def invite_page(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    found = staff.find_token(session, token, "invite")
    if found is None:
        return _link_gone(request)
    anon_csrf(request)
    _row, user = found
    return render(
        request,
        "console/auth/invite.html",
        {"user": user, "form": {"name": user.name}, "errors": None, "token": token},
    )


@router.post("/console/invite/{token}")
def accept_invite(request: Request, token: str, form: AnonForm, session: SessionDep) -> Response:
    found = staff.find_token(session, token, "invite")
    if found is None:
        return _link_gone(request)
    row, user = found
    errors = FieldErrors(lang=anon_lang(request))
    name, password = _password_fields(form, errors, user, with_name=True)
    if errors or password is None:
        session.rollback()
        return render(
            request,
            "console/auth/invite.html",
            {
                "user": user,
                "form": {"name": form.get("name", "")},
                "errors": errors,
                "token": token,
            },
            status_code=422,
        )
    now = utcnow()
    staff.use_token(session, row, user, password=password, name=name, now=now)
    _start(request, session, user, now)
    session.commit()
    flash(request, translate(_next_lang(request, user), "Welcome! Your account is ready."), "ok")
    return redirect(request, roles.home_for(user.role))


@router.get("/console/reset")
def reset_request_page(request: Request) -> HTMLResponse:
    anon_csrf(request)
    return render(request, "console/auth/reset_request.html", {"form": {}, "errors": None})


@router.post("/console/reset")
def reset_request(request: Request, form: AnonForm, session: SessionDep) -> HTMLResponse:
    errors = FieldErrors(lang=anon_lang(request))
    email = str(form.get("email") or "").strip().lower()
    if not email:
        errors.add("email", "This field is required.")
    elif "@" not in email or len(email) > 254:
        errors.add("email", NOT_AN_EMAIL)
    if errors:
        return render(
            request,
            "console/auth/reset_request.html",
            {"form": {"email": email}, "errors": errors},
            status_code=422,
        )
    key = f"reset:{email}"
    now = utcnow()
    # at most 5 links per address in 15 minutes (the answer does not change)
    if not security.blocked(session, key, security.ACCOUNT_LIMIT, now):
        security.record_attempt(session, key, success=False, now=now)
        user = staff.find_by_email(session, email)
        if user is not None and user.status == "active":
            token = staff.issue_token(session, user, "reset", now=now)
            link = str(request.base_url).rstrip("/") + f"/console/reset/{token}"
            outbox.publish(
                session,
                user.tenant_id,
                "staff.password_reset",
                {
                    "staff_user_id": str(user.id),
                    "email": user.email,
                    "name": user.name,
                    "locale": user.locale,
                    "link": link,
                    "expires_in_minutes": staff.RESET_HOURS * 60,
                },
            )
            log.info("password reset link for %s: %s", user.email, link)
        session.commit()
    return render(request, "console/auth/reset_sent.html", {"email": email})


@router.get("/console/reset/{token}")
def reset_page(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    found = staff.find_token(session, token, "reset")
    if found is None:
        return _link_gone(request)
    anon_csrf(request)
    return render(
        request,
        "console/auth/reset.html",
        {"user": found[1], "form": {}, "errors": None, "token": token},
    )


@router.post("/console/reset/{token}")
def reset_password(request: Request, token: str, form: AnonForm, session: SessionDep) -> Response:
    found = staff.find_token(session, token, "reset")
    if found is None:
        return _link_gone(request)
    row, user = found
    errors = FieldErrors(lang=anon_lang(request))
    _name, password = _password_fields(form, errors, user, with_name=False)
    if errors or password is None:
        session.rollback()
        return render(
            request,
            "console/auth/reset.html",
            {"user": user, "form": {}, "errors": errors, "token": token},
            status_code=422,
        )
    now = utcnow()
    try:
        staff.use_token(session, row, user, password=password, now=now)
    except SetiaError as exc:
        session.rollback()
        errors.from_error(exc, {"weak_password": "password"})
        return render(
            request,
            "console/auth/reset.html",
            {"user": user, "form": {}, "errors": errors, "token": token},
            status_code=422,
        )
    # a new password lifts a lockout of the account
    security.record_attempt(session, f"staff:{user.email}", success=True, now=now)
    _start(request, session, user, now)
    session.commit()
    flash(request, translate(_next_lang(request, user), "Your password was changed."), "ok")
    return redirect(request, roles.home_for(user.role))
