"""Settings: tenant, programs, API keys (create, show once, revoke), staff users (invite,
role, disable).

Permissions: every tab needs ``settings.view`` to open (owner, admin); the tenant form
``settings.tenant`` (owner), programs ``settings.programs``, API keys ``settings.keys``, staff
``settings.staff``. Every change is audited with the signed-in user as actor.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from setia.audit import service as audit
from setia.audit.models import AuditRecord
from setia.core.errors import NotFound, SetiaError
from setia.core.time import utcnow, zone
from setia.outbox import service as outbox
from setia.programs import service as programs
from setia.programs.models import Program
from setia.programs.schemas import ProgramUpdate
from setia.tenants import service as tenants
from setia.tenants.api import KeyIn, TenantUpdate
from setia.web import i18n, staff
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.models import ROLES, StaffUser
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

ZONES = (
    "Asia/Jakarta",
    "Asia/Makassar",
    "Asia/Jayapura",
    "Asia/Kuala_Lumpur",
    "Asia/Kuching",
    "Asia/Singapore",
    "Asia/Bangkok",
    "Asia/Manila",
    "UTC",
)
ROLE_NAMES = {
    "owner": N_("Owner"),
    "admin": N_("Admin"),
    "marketer": N_("Marketer"),
    "cashier": N_("Cashier"),
    "analyst": N_("Analyst"),
}
ROLE_HINTS = {
    "owner": N_("Everything, including the business settings and other owners."),
    "admin": N_("Everything except the business settings and owners."),
    "marketer": N_("Programs, campaigns and analytics; members read-only."),
    "cashier": N_("The cashier page and member lookup."),
    "analyst": N_("Dashboard and analytics, read-only."),
}
SCOPE_NAMES = {
    "admin": N_("Admin: everything"),
    "pos": N_("Point of sale: events, lookups, redemptions"),
    "read": N_("Read only"),
}
ROUNDING_NAMES = {
    "floor": N_("Round down"),
    "ceil": N_("Round up"),
    "round": N_("Round to nearest"),
}
EXPIRY_NAMES = {
    "none": N_("Points never expire"),
    "after_duration": N_("A number of months after they are earned"),
    "end_of_period": N_("At the end of a period"),
    "inactivity": N_("After months without activity"),
}
PERIOD_NAMES = {"month": N_("Month"), "quarter": N_("Quarter"), "year": N_("Year")}
SHORTFALL_NAMES = {
    "debt": N_("The member owes the points (negative balance)"),
    "write_off": N_("Write the points off"),
}
STAFF_MESSAGES = {
    "owner_only": N_("Only an owner may invite, change or disable an owner."),
    "last_owner": N_("The business must keep at least one active owner."),
    "self": N_("You cannot change your own role or disable yourself."),
    "staff_email_taken": N_("Someone already signs in with this email address."),
    "invalid_email": N_("Enter an email address, for example sari@example.com."),
    "invalid_role": N_("Choose one of the options."),
}
ENABLED = N_("%(email)s can sign in again.")
DISABLED = N_("%(email)s can no longer sign in.")
BAD_ZONE = N_("Unknown time zone; use a name such as Asia/Jakarta.")
PERIOD_NEEDED = N_("Choose the period for this expiry policy.")


def _tabs(web: WebContext) -> list[tuple[str, str]]:
    tabs = [("/console/settings/tenant", web.t("Business"))]
    tabs.append(("/console/settings/programs", web.t("Programs")))
    if web.can("settings.keys"):
        tabs.append(("/console/settings/keys", web.t("API keys")))
    if web.can("settings.staff"):
        tabs.append(("/console/settings/staff", web.t("Staff users")))
    return tabs


def _page(
    request: Request,
    web: WebContext,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    *,
    secret: bool = False,
) -> HTMLResponse:
    """A settings tab; ``secret`` pages (a new key, an invite link) are never cached."""
    return render(
        request,
        f"console/settings/{template}",
        {"tabs": _tabs(web), **context},
        status_code=status_code,
        headers={"Cache-Control": "no-store"} if secret else None,
    )


def _idem(form: Any) -> str:
    """The form's one-time id (made when the form was drawn), to spot a double submit."""
    value = str(form.get("idem") or "")[:64]
    return value if parse_uuid(value) else ""


