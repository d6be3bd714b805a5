"""Rules and campaigns: list, edit with field errors, the simulator with its why-not answers, replay of a change with its cost."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.datastructures import FormData

from setia.core.errors import SetiaError
from setia.core.time import utcnow, zone
from setia.members import service as members
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules import service, simulate
from setia.rules.conditions import DAYS
from setia.rules.models import Campaign, Rule, RuleAward
from setia.rules.schemas import CampaignBody, RuleBody
from setia.web import i18n
from setia.web.console.current import current_program
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

MODES = ("stackable", "exclusive", "universal")
MODE_LABELS = {
    "stackable": N_("Stackable: adds to other rules"),
    "exclusive": N_("Exclusive: stops later rules"),
    "universal": N_("Universal: always applies"),
}
DAY_LABELS = {
    "mon": N_("Mon"),
    "tue": N_("Tue"),
    "wed": N_("Wed"),
    "thu": N_("Thu"),
    "fri": N_("Fri"),
    "sat": N_("Sat"),
    "sun": N_("Sun"),
}
# JSON data fields of the rule form, and where a path inside the rule body belongs.
JSON_FIELDS = ("conditions", "effect", "limits")
FIELD_OF = {
    "name": "name",
    "description": "description",
    "triggers": "triggers",
    "conditions": "conditions",
    "effect": "effect",
    "limits": "limits",
    "budget_points": "budget_points",
    "mode": "mode",
    "priority": "priority",
    "campaign_id": "campaign_id",
    "enabled": "enabled",
}
SCHEDULE_FIELD = {"active_from": "active_from", "active_to": "active_to", "days": "days"}

# Generic parts of validation messages (the path inside the JSON is shown as it is).
NOT_JSON = N_("This is not valid JSON (line %(line)s, column %(column)s).")
NOT_OBJECT = N_("Give a JSON object, for example %(example)s.")
NOT_LIST = N_("Give a JSON list, for example %(example)s.")
UNKNOWN_KEY = N_("unknown key")
REQUIRED_KEY = N_("is required")
MUST_BE_AT_LEAST = N_("must be %(minimum)s or more")
MUST_BE_AT_MOST = N_("must be %(maximum)s or less")
MUST_BE_ONE_OF = N_("must be one of %(options)s")
MUST_BE_NUMBER = N_("must be a whole number")
MUST_BE_TEXT = N_("must be text in quotes")
MUST_BE_OBJECT = N_("must be a JSON object")
MUST_BE_LIST = N_("must be a JSON list")
MUST_BE_BOOL = N_("must be true or false")
TOO_LONG_TEXT = N_("is too long (at most %(max_length)s)")
TOO_SHORT_TEXT = N_("is empty or too short")
NOT_VALID = N_("is not valid")
# Service messages we know the shape of, in the reader's language.
KNOWN: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^effect (?P<type>\w+) needs an order: .*$"),
        N_("effect %(type)s needs an order: use it with the purchase event type only"),
    ),
    (
        re.compile(r"^effect (?P<type>\w+) needs (?P<fields>.+)$"),
        N_("effect %(type)s needs %(fields)s"),
    ),
    (
        re.compile(r"^unknown field (?P<name>'[^']*'|\S+); known fields: (?P<known>.*)$"),
        N_("unknown field %(name)s; known fields: %(known)s"),
    ),
    (
        re.compile(r"^unknown operator (?P<name>\S+); use one of (?P<known>.*)$"),
        N_("unknown operator %(name)s; use one of %(known)s"),
    ),
    (
        re.compile(r"^operator (?P<op>\S+) does not apply to (?P<field>\S+) \((?P<kind>\w+)\)$"),
        N_("operator %(op)s does not apply to %(field)s"),
    ),
    (re.compile(r"^operator (?P<op>\S+) needs a value$"), N_("operator %(op)s needs a value")),
    (
        re.compile(r"^expected (?P<expected>.+), got (?P<got>.+)$"),
        N_("expected %(expected)s, got %(got)s"),
    ),
    (re.compile(r"^a condition must be an object$"), N_("a condition must be a JSON object")),
    (
        re.compile(r"^must be a non-empty list of conditions$"),
        N_("must be a non-empty list of conditions"),
    ),
    (
        re.compile(r"^'(?P<key>\w+)' must be the only key of its node$"),
        N_("%(key)s must be the only key of its object"),
    ),
    (
        re.compile(r"^expected all, any, not, items, or a comparison.*$"),
        N_("expected all, any, not, items, or a comparison with field, op and value"),
    ),
    (
        re.compile(r"^per must be a positive amount.*$"),
        N_('per must be a positive amount, e.g. "1000"'),
    ),
    (
        re.compile(r"^factor must be a number >= 1.*$"),
        N_('factor must be a number of 1 or more, e.g. "2", or member.tier_multiplier'),
    ),
    (re.compile(r"^scope items needs items_where$"), N_("scope items needs items_where")),
    (
        re.compile(r"^a limit has exactly one of max_points or max_count$"),
        N_("a limit has exactly one of max_points or max_count"),
    ),
    (
        re.compile(r"^per-order limits are in points.*$"),
        N_("per-order limits are in points (max_points)"),
    ),
    (
        re.compile(r"^active_to must be after active_from$"),
        N_("The end must be after the start."),
    ),
    (
        re.compile(r"^days must be a non-empty list.*$"),
        N_("Choose at least one day."),
    ),
    (
        re.compile(r"^(?P<value>'[^']*') is not an event type.*$"),
        N_("%(value)s is not an event type (lowercase, dotted: purchase, review.submitted)"),
    ),
]
PATH_MSG = re.compile(r"^(?P<path>[a-z_]+(?:\.[a-z_]+|\[\d+\])*): (?P<msg>.+)$", re.S)

# Why a rule did not fire.
REASONS = {
    "disabled": N_("The rule is paused."),
    "campaign_disabled": N_("Its campaign %(campaign)s is paused."),
    "campaign_schedule_inactive": N_("Its campaign %(campaign)s is not running then."),
    "schedule_inactive": N_("The rule's schedule is not active then."),
    "condition_false": N_("A condition is not met."),
    "limit_reached": N_("A limit or budget is used up."),
    "stopped_by_exclusive_rule": N_("An exclusive rule before it (%(rule)s) stopped it."),
    "no_points": N_("It computes to no points for this event."),
    "trigger": N_("It does not listen to this event type."),
}
SCHEDULE_WHY = {
    "not started": N_("starts %(at)s"),
    "ended": N_("ended %(at)s"),
    "day of week": N_("only on %(days)s; the event is on %(actual)s"),
    "hours": N_("only %(start)s–%(end)s; the event is at %(actual)s"),
}
OPS_TEXT = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "in": N_("in"),
    "not_in": N_("not in"),
    "contains": N_("contains"),
    "not_contains": N_("does not contain"),
    "between": N_("between"),
    "exists": N_("exists"),
}

DEFAULT_EFFECT = '{"type": "fixed", "points": 100}'
EXAMPLE_CONDITIONS = (
    '{"all": [{"field": "event.amount", "op": "gte", "value": "50000"}, '
    '{"field": "event.local_day_of_week", "op": "in", "value": ["sat", "sun"]}]}'
)


# --------------------------------------------------------------------------- helpers


def _program(web: WebContext, program_id: str | None = None) -> Program:
    pid = parse_uuid(program_id) if program_id else None
    if pid is None:
        return current_program(web)
    return programs.get_program(web.session, web.tenant.id, pid)


def _rule(web: WebContext, rule_id: str) -> Rule:
    rid = parse_uuid(rule_id)
    if rid is None:
        raise service.RuleNotFound(f"rule {rule_id} not found")
    ids = [p.id for p in programs.list_programs(web.session, web.tenant.id)]
    return service.get_rule(web.session, ids, rid)


def _campaign(web: WebContext, campaign_id: str) -> Campaign:
    cid = parse_uuid(campaign_id)
    if cid is None:
        raise service.CampaignNotFound(f"campaign {campaign_id} not found")
    ids = [p.id for p in programs.list_programs(web.session, web.tenant.id)]
    return service.get_campaign(web.session, ids, cid)


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def _local_input(value: Any, tz: str) -> str:
    """An instant as a ``datetime-local`` input value in the tenant's zone."""
    if not value:
        return ""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M")


