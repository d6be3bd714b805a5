"""Tiers and paid membership plans."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.datastructures import FormData

from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.core.money import to_str
from setia.memberships import service as plans
from setia.memberships.models import LIVE, MembershipPlan, Subscription
from setia.memberships.schemas import PlanIn, PlanPatch
from setia.programs.models import Program
from setia.tiers import service as tiers
from setia.tiers import view
from setia.tiers.models import Tier, TierSet
from setia.tiers.schemas import METRICS, TierSetIn
from setia.web.console.current import current_program
from setia.web.console.rules import generic_message
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

METRIC_LABELS = {
    "spend": N_("Spend"),
    "points": N_("Points earned"),
    "orders": N_("Orders"),
    "visits": N_("Visit days"),
    "event": N_("Events of a type"),
}
WINDOWS = {
    "rolling": N_("The last N months (rolling)"),
    "calendar_year": N_("The calendar year"),
    "anniversary_year": N_("The member's membership year"),
    "lifetime": N_("All time"),
}
RETENTIONS = {
    "months": N_("N months after qualifying"),
    "end_of_next_window": N_("Until the end of the next window"),
    "none": N_("Only while qualifying"),
}
DOWNGRADES = {
    "one_level": N_("One level at a time"),
    "to_qualified": N_("Straight to the tier they qualify for"),
}
PERIODS = {"monthly": N_("Monthly"), "yearly": N_("Yearly")}
TIER_MODES = {
    "grant": N_("Grant the tier while subscribed"),
    "protect": N_("Protect from downgrade while subscribed"),
}
KNOWN = [
    (
        re.compile(r"^tier (?P<code>\S+): thresholds must not be lower than the tier below$"),
        "thresholds",
        N_("The thresholds must not be lower than the tier below."),
    ),
    (
        re.compile(r"^the first tier is where every member starts.*$"),
        "thresholds",
        N_("The first tier is where every member starts: its thresholds are 0."),
    ),
    (
        re.compile(r"^the first tier cannot be invitation-only$"),
        "invitation_only",
        N_("The first tier cannot be invitation-only."),
    ),
    (re.compile(r"^tier codes must be unique$"), "code", N_("Another tier has this code.")),
    (
        re.compile(r"^code must be lowercase.*$"),
        "code",
        N_("Use lowercase letters, digits, - or _ (e.g. gold)."),
    ),
    (
        re.compile(r"^threshold .* must be a number.*$"),
        "thresholds",
        N_("Enter a number of 0 or more."),
    ),
    (
        re.compile(r"^retention end_of_next_window needs a calendar or anniversary window.*$"),
        "retention",
        N_("“Until the end of the next window” needs a calendar or membership-year window."),
    ),
    (
        re.compile(r"^months is needed for a rolling window.*$"),
        "window_months",
        N_("Give the number of months for a rolling window."),
    ),
    (
        re.compile(r"^months is needed for retention kind months.*$"),
        "retention_months",
        N_("Give the number of months to keep the tier."),
    ),
    (
        re.compile(r"^event_type is needed for metric event.*$"),
        "event_type",
        N_("Give the event type for this measure."),
    ),
]


# --------------------------------------------------------------------------- helpers


def _program(web: WebContext) -> Program:
    return current_program(web)


def _tier_rows(web: WebContext, ts: TierSet) -> list[Tier]:
    return tiers.tiers_of_set(web.session, ts.id)


def _plain(value: Any) -> str:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return format(d.normalize(), "f") if d else "0"


def _perks_text(perks: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(
        " | ".join(str(p.get(k) or "") for k in ("id", "ms", "en")).rstrip(" |") for p in perks
    )


def _parse_perks(
    errors: FieldErrors, form: Mapping[str, Any], *, need_all: bool
) -> list[dict[str, str]]:
    """One perk per line: ``Indonesian | Malay | English`` (Malay and English optional: the
    Indonesian text is used for them)."""
    out: list[dict[str, str]] = []
    for n, line in enumerate(str(form.get("perks") or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 3 or not parts[0]:
            errors.add("perks", N_("Line %(line)s: write Indonesian | Malay | English."), line=n)
            return []
        if any(len(p) > 300 for p in parts):
            errors.add("perks", N_("Line %(line)s is too long (300 characters at most)."), line=n)
            return []
        id_, ms, en = [*parts, "", ""][:3]
        perk = {"id": id_, "ms": ms or id_, "en": en or id_}
        out.append(perk if need_all else {k: v for k, v in perk.items() if v})
    if len(out) > 50:
        errors.add("perks", N_("At most %(count)s perks."), count=50)
    return out


def _known(errors: FieldErrors, msg: str, default_field: str) -> tuple[str, str]:
    for pattern, field, msgid in KNOWN:
        if pattern.match(msg):
            return field, errors.t(msgid)
    return default_field, msg


def _live_counts(web: WebContext, program_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
    rows = web.session.execute(
        select(Subscription.plan_id, Subscription.status, func.count())
        .where(Subscription.program_id == program_id)
        .group_by(Subscription.plan_id, Subscription.status)
    ).all()
    out: dict[uuid.UUID, tuple[int, int]] = {}
    for plan_id, status, n in rows:
        live, total = out.get(plan_id, (0, 0))
        out[plan_id] = (live + (int(n) if status in LIVE else 0), total + int(n))
    return out


# --------------------------------------------------------------------------- tiers


@router.get("/console/tiers", response_class=HTMLResponse)
def tiers_index(request: Request, web: WebContext = require("program.view")) -> Response:
    program = _program(web)
    ts = tiers.get_tier_set(web.session, program.id)
    rows: list[dict[str, Any]] = []
    if ts is not None:
        structure = tiers.require_structure(web.session, program.id)
        counts = {c["tier"]: c["members"] for c in view.summary(web.session, web.tenant, structure)}
        total = sum(counts.values()) or 1
        for t in _tier_rows(web, ts):
            rows.append(
                {
                    "tier": t,
                    "name": pick(t.names, web.lang) or t.code,
                    "thresholds": [_plain(x) for x in t.thresholds],
                    "members": counts.get(t.code, 0),
                    "share": counts.get(t.code, 0) / total,
                    "perks": [pick(p, web.lang) or "" for p in t.perks or []],
                    "multiplier": _plain(t.earn_multiplier),
                }
            )
    return render(
        request,
        "console/tiers/index.html",
        {
            "program": program,
            "ts": ts,
            "rows": rows,
            "metric_labels": dict(_options(web, METRIC_LABELS)),
            "windows": dict(_options(web, WINDOWS)),
            "retentions": dict(_options(web, RETENTIONS)),
            "downgrades": dict(_options(web, DOWNGRADES)),
        },
    )


def _set_values(ts: TierSet | None) -> dict[str, Any]:
    if ts is None:
        return {
            "name": "",
            "metric": "spend",
            "metric2": "",
            "combine": "all",
            "window": "rolling",
            "window_months": "12",
            "retention": "months",
            "retention_months": "12",
            "downgrade": "one_level",
            "grace_days": "0",
            "at_risk_days": "30",
            "base_code": "member",
            "base_id": "",
            "base_ms": "",
            "base_en": "",
        }
    metrics = list(ts.metrics)
    return {
        "name": ts.name,
        "metric": metrics[0]["metric"],
        "event_type": metrics[0].get("event_type") or "",
        "metric2": metrics[1]["metric"] if len(metrics) > 1 else "",
        "event_type2": metrics[1].get("event_type") or "" if len(metrics) > 1 else "",
        "combine": ts.combine,
        "window": ts.window.get("kind"),
        "window_months": str(ts.window.get("months") or ""),
        "retention": ts.retention.get("kind"),
        "retention_months": str(ts.retention.get("months") or ""),
        "downgrade": ts.downgrade,
        "grace_days": str(ts.grace_days),
        "at_risk_days": str(ts.at_risk_days),
    }


def _tier_body(t: Tier) -> dict[str, Any]:
    return {
        "code": t.code,
        "names": dict(t.names),
        "thresholds": list(t.thresholds),
        "invitation_only": t.invitation_only,
        "earn_multiplier": t.earn_multiplier,
        "perks": list(t.perks or []),
        "support_priority": t.support_priority,
        "color": t.color,
    }


def _set_body(ts: TierSet, rows: list[Tier]) -> dict[str, Any]:
    return {
        "name": ts.name,
        "metrics": list(ts.metrics),
        "combine": ts.combine,
        "window": dict(ts.window),
        "retention": dict(ts.retention),
        "downgrade": ts.downgrade,
        "grace_days": ts.grace_days,
        "at_risk_days": ts.at_risk_days,
        "tiers": [_tier_body(t) for t in rows],
    }


def _options(web: WebContext, labels: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(k, web.t(v)) for k, v in labels.items()]


def _settings_page(
    request: Request,
    web: WebContext,
    ts: TierSet | None,
    values: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/tiers/settings.html",
        {
            "ts": ts,
            "values": values,
            "errors": errors,
            "metrics": _options(web, METRIC_LABELS),
            "windows": _options(web, WINDOWS),
            "retentions": _options(web, RETENTIONS),
            "downgrades": _options(web, DOWNGRADES),
        },
        status_code=status_code,
    )


@router.get("/console/tiers/settings", response_class=HTMLResponse)
def tier_settings(request: Request, web: WebContext = require("program.edit")) -> Response:
    ts = tiers.get_tier_set(web.session, _program(web).id)
    return _settings_page(request, web, ts, _set_values(ts), None)


@router.post("/console/tiers/settings", response_class=HTMLResponse)
def tier_settings_save(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program = _program(web)
    ts = tiers.get_tier_set(web.session, program.id)
    errors = FieldErrors(web)
    values = {k: form.get(k) for k in form}
    name = errors.text(form, "name", required=True, max_length=200)
    metric = errors.choice(form, "metric", METRICS)
    metric2 = errors.choice(form, "metric2", METRICS, required=False)
    window = errors.choice(form, "window", tuple(WINDOWS))
    retention = errors.choice(form, "retention", tuple(RETENTIONS))
    downgrade = errors.choice(form, "downgrade", tuple(DOWNGRADES))
    combine = errors.choice(form, "combine", ("all", "any"), required=False) or "all"
    wmonths = errors.integer(form, "window_months", minimum=1, maximum=60)
    rmonths = errors.integer(form, "retention_months", minimum=1, maximum=60)
    grace = errors.integer(form, "grace_days", minimum=0, maximum=365) or 0
    at_risk = errors.integer(form, "at_risk_days", minimum=0, maximum=365)
    metrics: list[dict[str, Any]] = []
    for m, key in ((metric, "event_type"), (metric2, "event_type2")):
        if m:
            entry: dict[str, Any] = {"metric": m}
            if m == "event":
                et = errors.text(form, key, max_length=60)
                if not et:
                    errors.add(key, N_("Give the event type for this measure."))
                entry["event_type"] = et
            metrics.append(entry)
    rows = _tier_rows(web, ts) if ts else []
    if ts is None:
        base_code = errors.text(form, "base_code", required=True, max_length=40)
        base_names = {
            lang: errors.text(form, f"base_{lang}", required=True, max_length=100)
            for lang in ("id", "ms", "en")
        }
    if errors:
        return _settings_page(request, web, ts, values, errors, 422)
    tier_list = [_tier_body(t) for t in rows]
    # Thresholds follow the measures: a new second measure starts at 0 for every tier.
    for t in tier_list:
        t["thresholds"] = (list(t["thresholds"]) + ["0"] * len(metrics))[: len(metrics)]
    if ts is None:
        tier_list = [{"code": base_code, "names": base_names, "thresholds": ["0"] * len(metrics)}]
    body = {
        "name": name,
        "metrics": metrics,
        "combine": combine,
        "window": {"kind": window, **({"months": wmonths} if window == "rolling" else {})},
        "retention": {
            "kind": retention,
            **({"months": rmonths} if retention == "months" else {}),
        },
        "downgrade": downgrade,
        "grace_days": grace,
        "at_risk_days": 30 if at_risk is None else at_risk,
        "tiers": tier_list,
    }
    return _put(request, web, program, ts, body, errors, values, "settings")


def _put(
    request: Request,
    web: WebContext,
    program: Program,
    ts: TierSet | None,
    body: dict[str, Any],
    errors: FieldErrors,
    values: Mapping[str, Any],
    which: str,
    tier: Tier | None = None,
    index: int = 0,
) -> Response:
    try:
        parsed = TierSetIn.model_validate(body)
    except ValidationError as exc:
        _map_set_errors(errors, exc, which, index)
        return _back(request, web, ts, tier, values, errors, which, 422)
    try:
        tiers.put_tier_set(web.session, web.tenant, program, parsed, actor=web.actor)
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        if exc.code == "tier_in_use":
            errors.add(
                "__all__",
                N_("This tier still has members or history; it cannot be removed."),
            )
        else:
            errors.add_text("__all__", exc.detail)
        return _back(request, web, ts, tier, values, errors, which, 409)
    flash(request, web.t(N_("Tiers saved.")))
    return redirect(request, "/console/tiers")


def _back(
    request: Request,
    web: WebContext,
    ts: TierSet | None,
    tier: Tier | None,
    values: Mapping[str, Any],
    errors: FieldErrors,
    which: str,
    status: int,
) -> HTMLResponse:
    if which == "settings":
        return _settings_page(request, web, ts, values, errors, status)
    assert ts is not None
    return _tier_page(request, web, ts, tier, values, errors, status)


def _map_set_errors(errors: FieldErrors, exc: ValidationError, which: str, index: int) -> None:
    """A tier set's validation errors onto the settings or the tier form."""
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        text = generic_message(errors, err)
        if loc[:1] == ["tiers"] and len(loc) >= 2:
            if which != "tier" or loc[1] != str(index):
                errors.add_text("__all__", f"{'.'.join(loc)}: {text}")
                continue
            rest = loc[2:]
            name = rest[0] if rest else "__all__"
            if name == "names" and len(rest) > 1:
                name = f"name_{rest[1]}"
            if err.get("type") == "value_error":
                name, text = _known(errors, msg, name)
            errors.add_text(name, text)
            continue
        field, text = _known(errors, msg, loc[0] if loc else "__all__")
        if which == "settings" and field in ("thresholds", "code", "invitation_only"):
            field = "__all__"
        if which == "tier" and field not in ("thresholds", "code", "invitation_only"):
            field = "__all__"
        if which == "settings" and field in ("window", "retention") and len(loc) > 1:
            field = f"{field}_months" if loc[1] == "months" else field
        errors.add_text(field, text)


