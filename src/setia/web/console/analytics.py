"""Analytics pages: KPIs for a period, RFM segments, loyalty labels and types, saved segments
with their members, CSV export, and "recompute now". A saved segment is edited at ``/console/analytics/segments/{id}/edit``
(``segments.update``, as ``PUT /v1/analytics/segments/{id}``).

The KPIs are ``setia.analytics.kpis`` (as ``GET /v1/analytics/kpis``). Segments, labels and
types are the **stored** member scores of the program's last recompute
(``setia.analytics.store``, what rules and saved segments read), so the pages stay fast;
"Recompute now" runs ``store.recompute`` (as ``POST /v1/analytics/recompute``). Saved
segments use ``setia.analytics.segments`` (as ``/v1/analytics/segments``). The CSV exports
compute the same rows as ``GET /v1/analytics/rfm|labels|members?format=csv``, with the same
functions, for the signed-in staff user (the console never uses API keys).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import ImmutableMultiDict

from setia.analytics import api as analytics_api
from setia.analytics import export, rfm, store
from setia.analytics import labels as labelling
from setia.analytics import segments as seg_service
from setia.analytics import settings as tenant_settings
from setia.analytics.tables import AnalyticsSegment, MemberScore
from setia.core.api import write
from setia.core.errors import Conflict, SetiaError
from setia.core.i18n import pick
from setia.members.models import Member
from setia.programs.models import Program
from setia.web.console.dashboard import (
    LABEL_NAMES,
    SEGMENT_NAMES,
    TYPE_NAMES,
    default_program,
    parse_period,
    period_kpis,
    period_options,
    stored_counts,
)
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
REPORTS = ("rfm", "labels", "members")
BAD_KEY = N_("Use 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit.")
KEY_TAKEN = N_("Another segment already uses this key with other conditions.")
NAME_NEEDED = N_("Give the name in Bahasa Indonesia or in English at least.")
NO_CONDITION = N_("Choose at least one condition.")
NOT_JSON = N_("This is not valid JSON.")
KEY_USED = N_("Another segment already uses this key; choose another one.")
CHANGED_MEANWHILE = N_(
    "Someone changed this segment since you opened the form; nothing was saved. Open it "
    "again to see the current conditions."
)
SEGMENT_GONE = N_("This segment was deleted meanwhile; nothing was saved.")
BAD_FILTER = N_("This filter is not valid: %(detail)s")
PERCENT = N_("Enter a whole number from 0 to 100.")


# --- stored scores ----------------------------------------------------------------------------


def segment_rows(web: WebContext, program: Program) -> list[dict[str, Any]]:
    """Members per RFM segment from the stored scores (active members), in the order of
    ``rfm.SEGMENTS``, with their average spend and CLV."""
    rows = web.session.execute(
        select(
            MemberScore.rfm_segment,
            func.count(),
            func.avg(MemberScore.spend),
            func.avg(MemberScore.clv),
            func.avg(MemberScore.recency_days),
        )
        .join(Member, Member.id == MemberScore.member_id)
        .where(
            MemberScore.program_id == program.id,
            Member.status == "active",
            MemberScore.rfm_segment.is_not(None),
        )
        .group_by(MemberScore.rfm_segment)
    ).all()
    found = {r[0]: r for r in rows}
    total = sum(int(r[1]) for r in rows)
    out = []
    for code in rfm.SEGMENTS:
        r = found.get(code)
        if r is None:
            continue
        out.append(
            {
                "code": code,
                "name": web.t(SEGMENT_NAMES.get(code, code)),
                "members": int(r[1]),
                "share": int(r[1]) / total if total else None,
                "spend": None if r[2] is None else Decimal(str(r[2])),
                "clv": None if r[3] is None else Decimal(str(r[3])),
                "recency": None if r[4] is None else float(r[4]),
            }
        )
    return out


def _named_counts(web: WebContext, counts: dict[str, int], names: dict[str, str]) -> list[Any]:
    total = sum(counts.values())
    return [
        {
            "code": k,
            "name": web.t(names.get(k, k)),
            "members": n,
            "share": n / total if total else None,
        }
        for k, n in counts.items()
    ]


def _filters(params: Any) -> dict[str, str]:
    """The member-list filters asked for, if they are known values."""
    out = {}
    if params.get("segment") in rfm.SEGMENTS:
        out["segment"] = str(params["segment"])
    if params.get("label") in labelling.LABELS:
        out["label"] = str(params["label"])
    if params.get("loyalty_type") in labelling.PRIMARY:
        out["loyalty_type"] = str(params["loyalty_type"])
    return out


def _filter_title(web: WebContext, filters: dict[str, str]) -> str:
    names = {"segment": SEGMENT_NAMES, "label": LABEL_NAMES, "loyalty_type": TYPE_NAMES}
    parts = [web.t(names[kind][code]) for kind, code in filters.items()]
    return " · ".join(parts) if parts else web.t("All members with scores")


def member_page(
    web: WebContext, program: Program, filters: dict[str, str], after: uuid.UUID | None
) -> tuple[list[dict[str, Any]], uuid.UUID | None]:
    """A page of members (by id) from the stored scores, with name and phone."""
    q = (
        select(MemberScore, Member.name, Member.phone, Member.email)
        .join(Member, Member.id == MemberScore.member_id)
        .where(MemberScore.program_id == program.id, Member.status == "active")
        .order_by(MemberScore.member_id)
        .limit(PAGE_SIZE + 1)
    )
    if "segment" in filters:
        q = q.where(MemberScore.rfm_segment == filters["segment"])
    if "label" in filters:
        q = q.where(MemberScore.loyalty_label == filters["label"])
    if "loyalty_type" in filters:
        q = q.where(MemberScore.loyalty_type == filters["loyalty_type"])
    if after is not None:
        q = q.where(MemberScore.member_id > after)
    rows = web.session.execute(q).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    out = [_member_row(web, s, name, phone, email) for s, name, phone, email in rows]
    return out, (rows[-1][0].member_id if more else None)


def _member_row(
    web: WebContext, s: MemberScore | None, name: str | None, phone: str | None, email: str | None
) -> dict[str, Any]:
    return {
        "member_id": s.member_id if s else None,
        "name": name or phone or email or "—",
        "phone": phone,
        "segment": web.t(SEGMENT_NAMES[s.rfm_segment]) if s and s.rfm_segment else None,
        "label": web.t(LABEL_NAMES.get(s.loyalty_label, s.loyalty_label)) if s else None,
        "type": web.t(TYPE_NAMES.get(s.loyalty_type, s.loyalty_type)) if s else None,
        "orders": s.orders if s else None,
        "spend": s.spend if s else None,
        "clv": s.clv if s else None,
        "p_alive": s.p_alive if s else None,
        "last": s.last_purchase_day if s else None,
    }


# --- pages ------------------------------------------------------------------------------------


@router.get("/console/analytics", response_class=HTMLResponse)
def analytics_home(request: Request, web: WebContext = require("analytics.view")) -> HTMLResponse:
    period = parse_period(web, request.query_params)
    program = default_program(web)
    report = period_kpis(web, program, period)
    fit = store.latest_fit(web.session, program.id)
    labels = stored_counts(web, program.id, MemberScore.loyalty_label, tuple(LABEL_NAMES))
    types = stored_counts(web, program.id, MemberScore.loyalty_type, tuple(TYPE_NAMES))
    saved = seg_service.list_segments(web.session, web.tenant.id, after=None, limit=200)
    return render(
        request,
        "console/analytics/index.html",
        {
            "period": period,
            "errors": period.errors,
            "period_options": period_options(web),
            "program": program,
            "currency": program.currency,
            "kpis": report,
            "fit": fit,
            "segments": segment_rows(web, program),
            "labels": _named_counts(web, labels, LABEL_NAMES),
            "types": _named_counts(web, types, TYPE_NAMES),
            "saved": [
                {
                    "id": s.id,
                    "key": s.key,
                    "name": pick(s.names, web.lang) or s.key,
                    "created_by": s.created_by,
                    "updated_at": s.updated_at,
                    "conditions": len(seg_service.fields_used(s.filter)),
                }
                for s in saved
            ],
        },
        status_code=422 if period.errors else 200,
    )


@router.get("/console/analytics/members", response_class=HTMLResponse)
def analytics_members(
    request: Request, web: WebContext = require("analytics.view")
) -> HTMLResponse:
    """Members of an RFM segment, a label or a loyalty type (stored scores), by member id."""
    program = default_program(web)
    filters = _filters(request.query_params)
    after = parse_uuid(str(request.query_params.get("after") or ""))
    rows, next_after = member_page(web, program, filters, after)
    return render(
        request,
        "console/analytics/members.html",
        {
            "title": _filter_title(web, filters),
            "rows": rows,
            "currency": program.currency,
            "filters": filters,
            "query": urlencode(filters),
            "more": None
            if next_after is None
            else urlencode({**filters, "after": str(next_after)}),
            "first_page": after is None,
            "fit": store.latest_fit(web.session, program.id),
        },
    )


@router.post("/console/analytics/recompute")
def recompute(
    request: Request, form: ConsoleForm, web: WebContext = require("analytics.edit")
) -> Response:
    """Recompute the default program's stored scores now (``store.recompute``)."""
    program = default_program(web)
    tenant = web.tenant

    def run() -> int:
        res = store.recompute(web.session, tenant, program)
        return res.members

    try:
        n = write(web.session, run)
    except SetiaError as exc:
        web.session.rollback()
        flash(
            request,
            web.t("The scores could not be recomputed: %(detail)s", detail=exc.detail),
            "error",
        )
    else:
        flash(request, web.t("Scores recomputed for %(n)s members.", n=n))
    back = str(form.get("next") or "/console/analytics")
    return redirect(request, back if back.startswith("/console/") else "/console/analytics")


