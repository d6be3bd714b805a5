"""Who is asking, in what language, and may they: the console's and the portal's FastAPI
dependencies.

Console endpoints::

    @router.get("/console/members")
    def members(request: Request, web: StaffWeb = require("members.view")) -> HTMLResponse: ...

    @router.post("/console/members/{member_id}/adjust")
    def adjust(request: Request, form: ConsoleForm, web: StaffWeb = require("members.adjust")):
        ...  # ``form`` passed the CSRF check; write, then ``web.session.commit()``

Portal endpoints use ``MemberWeb`` and ``PortalForm`` the same way. A missing or expired
session answers 303 to the sign-in page (htmx: an ``HX-Redirect`` header); a role without
the permission gets a 403 page; a POST whose CSRF token does not match gets a 403 page and
writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from setia.core.api import get_session
from setia.members.models import Member
from setia.tenants.models import Tenant
from setia.web import i18n, roles, security
from setia.web.models import StaffUser, WebSession

STAFF_COOKIE = "setia_staff"
MEMBER_COOKIE = "setia_member"
ANON_CSRF_COOKIE = "setia_csrf"
LANG_COOKIE = "setia_lang"


class SignInRequired(Exception):
    """No live session: send the browser to ``sign_in`` (then back to ``next``)."""

    def __init__(self, sign_in: str, next_path: str) -> None:
        self.location = f"{sign_in}?next={quote(next_path)}"


class WebForbidden(Exception):
    """Signed in, but this role may not do this (or the CSRF token did not match)."""

    def __init__(self, reason: str = "role", permission: str = "") -> None:
        self.reason = reason
        self.permission = permission


@dataclass
class WebContext:
    session: Session
    tenant: Tenant
    web_session: WebSession | None
    lang: str
    tz: str
    csrf_token: str
    staff: StaffUser | None = None
    member: Member | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str | None:
        return self.staff.role if self.staff else None

    @property
    def actor(self) -> str:
        """For audit records: ``staff:<id>`` or ``member:<id>``."""
        if self.staff is not None:
            return f"staff:{self.staff.id}"
        if self.member is not None:
            return f"member:{self.member.id}"
        return "anonymous"

    def can(self, permission: str) -> bool:
        return self.staff is not None and roles.allowed(self.staff.role, permission)

    def t(self, message: str, **values: Any) -> str:
        from setia.web.templating import translate

        return translate(self.lang, message, **values)


def _is_secure(request: Request) -> bool:
    from setia.core.config import get_settings

    forced = get_settings().cookie_secure
    if forced is not None:
        return bool(forced)
    return request.url.scheme == "https"


def set_cookie(request: Request, name: str, value: str, *, path: str, max_age: int | None) -> None:
    """Queue a cookie for the response ``render`` (or a redirect helper) builds:
    HttpOnly, SameSite=Lax, Secure on HTTPS."""
    pending = getattr(request.state, "set_cookies", None)
    if pending is None:
        pending = []
        request.state.set_cookies = pending
    pending.append(
        {
            "key": name,
            "value": value,
            "path": path,
            "max_age": max_age,
            "httponly": True,
            "samesite": "lax",
            "secure": _is_secure(request),
        }
    )


def staff_context(
    request: Request, session: Annotated[Session, Depends(get_session)]
) -> WebContext:
    row = security.find_session(session, request.cookies.get(STAFF_COOKIE), "staff")
    user = session.get(StaffUser, row.staff_user_id) if row and row.staff_user_id else None
    if row is None or user is None or user.status != "active":
        raise SignInRequired("/console/sign-in", _here(request))
    tenant = session.get(Tenant, row.tenant_id)
    assert tenant is not None
    lang = i18n.choose_locale(
        request.query_params.get("lang"), row.locale, user.locale, tenant.locale
    )
    web = WebContext(
        session=session,
        tenant=tenant,
        web_session=row,
        lang=lang,
        tz=tenant.timezone,
        csrf_token=row.csrf_token,
        staff=user,
        extra={"program": request.cookies.get(PROGRAM_COOKIE)},
    )
    request.state.web = web
    session.commit()  # the session's last-seen time
    return web


def member_context(
    request: Request, session: Annotated[Session, Depends(get_session)]
) -> WebContext:
    row = security.find_session(session, request.cookies.get(MEMBER_COOKIE), "member")
    member = session.get(Member, row.member_id) if row and row.member_id else None
    if row is None or member is None or member.status != "active":
        tenant_id = request.query_params.get("tenant") or (str(row.tenant_id) if row else "")
        raise SignInRequired(
            f"/portal/{tenant_id}/sign-in" if tenant_id else "/portal", _here(request)
        )
    tenant = session.get(Tenant, row.tenant_id)
    assert tenant is not None
    lang = i18n.choose_locale(
        request.query_params.get("lang"), row.locale, member.locale, tenant.locale
    )
    web = WebContext(
        session=session,
        tenant=tenant,
        web_session=row,
        lang=lang,
        tz=getattr(member, "timezone", None) or tenant.timezone,
        csrf_token=row.csrf_token,
        member=member,
    )
    request.state.web = web
    session.commit()
    return web


StaffWeb = Annotated[WebContext, Depends(staff_context)]
MemberWeb = Annotated[WebContext, Depends(member_context)]


def require(permission: str) -> Any:
    """A dependency: the signed-in staff user's context, refused (403 page) without
    ``permission`` (see ``roles.PERMISSIONS``)."""

    def dep(web: StaffWeb) -> WebContext:
        if not web.can(permission):
            raise WebForbidden("role", permission)
        return web

    dep.permission = permission  # type: ignore[attr-defined]  # read by tests/web/test_roles.py
    return Depends(dep)


FLASH_COOKIE = "setia_flash"
PROGRAM_COOKIE = "setia_program"  # the console's chosen program (web/console/current.py)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message for the next page (after a POST-redirect-GET): ``text`` already translated
    (``web.t(...)``); ``kind`` is ok, info, warn or error. ``render`` shows and clears it."""
    from urllib.parse import quote as _quote

    set_cookie(request, FLASH_COOKIE, f"{kind}:{_quote(text)}", path="/", max_age=60)


