"""Badges and challenges: definitions, their criteria, and the progress leaderboard.

Routes (read: ``program.view``; changes: ``program.edit``): ``/console/badges`` (list),
``/new``, ``/{code}`` (definition, progress counts, leaderboard of members who consented,
display names only), ``/{code}/edit``, ``/{code}/archive`` (with confirmation),
``/{code}/activate``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from setia.badges import service
from setia.badges.models import BadgeDefinition, BadgeProgress
from setia.badges.schemas import (
    CriteriaIn,
    DefinitionIn,
    DefinitionPatch,
    PeriodIn,
    RewardsIn,
)
from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.core.time import as_utc, zone
from setia.coupons import service as coupons
from setia.web import i18n
from setia.web.console.rewards import (
    CHECK_FIELD,
    LANG_LABELS,
    form_dict,
    localized_form,
    program_of,
    read_localized,
    validation_errors,
)
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

KINDS = {"badge": N_("Badge"), "challenge": N_("Challenge")}
MEASURES = {
    "count": N_("Count of events"),
    "sum": N_("Sum of a field"),
    "distinct": N_("Different values"),
    "streak": N_("Streak of periods"),
    "first": N_("First time"),
}
PERIOD_TYPES = {
    "all_time": N_("All time"),
    "month": N_("A month"),
    "campaign": N_("A campaign window"),
}
STREAK_UNITS = {"day": N_("Days"), "week": N_("Weeks"), "month": N_("Months")}
STATUSES = {"active": N_("Active"), "archived": N_("Archived")}
FIELD_CHOICES = (*service.SUM_FIELDS, *service.DISTINCT_FIELDS)

# service error paths -> form fields (the longest matching prefix wins)
PATHS = {
    "criteria.event_type": "event_type",
    "criteria.measure": "measure",
    "criteria.target": "target",
    "criteria.field": "field",
    "criteria.items_where": "items_where",
    "criteria.conditions": "conditions",
    "criteria.streak_unit": "streak_unit",
    "period.type": "period_type",
    "period.recurring": "recurring",
    "period.month": "month",
    "period.starts_at": "starts_at",
    "period.ends_at": "ends_at",
    "rewards.points": "reward_points",
    "rewards.coupon_campaign_id": "reward_coupon",
    "names": "name_id",
    "descriptions": "description_id",
    "image_url": "image_url",
    "code": "code",
    "event_type": "event_type",
    "target": "target",
    "month": "month",
}


def _field_for(path: str) -> str:
    best = ""
    for prefix in PATHS:
        if (path == prefix or path.startswith((prefix + ".", prefix + "["))) and (
            len(prefix) > len(best)
        ):
            best = prefix
    return PATHS.get(best, "__all__")


def _definition_or_404(web: WebContext, code: str) -> BadgeDefinition:
    return service.get_definition(web.session, web.tenant.id, code, program_of(web).id)


def _amount_text(web: WebContext, d: BadgeDefinition, value: Any) -> str:
    """A target or progress value as people read it: money for a sum of amounts
    ("Rp 1.000.000"), else a number in the reader's way."""
    number = Decimal(str(value))
    if d.measure == "sum" and d.field in ("event.amount", "items.amount"):
        return i18n.money(number, program_of(web).currency, web.lang)
    places = max(0, -int(number.normalize().as_tuple().exponent))
    return i18n.number(number, web.lang, places)


def _period_label(web: WebContext, key: str) -> str:
    """``all`` or ``YYYY-MM`` as the period picker shows it ("November 2026")."""
    if key == "all":
        return web.t(N_("All time"))
    try:
        first = date(int(key[:4]), int(key[5:7]), 1)
    except ValueError:
        return key
    return format_date(first, "MMMM yyyy", locale=i18n.BABEL_LOCALE.get(web.lang, "id_ID"))