# --- saved segments ---------------------------------------------------------------------------


def _segment_form_context(
    web: WebContext,
    form: Any,
    errors: FieldErrors | None,
    program: Program,
    seg: AnalyticsSegment | None = None,
) -> dict[str, Any]:
    def chosen(name: str) -> list[str]:
        if form is None:
            return []
        getter = getattr(form, "getlist", None)
        return [str(v) for v in getter(name)] if getter else list(form.get(name) or [])

    return {
        "form": form or {},
        "errors": errors,
        "currency": program.currency,
        "segment_choices": [(k, web.t(v)) for k, v in SEGMENT_NAMES.items()],
        "label_choices": [(k, web.t(v)) for k, v in LABEL_NAMES.items()],
        "type_choices": [(k, web.t(v)) for k, v in TYPE_NAMES.items()],
        "chosen": {n: chosen(n) for n in ("rfm_segment", "loyalty_label", "loyalty_type")},
        "seg": seg,
    }


@router.get("/console/analytics/segments/new", response_class=HTMLResponse)
def new_segment(request: Request, web: WebContext = require("analytics.edit")) -> HTMLResponse:
    program = default_program(web)
    return render(
        request,
        "console/analytics/segment_form.html",
        _segment_form_context(web, None, None, program),
    )


def build_filter(web: WebContext, form: Any, errors: FieldErrors) -> dict[str, Any] | None:
    """The filter from the form's builder (every chosen condition must hold), or from the
    advanced JSON field when it is filled."""
    raw_json = str(form.get("filter_json") or "").strip()
    if raw_json:
        try:
            doc = json.loads(raw_json)
        except ValueError:
            errors.add("filter_json", NOT_JSON)
            return None
        if not isinstance(doc, dict):
            errors.add("filter_json", NOT_JSON)
            return None
        return doc
    parts: list[dict[str, Any]] = []
    for name, options in (
        ("rfm_segment", tuple(rfm.SEGMENTS)),
        ("loyalty_label", labelling.LABELS),
        ("loyalty_type", labelling.PRIMARY),
    ):
        values = [str(v) for v in form.getlist(name)]
        if any(v not in options for v in values):
            errors.add(name, "Choose one of the options.")
        elif values:
            parts.append({"field": name, "op": "in", "value": values})
    clv = errors.amount(form, "min_clv")
    if clv is not None:
        parts.append({"field": "clv", "op": "gte", "value": str(clv)})
    p = errors.integer(form, "min_p_alive", minimum=0, maximum=100)
    if p is not None:
        parts.append({"field": "p_alive", "op": "gte", "value": p / 100})
    days = errors.integer(form, "max_recency_days", minimum=0, maximum=10000)
    if days is not None:
        parts.append({"field": "recency_days", "op": "lte", "value": days})
    orders = errors.integer(form, "min_orders", minimum=0, maximum=1_000_000)
    if orders is not None:
        parts.append({"field": "orders", "op": "gte", "value": orders})
    tag = errors.text(form, "tag", max_length=100)
    if tag:
        parts.append({"field": "tags", "op": "contains", "value": tag})
    if form.get("whatsapp"):
        parts.append({"field": "consent.whatsapp", "op": "eq", "value": True})
    if errors:
        return None
    if not parts:
        errors.add("__all__", NO_CONDITION)
        return None
    return {"all": parts}