def _with_idem(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "idem": values.get("idem") or str(uuid.uuid4())}


def _done_before(web: WebContext, action: str, idem: str) -> AuditRecord | None:
    """The audit record of this very form's earlier submit, if any (last hour)."""
    if not idem:
        return None
    since = utcnow() - timedelta(hours=1)
    rows = web.session.scalars(
        select(AuditRecord).where(
            AuditRecord.tenant_id == web.tenant.id,
            AuditRecord.action == action,
            AuditRecord.created_at >= since,
        )
    )
    return next((r for r in rows if (r.details or {}).get("idem") == idem), None)


@router.get("/console/settings")
def settings_home(request: Request, web: WebContext = require("settings.view")) -> Response:
    return redirect(request, "/console/settings/tenant")


# --- tenant ---------------------------------------------------------------------------------


def _tenant_page(
    request: Request,
    web: WebContext,
    form: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    t = web.tenant
    values = form or {
        "name": t.name,
        "timezone": t.timezone,
        "locale": t.locale,
        "auto_create_members": t.auto_create_members,
    }
    return _page(
        request,
        web,
        "tenant.html",
        {
            "form": values,
            "errors": errors,
            "zones": ZONES,
            "may_edit": web.can("settings.tenant"),
            "locales": [(code, i18n.LANGUAGE_NAMES[code]) for code in i18n.LOCALES],
        },
        status_code,
    )


@router.get("/console/settings/tenant")
def tenant_page(request: Request, web: WebContext = require("settings.view")) -> HTMLResponse:
    return _tenant_page(request, web)


@router.post("/console/settings/tenant")
def tenant_save(
    request: Request, form: ConsoleForm, web: WebContext = require("settings.tenant")
) -> Response:
    errors = FieldErrors(web)
    values = {
        "name": str(form.get("name") or "").strip(),
        "timezone": str(form.get("timezone") or "").strip(),
        "locale": str(form.get("locale") or ""),
        "auto_create_members": form.get("auto_create_members") == "1",
    }
    if not values["name"]:
        errors.add("name", "This field is required.")
    if not values["timezone"]:
        errors.add("timezone", "This field is required.")
    else:
        try:
            zone(str(values["timezone"]))
        except ValueError:
            errors.add("timezone", BAD_ZONE)
    if errors:
        return _tenant_page(request, web, values, errors, 422)
    try:
        body = TenantUpdate.model_validate(values)
    except ValidationError as exc:
        errors.from_validation(exc)
        return _tenant_page(request, web, values, errors, 422)
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if getattr(web.tenant, k) != v
    }
    if changes:
        try:
            tenants.update_tenant(web.session, web.tenant.id, changes, actor=web.actor)
            web.session.commit()
        except SetiaError as exc:
            web.session.rollback()
            errors.from_error(exc)
            return _tenant_page(request, web, values, errors, 422)
    flash(request, web.t("The business settings were saved."))
    return redirect(request, "/console/settings/tenant")


# --- programs -------------------------------------------------------------------------------


@router.get("/console/settings/programs")
def programs_page(request: Request, web: WebContext = require("settings.view")) -> HTMLResponse:
    rows = programs.list_programs(web.session, web.tenant.id)
    rows.sort(key=lambda p: (not p.is_default, p.name.lower()))
    return _page(
        request,
        web,
        "programs.html",
        {
            "programs": rows,
            "may_edit": web.can("settings.programs"),
            "expiry_names": EXPIRY_NAMES,
        },
    )


