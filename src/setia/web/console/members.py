"""Members: search, the member page, and its actions (adjust points, assign a tier, edit the
profile and consents, merge, export, erase).

Every page calls the services behind ``/v1/members`` and friends directly; every write
commits once, after the service raised or succeeded as a whole (nothing half-saved)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from setia.badges import service as badges
from setia.core import jsontext
from setia.core.errors import IdempotencyKeyReused, SetiaError
from setia.core.i18n import pick
from setia.core.time import utcnow
from setia.events.models import Order
from setia.ledger import queries as ledger_queries
from setia.ledger import service as ledger
from setia.members import service as members
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.referrals import service as referrals
from setia.referrals.models import Referral
from setia.tenants.models import Tenant
from setia.tiers import service as tiers
from setia.tiers import view as tier_view
from setia.web import errors as web_errors
from setia.web import i18n
from setia.web.console.current import current_program
from setia.web.console.referrals import STATUSES as REFERRAL_STATUSES
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
LEDGER_PAGE = 20
ERASE_WORD = "ERASE"
CHANNELS = members.CHANNELS
CONSENT_SOURCE = "console"  # with the staff actor: "console:staff:<id>"

# Field errors of the services, by error code.
NO_ZERO = N_("Enter a number other than zero.")
INSUFFICIENT = N_("Not enough points: the member has %(available)s available.")
REASON_SHORT = N_("Give a reason of at least 3 characters.")
NOT_ACTIVE = N_("This member was merged or erased; nothing can be changed.")
KEY_REUSED = N_("This form was already used for a different change. Reload the page and try again.")
PHONE_INVALID = N_("Enter a valid phone number, for example %(phone)s.")
EMAIL_INVALID = N_("Enter a valid email address.")
IDENTITY_TAKEN = N_("Another member already has this.")
DATE_INVALID = N_("Enter a date as YYYY-MM-DD.")
TIER_UNKNOWN = N_("Choose one of the tiers.")
MERGE_SELF = N_("Choose another member: a member cannot be merged into itself.")
OPEN_HOLDS = N_("The other member has points on hold; capture or release them first.")
CONFIRM_WRONG = N_("Type the member's name or ERASE to confirm.")


# --------------------------------------------------------------------------- helpers


def _program(web: WebContext) -> Program:
    return current_program(web)


def _member_or_404(request: Request, web: WebContext, member_id: str) -> Member | Response:
    mid = parse_uuid(member_id)
    member = web.session.get(Member, mid) if mid else None
    if member is None or member.tenant_id != web.tenant.id:
        return web_errors.page(request, 404, web.t("No member with this id."))
    return member


def _phone_candidates(raw: str, tenant: Tenant) -> list[str]:
    try:
        return [members.normalize_phone(raw, tenant.country)]
    except SetiaError:
        return []


def search(
    session: Session, tenant: Tenant, q: str, *, page: int, size: int = PAGE_SIZE
) -> tuple[list[Member], int]:
    """Members matching ``q`` (name or email contains it; external id is it; a phone in any
    local format, normalised with the tenant's country, or its digits), merged ones left out."""
    stmt = select(Member).where(Member.tenant_id == tenant.id, Member.status != "merged")
    q = q.strip()
    if q:
        like = f"%{q.lower()}%"
        conds: list[Any] = [
            Member.external_id == q,
            func.lower(Member.name).like(like),
            func.lower(Member.email).like(like),
        ]
        conds += [Member.phone == p for p in _phone_candidates(q, tenant)]
        digits = "".join(ch for ch in q if ch.isdigit())
        if len(digits) >= 4 and len(digits) >= len(q.replace(" ", "").replace("-", "")) - 1:
            conds.append(Member.phone.like(f"%{digits.lstrip('0')}%"))
        stmt = stmt.where(or_(*conds))
    total = int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    rows = session.execute(
        stmt.order_by(Member.created_at.desc(), Member.id).offset((page - 1) * size).limit(size)
    ).scalars()
    return list(rows), total


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 100_000))
    except ValueError:
        return 1


def _idem(form: FormData | None = None) -> str:
    raw = str(form.get("idem") or "") if form is not None else ""
    return raw if parse_uuid(raw) else str(uuid.uuid4())