def _read_segment_form(
    web: WebContext, form: Any, errors: FieldErrors
) -> tuple[str | None, dict[str, str], dict[str, Any] | None]:
    """The key, names and filter of the segment form (create and edit), errors added."""
    key = errors.text(form, "key", required=True, max_length=64)
    if key is not None and not seg_service.KEY.match(key):
        errors.add("key", BAD_KEY)
    names = {
        lang: value
        for lang in ("id", "ms", "en")
        if (value := errors.text(form, f"name_{lang}", max_length=200))
    }
    if not (names.get("id") or names.get("en")) and "name_id" not in errors:
        errors.add("name_id", NAME_NEEDED)
    return key, names, build_filter(web, form, errors)


@router.post("/console/analytics/segments", response_model=None)
def create_segment(
    request: Request, form: ConsoleForm, web: WebContext = require("analytics.edit")
) -> Response:
    program = default_program(web)
    errors = FieldErrors(web)
    key, names, flt = _read_segment_form(web, form, errors)
    if errors or key is None or flt is None:
        return render(
            request,
            "console/analytics/segment_form.html",
            _segment_form_context(web, form, errors, program),
            status_code=422,
        )
    doc = seg_service.SegmentDoc(
        key=key, names=names, descriptions={}, filter=flt, program_id=program.id
    )
    try:
        seg, _created = write(
            web.session,
            lambda: seg_service.create(web.session, web.tenant.id, doc, actor=web.actor),
        )
    except SetiaError as exc:
        web.session.rollback()
        if exc.code == "segment_key_taken":
            errors.add("key", KEY_TAKEN)
            status = 409
        elif exc.code == "invalid_key":
            errors.add("key", BAD_KEY)
            status = 422
        else:
            target = "filter_json" if str(form.get("filter_json") or "").strip() else "__all__"
            errors.add(target, BAD_FILTER, detail=exc.detail)
            status = 422
        return render(
            request,
            "console/analytics/segment_form.html",
            _segment_form_context(web, form, errors, program),
            status_code=status,
        )
    flash(request, web.t("Segment %(name)s saved.", name=pick(seg.names, web.lang) or seg.key))
    return redirect(request, f"/console/analytics/segments/{seg.id}")