def _program(web: WebContext, program_id: str) -> Program | None:
    pid = parse_uuid(program_id)
    if pid is None:
        return None
    try:
        return programs.get_program(web.session, web.tenant.id, pid)
    except NotFound:
        return None


def _program_values(p: Program) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, bool):
            return v
        text = str(v)
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text

    return {k: plain(getattr(p, k)) for k in programs.SETTINGS}


def _program_page(
    request: Request,
    web: WebContext,
    program: Program,
    form: dict[str, Any],
    errors: FieldErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    def options(names: dict[str, str]) -> list[tuple[str, str]]:
        return [(k, web.t(v)) for k, v in names.items()]

    return _page(
        request,
        web,
        "program_edit.html",
        {
            "program": program,
            "form": form,
            "errors": errors,
            "roundings": options(ROUNDING_NAMES),
            "expiries": options(EXPIRY_NAMES),
            "periods": [("", "—"), *options(PERIOD_NAMES)],
            "shortfalls": options(SHORTFALL_NAMES),
        },
        status_code,
    )


@router.get("/console/settings/programs/{program_id}")
def program_edit(
    request: Request, program_id: str, web: WebContext = require("settings.programs")
) -> HTMLResponse:
    program = _program(web, program_id)
    if program is None:
        return page(request, 404)
    return _program_page(request, web, program, _program_values(program))


INT_FIELDS = (
    "earn_points",
    "pending_days",
    "expiry_months",
    "min_redeem_points",
    "hold_timeout_minutes",
    "points_payment_max_percent",
)
AMOUNT_FIELDS = ("earn_per_amount", "cost_per_point", "points_payment_rate")
CHOICE_FIELDS = ("rounding", "expiry_policy", "refund_shortfall")
FLAG_FIELDS = ("allow_member_transfers", "coupon_cancel_returns_points", "refund_restores_coupon")


@router.post("/console/settings/programs/{program_id}")
def program_save(
    request: Request,
    program_id: str,
    form: ConsoleForm,
    web: WebContext = require("settings.programs"),
) -> Response:
    program = _program(web, program_id)
    if program is None:
        return page(request, 404)
    errors = FieldErrors(web)
    shown: dict[str, Any] = {k: str(form.get(k) or "").strip() for k in programs.SETTINGS}
    data: dict[str, Any] = {}
    for name in ("name", "points_name"):
        data[name] = errors.text(
            form, name, required=True, max_length=200 if name == "name" else 50
        )
    for name in INT_FIELDS:
        data[name] = errors.integer(form, name, required=True)
    for name in AMOUNT_FIELDS:
        data[name] = errors.amount(form, name, required=name != "points_payment_rate")
    for name in CHOICE_FIELDS:
        data[name] = shown[name]
    data["expiry_period"] = shown["expiry_period"] or None
    for name in FLAG_FIELDS:
        data[name] = shown[name] = form.get(name) == "1"
    if data["expiry_policy"] == "end_of_period" and not data["expiry_period"]:
        errors.add("expiry_period", PERIOD_NEEDED)
    if errors:
        return _program_page(request, web, program, shown, errors, 422)
    try:
        body = ProgramUpdate.model_validate(data)
    except ValidationError as exc:
        errors.from_validation(exc)
        return _program_page(request, web, program, shown, errors, 422)
    before = programs.snapshot(program)
    try:
        programs.update_program(
            web.session, program, body.model_dump(exclude_unset=True), actor=web.actor
        )
        after = programs.snapshot(program)
        changed = {
            k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]
        }
        if changed:
            audit.record(
                web.session,
                tenant_id=web.tenant.id,
                actor=web.actor,
                action="program.updated",
                subject_type="program",
                subject_id=program.id,
                details={"changes": changed, "revision": program.revision},
            )
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        errors.from_error(exc)
        return _program_page(request, web, program, shown, errors, 422)
    flash(request, web.t("The program settings were saved."))
    return redirect(request, "/console/settings/programs")