def _parse_local(errors: FieldErrors, form: Mapping[str, Any], name: str, tz: str) -> str | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        errors.add(name, N_("Enter a date and time."))
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone(tz))
    return at.isoformat()


def _day_input(
    errors: FieldErrors, form: Mapping[str, Any], name: str, default: date
) -> date | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.add(name, N_("Enter a date."))
        return None


def _json_field(
    errors: FieldErrors, form: Mapping[str, Any], name: str, *, kind: type, example: str
) -> Any:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        errors.add(name, NOT_JSON, line=exc.lineno, column=exc.colno)
        return None
    if not isinstance(value, kind):
        errors.add(name, NOT_OBJECT if kind is dict else NOT_LIST, example=example)
        return None
    return value


def _path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _known(errors: FieldErrors, msg: str) -> str:
    for pattern, msgid in KNOWN:
        m = pattern.match(msg)
        if m:
            return errors.t(msgid, **m.groupdict())
    return msg


def generic_message(errors: FieldErrors, err: Mapping[str, Any]) -> str:
    """A pydantic error's text with the generic part in the reader's language."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return errors.t(REQUIRED_KEY)
    if kind == "extra_forbidden":
        return errors.t(UNKNOWN_KEY)
    if kind in ("greater_than_equal", "greater_than"):
        return errors.t(MUST_BE_AT_LEAST, minimum=ctx.get("ge", ctx.get("gt")))
    if kind in ("less_than_equal", "less_than"):
        return errors.t(MUST_BE_AT_MOST, maximum=ctx.get("le", ctx.get("lt")))
    if kind in ("literal_error", "enum"):
        return errors.t(MUST_BE_ONE_OF, options=ctx.get("expected", ""))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return errors.t(MUST_BE_NUMBER)
    if kind in ("string_type",):
        return errors.t(MUST_BE_TEXT)
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return errors.t(MUST_BE_OBJECT)
    if kind in ("list_type",):
        return errors.t(MUST_BE_LIST)
    if kind in ("bool_type", "bool_parsing"):
        return errors.t(MUST_BE_BOOL)
    if kind in ("string_too_long", "too_long"):
        return errors.t(TOO_LONG_TEXT, max_length=ctx.get("max_length"))
    if kind in ("string_too_short", "too_short"):
        return errors.t(TOO_SHORT_TEXT)
    if kind == "uuid_parsing":
        return errors.t(NOT_VALID)
    if kind in ("datetime_parsing", "datetime_type", "timezone_aware"):
        return errors.t(N_("Enter a date and time."))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    return _known(errors, msg) if msg else errors.t(NOT_VALID)


def rule_errors(errors: FieldErrors, exc: ValidationError) -> None:
    """A rule body's validation errors onto the form's fields, each with the path inside
    the JSON (``effect.points: must be 0 or more``) and the generic part translated."""
    for err in exc.errors(include_url=False):
        loc = list(err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if not loc:
            # A model-level check: a condition error names its own path.
            m = PATH_MSG.match(msg)
            if m and m.group("path").split(".")[0].split("[")[0] == "conditions":
                errors.add_text(
                    "conditions", f"{m.group('path')}: {_known(errors, m.group('msg'))}"
                )
            elif msg.startswith("effect "):
                errors.add_text("triggers", _known(errors, msg))
            else:
                errors.add_text("__all__", _known(errors, msg))
            continue
        head = str(loc[0])
        if head == "schedule":
            sub = str(loc[1]) if len(loc) > 1 else ""
            name = SCHEDULE_FIELD.get(sub, "active_to")
            errors.add_text(name, generic_message(errors, err))
            continue
        name = FIELD_OF.get(head, "__all__")
        if name in JSON_FIELDS:
            text = generic_message(errors, err)
            m = PATH_MSG.match(msg) if err.get("type") == "value_error" else None
            if m:  # an effect's items_where condition names its own path
                text = f"{m.group('path')}: {_known(errors, m.group('msg'))}"
                errors.add_text(name, text)
            else:
                errors.add_text(name, f"{_path(loc)}: {text}")
        else:
            errors.add_text(name, generic_message(errors, err))


def parse_rule_form(
    web: WebContext, form: Mapping[str, Any], campaigns: list[Campaign]
) -> tuple[RuleBody | None, FieldErrors]:
    """The rule form as a validated ``RuleBody``, or None with the errors by field."""
    errors = FieldErrors(web)
    name = errors.text(form, "name", required=True, max_length=200)
    description = errors.text(form, "description", max_length=2000)
    triggers_raw = str(form.get("triggers") or "").replace(",", " ").split()
    if not triggers_raw:
        errors.add("triggers", N_("Give at least one event type, for example purchase."))
    priority = errors.integer(form, "priority", minimum=0, maximum=10_000)
    mode = errors.choice(form, "mode", MODES, required=False) or "stackable"
    budget = errors.integer(form, "budget_points", minimum=0)
    campaign_raw = str(form.get("campaign_id") or "").strip()
    campaign_id = None
    if campaign_raw:
        if campaign_raw not in {str(c.id) for c in campaigns}:
            errors.add("campaign_id", N_("Choose one of the options."))
        else:
            campaign_id = campaign_raw
    active_from = _parse_local(errors, form, "active_from", web.tz)
    active_to = _parse_local(errors, form, "active_to", web.tz)
    days = [d for d in DAYS if d in _getlist(form, "days")]
    conditions = _json_field(errors, form, "conditions", kind=dict, example=EXAMPLE_CONDITIONS)
    effect = _json_field(errors, form, "effect", kind=dict, example=DEFAULT_EFFECT)
    if effect is None and "effect" not in errors:
        errors.add("effect", N_("This field is required."))
    limits = _json_field(
        errors, form, "limits", kind=list, example='[{"period": "day", "max_count": 1}]'
    )
    if errors:
        return None, errors
    data: dict[str, Any] = {
        "name": name,
        "triggers": triggers_raw,
        "effect": effect,
        "mode": mode,
        "enabled": bool(form.get("enabled")),
    }
    if description:
        data["description"] = description
    if priority is not None:
        data["priority"] = priority
    if budget is not None:
        data["budget_points"] = budget
    if campaign_id:
        data["campaign_id"] = campaign_id
    if conditions is not None:
        data["conditions"] = conditions
    if limits is not None:
        data["limits"] = limits
    schedule: dict[str, Any] = {}
    if active_from:
        schedule["active_from"] = active_from
    if active_to:
        schedule["active_to"] = active_to
    if days and len(days) < 7:
        schedule["days"] = days
    hours = existing_hours(form)
    if hours:
        schedule["hours"] = hours
    if schedule:
        data["schedule"] = schedule
    try:
        return RuleBody.model_validate(data), errors
    except ValidationError as exc:
        rule_errors(errors, exc)
        return None, errors


def existing_hours(form: Mapping[str, Any]) -> dict[str, str] | None:
    """Hours of the schedule the form carries unchanged (the form does not edit them)."""
    raw = str(form.get("hours") or "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _getlist(form: Mapping[str, Any], name: str) -> list[str]:
    if isinstance(form, FormData):
        return [str(v) for v in form.getlist(name)]
    value = form.get(name)
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


def form_of_rule(rule: Rule | None, tz: str) -> dict[str, Any]:
    """The form's values for an existing rule (or a new one's defaults)."""
    if rule is None:
        return {
            "name": "",
            "triggers": "purchase",
            "priority": "200",
            "mode": "stackable",
            "effect": _pretty(json.loads(DEFAULT_EFFECT)),
            "conditions": "",
            "limits": "",
            "enabled": True,
            "days": list(DAYS),
        }
    d = rule.definition
    schedule = d.get("schedule") or {}
    return {
        "name": d.get("name", rule.name),
        "description": d.get("description") or "",
        "triggers": ", ".join(d.get("triggers") or []),
        "priority": str(d.get("priority", rule.priority)),
        "mode": d.get("mode", "stackable"),
        "budget_points": "" if d.get("budget_points") is None else str(d["budget_points"]),
        "campaign_id": d.get("campaign_id") or "",
        "conditions": _pretty(d.get("conditions")),
        "effect": _pretty(d.get("effect")),
        "limits": _pretty(d.get("limits")) if d.get("limits") else "",
        "active_from": _local_input(schedule.get("active_from"), tz),
        "active_to": _local_input(schedule.get("active_to"), tz),
        "days": schedule.get("days") or list(DAYS),
        "hours": json.dumps(schedule["hours"]) if schedule.get("hours") else "",
        "enabled": rule.enabled,
    }


def _form_values(form: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: form.get(k) for k in form}
    values["days"] = _getlist(form, "days")
    values["enabled"] = bool(form.get("enabled"))
    return values


def award_counts(web: WebContext, rule_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    if not rule_ids:
        return {}
    rows = web.session.execute(
        select(RuleAward.rule_id, func.count(), func.coalesce(func.sum(RuleAward.points), 0))
        .where(RuleAward.rule_id.in_(rule_ids))
        .group_by(RuleAward.rule_id)
    ).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows if r[0] is not None}


def _campaign_points(web: WebContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    rows = web.session.execute(
        select(RuleAward.campaign_id, func.coalesce(func.sum(RuleAward.points), 0))
        .where(RuleAward.campaign_id.in_(ids))
        .group_by(RuleAward.campaign_id)
    ).all()
    return {r[0]: int(r[1]) for r in rows if r[0] is not None}


def _modes(web: WebContext) -> list[tuple[str, str]]:
    return [(m, web.t(MODE_LABELS[m])) for m in MODES]


def _days(web: WebContext) -> list[tuple[str, str]]:
    return [(d, web.t(DAY_LABELS[d])) for d in DAYS]


# --------------------------------------------------------------------------- list and view


@router.get("/console/rules", response_class=HTMLResponse)
def rules_index(request: Request, web: WebContext = require("program.view")) -> Response:
    program = _program(web, request.query_params.get("program"))
    rows = service.list_rules(web.session, program.id)
    campaigns = service.list_campaigns(web.session, program.id)
    names = {c.id: c.name for c in campaigns}
    counts = award_counts(web, [r.id for r in rows])
    return render(
        request,
        "console/rules/index.html",
        {
            "program": program,
            "rules": [
                {
                    "rule": r,
                    "campaign": names.get(r.campaign_id) if r.campaign_id else None,
                    "awards": counts.get(r.id, (0, 0))[0],
                    "points": counts.get(r.id, (0, 0))[1],
                    "triggers": r.definition.get("triggers") or [],
                }
                for r in rows
            ],
            "campaigns": campaigns,
            "campaign_points": _campaign_points(web, [c.id for c in campaigns]),
        },
    )


@router.get("/console/rules/new", response_class=HTMLResponse)
def rule_new(request: Request, web: WebContext = require("program.edit")) -> Response:
    program = _program(web)
    return _edit_page(request, web, program, None, form_of_rule(None, web.tz), None)


@router.post("/console/rules/new", response_class=HTMLResponse)
def rule_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program = _program(web)
    return _save(request, web, form, program, None)


@router.get("/console/rules/simulate", response_class=HTMLResponse)
def simulator(request: Request, web: WebContext = require("program.view")) -> Response:
    program = _program(web)
    now = utcnow().astimezone(zone(web.tz)).strftime("%Y-%m-%dT%H:%M")
    values = {
        "type": "purchase",
        "amount": "",
        "occurred_at": now,
        "who": "hypothetical",
        "items": "",
        "currency": program.currency,
    }
    return render(
        request,
        "console/rules/simulate.html",
        {"program": program, "values": values, "errors": None, "result": None},
    )


@router.post("/console/rules/simulate", response_class=HTMLResponse)
def simulator_run(
    request: Request, form: ConsoleForm, web: WebContext = require("program.view")
) -> Response:
    program = _program(web)
    errors = FieldErrors(web)
    values = _form_values(form)
    values.setdefault("currency", program.currency)
    event, member, profile = _sim_input(web, errors, form, program)
    result = None
    status = 200
    if not errors and event is not None:
        try:
            raw = simulate.simulate(
                web.session, web.tenant, program, event, member=member, profile=profile, bodies=None
            )
            result = explain(web, raw, program)
        except SetiaError as exc:
            field = str(exc.extra.get("field") or "") if exc.extra else ""
            errors.add_text(field if field in ("amount", "currency") else "__all__", exc.detail)
        finally:
            web.session.rollback()
    if errors:
        status = 422
    return render(
        request,
        "console/rules/simulate.html",
        {
            "program": program,
            "values": values,
            "errors": errors,
            "result": result,
            "member": member,
        },
        status_code=status,
    )


@router.get("/console/rules/campaigns/new", response_class=HTMLResponse)
def campaign_new(request: Request, web: WebContext = require("program.edit")) -> Response:
    return _campaign_page(request, web, None, {"enabled": True}, None)


@router.post("/console/rules/campaigns/new", response_class=HTMLResponse)
def campaign_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    return _campaign_save(request, web, form, None)


@router.get("/console/rules/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_edit(
    request: Request, campaign_id: str, web: WebContext = require("program.view")
) -> Response:
    c = _campaign(web, campaign_id)
    schedule = c.schedule or {}
    values = {
        "name": c.name,
        "description": c.description or "",
        "budget_points": "" if c.budget_points is None else str(c.budget_points),
        "active_from": _local_input(schedule.get("active_from"), web.tz),
        "active_to": _local_input(schedule.get("active_to"), web.tz),
        "enabled": c.enabled,
    }
    return _campaign_page(request, web, c, values, None)


@router.post("/console/rules/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_update(
    request: Request, campaign_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    return _campaign_save(request, web, form, _campaign(web, campaign_id))


@router.get("/console/rules/{rule_id}", response_class=HTMLResponse)
def rule_view(
    request: Request, rule_id: str, web: WebContext = require("program.view")
) -> Response:
    rule = _rule(web, rule_id)
    campaign = web.session.get(Campaign, rule.campaign_id) if rule.campaign_id else None
    history = service.revisions(web.session, rule.id)
    changes: dict[int, list[str]] = {}
    for before, after in pairwise(history):
        old = {**before.definition, "enabled": before.enabled}
        new = {**after.definition, "enabled": after.enabled}
        changes[after.revision] = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    revs = list(reversed(history))[:50]
    awards, points = award_counts(web, [rule.id]).get(rule.id, (0, 0))
    return render(
        request,
        "console/rules/view.html",
        {
            "rule": rule,
            "d": rule.definition,
            "campaign": campaign,
            "revisions": revs,
            "changes": changes,
            "more_revisions": max(0, len(history) - 50),
            "awards": awards,
            "points": points,
            "definition": _pretty(rule.definition),
            "pretty": _pretty,
            "mode_label": web.t(MODE_LABELS.get(rule.definition.get("mode", "stackable"), "")),
        },
    )


@router.get("/console/rules/{rule_id}/edit", response_class=HTMLResponse)
def rule_edit(
    request: Request, rule_id: str, web: WebContext = require("program.edit")
) -> Response:
    rule = _rule(web, rule_id)
    program = _program(web, str(rule.program_id))
    return _edit_page(request, web, program, rule, form_of_rule(rule, web.tz), None)


@router.post("/console/rules/{rule_id}/edit", response_class=HTMLResponse)
def rule_update(
    request: Request, rule_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    rule = _rule(web, rule_id)
    program = _program(web, str(rule.program_id))
    return _save(request, web, form, program, rule)


@router.post("/console/rules/{rule_id}/state", response_class=HTMLResponse)
def rule_state(
    request: Request, rule_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    rule = _rule(web, rule_id)
    program = _program(web, str(rule.program_id))
    enabled = str(form.get("enabled") or "") == "1"
    try:
        service.set_enabled(web.session, program, rule, enabled, actor=web.actor)
        web.session.commit()
    except (SetiaError, ValidationError):
        web.session.rollback()
        return page(request, 409, web.t(N_("The rule could not be changed.")))
    flash(
        request,
        web.t(N_("Rule %(name)s is active."), name=rule.name)
        if enabled
        else web.t(N_("Rule %(name)s is paused."), name=rule.name),
    )
    return redirect(request, f"/console/rules/{rule.id}")


# --------------------------------------------------------------------------- saving a rule


def _edit_page(
    request: Request,
    web: WebContext,
    program: Program,
    rule: Rule | None,
    values: Mapping[str, Any],
    errors: FieldErrors | None,
    *,
    replay: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    today = utcnow().astimezone(zone(web.tz)).date()
    vals = dict(values)
    vals.setdefault("replay_from", (today - timedelta(days=30)).isoformat())
    vals.setdefault("replay_to", today.isoformat())
    vals.setdefault("sim_occurred_at", utcnow().astimezone(zone(web.tz)).strftime("%Y-%m-%dT%H:%M"))
    return render(
        request,
        "console/rules/edit.html",
        {
            "program": program,
            "rule": rule,
            "values": vals,
            "errors": errors,
            "campaign_options": [
                (str(c.id), c.name) for c in service.list_campaigns(web.session, program.id)
            ],
            "modes": _modes(web),
            "days": _days(web),
            "replay": replay,
            "result": result,
            "idem": str(uuid.uuid4()),
        },
        status_code=status_code,
    )


def _save(
    request: Request, web: WebContext, form: FormData, program: Program, rule: Rule | None
) -> Response:
    campaigns = service.list_campaigns(web.session, program.id)
    body, errors = parse_rule_form(web, form, campaigns)
    values = _form_values(form)
    if body is None:
        return _edit_page(request, web, program, rule, values, errors, status_code=422)
    if str(form.get("action") or "") == "replay":
        return _replay(request, web, form, program, rule, body, values)
    if str(form.get("action") or "") == "simulate":
        return _try(request, web, form, program, rule, body, values)
    try:
        if rule is None:
            saved = service.create_rule(web.session, program, body, actor=web.actor)
        else:
            before = rule.revision
            saved = service.update_rule(web.session, program, rule, body, actor=web.actor)
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        errors.from_error(
            exc,
            {"campaign_not_found": "campaign_id"},
            {"campaign_not_found": N_("Choose one of the options.")},
        )
        return _edit_page(request, web, program, rule, values, errors, status_code=409)
    if rule is None:
        flash(request, web.t(N_("Rule %(name)s created."), name=saved.name))
    elif saved.revision == before:
        flash(request, web.t(N_("Nothing changed.")), "info")
    else:
        flash(
            request,
            web.t(N_("Saved as revision %(revision)s."), revision=saved.revision),
        )
    return redirect(request, f"/console/rules/{saved.id}")


def _replay(
    request: Request,
    web: WebContext,
    form: FormData,
    program: Program,
    rule: Rule | None,
    body: RuleBody,
    values: dict[str, Any],
) -> Response:
    errors = FieldErrors(web)
    today = utcnow().astimezone(zone(web.tz)).date()
    start = _day_input(errors, form, "replay_from", today - timedelta(days=30))
    end = _day_input(errors, form, "replay_to", today)
    if start and end and end < start:
        errors.add("replay_to", N_("The end must be after the start."))
    if errors or start is None or end is None:
        return _edit_page(request, web, program, rule, values, errors, status_code=422)
    tz = zone(web.tz)
    start_at = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    end_at = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    bodies = proposed_set(web, program, rule, body)
    try:
        raw = simulate.replay(
            web.session, web.tenant, program, bodies, start=start_at, end=end_at, top=10
        )
    except SetiaError as exc:
        web.session.rollback()
        errors.add_text("replay_to", exc.detail)
        return _edit_page(request, web, program, rule, values, errors, status_code=422)
    web.session.rollback()
    raw["start_day"], raw["end_day"] = start, end
    raw["cost_difference"] = Decimal(raw["difference"]["cost"])
    raw["current_cost"] = Decimal(raw["current"]["cost"])
    raw["proposed_cost"] = Decimal(raw["proposed"]["cost"])
    cpp = Decimal(raw["cost_per_point"]).normalize()
    raw["cpp_text"] = f"{format(cpp, 'f')} {program.currency}"
    return _edit_page(request, web, program, rule, values, None, replay=raw)


def _try(
    request: Request,
    web: WebContext,
    form: FormData,
    program: Program,
    rule: Rule | None,
    body: RuleBody,
    values: dict[str, Any],
) -> Response:
    """The simulator on one event with this version of the rule (nothing saved)."""
    errors = FieldErrors(web)
    event_type = body.triggers[0]
    amount = errors.amount(form, "sim_amount", required=event_type == "purchase")
    occurred = _parse_local(errors, form, "sim_occurred_at", web.tz)
    if errors:
        return _edit_page(request, web, program, rule, values, errors, status_code=422)
    event: dict[str, Any] = {"type": event_type}
    if occurred:
        event["occurred_at"] = occurred
    if amount is not None:
        event.update(amount=format(amount, "f"), currency=program.currency, order_id="SIM-1")
    tags = [t.strip() for t in str(form.get("sim_tags") or "").split(",") if t.strip()]
    try:
        raw = simulate.simulate(
            web.session,
            web.tenant,
            program,
            event,
            member=None,
            profile={"tags": tags},
            bodies=proposed_set(web, program, rule, body),
        )
        result = explain(web, raw, program)
        for item in (*result["awards"], *result["not_fired"]):
            item["rule_id"] = None  # the proposed set's ids are placeholders
    except SetiaError as exc:
        web.session.rollback()
        errors.add_text("sim_amount", exc.detail)
        return _edit_page(request, web, program, rule, values, errors, status_code=422)
    web.session.rollback()
    return _edit_page(request, web, program, rule, values, None, result=result)


def proposed_set(
    web: WebContext, program: Program, rule: Rule | None, body: RuleBody
) -> list[RuleBody]:
    """The program's rules with ``rule`` replaced by ``body`` (or ``body`` added)."""
    out: list[RuleBody] = []
    for r in service.list_rules(web.session, program.id):
        if rule is not None and r.id == rule.id:
            out.append(body)
        else:
            out.append(RuleBody.model_validate({**r.definition, "enabled": r.enabled}))
    if rule is None:
        out.append(body)
    return out


