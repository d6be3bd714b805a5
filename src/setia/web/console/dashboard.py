"""The dashboard (/console) and the JSON its charts are drawn from (/console/api/dashboard/...).

Every figure comes from the domain services: the KPIs from ``setia.analytics.kpis`` (the
same function as ``GET /v1/analytics/kpis``), the liability from the ledger
(``GET /v1/programs/{id}/liability``), the tier distribution from ``setia.tiers.view``
(``.../tier-set/summary``), happy-vs-loyal labels and loyalty types from the stored member
scores of the last recompute (``setia.analytics.store``), the cohort matrix from
``kpis.cohorts`` and the point flows from the finance report's ledger classification.

The period is chosen with query parameters: ``period`` = 7, 30 (default), 90, 365 or
``custom`` with ``from``/``to`` (local days in the tenant's time zone, YYYY-MM-DD).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select

from setia.analytics import kpis
from setia.analytics.tables import MemberScore
from setia.core.i18n import pick
from setia.core.time import utcnow, zone
from setia.events.models import Order
from setia.finance import service as finance
from setia.ledger import queries as ledger_queries
from setia.ledger.models import Transfer
from setia.members.models import Member
from setia.programs.models import Program
from setia.rewards.models import Reward, RewardRedemption
from setia.tiers import service as tier_service
from setia.tiers import view as tier_view
from setia.web import i18n, roles
from setia.web.console.current import current_program
from setia.web.deps import StaffWeb, WebContext, require
from setia.web.errors import redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

PERIODS = ("7", "30", "90", "365", "custom")
DEFAULT_PERIOD = "30"
PERIOD_NAMES = {
    "7": N_("Last 7 days"),
    "30": N_("Last 30 days"),
    "90": N_("Last 90 days"),
    "365": N_("Last 365 days"),
    "custom": N_("Custom dates"),
}
BAD_DAY = N_("Enter a date, for example 2026-01-31.")
FROM_AFTER_TO = N_("The start date must be on or before the end date.")
TOO_LONG = N_("Choose a period of at most %(days)s days.")
TOO_EARLY = N_("This date is too early.")

LABEL_NAMES = {
    "happy": N_("Happy"),
    "loyal": N_("Loyal"),
    "at_risk": N_("At risk"),
    "new": N_("New"),
    "lost": N_("Lost"),
    "dissatisfied": N_("Dissatisfied"),
    "none": N_("No label"),
}
TYPE_NAMES = {
    "habitual": N_("Habitual"),
    "transactional": N_("Transactional"),
    "emotional": N_("Emotional"),
    "none": N_("No clear type"),
}
SEGMENT_NAMES = {
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalists": N_("Potential loyalists"),
    "new": N_("New"),
    "promising": N_("Promising"),
    "need_attention": N_("Need attention"),
    "about_to_sleep": N_("About to sleep"),
    "at_risk": N_("At risk"),
    "cant_lose_them": N_("Can't lose them"),
    "hibernating": N_("Hibernating"),
    "lost": N_("Lost"),
}
# Colours of the charts' series (readable on white; the tables carry the same numbers).
COLOURS = ("#0f766e", "#b45309", "#7c3aed", "#be123c", "#2563eb", "#4d7c0f", "#6b7280")


# --- the period -------------------------------------------------------------------------------


@dataclass
class Period:
    key: str
    start: date
    end: date
    errors: FieldErrors
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> str:
        """The query string that selects this period again (for links and chart sources)."""
        if self.key == "custom":
            return urlencode(
                {"period": "custom", "from": self.start.isoformat(), "to": self.end.isoformat()}
            )
        return urlencode({"period": self.key})


def local_today(tz: str, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(zone(tz)).date()


def _day(errors: FieldErrors, raw: str, name: str) -> date | None:
    try:
        return kpis.parse_day(raw, name)
    except kpis.InvalidPeriod:
        errors.add(name, BAD_DAY)
        return None


def parse_period(
    web: WebContext, params: Mapping[str, str], *, now: datetime | None = None
) -> Period:
    """The period the query asks for; on a wrong value the errors (by field: period, from,
    to) and the default period, so the page still shows figures."""
    errors = FieldErrors(web)
    today = local_today(web.tz, now)
    raw = {k: str(params.get(k) or "").strip() for k in ("period", "from", "to")}
    key = raw["period"] or ("custom" if raw["from"] or raw["to"] else DEFAULT_PERIOD)
    if key not in PERIODS:
        errors.add("period", "Choose one of the options.")
        key = DEFAULT_PERIOD
    if key != "custom":
        n = int(key)
        return Period(key, today - timedelta(days=n - 1), today, errors, raw)
    start = end = None
    if not raw["from"]:
        errors.add("from", "This field is required.")
    else:
        start = _day(errors, raw["from"], "from")
    if not raw["to"]:
        errors.add("to", "This field is required.")
    else:
        end = _day(errors, raw["to"], "to")
    if start is not None and end is not None:
        try:
            kpis.check_period(start, end)
        except kpis.InvalidPeriod as exc:
            extra = exc.extra or {}
            if start > end:
                errors.add("from", FROM_AFTER_TO)
            elif "days" in extra:
                errors.add("to", TOO_LONG, days=kpis.MAX_DAYS)
            else:
                errors.add("from", TOO_EARLY)
    if errors or start is None or end is None:
        n = int(DEFAULT_PERIOD)
        return Period(DEFAULT_PERIOD, today - timedelta(days=n - 1), today, errors, raw)
    return Period("custom", start, end, errors, raw)


def period_options(web: WebContext) -> list[tuple[str, str]]:
    return [(k, web.t(PERIOD_NAMES[k])) for k in PERIODS]


# --- figures ----------------------------------------------------------------------------------

# The period figures (KPIs, point flows, cohorts) scan the program's orders and ledger, which
# takes seconds on a large tenant. They are kept per process until the data changes: the key
# includes the newest order and ledger transfer ids (ids grow with time), so a new purchase,
# redemption, expiry or adjustment recomputes them at the next view; a refund that moves no
# points is seen within ``CACHE_SECONDS``.
CACHE_SECONDS = 120.0
CACHE_ENTRIES = 256
_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def data_version(web: WebContext) -> tuple[Any, ...]:
    """The newest order and ledger transfer ids (primary-key lookups)."""
    order = web.session.execute(select(Order.id).order_by(Order.id.desc()).limit(1)).scalar()
    transfer = web.session.execute(
        select(Transfer.id).order_by(Transfer.id.desc()).limit(1)
    ).scalar()
    return (str(order), str(transfer))


def cached(web: WebContext, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()``, or its result for the same key and data version when it is recent."""
    full = (*key, data_version(web))
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(full)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    value = compute()
    with _cache_lock:
        if len(_cache) >= CACHE_ENTRIES:
            for old in sorted(_cache, key=lambda k: _cache[k][0])[: CACHE_ENTRIES // 4]:
                _cache.pop(old, None)
        _cache[full] = (now, value)
    return value


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def period_kpis(web: WebContext, program: Program, period: Period) -> dict[str, Any]:
    """``kpis.kpis`` for the period (as ``GET /v1/analytics/kpis``), kept until data changes."""
    return dict(
        cached(
            web,
            ("kpis", program.id, web.tenant.timezone, period.start, period.end),
            lambda: kpis.kpis(web.session, web.tenant, program, start=period.start, end=period.end),
        )
    )


def default_program(web: WebContext) -> Program:
    return current_program(web)


def member_total(web: WebContext) -> int:
    return int(
        web.session.execute(
            select(func.count()).where(Member.tenant_id == web.tenant.id, Member.status == "active")
        ).scalar_one()
    )


def joined(web: WebContext, period: Period) -> int:
    """Members (still active) whose record was created in the period's local days."""
    tz = zone(web.tz)
    lo = finance.local_midnight(period.start, tz)
    hi = finance.local_midnight(period.end + timedelta(days=1), tz)
    return int(
        web.session.execute(
            select(func.count()).where(
                Member.tenant_id == web.tenant.id,
                Member.status == "active",
                Member.created_at >= lo,
                Member.created_at < hi,
            )
        ).scalar_one()
    )


def overview(web: WebContext, program: Program, period: Period) -> dict[str, Any]:
    """The dashboard's stat tiles."""
    report = period_kpis(web, program, period)
    liability_points = ledger_queries.liability(web.session, program.id)
    return {
        "kpis": report,
        "members": member_total(web),
        "joined": joined(web, period),
        "liability_points": liability_points,
        "liability_value": liability_points * program.cost_per_point,
        "cost_per_point": program.cost_per_point,
    }


def stored_counts(
    web: WebContext, program_id: uuid.UUID, column: Any, keys: tuple[str, ...]
) -> dict[str, int]:
    """Members per value of a stored-score column (active members only; every key present)."""
    out = dict.fromkeys(keys, 0)
    rows = web.session.execute(
        select(column, func.count())
        .join(Member, Member.id == MemberScore.member_id)
        .where(MemberScore.program_id == program_id, Member.status == "active")
        .group_by(column)
    ).all()
    for value, n in rows:
        if value is not None:
            out[str(value)] = out.get(str(value), 0) + int(n)
    return out


def top_rewards(
    web: WebContext, program: Program, period: Period, limit: int = 10
) -> list[dict[str, Any]]:
    """Rewards by redemptions made in the period (cancelled ones left out), most first."""
    tz = zone(web.tz)
    lo = finance.local_midnight(period.start, tz)
    hi = finance.local_midnight(period.end + timedelta(days=1), tz)
    rows = web.session.execute(
        select(
            RewardRedemption.reward_id,
            func.count(),
            func.coalesce(func.sum(RewardRedemption.points), 0),
        )
        .where(
            RewardRedemption.program_id == program.id,
            RewardRedemption.status != "cancelled",
            RewardRedemption.created_at >= lo,
            RewardRedemption.created_at < hi,
        )
        .group_by(RewardRedemption.reward_id)
        .order_by(func.count().desc(), RewardRedemption.reward_id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    rewards = {
        r.id: r
        for r in web.session.scalars(select(Reward).where(Reward.id.in_([r[0] for r in rows])))
    }
    out = []
    for reward_id, n, points in rows:
        reward = rewards.get(reward_id)
        name = (pick(reward.names, web.lang) or reward.code) if reward else str(reward_id)
        out.append({"reward": name, "redemptions": int(n), "points": int(points)})
    return out


def _buckets(period: Period) -> tuple[list[date], str]:
    """Bucket starts over the period: days up to 31 days, else weeks (7 days from the
    start; the last one may be shorter)."""
    step = 1 if period.days <= 31 else 7
    starts = []
    d = period.start
    while d <= period.end:
        starts.append(d)
        d += timedelta(days=step)
    return starts, "day" if step == 1 else "week"


def points_series(web: WebContext, program: Program, period: Period) -> dict[str, Any]:
    """Points issued, redeemed and expired per day or week (the finance report's figures)."""
    tz = zone(web.tz)
    starts, unit = _buckets(period)
    bounds = [finance.local_midnight(d, tz) for d in starts]
    bounds.append(finance.local_midnight(period.end + timedelta(days=1), tz))

    def compute() -> list[finance.Flows]:
        out = [finance.Flows() for _ in starts]
        for bucket, shape, amount in finance._grouped(
            web.session, program.id, bounds, window_only=True
        ):
            if 0 <= bucket < len(starts):
                out[bucket].add(shape, amount)
        return out

    flows: list[finance.Flows] = cached(
        web, ("points", program.id, web.tenant.timezone, period.start, period.end), compute
    )
    outs = [f.points_out() for f in flows]
    labels = [i18n.day(d, web.lang, None, "d MMM") for d in starts]
    series = [
        ("issued", web.t("Issued"), [f.points["earned"] for f in flows]),
        ("redeemed", web.t("Redeemed"), [o["redeemed"] for o in outs]),
        ("expired", web.t("Expired"), [o["expired"] for o in outs]),
    ]
    empty = not any(v for _, _, values in series for v in values)
    return chart(
        "line" if len(starts) > 1 else "bar",
        labels,
        [{"key": k, "label": label, "data": values} for k, label, values in series],
        empty=empty,
        empty_text=web.t("No points were issued, redeemed or expired in this period."),
        unit=web.t("Week starting") if unit == "week" else web.t("Day"),
    )


def chart(
    kind: str,
    labels: list[str],
    datasets: list[dict[str, Any]],
    *,
    empty: bool,
    empty_text: str,
    unit: str = "",
    note: str | None = None,
) -> dict[str, Any]:
    """The JSON a chart is drawn from: Chart.js's type, labels and datasets (with colours),
    plus what the text fallback and the empty state need."""
    for i, ds in enumerate(datasets):
        colour = COLOURS[i % len(COLOURS)]
        if kind in ("doughnut", "pie") or ds.get("per_point"):
            ds.pop("per_point", None)
            ds["backgroundColor"] = [COLOURS[j % len(COLOURS)] for j in range(len(labels))]
        else:
            ds["backgroundColor"] = colour
        ds["borderColor"] = colour if kind not in ("doughnut", "pie") else "#ffffff"
    return {
        "type": kind,
        "labels": labels,
        "datasets": datasets,
        "empty": empty,
        "empty_text": empty_text,
        "unit": unit,
        "note": note,
    }


def tier_chart(web: WebContext, program: Program) -> dict[str, Any]:
    structure = tier_service.structure(web.session, program.id)
    if structure is None:
        return chart(
            "bar",
            [],
            [],
            empty=True,
            empty_text=web.t("This program has no tiers yet."),
        )
    rows = tier_view.summary(web.session, web.tenant, structure)
    names = {t.code: pick(t.names, web.lang) or t.code for t in structure.tiers}
    return chart(
        "bar",
        [names.get(r["tier"], r["tier"]) for r in rows],
        [{"label": web.t("Members"), "data": [r["members"] for r in rows], "per_point": True}],
        empty=not any(r["members"] for r in rows),
        empty_text=web.t("No members yet."),
        unit=web.t("Tier"),
    )


def _scores_note(web: WebContext, program: Program) -> tuple[bool, str | None]:
    from setia.analytics import store

    fit = store.latest_fit(web.session, program.id)
    if fit is None:
        return False, None
    return True, web.t("As of %(when)s", when=i18n.when(fit.computed_at, web.lang, web.tz))


def label_chart(web: WebContext, program: Program) -> dict[str, Any]:
    computed, note = _scores_note(web, program)
    counts = stored_counts(web, program.id, MemberScore.loyalty_label, tuple(LABEL_NAMES))
    return chart(
        "doughnut",
        [web.t(LABEL_NAMES[k]) for k in counts],
        [{"label": web.t("Members"), "data": list(counts.values())}],
        empty=not any(counts.values()),
        empty_text=web.t("No scores yet: they are computed from members' purchases.")
        if not computed
        else web.t("No members with purchases yet."),
        unit=web.t("Label"),
        note=note,
    )


def type_chart(web: WebContext, program: Program) -> dict[str, Any]:
    computed, note = _scores_note(web, program)
    counts = stored_counts(web, program.id, MemberScore.loyalty_type, tuple(TYPE_NAMES))
    return chart(
        "bar",
        [web.t(TYPE_NAMES[k]) for k in counts],
        [{"label": web.t("Members"), "data": list(counts.values()), "per_point": True}],
        empty=not any(counts.values()),
        empty_text=web.t("No scores yet: they are computed from members' purchases.")
        if not computed
        else web.t("No members with purchases yet."),
        unit=web.t("Loyalty type"),
        note=note,
    )


def cohort_months(period: Period) -> tuple[date, date]:
    """The cohort matrix's months: the 12 months ending with the period's last month (or the
    period's own months when it is longer)."""
    last = period.end.replace(day=1)
    first = period.start.replace(day=1)
    back = last
    for _ in range(11):
        back = (back - timedelta(days=1)).replace(day=1)
    return min(first, back), last


def cohort_table(web: WebContext, program: Program, period: Period) -> dict[str, Any]:
    first, last = cohort_months(period)
    report = cached(
        web,
        ("cohorts", program.id, web.tenant.timezone, first, last),
        lambda: kpis.cohorts(web.session, web.tenant, program, first_month=first, last_month=last),
    )
    rows = report["cohorts"]
    width = max((len(r["months"]) for r in rows), default=0)
    return {
        "type": "heatmap",
        "empty": not rows,
        "empty_text": web.t("No purchases in these months yet."),
        "columns": [web.t("Cohort"), web.t("Members")]
        + [web.t("Month %(n)s", n=k) for k in range(width)],
        "rows": [
            {
                "cohort": i18n.day(
                    date.fromisoformat(r["cohort"] + "-01"), web.lang, None, "MMM y"
                ),
                "size": r["size"],
                "cells": [
                    {
                        "share": None if m["share"] is None else float(m["share"]),
                        "members": m["members"],
                        "text": i18n.percent(
                            None if m["share"] is None else float(m["share"]), web.lang, 0
                        ),
                    }
                    for m in r["months"]
                ],
            }
            for r in rows
        ],
        "note": web.t(
            "Share of each month's new buyers who bought again N months later, %(first)s to %(last)s.",
            first=i18n.day(first, web.lang, None, "MMM y"),
            last=i18n.day(last, web.lang, None, "MMM y"),
        ),
    }


def reward_chart(web: WebContext, program: Program, period: Period) -> dict[str, Any]:
    rows = top_rewards(web, program, period)
    return chart(
        "bar",
        [r["reward"] for r in rows],
        [
            {
                "label": web.t("Redemptions"),
                "data": [r["redemptions"] for r in rows],
                "per_point": True,
            }
        ],
        empty=not rows,
        empty_text=web.t("No rewards were redeemed in this period."),
        unit=web.t("Reward"),
    )


# --- routes -----------------------------------------------------------------------------------


def _dashboard_web(web: StaffWeb) -> WebContext:
    return web


@router.get("/console", response_model=None)
def dashboard(request: Request, web: WebContext = Depends(_dashboard_web)) -> Response:
    """The dashboard; a role that may not see it (the cashier) lands on its own home."""
    if not web.can("dashboard.view"):
        assert web.staff is not None
        return redirect(request, roles.home_for(web.staff.role))
    period = parse_period(web, request.query_params)
    program = default_program(web)
    figures = overview(web, program, period)
    return render(
        request,
        "console/dashboard/index.html",
        {
            "period": period,
            "errors": period.errors,
            "period_options": period_options(web),
            "program": program,
            "currency": program.currency,
            **figures,
        },
        status_code=422 if period.errors else 200,
    )


def _chart_json(request: Request, web: WebContext, kind: str) -> JSONResponse:
    period = parse_period(web, request.query_params)
    if period.errors:
        return JSONResponse(
            {"errors": dict(period.errors.items())}, status_code=422, headers=_NO_STORE
        )
    program = default_program(web)
    body: dict[str, Any]
    if kind == "points":
        body = points_series(web, program, period)
    elif kind == "tiers":
        body = tier_chart(web, program)
    elif kind == "labels":
        body = label_chart(web, program)
    elif kind == "loyalty-types":
        body = type_chart(web, program)
    elif kind == "cohorts":
        body = cohort_table(web, program, period)
    else:
        body = reward_chart(web, program, period)
    body["from"] = period.start.isoformat()
    body["to"] = period.end.isoformat()
    return JSONResponse(body, headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/console/api/dashboard/points")
def points_json(request: Request, web: WebContext = require("dashboard.view")) -> JSONResponse:
    """Points issued, redeemed and expired per day (periods up to 31 days) or week."""
    return _chart_json(request, web, "points")


@router.get("/console/api/dashboard/tiers")
def tiers_json(request: Request, web: WebContext = require("dashboard.view")) -> JSONResponse:
    """Active members per tier now."""
    return _chart_json(request, web, "tiers")


@router.get("/console/api/dashboard/labels")
def labels_json(request: Request, web: WebContext = require("dashboard.view")) -> JSONResponse:
    """Members per happy-vs-loyal label (stored scores of the last recompute)."""
    return _chart_json(request, web, "labels")


@router.get("/console/api/dashboard/loyalty-types")
def types_json(request: Request, web: WebContext = require("dashboard.view")) -> JSONResponse:
    """Members per primary loyalty type (stored scores of the last recompute)."""
    return _chart_json(request, web, "loyalty-types")


@router.get("/console/api/dashboard/cohorts")
def cohorts_json(request: Request, web: WebContext = require("dashboard.view")) -> JSONResponse:
    """Cohort retention by month of first purchase, drawn as a table with coloured cells."""
    return _chart_json(request, web, "cohorts")


@router.get("/console/api/dashboard/rewards")
def rewards_json(request: Request, web: WebContext = require("dashboard.view")) -> JSONResponse:
    """The ten rewards redeemed most in the period."""
    return _chart_json(request, web, "rewards")


__all__ = [
    "LABEL_NAMES",
    "SEGMENT_NAMES",
    "TYPE_NAMES",
    "Period",
    "parse_period",
    "router",
]