def _period_text(web: WebContext, d: BadgeDefinition) -> str:
    if d.period == "month" and d.recurring:
        return web.t(N_("Every month"))
    if d.period == "month" and d.starts_at is not None:
        local = as_utc(d.starts_at).astimezone(zone(web.tenant.timezone))
        return web.t(N_("Month %(month)s"), month=f"{local.year:04d}-{local.month:02d}")
    return web.t(PERIOD_TYPES.get(d.period, d.period))


@router.get("/console/badges")
def badges_index(
    request: Request, status: str = "active", web: WebContext = require("program.view")
) -> HTMLResponse:
    program = program_of(web)
    if status not in ("active", "archived", "all"):
        status = "active"
    defs = service.list_definitions(
        web.session, program.id, status=None if status == "all" else status
    )
    done = dict(
        web.session.execute(
            select(BadgeProgress.definition_id, func.count())
            .where(
                BadgeProgress.program_id == program.id,
                BadgeProgress.completed_at.is_not(None),
            )
            .group_by(BadgeProgress.definition_id)
        ).all()
    )
    rows = [
        {
            "d": d,
            "name": pick(d.names, web.lang) or d.code,
            "period": _period_text(web, d),
            "completed": int(done.get(d.id, 0)),
        }
        for d in defs
    ]
    return render(
        request,
        "console/badges/index.html",
        {
            "rows": rows,
            "kinds": KINDS,
            "measures": MEASURES,
            "statuses": STATUSES,
            "status": status,
        },
    )


def _form_page(
    request: Request,
    web: WebContext,
    form: Mapping[str, Any],
    errors: FieldErrors | None,
    d: BadgeDefinition | None,
    status_code: int = 200,
) -> HTMLResponse:
    campaigns = coupons.list_campaigns(web.session, web.tenant.id, status="active", limit=200)
    return render(
        request,
        "console/badges/form.html",
        {
            "form": form,
            "errors": errors,
            "d": d,
            "langs": LANG_LABELS,
            "kind_options": [(k, web.t(v)) for k, v in KINDS.items()],
            "measure_options": [(k, web.t(v)) for k, v in MEASURES.items()],
            "period_options": [(k, web.t(v)) for k, v in PERIOD_TYPES.items()],
            "unit_options": [("", "—")] + [(k, web.t(v)) for k, v in STREAK_UNITS.items()],
            "campaign_options": [("", "—")]
            + [(str(c.id), f"{pick(c.names, web.lang) or c.code} ({c.code})") for c in campaigns],
            "field_choices": FIELD_CHOICES,
            "tz": web.tenant.timezone,
        },
        status_code=status_code,
    )


def _json(errors: FieldErrors, form: Any, name: str) -> dict[str, Any] | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        errors.add(
            name, N_('This is not valid JSON; write an object like {"field": ..., "op": ...}.')
        )
        return None
    if not isinstance(value, dict):
        errors.add(
            name, N_('This is not valid JSON; write an object like {"field": ..., "op": ...}.')
        )
        return None
    return value


def _moment(errors: FieldErrors, form: Any, name: str, tz: str) -> datetime | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        errors.add(name, N_("Enter a date and time, for example 2026-12-01 09:00."))
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(tz))
    return local