# --------------------------------------------------------------------------- campaigns


def _campaign_page(
    request: Request,
    web: WebContext,
    campaign: Campaign | None,
    values: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/rules/campaign.html",
        {"campaign": campaign, "values": values, "errors": errors},
        status_code=status_code,
    )


def _campaign_save(
    request: Request, web: WebContext, form: FormData, campaign: Campaign | None
) -> Response:
    errors = FieldErrors(web)
    values = _form_values(form)
    name = errors.text(form, "name", required=True, max_length=200)
    description = errors.text(form, "description", max_length=2000)
    budget = errors.integer(form, "budget_points", minimum=0)
    active_from = _parse_local(errors, form, "active_from", web.tz)
    active_to = _parse_local(errors, form, "active_to", web.tz)
    body = None
    if not errors:
        schedule = {k: v for k, v in (("active_from", active_from), ("active_to", active_to)) if v}
        try:
            body = CampaignBody.model_validate(
                {
                    "name": name,
                    "description": description,
                    "budget_points": budget,
                    "schedule": schedule or None,
                    "enabled": bool(form.get("enabled")),
                }
            )
        except ValidationError as exc:
            rule_errors(errors, exc)
    if errors or body is None:
        return _campaign_page(request, web, campaign, values, errors, 422)
    if campaign is None:
        program = _program(web)
        saved = service.create_campaign(web.session, program, body, actor=web.actor)
    else:
        program = _program(web, str(campaign.program_id))
        saved = service.update_campaign(web.session, program, campaign, body, actor=web.actor)
    web.session.commit()
    flash(request, web.t(N_("Campaign %(name)s saved."), name=saved.name))
    return redirect(request, "/console/rules#campaigns")