def _label(member: Member) -> str:
    return member.name or member.phone or member.email or member.external_id or str(member.id)[:8]


# --------------------------------------------------------------------------- search


@router.get("/console/members")
def members_index(request: Request, web: WebContext = require("members.view")) -> HTMLResponse:
    q = (request.query_params.get("q") or "")[:200]
    page = _page_number(request.query_params.get("page"))
    rows, total = search(web.session, web.tenant, q, page=page)
    ctx = {
        "q": q,
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        "first": (page - 1) * PAGE_SIZE + 1 if rows else 0,
        "last": (page - 1) * PAGE_SIZE + len(rows),
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "results":
        return render(request, "console/members/_results.html", ctx)
    return render(request, "console/members/index.html", ctx)


# --------------------------------------------------------------------------- the member page


def _tier(web: WebContext, program: Program, member: Member) -> dict[str, Any] | None:
    if member.status != "active":
        return None
    try:
        return tier_view.member_view(web.session, web.tenant, program, member, locale=web.lang)
    except SetiaError:
        return None


def _tier_choices(web: WebContext, program: Program) -> list[tuple[str, str]]:
    ts = tiers.get_tier_set(web.session, program.id)
    if ts is None:
        return []
    return [
        (t.code, pick(t.names, web.lang) or t.code) for t in tiers.tiers_of_set(web.session, ts.id)
    ]


def _referrals(web: WebContext, program: Program, member: Member) -> dict[str, Any]:
    session = web.session
    code = referrals.code_of(session, web.tenant.id, member.id)
    made = list(
        session.execute(
            select(Referral, Member)
            .join(Member, Member.id == Referral.referee_id)
            .where(Referral.program_id == program.id, Referral.referrer_id == member.id)
            .order_by(Referral.id.desc())
            .limit(20)
        ).all()
    )
    total = int(
        session.execute(
            select(func.count())
            .select_from(Referral)
            .where(Referral.program_id == program.id, Referral.referrer_id == member.id)
        ).scalar_one()
    )
    by = session.execute(
        select(Member)
        .join(Referral, Referral.referrer_id == Member.id)
        .where(Referral.program_id == program.id, Referral.referee_id == member.id)
    ).scalar_one_or_none()
    return {
        "code": code.code if code else None,
        "qualified": referrals.referral_count(session, web.tenant.id, member.id),
        "total": total,
        "made": [(r, m) for r, m in made],
        "referred_by": by,
        "statuses": REFERRAL_STATUSES,
    }


def member_context(
    request: Request, web: WebContext, member: Member, *, ledger_before: str | None = None
) -> dict[str, Any]:
    """Everything the member page shows (also the action pages' summary)."""
    from setia.analytics import store

    session = web.session
    program = _program(web)
    now = utcnow()
    balance = ledger_queries.balance(session, program.id, member.id, now=now)
    before = parse_uuid(ledger_before or "")
    statement = ledger_queries.statement(
        session, program.id, member.id, limit=LEDGER_PAGE + 1, before=before
    )
    more = len(statement) > LEDGER_PAGE
    statement = statement[:LEDGER_PAGE]
    orders = list(
        session.execute(
            select(Order)
            .where(Order.member_id == member.id, Order.program_id == program.id)
            .order_by(Order.occurred_at.desc())
            .limit(10)
        ).scalars()
    )
    order_count = int(
        session.execute(
            select(func.count()).select_from(Order).where(Order.member_id == member.id)
        ).scalar_one()
    )
    merged_into = session.get(Member, member.merged_into_id) if member.merged_into_id else None
    return {
        "member": member,
        "program": program,
        "currency": program.currency,
        "points_name": program.points_name,
        "consents": members.current_consents(session, member.id),
        "consent_history": list(reversed(members.consent_history(session, member.id)))[:20],
        "balance": balance,
        "statement": statement,
        "ledger_more": statement[-1]["id"] if more and statement else None,
        "ledger_before": before,
        "tier": _tier(web, program, member),
        "badges": badges.member_badges(session, web.tenant, program, member, web.lang),
        "referrals": _referrals(web, program, member),
        "orders": orders,
        "order_count": order_count,
        "scores": store.member_score(session, program.id, member.id),
        "merged_into": merged_into,
        "label": _label(member),
    }


@router.get("/console/members/{member_id}")
def member_page(
    request: Request, member_id: str, web: WebContext = require("members.view")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    ctx = member_context(request, web, found, ledger_before=request.query_params.get("before"))
    ctx.update(adjust_form={}, errors=None, idem=str(uuid.uuid4()))
    return render(request, "console/members/show.html", ctx)


# The program's analysis (models fitted on every member) takes a second or more on a large
# tenant; it is kept per process until the data changes (the newest order and ledger transfer
# ids are part of the key) or for ``ANALYSIS_SECONDS``, so opening the evidence of member
# after member costs one fit. One entry per program.
ANALYSIS_SECONDS = 300.0
_analyses: dict[uuid.UUID, tuple[float, tuple[str, str], Any]] = {}
_analyses_lock = threading.Lock()


def _analysis(web: WebContext, program: Program, compute: Callable[[], Any]) -> Any:
    from setia.ledger.models import Transfer

    session = web.session
    version = (
        str(session.execute(select(Order.id).order_by(Order.id.desc()).limit(1)).scalar()),
        str(session.execute(select(Transfer.id).order_by(Transfer.id.desc()).limit(1)).scalar()),
    )
    now = time.monotonic()
    with _analyses_lock:
        hit = _analyses.get(program.id)
    if hit is not None and hit[1] == version and now - hit[0] < ANALYSIS_SECONDS:
        return hit[2]
    value = compute()
    with _analyses_lock:
        if len(_analyses) > 64:
            _analyses.clear()
        _analyses[program.id] = (now, version, value)
    return value


@router.get("/console/members/{member_id}/insights")
def member_insights(
    request: Request, member_id: str, web: WebContext = require("members.view")
) -> Response:
    """The live analysis of one member: the loyalty label and type with their evidence (the
    service behind ``/v1/analytics/members/{id}``). Loaded on demand: it fits the program's
    models, which the member page itself does not wait for."""
    from setia.analytics import labels as labelling
    from setia.analytics import settings as tenant_settings

    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    program = _program(web)
    label: Any = None
    error = None
    try:
        a = _analysis(
            web, program, lambda: tenant_settings.analyse(web.session, web.tenant, program)
        )
        thresholds = tenant_settings.thresholds(web.session, web.tenant.id, {})
        label = labelling.classify(web.session, a, thresholds, member_id=found.id).get(found.id)
    except SetiaError as exc:
        error = exc.detail
    template = (
        "console/members/_insights.html"
        if request.headers.get("hx-request")
        else "console/members/insights.html"
    )
    return render(
        request, template, {"member": found, "label": label, "error": error, "name": _label(found)}
    )


# --------------------------------------------------------------------------- adjust points


@router.post("/console/members/{member_id}/adjust")
def adjust_points(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("members.adjust")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    errors = FieldErrors(web)
    points = errors.integer(form, "points", required=True, minimum=-(10**9), maximum=10**9)
    if points == 0:
        errors.add("points", NO_ZERO)
    reason = errors.text(form, "reason", required=True, max_length=500)
    if reason is not None and len(reason) < 3:
        errors.add("reason", REASON_SHORT)
    idem = _idem(form)
    status = 422
    created = False
    if not errors:
        assert points is not None
        assert reason is not None
        program = _program(web)
        session = web.session
        try:
            members._active(member)
            lctx = ledger.Context(
                program_id=program.id,
                idempotency_key=f"console:{web.tenant.id}:adjust:{idem}",
                request_hash=ledger.request_hash(
                    {"op": "adjust", "member": str(member.id), "points": points, "reason": reason}
                ),
                actor=web.actor,
                program_revision=program.revision,
                source_type="adjustment",
                reason=reason,
            )
            now = utcnow()
            res = ledger.adjust(
                session,
                lctx,
                member_id=member.id,
                delta=points,
                earned_at=now,
                expires_at=programs.expires_at(program, now, web.tenant.timezone),
            )
            session.commit()
            created = res.created
        except IdempotencyKeyReused:
            session.rollback()
            errors.add("__all__", KEY_REUSED)
            status = 409
        except SetiaError as exc:
            session.rollback()
            status = 409
            if exc.code == "insufficient_points":
                errors.add(
                    "points",
                    INSUFFICIENT,
                    available=f"{int(exc.extra.get('available', 0)):,}".replace(",", "."),
                )
            elif exc.code == "member_not_active":
                errors.add("__all__", NOT_ACTIVE)
            else:
                errors.add_text("__all__", exc.detail)
    if errors:
        ctx = member_context(request, web, member)
        ctx.update(adjust_form=form, errors=errors, idem=idem)
        return render(request, "console/members/adjust.html", ctx, status_code=status)
    if created:
        flash(request, web.t("Points adjusted."), "ok")
    else:
        flash(
            request,
            web.t("This adjustment was already recorded; it was not applied twice."),
            "info",
        )
    return web_errors.redirect(request, f"/console/members/{member.id}")


@router.get("/console/members/{member_id}/adjust")
def adjust_form(
    request: Request, member_id: str, web: WebContext = require("members.adjust")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    ctx = member_context(request, web, found)
    ctx.update(adjust_form={}, errors=None, idem=str(uuid.uuid4()))
    return render(request, "console/members/adjust.html", ctx)


# --------------------------------------------------------------------------- assign a tier


def _parse_day(errors: FieldErrors, form: FormData, name: str) -> date | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.add(name, DATE_INVALID)
        return None


@router.get("/console/members/{member_id}/tier")
def tier_form(
    request: Request, member_id: str, web: WebContext = require("members.edit")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    program = _program(web)
    return render(
        request,
        "console/members/tier.html",
        {
            "member": found,
            "label": _label(found),
            "choices": _tier_choices(web, program),
            "tier": _tier(web, program, found),
            "form": {},
            "errors": None,
        },
    )


@router.post("/console/members/{member_id}/tier")
def tier_assign(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("members.edit")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    program = _program(web)
    choices = _tier_choices(web, program)
    errors = FieldErrors(web)
    code = errors.choice(form, "tier", [c for c, _ in choices])
    until = _parse_day(errors, form, "until")
    reason = errors.text(form, "reason", required=True, max_length=500)
    if reason is not None and len(reason) < 3:
        errors.add("reason", REASON_SHORT)
    status = 422
    if not errors:
        assert code is not None
        assert reason is not None
        try:
            members._active(member)
            tiers.set_override(
                web.session,
                web.tenant,
                program.id,
                member.id,
                tier_code=code,
                until=until,
                reason=reason,
                actor=web.actor,
            )
            web.session.commit()
        except SetiaError as exc:
            web.session.rollback()
            status = 409
            if exc.code == "member_not_active":
                errors.add("__all__", NOT_ACTIVE)
            else:
                errors.add_text("tier" if "tier" in exc.detail else "__all__", exc.detail)
    if errors:
        return render(
            request,
            "console/members/tier.html",
            {
                "member": member,
                "label": _label(member),
                "choices": choices,
                "tier": _tier(web, program, member),
                "form": form,
                "errors": errors,
            },
            status_code=status,
        )
    flash(request, web.t("Tier assigned."), "ok")
    return web_errors.redirect(request, f"/console/members/{member.id}")


# --------------------------------------------------------------------------- profile & consents


def _profile_form(member: Member, consents: dict[str, bool]) -> dict[str, Any]:
    return {
        "name": member.name or "",
        "phone": member.phone or "",
        "email": member.email or "",
        "external_id": member.external_id or "",
        "locale": member.locale,
        "birthday": member.birthday.isoformat() if member.birthday else "",
        "tags": ", ".join(member.tags or []),
        **{f"consent_{c}": consents.get(c, False) for c in CHANNELS},
    }


def _edit_page(
    request: Request,
    web: WebContext,
    member: Member,
    form: Any,
    errors: FieldErrors | None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "console/members/edit.html",
        {
            "member": member,
            "label": _label(member),
            "form": form,
            "errors": errors,
            "channels": CHANNELS,
            "history": list(reversed(members.consent_history(web.session, member.id)))[:20],
        },
        status_code=status,
    )


@router.get("/console/members/{member_id}/edit")
def edit_form(
    request: Request, member_id: str, web: WebContext = require("members.edit")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    consents = members.current_consents(web.session, found.id)
    return _edit_page(request, web, found, _profile_form(found, consents), None)


@router.post("/console/members/{member_id}/edit")
def edit_save(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("members.edit")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    errors = FieldErrors(web)
    name = errors.text(form, "name", max_length=200)
    phone = errors.text(form, "phone", max_length=40)
    email = errors.text(form, "email", max_length=320)
    external_id = errors.text(form, "external_id", max_length=200)
    locale = errors.choice(form, "locale", list(members.LOCALES))
    birthday = _parse_day(errors, form, "birthday")
    tags_raw = errors.text(form, "tags", max_length=2000) or ""
    tags = sorted({t.strip() for t in tags_raw.split(",") if t.strip()})
    if len(tags) > 100:
        errors.add("tags", N_("Use at most 100 tags."))
    # Checked here too (the service checks again), so every mistake shows at once.
    if phone:
        try:
            members.normalize_phone(phone, web.tenant.country)
        except SetiaError:
            errors.add("phone", PHONE_INVALID, phone=i18n.phone_example(web.tenant.country))
    if email:
        try:
            members.normalize_email(email)
        except SetiaError:
            errors.add("email", EMAIL_INVALID)
    # Consents: a checkbox sends "1" when ticked, nothing when not.
    wanted = {c: bool(form.get(f"consent_{c}")) for c in CHANNELS}
    view: dict[str, Any] = dict(form)
    view.update({f"consent_{c}": wanted[c] for c in CHANNELS})
    if errors:
        return _edit_page(request, web, member, view, errors, 422)
    candidate = {
        "name": name,
        "phone": phone,
        "email": email,
        "external_id": external_id,
        "locale": locale,
        "birthday": birthday,
        "tags": tags,
    }
    changes: dict[str, Any] = {}
    for key, value in candidate.items():
        current = getattr(member, key)
        if key == "tags":
            current = sorted(current or [])
        if value != current:
            changes[key] = value
    session = web.session
    try:
        members._active(member)
        # A number typed the local way stays the same number: compare normalised.
        phone_new, email_new = changes.get("phone"), changes.get("email")
        if phone_new and members.normalize_phone(phone_new, web.tenant.country) == member.phone:
            del changes["phone"]
        if email_new and members.normalize_email(email_new) == member.email:
            del changes["email"]
        if changes:
            members.update_member(session, web.tenant, member, changes, actor=web.actor)
        current = members.current_consents(session, member.id)
        for channel in CHANNELS:
            if wanted[channel] != current.get(channel, False):
                members.set_consent(
                    session,
                    member,
                    channel,
                    wanted[channel],
                    source=f"{CONSENT_SOURCE}:{web.actor}",
                )
        session.commit()
    except SetiaError as exc:
        session.rollback()
        session.refresh(member)
        errors.from_error(
            exc,
            {
                "invalid_phone": "phone",
                "invalid_email": "email",
                "member_identity_taken": str(exc.extra.get("field") or "__all__"),
                "member_not_active": "__all__",
            },
            {
                "invalid_phone": PHONE_INVALID,
                "invalid_email": EMAIL_INVALID,
                "member_identity_taken": IDENTITY_TAKEN,
                "member_not_active": NOT_ACTIVE,
            },
            phone=i18n.phone_example(web.tenant.country),
        )
        return _edit_page(request, web, member, view, errors, 409 if exc.status == 409 else 422)
    flash(request, web.t("Profile saved."), "ok")
    return web_errors.redirect(request, f"/console/members/{member.id}")


# --------------------------------------------------------------------------- merge


def _merge_page(
    request: Request,
    web: WebContext,
    member: Member,
    *,
    q: str = "",
    other: Member | None = None,
    form: Any = None,
    errors: FieldErrors | None = None,
    status: int = 200,
) -> Response:
    rows: list[Member] = []
    if q and other is None:
        rows, _total = search(web.session, web.tenant, q, page=1, size=20)
        rows = [m for m in rows if m.id != member.id and m.status == "active"]
    program = _program(web)
    balances = {}
    for m in [member] + ([other] if other else []):
        balances[m.id] = ledger_queries.balance(web.session, program.id, m.id, now=utcnow())
    return render(
        request,
        "console/members/merge.html",
        {
            "member": member,
            "label": _label(member),
            "other": other,
            "other_label": _label(other) if other else "",
            "q": q,
            "rows": rows,
            "balances": balances,
            "form": form or {},
            "errors": errors,
            "points_name": program.points_name,
        },
        status_code=status,
    )


@router.get("/console/members/{member_id}/merge")
def merge_form(
    request: Request, member_id: str, web: WebContext = require("members.merge")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    other = None
    oid = parse_uuid(request.query_params.get("other") or "")
    if oid is not None:
        other = web.session.get(Member, oid)
        if other is None or other.tenant_id != web.tenant.id:
            return web_errors.page(request, 404, web.t("No member with this id."))
    return _merge_page(
        request, web, found, q=(request.query_params.get("q") or "")[:200], other=other
    )


@router.post("/console/members/{member_id}/merge")
def merge_do(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("members.merge")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    survivor = found
    errors = FieldErrors(web)
    oid = parse_uuid(str(form.get("other") or ""))
    source = web.session.get(Member, oid) if oid else None
    if source is None or source.tenant_id != web.tenant.id:
        return web_errors.page(request, 404, web.t("No member with this id."))
    reason = errors.text(form, "reason", required=True, max_length=500)
    if reason is not None and len(reason) < 3:
        errors.add("reason", REASON_SHORT)
    if source.id == survivor.id:
        errors.add("__all__", MERGE_SELF)
    if errors:
        return _merge_page(
            request, web, survivor, other=source, form=form, errors=errors, status=422
        )
    assert reason is not None
    session = web.session
    try:
        members.merge_members(session, web.tenant, survivor, source, actor=web.actor, reason=reason)
        session.commit()
    except SetiaError as exc:
        session.rollback()
        errors.from_error(
            exc,
            {},
            {
                "member_not_active": NOT_ACTIVE,
                "member_has_open_holds": OPEN_HOLDS,
                "invalid_input": MERGE_SELF,
            },
        )
        session.refresh(survivor)
        session.refresh(source)
        return _merge_page(
            request, web, survivor, other=source, form=form, errors=errors, status=409
        )
    flash(
        request,
        web.t("%(other)s was merged into this member.", other=_label(source)),
        "ok",
    )
    return web_errors.redirect(request, f"/console/members/{survivor.id}")


# --------------------------------------------------------------------------- export


@router.get("/console/members/{member_id}/export")
def export(
    request: Request, member_id: str, web: WebContext = require("members.export")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    data = members.export_member(web.session, web.tenant, found)
    body = jsontext.dumps(data)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="member-{found.id}.json"',
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------- erase


@router.get("/console/members/{member_id}/erase")
def erase_form(
    request: Request, member_id: str, web: WebContext = require("members.erase")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    return render(
        request,
        "console/members/erase.html",
        {"member": found, "label": _label(found), "form": {}, "errors": None, "word": ERASE_WORD},
    )


@router.post("/console/members/{member_id}/erase")
def erase_do(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("members.erase")
) -> Response:
    found = _member_or_404(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    errors = FieldErrors(web)
    typed = errors.text(form, "confirm", required=True, max_length=200)
    accepted = {ERASE_WORD.lower()} | ({member.name.strip().lower()} if member.name else set())
    if typed is not None and typed.lower() not in accepted:
        errors.add("confirm", CONFIRM_WRONG)
    reason = errors.text(form, "reason", required=True, max_length=500)
    if reason is not None and len(reason) < 3:
        errors.add("reason", REASON_SHORT)
    if errors:
        return render(
            request,
            "console/members/erase.html",
            {
                "member": member,
                "label": _label(member),
                "form": form,
                "errors": errors,
                "word": ERASE_WORD,
            },
            status_code=422,
        )
    assert reason is not None
    try:
        members.erase_member(web.session, web.tenant, member, actor=web.actor, reason=reason)
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        errors.add_text("__all__", exc.detail)
        return render(
            request,
            "console/members/erase.html",
            {
                "member": member,
                "label": _label(member),
                "form": form,
                "errors": errors,
                "word": ERASE_WORD,
            },
            status_code=409,
        )
    flash(request, web.t("The member's personal data was erased."), "ok")
    return web_errors.redirect(request, f"/console/members/{member.id}")