def _read(
    web: WebContext, form: Any, errors: FieldErrors
) -> tuple[CriteriaIn | None, PeriodIn | None, RewardsIn | None, dict[str, Any]]:
    """The form's criteria, period and rewards (None when a part has errors) and texts."""
    texts: dict[str, Any] = {
        "names": read_localized(errors, form, "name", required=True, max_length=200),
        "descriptions": read_localized(errors, form, "description"),
    }
    image = errors.text(form, "image_url", max_length=500)
    if image and not image.startswith(("http://", "https://")):
        errors.add("image_url", N_("Enter a web address starting with https://"))
    texts["image_url"] = image
    event_type = errors.text(form, "event_type", required=True, max_length=60)
    measure = errors.choice(form, "measure", list(MEASURES))
    raw_target = str(form.get("target") or "").strip()
    target: Decimal | None = None
    if not raw_target:
        if measure == "first":
            target = Decimal(1)
        else:
            errors.add("target", N_("This field is required."))
    else:
        try:
            target = Decimal(raw_target.replace(",", "."))
        except InvalidOperation:
            errors.add("target", N_("Enter a number above 0."))
        if target is not None and (not target.is_finite() or target <= 0):
            errors.add("target", N_("Enter a number above 0."))
            target = None
    field = errors.text(form, "field", max_length=120)
    if measure in ("sum", "distinct") and not field:
        errors.add("field", N_("This measure needs the field to read."))
    if measure not in ("sum", "distinct"):
        field = None
    unit = errors.choice(form, "streak_unit", list(STREAK_UNITS), required=False)
    if measure == "streak" and not unit and "streak_unit" not in errors:
        errors.add("streak_unit", N_("A streak needs its unit."))
    if measure != "streak":
        unit = None
    conditions = _json(errors, form, "conditions")
    items_where = _json(errors, form, "items_where")
    period_type = errors.choice(form, "period_type", list(PERIOD_TYPES)) or "all_time"
    recurring = bool(form.get("recurring")) and period_type == "month"
    month = errors.text(form, "month", max_length=7)
    tz = web.tenant.timezone
    starts = _moment(errors, form, "starts_at", tz)
    ends = _moment(errors, form, "ends_at", tz)
    if period_type == "month" and not recurring and not month and "month" not in errors:
        errors.add("month", N_("Give the month, or make the challenge repeat every month."))
    if period_type == "campaign":
        if starts is None and "starts_at" not in errors:
            errors.add("starts_at", N_("A campaign window needs its start."))
        if ends is None and "ends_at" not in errors:
            errors.add("ends_at", N_("A campaign window needs its end."))
    if starts and ends and ends <= starts:
        errors.add("ends_at", N_("The end must be after the start."))
    points = errors.integer(form, "reward_points", minimum=0, maximum=10**9) or 0
    raw_coupon = str(form.get("reward_coupon") or "").strip()
    coupon = parse_uuid(raw_coupon) if raw_coupon else None
    if raw_coupon and coupon is None:
        errors.add("reward_coupon", N_("Choose one of the options."))
    criteria = period = rewards = None
    if not errors:
        try:
            criteria = CriteriaIn(
                event_type=event_type or "",
                measure=measure,
                target=format(target, "f") if target is not None else "",
                field=field,
                items_where=items_where,
                conditions=conditions,
                streak_unit=unit,
            )
            period = PeriodIn(
                type=period_type,
                recurring=recurring,
                month=month if period_type == "month" and not recurring else None,
                starts_at=starts if period_type != "month" or recurring else None,
                ends_at=ends if period_type != "month" or recurring else None,
            )
            rewards = RewardsIn(points=points, coupon_campaign_id=coupon)
        except ValidationError as exc:
            validation_errors(errors, exc, PATHS)
    return criteria, period, rewards, texts


def _service_error(errors: FieldErrors, exc: SetiaError) -> None:
    path = str(exc.extra.get("field") or "")
    if exc.code == "badge_code_taken":
        errors.add("code", N_("A badge or challenge with this code exists already."))
    elif exc.code == "badge_has_progress":
        errors.add(
            "__all__",
            N_(
                "Members already have progress: what counts and when can no longer change. "
                "Retire it and define a new one."
            ),
        )
    else:
        name = _field_for(path) if path else "__all__"
        detail = exc.detail.split(": ", 1)[1] if path and ": " in exc.detail else exc.detail
        errors.add(name, CHECK_FIELD, detail=detail)


@router.get("/console/badges/new")
def badge_new(request: Request, web: WebContext = require("program.edit")) -> HTMLResponse:
    form = {
        "kind": "badge",
        "event_type": "purchase",
        "measure": "count",
        "period_type": "all_time",
        "reward_points": "0",
    }
    return _form_page(request, web, form, None, None)