def _segment_or_404(request: Request, web: WebContext, segment_id: str) -> Any:
    sid = parse_uuid(segment_id)
    if sid is None:
        return None
    try:
        return seg_service.get(web.session, web.tenant.id, sid)
    except SetiaError:
        return None


@router.get("/console/analytics/segments/{segment_id}", response_model=None)
def segment_page(
    request: Request, segment_id: str, web: WebContext = require("analytics.view")
) -> Response:
    seg = _segment_or_404(request, web, segment_id)
    if seg is None:
        return page(request, 404)
    program = web.session.get(Program, seg.program_id) or default_program(web)
    after = parse_uuid(str(request.query_params.get("after") or ""))
    found = list(
        seg_service.matching(
            web.session, web.tenant.id, seg.program_id, seg.filter, after=after, limit=PAGE_SIZE + 1
        )
    )
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    ids = [r["member_id"] for r in found]
    people = (
        {m.id: m for m in web.session.scalars(select(Member).where(Member.id.in_(ids)))}
        if ids
        else {}
    )
    scores = (
        {
            s.member_id: s
            for s in web.session.scalars(
                select(MemberScore).where(
                    MemberScore.program_id == seg.program_id, MemberScore.member_id.in_(ids)
                )
            )
        }
        if ids
        else {}
    )
    rows = []
    for mid in ids:
        m = people.get(mid)
        row = _member_row(
            web,
            scores.get(mid),
            m.name if m else None,
            m.phone if m else None,
            m.email if m else None,
        )
        row["member_id"] = mid
        rows.append(row)
    total = seg_service.count(web.session, web.tenant.id, seg.id) if after is None else None
    return render(
        request,
        "console/analytics/segment.html",
        {
            "seg": seg,
            "name": pick(seg.names, web.lang) or seg.key,
            "filter_json": json.dumps(seg.filter, indent=2, ensure_ascii=False),
            "rows": rows,
            "total": total,
            "currency": program.currency,
            "more": str(found[-1]["member_id"]) if more else None,
            "fit": store.latest_fit(web.session, seg.program_id),
        },
    )


@router.get("/console/analytics/segments/{segment_id}/delete", response_model=None)
def confirm_delete(
    request: Request, segment_id: str, web: WebContext = require("analytics.edit")
) -> Response:
    seg = _segment_or_404(request, web, segment_id)
    if seg is None:
        return page(request, 404)
    return render(
        request,
        "console/analytics/segment_delete.html",
        {"seg": seg, "name": pick(seg.names, web.lang) or seg.key},
    )


