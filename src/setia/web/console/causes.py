"""Causes (giving points to good causes) and their donations.

Routes (read: ``program.view``; changes: ``program.edit``): ``/console/causes`` (list with
totals), ``/new``, ``/{id}`` (progress, matching and the donations, a page at a time),
``/{id}/edit``, ``/{id}/close`` (with a confirmation page).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from setia.causes import service
from setia.causes.models import Cause
from setia.causes.schemas import CauseIn
from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.members.models import Member
from setia.web.console.rewards import (
    LANG_LABELS,
    form_dict,
    localized_form,
    place_error,
    program_of,
    read_date,
    read_localized,
    validation_errors,
)
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

STATUSES = {"draft": N_("Draft"), "active": N_("Active"), "closed": N_("Closed")}
FIELDS = {
    "names": "name_id",
    "descriptions": "description_id",
    "code": "code",
    "invalid_cause_code": "code",
    "match_budget_below_matched": "match_budget",
    "receipt_prefix": "receipt_prefix",
}
MESSAGES = {
    "invalid_cause_code": N_("Use 1 to 60 lowercase letters, digits, - or _."),
    "match_budget_below_matched": N_("The budget cannot be below the points already matched."),
    "cause_closed": N_("A closed cause cannot change."),
}


def _cause_or_404(web: WebContext, cause_id: str) -> Cause:
    cid = parse_uuid(cause_id)
    if cid is None:
        raise service.CauseNotFound("cause not found")
    return service.get_cause(web.session, web.tenant.id, cid)


@router.get("/console/causes")
def causes_index(request: Request, web: WebContext = require("program.view")) -> HTMLResponse:
    program = program_of(web)
    causes = service.list_causes(web.session, program.id)
    donors = service.donors(web.session, [c.id for c in causes])
    today = service.local_today(web.tenant)
    rows = [
        {
            "cause": c,
            "name": pick(c.names, web.lang) or c.code,
            "progress": service.progress(c, program, donors.get(c.id, 0), today, web.lang),
            "open": service.is_open(c, today),
        }
        for c in causes
    ]
    totals = {
        "donated": sum(c.donated_points for c in causes),
        "matched": sum(c.matched_points for c in causes),
        "donations": sum(c.donations_count for c in causes),
    }
    return render(
        request,
        "console/causes/index.html",
        {"rows": rows, "statuses": STATUSES, "totals": totals, "program": program},
    )


def _form_page(
    request: Request,
    web: WebContext,
    form: Mapping[str, Any],
    errors: FieldErrors | None,
    cause: Cause | None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/causes/form.html",
        {
            "form": form,
            "errors": errors,
            "cause": cause,
            "langs": LANG_LABELS,
            "status_options": [(k, web.t(v)) for k, v in STATUSES.items() if k != "closed"],
            "program": program_of(web),
        },
        status_code=status_code,
    )


def _read(web: WebContext, form: Any, errors: FieldErrors) -> dict[str, Any]:
    data: dict[str, Any] = {
        "names": read_localized(errors, form, "name", required=True, max_length=200),
        "descriptions": read_localized(errors, form, "description"),
        "status": errors.choice(form, "status", ["draft", "active"]) or "draft",
        "goal_points": errors.integer(form, "goal_points", minimum=1, maximum=10**15),
        "starts_on": read_date(errors, form, "starts_on"),
        "ends_on": read_date(errors, form, "ends_on"),
        "min_points": errors.integer(form, "min_points", minimum=1, maximum=10**12) or 1,
        "max_points": errors.integer(form, "max_points", minimum=1, maximum=10**12),
        "match_budget": errors.integer(form, "match_budget", minimum=0, maximum=10**15) or 0,
        "match_cap_per_member": errors.integer(
            form, "match_cap_per_member", minimum=0, maximum=10**15
        ),
    }
    value = errors.amount(form, "value_per_point")
    data["value_per_point"] = value
    ratio = errors.amount(form, "match_ratio")
    if ratio is not None and ratio > 100:
        errors.add("match_ratio", N_("Enter %(maximum)s or less."), maximum=100)
    data["match_ratio"] = ratio if ratio is not None else Decimal(0)
    prefix = errors.text(form, "receipt_prefix", max_length=12)
    if prefix and not (prefix.isascii() and prefix.isalnum() and prefix == prefix.upper()):
        errors.add("receipt_prefix", N_("Use up to 12 capital letters or digits."))
    data["receipt_prefix"] = prefix
    if data["starts_on"] and data["ends_on"] and data["ends_on"] < data["starts_on"]:
        errors.add("ends_on", N_("The last day is before the first day."))
    if (
        data["max_points"] is not None
        and "min_points" not in errors
        and data["max_points"] < data["min_points"]
    ):
        errors.add("max_points", N_("The most is below the least."))
    return data


def _save(
    web: WebContext, code: str, data: dict[str, Any], errors: FieldErrors
) -> tuple[Cause | None, bool]:
    program = program_of(web)
    try:
        body = CauseIn.model_validate(data)
        cause, created = service.put_cause(web.session, program, code, body, actor=web.actor)
        web.session.commit()
        return cause, created
    except ValidationError as exc:
        web.session.rollback()
        validation_errors(errors, exc, FIELDS)
    except SetiaError as exc:
        web.session.rollback()
        place_error(errors, exc, FIELDS, MESSAGES)
    return None, False


@router.get("/console/causes/new")
def cause_new(request: Request, web: WebContext = require("program.edit")) -> HTMLResponse:
    form = {"status": "active", "min_points": "1", "match_ratio": "0", "match_budget": "0"}
    return _form_page(request, web, form, None, None)


@router.post("/console/causes/new", response_model=None)
def cause_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    errors = FieldErrors(web)
    code = errors.text(form, "code", required=True, max_length=60)
    data = _read(web, form, errors)
    cause: Cause | None = None
    if code and not errors:
        program = program_of(web)
        exists = web.session.execute(
            select(Cause.id).where(Cause.program_id == program.id, Cause.code == code)
        ).first()
        if exists:
            errors.add("code", N_("A cause with this code exists already."))
        else:
            cause, _ = _save(web, code, data, errors)
    if errors or cause is None:
        return _form_page(request, web, form_dict(form), errors, None, status_code=422)
    flash(request, web.t(N_("The cause %(code)s was created."), code=cause.code))
    return redirect(request, f"/console/causes/{cause.id}")


@router.get("/console/causes/{cause_id}")
def cause_show(
    request: Request, cause_id: str, after: str = "", web: WebContext = require("program.view")
) -> HTMLResponse:
    cause = _cause_or_404(web, cause_id)
    program = program_of(web)
    today = service.local_today(web.tenant)
    donors = service.donors(web.session, [cause.id]).get(cause.id, 0)
    limit = 50
    donations = service.cause_donations(
        web.session, cause, after=parse_uuid(after) if after else None, limit=limit + 1
    )
    more = len(donations) > limit
    donations = donations[:limit]
    ids: set[uuid.UUID] = {d.member_id for d in donations}
    names = dict(
        web.session.execute(select(Member.id, Member.name).where(Member.id.in_(ids))).all()
        if ids
        else []
    )
    return render(
        request,
        "console/causes/show.html",
        {
            "cause": cause,
            "program": program,
            "name": pick(cause.names, web.lang) or cause.code,
            "description": pick(cause.descriptions, web.lang),
            "progress": service.progress(cause, program, donors, today, web.lang),
            "open": service.is_open(cause, today),
            "rate": service.value_per_point(cause, program),
            "statuses": STATUSES,
            "donations": donations,
            "names": names,
            "next_after": str(donations[-1].id) if more and donations else "",
        },
    )


def _values(cause: Cause) -> dict[str, str]:
    def s(v: Any) -> str:
        return "" if v is None else str(v)

    return {
        "code": cause.code,
        **localized_form("name", cause.names),
        **localized_form("description", cause.descriptions),
        "status": cause.status,
        "goal_points": s(cause.goal_points),
        "value_per_point": ""
        if cause.value_per_point is None
        else format(cause.value_per_point.normalize(), "f"),
        "starts_on": s(cause.starts_on),
        "ends_on": s(cause.ends_on),
        "min_points": s(cause.min_points),
        "max_points": s(cause.max_points),
        "match_ratio": format(cause.match_ratio.normalize(), "f"),
        "match_budget": s(cause.match_budget),
        "match_cap_per_member": s(cause.match_cap_per_member),
        "receipt_prefix": s(cause.receipt_prefix),
    }


@router.get("/console/causes/{cause_id}/edit")
def cause_edit(
    request: Request, cause_id: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    cause = _cause_or_404(web, cause_id)
    return _form_page(request, web, _values(cause), None, cause)


@router.post("/console/causes/{cause_id}/edit", response_model=None)
def cause_update(
    request: Request, cause_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    cause = _cause_or_404(web, cause_id)
    code = cause.code
    errors = FieldErrors(web)
    data = _read(web, form, errors)
    saved: Cause | None = None
    if not errors:
        saved, _ = _save(web, code, data, errors)
    if errors or saved is None:
        cause = _cause_or_404(web, cause_id)
        return _form_page(
            request, web, {**form_dict(form), "code": code}, errors, cause, status_code=422
        )
    flash(request, web.t(N_("The cause %(code)s was saved."), code=code))
    return redirect(request, f"/console/causes/{saved.id}")


@router.get("/console/causes/{cause_id}/close")
def cause_close_confirm(
    request: Request, cause_id: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    cause = _cause_or_404(web, cause_id)
    return render(
        request,
        "console/causes/close.html",
        {"cause": cause, "name": pick(cause.names, web.lang) or cause.code},
    )


@router.post("/console/causes/{cause_id}/close", response_model=None)
def cause_close(
    request: Request, cause_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    cause = _cause_or_404(web, cause_id)
    service.close_cause(web.session, web.tenant.id, cause.id, actor=web.actor)
    web.session.commit()
    flash(request, web.t(N_("The cause is closed; its donations and receipts stay.")))
    return redirect(request, f"/console/causes/{cause.id}")