# --------------------------------------------------------------------------- the simulator


def _sim_input(
    web: WebContext, errors: FieldErrors, form: FormData, program: Program
) -> tuple[dict[str, Any] | None, Member | None, dict[str, Any] | None]:
    event_type = str(form.get("type") or "").strip() or "purchase"
    if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", event_type):
        errors.add("type", N_("Use a lowercase event type, for example purchase."))
    amount = errors.amount(form, "amount", required=event_type == "purchase")
    occurred = _parse_local(errors, form, "occurred_at", web.tz)
    event: dict[str, Any] = {"type": event_type}
    if occurred:
        event["occurred_at"] = occurred
    if amount is not None:
        event["amount"] = format(amount, "f")
        event["currency"] = program.currency
        event["order_id"] = "SIM-1"
    for key in ("store", "channel", "payment_method"):
        value = errors.text(form, key, max_length=100)
        if value:
            event[key] = value
    items = _items(web, errors, str(form.get("items") or ""))
    if items:
        event["items"] = items
    who = str(form.get("who") or "hypothetical")
    member: Member | None = None
    profile: dict[str, Any] | None = None
    if who == "member":
        lookup = errors.text(form, "member", required=True, max_length=200)
        if lookup:
            member = _find(web, lookup)
            if member is None:
                errors.add("member", N_("No member found with this phone number, email or id."))
    else:
        tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
        orders = errors.integer(form, "order_count", minimum=0, maximum=1_000_000)
        profile = {"tags": tags, "order_count": orders or 0}
        tier = errors.text(form, "tier", max_length=40)
        if tier:
            profile["tier"] = tier
        multiplier = str(form.get("tier_multiplier") or "").strip()
        if multiplier:
            try:
                m = Decimal(multiplier.replace(",", "."))
                if not m.is_finite() or m < 1:
                    raise InvalidOperation
                profile["tier_multiplier"] = m
            except InvalidOperation:
                errors.add("tier_multiplier", N_("Enter %(minimum)s or more."), minimum=1)
    return (None if errors else event), member, profile