@router.post("/console/analytics/segments/{segment_id}/delete", response_model=None)
def delete_segment(
    request: Request,
    segment_id: str,
    form: ConsoleForm,
    web: WebContext = require("analytics.edit"),
) -> Response:
    seg = _segment_or_404(request, web, segment_id)
    if seg is None:
        return page(request, 404)
    name = pick(seg.names, web.lang) or seg.key
    seg_id = seg.id
    write(web.session, lambda: seg_service.remove(web.session, web.tenant.id, seg_id))
    flash(request, web.t("Segment %(name)s deleted.", name=name))
    return redirect(request, "/console/analytics#saved-segments")


# --- editing a saved segment ------------------------------------------------------------------

CHOICE_FIELDS = ("rfm_segment", "loyalty_label", "loyalty_type")


def filter_form(web: WebContext, flt: dict[str, Any]) -> list[tuple[str, str]]:
    """A stored filter as the builder's form fields, when the builder makes exactly this
    filter again; otherwise the filter as JSON in the advanced field."""
    fields: list[tuple[str, str]] = []
    leaves = flt.get("all") if set(flt) == {"all"} else None
    simple = {
        ("clv", "gte"): "min_clv",
        ("recency_days", "lte"): "max_recency_days",
        ("orders", "gte"): "min_orders",
        ("tags", "contains"): "tag",
    }
    for leaf in leaves if isinstance(leaves, list) else [None]:
        if not isinstance(leaf, dict) or set(leaf) != {"field", "op", "value"}:
            fields = []
            break
        name, op, value = leaf["field"], leaf["op"], leaf["value"]
        if name in CHOICE_FIELDS and op == "in" and isinstance(value, list):
            fields += [(name, str(v)) for v in value]
        elif (name, op) in simple and isinstance(value, str | int) and not isinstance(value, bool):
            fields.append((simple[(name, op)], str(value)))
        elif name == "p_alive" and op == "gte" and isinstance(value, int | float):
            fields.append(("min_p_alive", str(round(value * 100))))
        elif name == "consent.whatsapp" and op == "eq" and value is True:
            fields.append(("whatsapp", "1"))
        else:
            fields = []
            break
    if fields:
        check = FieldErrors(web)
        if build_filter(web, ImmutableMultiDict(fields), check) == flt and not check:
            return fields
    return [("filter_json", json.dumps(flt, indent=2, ensure_ascii=False))]