@router.post("/console/badges/new", response_model=None)
def badge_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    errors = FieldErrors(web)
    code = errors.text(form, "code", required=True, max_length=60)
    if code and not (
        code[0].isalnum()
        and code == code.lower()
        and code.replace("-", "").replace("_", "").isalnum()
        and code.isascii()
    ):
        errors.add("code", N_("Use 1 to 60 lowercase letters, digits, - or _."))
    kind = errors.choice(form, "kind", list(KINDS)) or "badge"
    criteria, period, rewards, texts = _read(web, form, errors)
    program = program_of(web)
    if code and not errors:
        exists = web.session.execute(
            select(BadgeDefinition.id).where(
                BadgeDefinition.program_id == program.id, BadgeDefinition.code == code
            )
        ).first()
        if exists:
            errors.add("code", N_("A badge or challenge with this code exists already."))
    if not errors and criteria and period and rewards:
        try:
            body = DefinitionIn(
                code=code or "",
                kind=kind,
                names=texts["names"],
                descriptions=texts["descriptions"],
                image_url=texts["image_url"],
                criteria=criteria,
                period=period,
                rewards=rewards,
            )
            service.create_definition(web.session, web.tenant, program, body)
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, PATHS)
        except SetiaError as exc:
            web.session.rollback()
            _service_error(errors, exc)
    if errors:
        return _form_page(request, web, form_dict(form), errors, None, status_code=422)
    flash(request, web.t(N_("%(code)s was created; it counts events from now on."), code=code))
    return redirect(request, f"/console/badges/{code}")


def _values(web: WebContext, d: BadgeDefinition) -> dict[str, str]:
    tz = zone(web.tenant.timezone)

    def local(v: datetime | None) -> str:
        return "" if v is None else as_utc(v).astimezone(tz).strftime("%Y-%m-%dT%H:%M")

    period = service.period_of(d, web.tenant.timezone)
    one_month = d.period == "month" and not d.recurring
    return {
        "code": d.code,
        "kind": d.kind,
        **localized_form("name", d.names),
        **localized_form("description", d.descriptions),
        "image_url": d.image_url or "",
        "event_type": d.event_type,
        "measure": d.measure,
        "target": service._number_text(Decimal(d.target)),
        "field": d.field or "",
        "streak_unit": d.streak_unit or "",
        "conditions": json.dumps(d.conditions, ensure_ascii=False) if d.conditions else "",
        "items_where": json.dumps(d.items_where, ensure_ascii=False) if d.items_where else "",
        "period_type": d.period,
        "recurring": "1" if d.recurring else "",
        "month": str(period.get("month") or ""),
        "starts_at": "" if one_month else local(d.starts_at),
        "ends_at": "" if one_month else local(d.ends_at),
        "reward_points": str(d.reward_points),
        "reward_coupon": str(d.reward_coupon_campaign_id or ""),
        "status": d.status,
    }


@router.get("/console/badges/{code}")
def badge_show(
    request: Request, code: str, period: str = "", web: WebContext = require("program.view")
) -> HTMLResponse:
    d = _definition_or_404(web, code)
    key = period if period else service.current_period(d, web.tenant.timezone)
    if (key == "all") == d.recurring or (
        key != "all" and not (len(key) == 7 and key[4] == "-" and key.replace("-", "").isdigit())
    ):
        # not a period of this definition (a link from before it was changed): the current one
        key = service.current_period(d, web.tenant.timezone)
    leaders = service.leaderboard(web.session, d, key, 20)
    members, completed = service.period_counts(web.session, d, key)
    periods = service.periods(web.session, d)[:24]
    if key not in periods:
        periods.insert(0, key)
    return render(
        request,
        "console/badges/show.html",
        {
            "d": d,
            "name": pick(d.names, web.lang) or d.code,
            "description": pick(d.descriptions, web.lang),
            "kinds": KINDS,
            "measures": MEASURES,
            "units": STREAK_UNITS,
            "statuses": STATUSES,
            "period_text": _period_text(web, d),
            "target": _amount_text(web, d, d.target),
            "leaders": [{**row, "value": _amount_text(web, d, row["value"])} for row in leaders],
            "members": members,
            "completed": completed,
            "key": key,
            "periods": [(p, _period_label(web, p)) for p in periods],
            "conditions": json.dumps(d.conditions, ensure_ascii=False, indent=1)
            if d.conditions
            else "",
            "items_where": json.dumps(d.items_where, ensure_ascii=False) if d.items_where else "",
        },
    )