def _find(web: WebContext, text: str) -> Member | None:
    uid = parse_uuid(text)
    try:
        if uid is not None:
            return members.find_member(web.session, web.tenant, member_id=uid)
        if "@" in text:
            return members.find_member(web.session, web.tenant, email=text)
        found = members.find_member(web.session, web.tenant, external_id=text)
        if found is None and sum(ch.isdigit() for ch in text) >= 6:
            found = members.find_member(web.session, web.tenant, phone=text)
        return found
    except SetiaError:
        return None


def _items(web: WebContext, errors: FieldErrors, raw: str) -> list[dict[str, Any]]:
    """Lines as ``sku, category, quantity, unit price`` (one per line)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(raw.strip().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0]:
            errors.add(
                "items",
                N_("Line %(line)s: write sku, category, quantity, unit price."),
                line=n,
            )
            return []
        sku, category, qty, price = parts
        if not qty.isdigit() or int(qty) < 1:
            errors.add(
                "items", N_("Line %(line)s: the quantity is a whole number of 1 or more."), line=n
            )
            return []
        try:
            Decimal(price)
        except InvalidOperation:
            errors.add("items", N_("Line %(line)s: the unit price is not a number."), line=n)
            return []
        item: dict[str, Any] = {"sku": sku, "quantity": int(qty), "unit_price": price}
        if category:
            item["category"] = category
        out.append(item)
    return out


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _instant(web: WebContext, value: Any) -> str:
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return _show(value)
    return i18n.when(at, web.lang, web.tz)


def why_lines(web: WebContext, reason: str, details: Mapping[str, Any]) -> list[str]:
    """A rule's "why not" as sentences: the reason, then each failed condition with the
    actual value it was compared with."""
    lines = [web.t(REASONS.get(reason, NOT_VALID), **{k: _show(v) for k, v in details.items()})]
    if reason == "condition_false":
        lines.extend(_condition_lines(web, details))
    elif reason in ("schedule_inactive", "campaign_schedule_inactive"):
        why = str(details.get("why", ""))
        if why in ("not started", "ended"):
            at = details.get("active_from") or details.get("active_to")
            lines.append(web.t(SCHEDULE_WHY[why], at=_instant(web, at)))
        elif why == "day of week":
            lines.append(
                web.t(
                    SCHEDULE_WHY[why],
                    days=", ".join(str(d) for d in details.get("days") or []),
                    actual=_show(details.get("actual")),
                )
            )
        elif why == "hours":
            hours = details.get("hours") or {}
            lines.append(
                web.t(
                    SCHEDULE_WHY[why],
                    start=_show(hours.get("start")),
                    end=_show(hours.get("end")),
                    actual=_show(details.get("actual")),
                )
            )
    elif reason == "limit_reached":
        if "max_count" in details:
            lines.append(
                web.t(
                    N_("Limit per %(period)s: %(max)s times; used %(used)s."),
                    period=_show(details.get("period")),
                    max=_show(details.get("max_count")),
                    used=_show(details.get("used_count")),
                )
            )
        elif "max_points" in details:
            lines.append(
                web.t(
                    N_("Limit per %(period)s: %(max)s points; used %(used)s."),
                    period=_show(details.get("period")),
                    max=_show(details.get("max_points")),
                    used=_show(details.get("used_points")),
                )
            )
        elif "budget_points" in details:
            lines.append(
                web.t(
                    N_("Budget of %(max)s points is used up."), max=_show(details["budget_points"])
                )
            )
    return lines


def _condition_lines(web: WebContext, details: Mapping[str, Any]) -> list[str]:
    if "any_failed" in details:
        out = [web.t(N_("None of the alternatives holds:"))]
        for sub in details.get("any_failed") or []:
            out.extend("· " + line for line in _condition_lines(web, sub or {}))
        return out
    if "not" in details:
        return [
            web.t(N_("A condition that must not hold does: %(node)s"), node=_show(details["not"]))
        ]
    if "items" in details:
        return [
            web.t(
                N_(
                    "Items test %(test)s: %(lines)s matching lines, quantity %(quantity)s, amount %(amount)s."
                ),
                test=_show(details.get("items")),
                lines=_show(details.get("matching_lines")),
                quantity=_show(details.get("quantity")),
                amount=_show(details.get("amount")),
            )
        ]
    if "field" in details:
        op = str(details.get("op", ""))
        op_text = OPS_TEXT.get(op, op)
        if op_text and op_text[0].isalpha():
            op_text = web.t(op_text)
        actual = web.t(N_("missing")) if details.get("missing") else _show(details.get("actual"))
        return [
            web.t(
                N_("%(field)s %(op)s %(expected)s — actual value: %(actual)s"),
                field=str(details["field"]),
                op=op_text,
                expected=_show(details.get("expected")),
                actual=actual,
            )
        ]
    return []


def explain(web: WebContext, raw: Mapping[str, Any], program: Program) -> dict[str, Any]:
    """The simulator's answer for the page: awards, and the why-not of every other rule."""
    return {
        "points": raw.get("points", 0),
        "awards": [
            {
                "name": a.get("rule_name") if a.get("rule_id") else web.t(N_("Base earn rate")),
                "rule_id": a.get("rule_id"),
                "revision": a.get("revision"),
                "points": a.get("points", 0),
                "tag": a.get("tag"),
                "pending_until": a.get("pending_until"),
                "expires_at": a.get("expires_at"),
            }
            for a in raw.get("awards", [])
        ],
        "not_fired": [
            {
                "name": s.get("rule_name") if s.get("rule_id") else web.t(N_("Base earn rate")),
                "rule_id": s.get("rule_id"),
                "reason": s.get("reason"),
                "lines": why_lines(web, str(s.get("reason")), s.get("details") or {}),
            }
            for s in raw.get("not_fired", [])
        ],
        "member": raw.get("member") or {},
        "occurred_at": raw.get("occurred_at"),
        "cost": Decimal(raw.get("points", 0)) * program.cost_per_point,
        "currency": program.currency,
    }