def _tier_values(t: Tier | None, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    if t is None:
        return {
            "code": "",
            "earn_multiplier": "1",
            "support_priority": "0",
            **{f"threshold_{i}": "" for i in range(len(metrics))},
        }
    return {
        "code": t.code,
        "name_id": t.names.get("id", ""),
        "name_ms": t.names.get("ms", ""),
        "name_en": t.names.get("en", ""),
        "earn_multiplier": _plain(t.earn_multiplier),
        "support_priority": str(t.support_priority),
        "color": t.color or "",
        "invitation_only": t.invitation_only,
        "perks": _perks_text(t.perks or []),
        **{f"threshold_{i}": _plain(x) for i, x in enumerate(t.thresholds)},
    }


def _tier_page(
    request: Request,
    web: WebContext,
    ts: TierSet,
    tier: Tier | None,
    values: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = _tier_rows(web, ts)
    return render(
        request,
        "console/tiers/tier.html",
        {
            "ts": ts,
            "tier": tier,
            "is_base": tier is not None and rows and rows[0].id == tier.id,
            "values": values,
            "errors": errors,
            "metrics": [
                (
                    i,
                    web.t(METRIC_LABELS[m["metric"]])
                    + (f" ({m['event_type']})" if m.get("event_type") else ""),
                    m["metric"],
                )
                for i, m in enumerate(ts.metrics)
            ],
            "program": _program(web),
        },
        status_code=status_code,
    )


def _find_tier(web: WebContext, ts: TierSet, code: str) -> Tier:
    for t in _tier_rows(web, ts):
        if t.code == code:
            return t
    raise tiers.TierNotFound(f"no tier {code!r}")


def _need_set(web: WebContext) -> tuple[Program, TierSet]:
    program = _program(web)
    ts = tiers.get_tier_set(web.session, program.id)
    if ts is None:
        raise tiers.TierSetNotFound("this program has no tiers yet")
    return program, ts


@router.get("/console/tiers/tier/new", response_class=HTMLResponse)
def tier_new(request: Request, web: WebContext = require("program.edit")) -> Response:
    _, ts = _need_set(web)
    return _tier_page(request, web, ts, None, _tier_values(None, list(ts.metrics)), None)


@router.get("/console/tiers/tier/{code}", response_class=HTMLResponse)
def tier_edit(request: Request, code: str, web: WebContext = require("program.edit")) -> Response:
    _, ts = _need_set(web)
    tier = _find_tier(web, ts, code)
    return _tier_page(request, web, ts, tier, _tier_values(tier, list(ts.metrics)), None)


@router.post("/console/tiers/tier/new", response_class=HTMLResponse)
def tier_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program, ts = _need_set(web)
    return _tier_save(request, web, form, program, ts, None)


@router.post("/console/tiers/tier/{code}", response_class=HTMLResponse)
def tier_update(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program, ts = _need_set(web)
    return _tier_save(request, web, form, program, ts, _find_tier(web, ts, code))


@router.post("/console/tiers/tier/{code}/delete", response_class=HTMLResponse)
def tier_delete(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program, ts = _need_set(web)
    tier = _find_tier(web, ts, code)
    rows = _tier_rows(web, ts)
    if rows[0].id == tier.id:
        flash(request, web.t(N_("The first tier cannot be removed.")), "error")
        return redirect(request, "/console/tiers")
    body = _set_body(ts, [t for t in rows if t.id != tier.id])
    try:
        tiers.put_tier_set(
            web.session, web.tenant, program, TierSetIn.model_validate(body), actor=web.actor
        )
        web.session.commit()
    except (SetiaError, ValidationError):
        web.session.rollback()
        flash(
            request,
            web.t(N_("This tier still has members or history; it cannot be removed.")),
            "error",
        )
        return redirect(request, "/console/tiers")
    flash(request, web.t(N_("Tier %(code)s removed."), code=code))
    return redirect(request, "/console/tiers")


def _tier_save(
    request: Request,
    web: WebContext,
    form: FormData,
    program: Program,
    ts: TierSet,
    tier: Tier | None,
) -> Response:
    errors = FieldErrors(web)
    values: dict[str, Any] = {k: form.get(k) for k in form}
    values["invitation_only"] = bool(form.get("invitation_only"))
    rows = _tier_rows(web, ts)
    code = tier.code if tier else errors.text(form, "code", required=True, max_length=40)
    names = {
        lang: errors.text(form, f"name_{lang}", required=True, max_length=100)
        for lang in ("id", "ms", "en")
    }
    thresholds: list[str] = []
    for i, _m in enumerate(ts.metrics):
        amount = errors.amount(form, f"threshold_{i}", required=True)
        thresholds.append(format(amount, "f") if amount is not None else "0")
    multiplier_raw = str(form.get("earn_multiplier") or "1").strip().replace(",", ".")
    try:
        multiplier = Decimal(multiplier_raw)
        if not multiplier.is_finite() or multiplier < 1 or multiplier > 100:
            raise InvalidOperation
    except InvalidOperation:
        errors.add("earn_multiplier", N_("Enter a number from 1 to 100, e.g. 1.5."))
        multiplier = Decimal(1)
    priority = errors.integer(form, "support_priority", minimum=0, maximum=100) or 0
    color = errors.text(form, "color", max_length=20)
    perks = _parse_perks(errors, form, need_all=True)
    if code and any(t.code == code for t in rows if tier is None or t.id != tier.id):
        errors.add("code", N_("Another tier has this code."))
    if errors:
        return _tier_page(request, web, ts, tier, values, errors, 422)
    entry = {
        "code": code,
        "names": names,
        "thresholds": thresholds,
        "invitation_only": bool(form.get("invitation_only")),
        "earn_multiplier": multiplier,
        "perks": perks,
        "support_priority": priority,
        "color": color,
    }
    bodies = [_tier_body(t) for t in rows]
    if tier is None:
        bodies.append(entry)
        index = len(bodies) - 1
    else:
        index = next(i for i, t in enumerate(rows) if t.id == tier.id)
        bodies[index] = entry
    body = _set_body(ts, rows)
    body["tiers"] = bodies
    for i in range(len(ts.metrics)):
        values.setdefault(f"threshold_{i}", "")
    return _put(request, web, program, ts, body, errors, values, "tier", tier, index)


# --------------------------------------------------------------------------- paid plans


@router.get("/console/plans", response_class=HTMLResponse)
def plans_index(request: Request, web: WebContext = require("program.view")) -> Response:
    program = _program(web)
    rows = plans.list_plans(web.session, program.id)
    counts = _live_counts(web, program.id)
    return render(
        request,
        "console/plans/index.html",
        {
            "program": program,
            "plans": [
                {
                    "plan": p,
                    "name": pick(p.names, web.lang) or p.code,
                    "live": counts.get(p.id, (0, 0))[0],
                    "total": counts.get(p.id, (0, 0))[1],
                    "period": web.t(PERIODS.get(p.period, p.period)),
                    "multiplier": _plain(p.earn_multiplier),
                    "perks": [pick(x, web.lang) or "" for x in (p.perks or {}).get("items", [])],
                }
                for p in rows
            ],
        },
    )


def _plan_values(p: MembershipPlan | None) -> dict[str, Any]:
    if p is None:
        return {
            "period": "monthly",
            "trial_days": "0",
            "grace_days": "7",
            "earn_multiplier": "1",
            "monthly_bonus_points": "0",
            "active": True,
        }
    return {
        "code": p.code,
        "name_id": p.names.get("id", ""),
        "name_ms": p.names.get("ms", ""),
        "name_en": p.names.get("en", ""),
        "price": to_str(p.price, p.currency),
        "period": p.period,
        "trial_days": str(p.trial_days),
        "grace_days": str(p.grace_days),
        "tier_code": p.tier_code or "",
        "tier_mode": p.tier_mode or "grant",
        "earn_multiplier": _plain(p.earn_multiplier),
        "monthly_bonus_points": str(p.monthly_bonus_points),
        "perks": _perks_text((p.perks or {}).get("items", [])),
        "active": p.active,
    }


def _plan_page(
    request: Request,
    web: WebContext,
    plan: MembershipPlan | None,
    values: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    program = _program(web)
    structure = tiers.structure(web.session, program.id)
    tier_options = [("", web.t(N_("No tier benefit")))] + [
        (t.code, pick(t.names, web.lang) or t.code) for t in (structure.tiers if structure else ())
    ]
    revisions = plans.plan_revisions(web.session, plan.id) if plan else []
    return render(
        request,
        "console/plans/edit.html",
        {
            "plan": plan,
            "program": program,
            "values": values,
            "errors": errors,
            "periods": _options(web, PERIODS),
            "tier_modes": _options(web, TIER_MODES),
            "tier_options": tier_options,
            "revisions": list(reversed(revisions)),
            "live": _live_counts(web, program.id).get(plan.id, (0, 0)) if plan else (0, 0),
        },
        status_code=status_code,
    )


@router.get("/console/plans/new", response_class=HTMLResponse)
def plan_new(request: Request, web: WebContext = require("program.edit")) -> Response:
    return _plan_page(request, web, None, _plan_values(None), None)


@router.post("/console/plans/new", response_class=HTMLResponse)
def plan_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    return _plan_save(request, web, form, None)


def _plan(web: WebContext, plan_id: str) -> MembershipPlan:
    pid = parse_uuid(plan_id)
    if pid is None:
        raise plans.PlanNotFound(f"membership plan {plan_id} not found")
    return plans.get_plan(web.session, web.tenant.id, pid)


@router.get("/console/plans/{plan_id}", response_class=HTMLResponse)
def plan_edit(
    request: Request, plan_id: str, web: WebContext = require("program.view")
) -> Response:
    plan = _plan(web, plan_id)
    return _plan_page(request, web, plan, _plan_values(plan), None)


@router.post("/console/plans/{plan_id}", response_class=HTMLResponse)
def plan_update(
    request: Request, plan_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    return _plan_save(request, web, form, _plan(web, plan_id))


PLAN_FIELDS = {
    "names": "name_id",
    "price": "price",
    "period": "period",
    "trial_days": "trial_days",
    "grace_days": "grace_days",
    "tier_code": "tier_code",
    "tier_mode": "tier_mode",
    "earn_multiplier": "earn_multiplier",
    "monthly_bonus_points": "monthly_bonus_points",
    "perks": "perks",
    "code": "code",
}


def _plan_save(
    request: Request, web: WebContext, form: FormData, plan: MembershipPlan | None
) -> Response:
    program = _program(web)
    errors = FieldErrors(web)
    values: dict[str, Any] = {k: form.get(k) for k in form}
    values["active"] = bool(form.get("active"))
    code = None
    if plan is None:
        code = errors.text(form, "code", required=True, max_length=60)
        if code and not re.match(r"^[a-z0-9][a-z0-9-]{0,59}$", code):
            errors.add("code", N_("Use lowercase letters, digits and - (e.g. member-plus)."))
    names = {lang: errors.text(form, f"name_{lang}", max_length=200) for lang in ("id", "ms", "en")}
    if not (names["id"] or names["en"]):
        errors.add("name_id", N_("Give the name in Indonesian or English at least."))
    price = errors.amount(form, "price", required=True)
    if price is not None and price <= 0:
        errors.add("price", N_("Enter a price above zero."))
    period = errors.choice(form, "period", tuple(PERIODS))
    trial = errors.integer(form, "trial_days", minimum=0, maximum=366) or 0
    grace = errors.integer(form, "grace_days", minimum=0, maximum=90) or 0
    bonus = errors.integer(form, "monthly_bonus_points", minimum=0, maximum=10_000_000) or 0
    multiplier_raw = str(form.get("earn_multiplier") or "1").strip().replace(",", ".")
    try:
        multiplier = Decimal(multiplier_raw)
        if not multiplier.is_finite() or multiplier < 1 or multiplier > 100:
            raise InvalidOperation
    except InvalidOperation:
        errors.add("earn_multiplier", N_("Enter a number from 1 to 100, e.g. 1.5."))
        multiplier = Decimal(1)
    tier_code = str(form.get("tier_code") or "").strip() or None
    tier_mode = errors.choice(form, "tier_mode", tuple(TIER_MODES), required=False)
    perks = _parse_perks(errors, form, need_all=False)
    if errors:
        return _plan_page(request, web, plan, values, errors, 422)
    data: dict[str, Any] = {
        "names": {k: v for k, v in names.items() if v},
        "price": format(price, "f") if price is not None else None,
        "currency": program.currency,
        "period": period,
        "trial_days": trial,
        "grace_days": grace,
        "tier_code": tier_code,
        "tier_mode": tier_mode if tier_code else None,
        "earn_multiplier": multiplier,
        "monthly_bonus_points": bonus,
        "perks": perks,
        "active": bool(form.get("active")),
    }
    try:
        if plan is None:
            body_in = PlanIn.model_validate({**data, "code": code})
            saved = plans.create_plan(web.session, program, body_in, actor=web.actor)
        else:
            body_patch = PlanPatch.model_validate(data)
            saved = plans.update_plan(web.session, program, plan, body_patch, actor=web.actor)
        web.session.commit()
    except ValidationError as exc:
        web.session.rollback()
        for err in exc.errors(include_url=False):
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            name = PLAN_FIELDS.get(loc[0], "__all__") if loc else "__all__"
            errors.add_text(name, generic_message(errors, err))
        return _plan_page(request, web, plan, values, errors, 422)
    except SetiaError as exc:
        web.session.rollback()
        field = str(exc.extra.get("field") or "") if exc.extra else ""
        errors.from_error(
            exc,
            {
                "plan_code_taken": "code",
                "tier_not_found": "tier_code",
                **({exc.code: PLAN_FIELDS.get(field, "__all__")} if field else {}),
            },
            {
                "plan_code_taken": N_("Another plan has this code."),
                "tier_not_found": N_("Choose one of the options."),
            },
        )
        return _plan_page(request, web, plan, values, errors, 409 if exc.status == 409 else 422)
    flash(request, web.t(N_("Plan %(code)s saved."), code=saved.code))
    return redirect(request, "/console/plans")