@router.get("/console/badges/{code}/edit")
def badge_edit(
    request: Request, code: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    d = _definition_or_404(web, code)
    return _form_page(request, web, _values(web, d), None, d)


def _changed(
    web: WebContext, d: BadgeDefinition, criteria: CriteriaIn, period: PeriodIn
) -> tuple[bool, bool]:
    """Whether what counts, and when, differ from the stored definition (only those may be
    refused once members have progress)."""
    n = service.normalize(web.session, web.tenant, criteria, period, RewardsIn())

    def t(v: datetime | None) -> datetime | None:
        return None if v is None else as_utc(v)

    now_criteria = (
        n.event_type,
        n.measure,
        Decimal(n.target),
        n.field,
        n.items_where,
        n.conditions,
        n.streak_unit,
    )
    old_criteria = (
        d.event_type,
        d.measure,
        Decimal(d.target),
        d.field,
        d.items_where,
        d.conditions,
        d.streak_unit,
    )
    now_period = (n.period, n.recurring, t(n.starts_at), t(n.ends_at))
    old_period = (d.period, d.recurring, t(d.starts_at), t(d.ends_at))
    return now_criteria != old_criteria, now_period != old_period


@router.post("/console/badges/{code}/edit", response_model=None)
def badge_update(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    d = _definition_or_404(web, code)
    errors = FieldErrors(web)
    criteria, period, rewards, texts = _read(web, form, errors)
    status = errors.choice(form, "status", list(STATUSES)) or d.status
    if not errors and criteria and period and rewards:
        try:
            changed_criteria, changed_period = _changed(web, d, criteria, period)
            patch: dict[str, Any] = {
                "names": texts["names"],
                "descriptions": texts["descriptions"],
                "image_url": texts["image_url"],
                "rewards": rewards.model_dump(),
                "status": status,
            }
            if changed_criteria or changed_period:
                patch["criteria"] = criteria.model_dump(exclude_none=True)
                patch["period"] = period.model_dump(exclude_none=True)
            service.update_definition(
                web.session, web.tenant, d, DefinitionPatch.model_validate(patch)
            )
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, PATHS)
        except SetiaError as exc:
            web.session.rollback()
            _service_error(errors, exc)
    if errors:
        d = _definition_or_404(web, code)
        values = {**form_dict(form), "code": d.code, "kind": d.kind}
        return _form_page(request, web, values, errors, d, status_code=422)
    flash(request, web.t(N_("%(code)s was saved."), code=d.code))
    return redirect(request, f"/console/badges/{d.code}")


@router.get("/console/badges/{code}/archive")
def badge_archive_confirm(
    request: Request, code: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    d = _definition_or_404(web, code)
    return render(
        request,
        "console/badges/archive.html",
        {"d": d, "name": pick(d.names, web.lang) or d.code},
    )


@router.post("/console/badges/{code}/archive", response_model=None)
def badge_archive(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    d = _definition_or_404(web, code)
    service.archive_definition(web.session, d)
    web.session.commit()
    flash(request, web.t(N_("Archived: it no longer counts events; what members earned stays.")))
    return redirect(request, f"/console/badges/{d.code}")


@router.post("/console/badges/{code}/activate", response_model=None)
def badge_activate(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    d = _definition_or_404(web, code)
    service.update_definition(
        web.session, web.tenant, d, DefinitionPatch.model_validate({"status": "active"})
    )
    web.session.commit()
    flash(request, web.t(N_("Active again: it counts events from now on.")))
    return redirect(request, f"/console/badges/{d.code}")