# --- API keys -------------------------------------------------------------------------------


def _keys_page(
    request: Request,
    web: WebContext,
    form: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    keys = tenants.list_keys(web.session, web.tenant.id)
    keys.sort(key=lambda k: (k.revoked_at is not None, -k.created_at.timestamp()))
    return _page(
        request,
        web,
        "keys.html",
        {
            "keys": keys,
            "form": _with_idem(form or {"scope": "pos"}),
            "errors": errors,
            "scopes": [(k, web.t(v)) for k, v in SCOPE_NAMES.items()],
            "scope_names": SCOPE_NAMES,
        },
        status_code,
    )


@router.get("/console/settings/keys")
def keys_page(request: Request, web: WebContext = require("settings.keys")) -> HTMLResponse:
    return _keys_page(request, web)


@router.post("/console/settings/keys")
def key_create(
    request: Request, form: ConsoleForm, web: WebContext = require("settings.keys")
) -> Response:
    errors = FieldErrors(web)
    name = errors.text(form, "name", required=True, max_length=200)
    scope = errors.choice(form, "scope", list(SCOPE_NAMES))
    shown = {"name": str(form.get("name") or ""), "scope": str(form.get("scope") or "")}
    if errors or name is None or scope is None:
        return _keys_page(request, web, {**shown, "idem": _idem(form)}, errors, 422)
    idem = _idem(form)
    if _done_before(web, "api_key.created", idem) is not None:
        flash(request, web.t("That key was already created; its secret was shown once."), "warn")
        return redirect(request, "/console/settings/keys")
    try:
        body = KeyIn(scope=scope, name=name)
        key, secret = tenants.create_key(
            web.session, web.tenant.id, scope=body.scope, name=body.name
        )
        audit.record(
            web.session,
            tenant_id=web.tenant.id,
            actor=web.actor,
            action="api_key.created",
            subject_type="api_key",
            subject_id=key.id,
            details={"name": key.name, "scope": key.scope, "prefix": key.prefix, "idem": idem},
        )
        web.session.commit()
    except (SetiaError, ValidationError) as exc:
        web.session.rollback()
        if isinstance(exc, ValidationError):
            errors.from_validation(exc)
        else:
            errors.from_error(exc)
        return _keys_page(request, web, shown, errors, 422)
    return _page(
        request,
        web,
        "key_created.html",
        {"key": key, "secret": secret, "scope_names": SCOPE_NAMES},
        status_code=201,
        secret=True,
    )


def _key(web: WebContext, key_id: str) -> Any:
    kid = parse_uuid(key_id)
    if kid is None:
        return None
    for key in tenants.list_keys(web.session, web.tenant.id):
        if key.id == kid:
            return key
    return None


@router.get("/console/settings/keys/{key_id}/revoke")
def key_revoke_confirm(
    request: Request, key_id: str, web: WebContext = require("settings.keys")
) -> HTMLResponse:
    key = _key(web, key_id)
    if key is None:
        return page(request, 404)
    return _page(request, web, "key_revoke.html", {"key": key, "scope_names": SCOPE_NAMES})


@router.post("/console/settings/keys/{key_id}/revoke")
def key_revoke(
    request: Request, key_id: str, form: ConsoleForm, web: WebContext = require("settings.keys")
) -> Response:
    key = _key(web, key_id)
    if key is None:
        return page(request, 404)
    if key.revoked_at is None:
        tenants.revoke_key(web.session, key.id, web.tenant.id)
        audit.record(
            web.session,
            tenant_id=web.tenant.id,
            actor=web.actor,
            action="api_key.revoked",
            subject_type="api_key",
            subject_id=key.id,
            details={"name": key.name, "prefix": key.prefix},
        )
        web.session.commit()
    flash(request, web.t("The key %(prefix)s… was revoked.", prefix=key.prefix))
    return redirect(request, "/console/settings/keys")


# --- staff users ----------------------------------------------------------------------------


def _assignable(web: WebContext) -> list[str]:
    """Roles the signed-in user may give (only an owner makes owners)."""
    return [r for r in ROLES if r != "owner" or web.role == "owner"]


def _staff_page(
    request: Request,
    web: WebContext,
    form: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    row_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    users = staff.list_users(web.session, web.tenant.id)
    order = {"active": 0, "invited": 1, "disabled": 2}
    users.sort(key=lambda u: (order.get(u.status, 3), ROLES.index(u.role), u.email))
    assignable = _assignable(web)
    me = web.staff.id if web.staff else None

    def manages(user: StaffUser) -> bool:
        return user.id != me and (user.role != "owner" or web.role == "owner")

    return _page(
        request,
        web,
        "staff.html",
        {
            "users": users,
            "form": _with_idem(form or {"role": "cashier"}),
            "errors": errors,
            "row_errors": row_errors or {},
            "role_options": [(r, web.t(ROLE_NAMES[r])) for r in assignable],
            "role_names": ROLE_NAMES,
            "role_hints": [(r, ROLE_NAMES[r], ROLE_HINTS[r]) for r in ROLES],
            "manages": manages,
        },
        status_code,
    )


@router.get("/console/settings/staff")
def staff_page(request: Request, web: WebContext = require("settings.staff")) -> HTMLResponse:
    return _staff_page(request, web)


def _invite_link(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + f"/console/invite/{token}"


def _announce_invite(request: Request, web: WebContext, user: StaffUser, token: str) -> str:
    link = _invite_link(request, token)
    outbox.publish(
        web.session,
        web.tenant.id,
        "staff.invited",
        {
            "staff_user_id": str(user.id),
            "email": user.email,
            "role": user.role,
            "locale": user.locale,
            "link": link,
            "invited_by": web.staff.name if web.staff else "",
            "expires_in_days": staff.INVITE_DAYS,
        },
    )
    return link


@router.post("/console/settings/staff/invite")
def staff_invite(
    request: Request, form: ConsoleForm, web: WebContext = require("settings.staff")
) -> Response:
    errors = FieldErrors(web)
    email = errors.text(form, "email", required=True, max_length=254)
    role = errors.choice(form, "role", list(ROLES))
    name = errors.text(form, "name", max_length=200) or ""
    shown = {k: str(form.get(k) or "") for k in ("email", "role", "name")}
    idem = _idem(form)
    if errors or email is None or role is None:
        return _staff_page(request, web, {**shown, "idem": idem}, errors, status_code=422)
    if _done_before(web, "staff.invited", idem) is not None:
        flash(request, web.t("That invitation was already sent; its link was shown once."), "warn")
        return redirect(request, "/console/settings/staff")
    try:
        staff.check_may_invite(web.staff, role)
        new = staff.create_user(
            web.session,
            tenant_id=web.tenant.id,
            email=email,
            role=role,
            name=name,
            locale=web.tenant.locale,
        )
        assert new.invite_token is not None
        link = _announce_invite(request, web, new.user, new.invite_token)
        audit.record(
            web.session,
            tenant_id=web.tenant.id,
            actor=web.actor,
            action="staff.invited",
            subject_type="staff_user",
            subject_id=new.user.id,
            details={"email": new.user.email, "role": role, "idem": idem},
        )
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        errors.from_error(
            exc,
            {
                "invalid_email": "email",
                "staff_email_taken": "email",
                "owner_only": "role",
                "invalid_role": "role",
            },
            STAFF_MESSAGES,
        )
        return _staff_page(
            request, web, shown, errors, status_code=exc.status if exc.status in (403, 409) else 422
        )
    return _page(
        request,
        web,
        "invite_created.html",
        {"user": new.user, "link": link, "role_names": ROLE_NAMES},
        status_code=201,
        secret=True,
    )


def _target(web: WebContext, user_id: str) -> StaffUser | None:
    uid = parse_uuid(user_id)
    if uid is None:
        return None
    try:
        return staff.get_user(web.session, web.tenant.id, uid)
    except NotFound:
        return None


def _refused(request: Request, web: WebContext, user: StaffUser, exc: SetiaError) -> HTMLResponse:
    web.session.rollback()
    text = web.t(STAFF_MESSAGES[exc.code]) if exc.code in STAFF_MESSAGES else exc.detail
    status = 403 if exc.status == 403 else 409
    return _staff_page(request, web, row_errors={str(user.id): text}, status_code=status)


@router.post("/console/settings/staff/{user_id}/role")
def staff_role(
    request: Request, user_id: str, form: ConsoleForm, web: WebContext = require("settings.staff")
) -> Response:
    user = _target(web, user_id)
    if user is None:
        return page(request, 404)
    role = str(form.get("role") or "")
    try:
        changed = staff.change_role(web.session, web.staff, user, role)
        web.session.commit()
    except SetiaError as exc:
        return _refused(request, web, user, exc)
    if changed:
        flash(
            request,
            web.t(
                "%(email)s is now %(role)s.", email=user.email, role=web.t(ROLE_NAMES[user.role])
            ),
        )
    return redirect(request, "/console/settings/staff")


@router.get("/console/settings/staff/{user_id}/disable")
def staff_disable_confirm(
    request: Request, user_id: str, web: WebContext = require("settings.staff")
) -> HTMLResponse:
    user = _target(web, user_id)
    if user is None:
        return page(request, 404)
    return _page(request, web, "staff_disable.html", {"user": user, "role_names": ROLE_NAMES})


def _set_enabled(request: Request, web: WebContext, user_id: str, enabled: bool) -> Response:
    user = _target(web, user_id)
    if user is None:
        return page(request, 404)
    try:
        changed = staff.set_enabled(web.session, web.staff, user, enabled)
        web.session.commit()
    except SetiaError as exc:
        return _refused(request, web, user, exc)
    if changed:
        message = ENABLED if enabled else DISABLED
        flash(request, web.t(message, email=user.email))
    return redirect(request, "/console/settings/staff")


@router.post("/console/settings/staff/{user_id}/disable")
def staff_disable(
    request: Request, user_id: str, form: ConsoleForm, web: WebContext = require("settings.staff")
) -> Response:
    return _set_enabled(request, web, user_id, False)


@router.post("/console/settings/staff/{user_id}/enable")
def staff_enable(
    request: Request, user_id: str, form: ConsoleForm, web: WebContext = require("settings.staff")
) -> Response:
    return _set_enabled(request, web, user_id, True)


@router.post("/console/settings/staff/{user_id}/reinvite")
def staff_reinvite(
    request: Request, user_id: str, form: ConsoleForm, web: WebContext = require("settings.staff")
) -> Response:
    """A new invite link for a user who has not accepted yet (the old link stops working)."""
    user = _target(web, user_id)
    if user is None:
        return page(request, 404)
    if user.status != "invited":
        return redirect(request, "/console/settings/staff")
    if user.role == "owner" and web.role != "owner":
        return _refused(
            request, web, user, SetiaError("only an owner may invite an owner", code="owner_only")
        )
    token = staff.issue_token(web.session, user, "invite")
    link = _announce_invite(request, web, user, token)
    audit.record(
        web.session,
        tenant_id=web.tenant.id,
        actor=web.actor,
        action="staff.reinvited",
        subject_type="staff_user",
        subject_id=user.id,
        details={"email": user.email},
    )
    web.session.commit()
    return _page(
        request,
        web,
        "invite_created.html",
        {"user": user, "link": link, "role_names": ROLE_NAMES},
        status_code=201,
        secret=True,
    )