def _edit_page(
    request: Request,
    web: WebContext,
    seg: AnalyticsSegment,
    form: Any,
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    program = web.session.get(Program, seg.program_id) or default_program(web)
    return render(
        request,
        "console/analytics/segment_form.html",
        _segment_form_context(web, form, errors, program, seg),
        status_code=status_code,
    )


@router.get("/console/analytics/segments/{segment_id}/edit", response_model=None)
def edit_segment(
    request: Request, segment_id: str, web: WebContext = require("analytics.edit")
) -> Response:
    seg = _segment_or_404(request, web, segment_id)
    if seg is None:
        return page(request, 404)
    fields = [
        ("key", seg.key),
        *((f"name_{lang}", str(seg.names.get(lang) or "")) for lang in ("id", "ms", "en")),
        ("version", str(seg.version)),
        *filter_form(web, seg.filter),
    ]
    return _edit_page(request, web, seg, ImmutableMultiDict(fields), None)


@router.post("/console/analytics/segments/{segment_id}/edit", response_model=None)
def update_segment(
    request: Request,
    segment_id: str,
    form: ConsoleForm,
    web: WebContext = require("analytics.edit"),
) -> Response:
    """Rename, change the key or the filter (``segments.update``, as ``PUT
    /v1/analytics/segments/{id}``). The form carries the version it was opened at: a segment
    changed since is 409 and nothing is saved; so is a key another segment uses."""
    seg = _segment_or_404(request, web, segment_id)
    if seg is None:
        return page(request, 404)
    errors = FieldErrors(web)
    key, names, flt = _read_segment_form(web, form, errors)
    if errors or key is None or flt is None:
        return _edit_page(request, web, seg, form, errors, status_code=422)
    opened_at = str(form.get("version") or "")
    doc = seg_service.SegmentDoc(
        key=key,
        names=names,
        descriptions=dict(seg.descriptions or {}),
        filter=flt,
        program_id=seg.program_id,
    )
    seg_id = seg.id

    def save() -> AnalyticsSegment:
        # the version read again, locked (PostgreSQL) in the transaction that writes
        version = web.session.execute(
            select(AnalyticsSegment.version)
            .where(AnalyticsSegment.id == seg_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if version is not None and str(version) != opened_at:
            raise Conflict("the segment changed since the form was opened", code="stale_form")
        return seg_service.update(web.session, web.tenant.id, seg_id, doc)

    try:
        seg = write(web.session, save)
    except SetiaError as exc:
        web.session.rollback()
        if exc.code == "not_found":
            return page(request, 409, web.t(SEGMENT_GONE))
        if exc.code == "stale_form":
            errors.add("__all__", CHANGED_MEANWHILE)
            status = 409
        elif exc.code == "segment_key_taken":
            errors.add("key", KEY_USED)
            status = 409
        elif exc.code == "invalid_key":
            errors.add("key", BAD_KEY)
            status = 422
        else:
            target = "filter_json" if str(form.get("filter_json") or "").strip() else "__all__"
            errors.add(target, BAD_FILTER, detail=exc.detail)
            status = 409 if exc.status == 409 else 422
        current = _segment_or_404(request, web, segment_id)
        if current is None:
            return page(request, 409, web.t(SEGMENT_GONE))
        return _edit_page(request, web, current, form, errors, status_code=status)
    flash(request, web.t("Segment %(name)s saved.", name=pick(seg.names, web.lang) or seg.key))
    return redirect(request, f"/console/analytics/segments/{seg.id}")


# --- CSV export -------------------------------------------------------------------------------


@router.get("/console/analytics/export/{report}", response_model=None)
def export_csv(
    request: Request, report: str, web: WebContext = require("analytics.export")
) -> Response:
    """The CSV of ``GET /v1/analytics/rfm|labels|members?format=csv``, made by the same
    functions: ``rfm`` (one row per member with a purchase), ``labels`` (label, loyalty type
    and scores), ``members`` (segment, scores, predictions, label; ``segment``, ``label``,
    ``loyalty_type`` filter it)."""
    name = report.removesuffix(".csv")
    if name not in REPORTS:
        return page(request, 404)
    program = default_program(web)
    a = tenant_settings.analyse(web.session, web.tenant, program)
    cur = a.summary.currency
    fmt = export.ExportFormat.csv
    if name == "rfm":
        return _download(fmt, "rfm", cur, export.RFM_COLUMNS, analytics_api._rfm_rows(a))
    thresholds = tenant_settings.get(web.session, web.tenant.id).thresholds
    labelled = labelling.classify(web.session, a, thresholds)
    if name == "labels":
        rows = [
            (
                str(m.member_id),
                m.label,
                m.primary,
                m.scores["habitual"],
                m.scores["transactional"],
                m.scores["emotional"],
                m.evidence["purchase_days"],
                m.evidence["recency_days"],
                m.evidence["tenure_days"],
                m.evidence["p_alive"],
            )
            for m in labelled.values()
        ]
        return _download(fmt, "labels", cur, export.LABEL_COLUMNS, rows)
    filters = _filters(request.query_params)
    s, p = a.scores, a.predictions
    out: list[tuple[Any, ...]] = []
    for i, row in enumerate(a.purchasers):
        lab = labelled[row.member_id]
        if "segment" in filters and s.segments[i] != filters["segment"]:
            continue
        if "label" in filters and lab.label != filters["label"]:
            continue
        if "loyalty_type" in filters and lab.primary != filters["loyalty_type"]:
            continue
        out.append(
            (
                str(row.member_id),
                s.segments[i],
                int(s.r[i]),
                int(s.f[i]),
                int(s.m[i]),
                int(s.recency_days[i]),
                row.orders,
                export.money(row.spend, cur),
                None if p.p_alive is None else float(p.p_alive[i]),
                None if p.expected_purchases is None else float(p.expected_purchases[i]),
                None if p.clv is None else export.money(float(p.clv[i]), cur),
                lab.label,
                lab.primary,
            )
        )
    suffix = "-".join(filters.values())
    return _download(
        fmt, f"members-{suffix}" if suffix else "members", cur, export.MEMBER_COLUMNS, out
    )


def _download(
    fmt: export.ExportFormat,
    name: str,
    currency: str,
    spec: tuple[tuple[str, str], ...],
    rows: list[tuple[Any, ...]],
) -> Response:
    return Response(
        content=export.render(fmt, currency, spec, rows),
        media_type=export.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt.value}"',
            "Cache-Control": "no-store",
        },
    )