async def _checked(request: Request, web: WebContext) -> FormData:
    form = await request.form()
    sent = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
    if not sent or not security.same(sent, web.csrf_token):
        raise WebForbidden("csrf")
    return form


async def console_form(request: Request, web: StaffWeb) -> FormData:
    return await _checked(request, web)


async def portal_form(request: Request, web: MemberWeb) -> FormData:
    return await _checked(request, web)


ConsoleForm = Annotated[FormData, Depends(console_form)]
PortalForm = Annotated[FormData, Depends(portal_form)]


# --- before sign-in: double-submit CSRF cookie ------------------------------------------------


def anon_csrf(request: Request) -> str:
    """The pre-sign-in CSRF token (sign-in, code request, reset forms): read from the cookie or
    made and queued as a cookie; ``render`` puts it in ``csrf_token``."""
    token = request.cookies.get(ANON_CSRF_COOKIE)
    if not token:
        token = security.new_token(24)
        set_cookie(request, ANON_CSRF_COOKIE, token, path="/", max_age=None)
    request.state.anon_csrf = token
    return token


async def anon_form(request: Request) -> FormData:
    """A pre-sign-in form whose ``csrf_token`` matches the cookie (else a 403 page)."""
    form = await request.form()
    cookie = request.cookies.get(ANON_CSRF_COOKIE) or ""
    sent = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
    if not cookie or not sent or not security.same(sent, cookie):
        raise WebForbidden("csrf")
    request.state.anon_csrf = cookie
    return form


AnonForm = Annotated[FormData, Depends(anon_form)]


def _here(request: Request) -> str:
    path = request.url.path
    if request.method != "GET":
        return path.rsplit("/", 1)[0] if path.count("/") > 2 else path
    return path + (f"?{request.url.query}" if request.url.query else "")


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None
