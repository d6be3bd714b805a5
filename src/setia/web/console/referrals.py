"""Referral settings, the funnel and top advocates, and the review queue of held referrals.

Routes: ``/console/referrals`` (funnel and top advocates, ``program.view``),
``/console/referrals/settings`` (read ``program.view``, save ``program.edit``),
``/console/referrals/queue?status=held`` (the review queue, ``program.view``),
``POST /console/referrals/{id}/review`` (approve or reject with a reason,
``referrals.review``), ``/console/referrals/decisions`` (who decided what, ``program.view``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.core.time import zone
from setia.coupons import service as coupons
from setia.members.models import Member
from setia.referrals import service
from setia.referrals.api import settings_data
from setia.referrals.models import Referral, ReferralDecision
from setia.referrals.schemas import ReferralSettingsIn
from setia.web.console.rewards import (
    LANG_LABELS,
    form_dict,
    place_error,
    program_of,
    validation_errors,
)
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.models import StaffUser
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

STATUSES = {
    "held": N_("Held for review"),
    "pending": N_("Waiting for a purchase"),
    "qualified": N_("Qualified"),
    "rewarded": N_("Rewarded"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
}
HELD_REASONS = {
    "velocity": N_("Many sign-ups on one code in a short time"),
    "review_required": N_("Every referral is reviewed"),
}
FIELDS = {
    "share_texts": "share_text_id",
    "share_texts.id": "share_text_id",
    "share_texts.ms": "share_text_ms",
    "share_texts.en": "share_text_en",
}
MESSAGES = {
    "referral_not_held": N_("This referral is no longer held; someone decided already."),
}
# A share text or link with a placeholder the service does not know (its own message is
# English, with the offending name as Python writes it).
PLACEHOLDER_FIELDS = {"share_url", "share_texts.id", "share_texts.ms", "share_texts.en"}
PLACEHOLDERS_ONLY = N_("Use only these placeholders: %(placeholders)s.")


def _names(web: WebContext, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = web.session.execute(
        select(Member.id, Member.name, Member.phone).where(Member.id.in_(wanted))
    ).all()
    return {mid: (name or phone or "—") for mid, name, phone in rows}


def _held_count(web: WebContext, program_id: uuid.UUID) -> int:
    return int(
        web.session.execute(
            select(func.count())
            .select_from(Referral)
            .where(Referral.program_id == program_id, Referral.status == "held")
        ).scalar_one()
    )


def _read_day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@router.get("/console/referrals")
def referrals_index(
    request: Request,
    to: str = "",
    web: WebContext = require("program.view"),
) -> HTMLResponse:
    program = program_of(web)
    raw_from = request.query_params.get("from", "")
    errors = FieldErrors(web)
    start, end = _read_day(raw_from), _read_day(to)
    if raw_from and start is None:
        errors.add("from", N_("Enter a date, for example 2026-12-31."))
    if to and end is None:
        errors.add("to", N_("Enter a date, for example 2026-12-31."))
    if start and end and start > end:
        errors.add("to", N_("The last day is before the first day."))
        start = end = None
    funnel = service.funnel(web.session, web.tenant, program, start=start, end=end)
    top = service.top_advocates(web.session, web.tenant, program, start=start, end=end, limit=10)
    settings = service.settings_of(web.session, program)
    today = datetime.now(zone(web.tenant.timezone)).date()
    return render(
        request,
        "console/referrals/index.html",
        {
            "program": program,
            "funnel": funnel,
            "top": top,
            "settings": settings,
            "held": _held_count(web, program.id),
            "errors": errors,
            "form": {"from": raw_from, "to": to},
            "presets": [
                ("30", (today - timedelta(days=29)).isoformat()),
                ("90", (today - timedelta(days=89)).isoformat()),
            ],
            "today": today.isoformat(),
        },
        status_code=422 if errors else 200,
    )


# --------------------------------------------------------------------------- settings


def _campaign_options(web: WebContext) -> list[tuple[str, str]]:
    campaigns = coupons.list_campaigns(web.session, web.tenant.id, limit=200)
    return [("", "—")] + [
        (str(c.id), f"{pick(c.names, web.lang) or c.code} ({c.code})") for c in campaigns
    ]


def _settings_values(web: WebContext) -> dict[str, str]:
    program = program_of(web)
    row = service.settings_of(web.session, program)

    def s(v: Any) -> str:
        return "" if v is None else str(v)

    from setia.core.money import to_str

    return {
        "enabled": "1" if row.enabled else "",
        "min_amount": to_str(row.min_amount, program.currency),
        "referrer_points": s(row.referrer_points),
        "referee_points": s(row.referee_points),
        "referrer_campaign_id": s(row.referrer_campaign_id),
        "referee_campaign_id": s(row.referee_campaign_id),
        "level2_enabled": "1" if row.level2_enabled else "",
        "level2_points": s(row.level2_points),
        "level2_campaign_id": s(row.level2_campaign_id),
        "cap_per_month": s(row.cap_per_month),
        "cap_lifetime": s(row.cap_lifetime),
        "velocity_count": s(row.velocity_count),
        "velocity_minutes": s(row.velocity_minutes),
        "review_required": "1" if row.review_required else "",
        "attach_within_days": s(row.attach_within_days),
        "disposable_add": "\n".join(row.disposable_add or []),
        "disposable_remove": "\n".join(row.disposable_remove or []),
        "share_url": row.share_url,
        **{f"share_text_{k}": str((row.share_texts or {}).get(k) or "") for k in LANG_LABELS},
    }


def _settings_page(
    request: Request,
    web: WebContext,
    form: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    program = program_of(web)
    return render(
        request,
        "console/referrals/settings.html",
        {
            "form": form,
            "errors": errors,
            "program": program,
            "campaign_options": _campaign_options(web),
            "langs": LANG_LABELS,
            "held": _held_count(web, program.id),
            "return_days": program.pending_days,
        },
        status_code=status_code,
    )


@router.get("/console/referrals/settings")
def settings_show(request: Request, web: WebContext = require("program.view")) -> HTMLResponse:
    return _settings_page(request, web, _settings_values(web), None)


def _domains(raw: str) -> list[str]:
    return [d.strip().lower() for d in raw.replace(",", "\n").splitlines() if d.strip()]


@router.post("/console/referrals/settings", response_model=None)
def settings_save(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    errors = FieldErrors(web)
    data: dict[str, Any] = {
        "enabled": bool(form.get("enabled")),
        "level2_enabled": bool(form.get("level2_enabled")),
        "review_required": bool(form.get("review_required")),
    }
    amount = errors.amount(form, "min_amount", required=True)
    data["min_amount"] = None if amount is None else format(amount, "f")
    for name, lo, hi, required in (
        ("referrer_points", 0, 10_000_000, True),
        ("referee_points", 0, 10_000_000, True),
        ("level2_points", 0, 10_000_000, True),
        ("velocity_count", 2, 10_000, True),
        ("velocity_minutes", 1, 10_080, True),
        ("attach_within_days", 0, 365, True),
        ("cap_per_month", 0, 1_000_000_000, False),
        ("cap_lifetime", 0, 1_000_000_000, False),
    ):
        data[name] = errors.integer(form, name, required=required, minimum=lo, maximum=hi)
    for name in ("referrer_campaign_id", "referee_campaign_id", "level2_campaign_id"):
        raw = str(form.get(name) or "").strip()
        data[name] = parse_uuid(raw) if raw else None
        if raw and data[name] is None:
            errors.add(name, N_("Choose one of the options."))
    url = errors.text(form, "share_url", required=True, max_length=500)
    if url and "{code}" not in url:
        errors.add("share_url", N_("The link must contain {code}, where the member's code goes."))
    data["share_url"] = url
    texts = {}
    for lang in LANG_LABELS:
        text = errors.text(form, f"share_text_{lang}", max_length=1000)
        if text:
            texts[lang] = text
    if not (texts.get("id") or texts.get("en")) and "share_text_id" not in errors:
        errors.add("share_text_id", N_("Give the text in Bahasa Indonesia or English at least."))
    data["share_texts"] = texts
    data["disposable_add"] = _domains(str(form.get("disposable_add") or ""))
    data["disposable_remove"] = _domains(str(form.get("disposable_remove") or ""))
    if not errors:
        program = program_of(web)
        try:
            body = ReferralSettingsIn.model_validate(data)
            service.put_settings(
                web.session,
                web.tenant,
                program,
                settings_data(body, program.currency),
                actor=web.actor,
            )
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, FIELDS)
        except SetiaError as exc:
            web.session.rollback()
            field = str(exc.extra.get("field") or "")
            if exc.code == "invalid_input" and field in PLACEHOLDER_FIELDS:
                errors.add(
                    FIELDS.get(field, field),
                    PLACEHOLDERS_ONLY,
                    placeholders=", ".join("{" + p + "}" for p in service.PLACEHOLDERS),
                )
            else:
                place_error(errors, exc, FIELDS, MESSAGES)
    if errors:
        return _settings_page(request, web, form_dict(form), errors, status_code=422)
    flash(request, web.t(N_("The referral settings were saved.")))
    return redirect(request, "/console/referrals/settings")


# --------------------------------------------------------------------------- review queue


def _queue_page(
    request: Request,
    web: WebContext,
    status: str,
    after: str = "",
    *,
    errors: FieldErrors | None = None,
    error_for: uuid.UUID | None = None,
    form: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    program = program_of(web)
    if status not in STATUSES:
        status = "held"
    limit = 50
    rows = service.list_referrals(
        web.session,
        web.tenant.id,
        program.id,
        status=status,
        member_id=None,
        after=parse_uuid(after) if after else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    names = _names(web, [r.referrer_id for r in rows] + [r.referee_id for r in rows])
    counts = dict(
        web.session.execute(
            select(Referral.status, func.count())
            .where(Referral.program_id == program.id)
            .group_by(Referral.status)
        ).all()
    )
    return render(
        request,
        "console/referrals/queue.html",
        {
            "rows": rows,
            "names": names,
            "status": status,
            "statuses": STATUSES,
            "held_reasons": HELD_REASONS,
            "counts": counts,
            "held": int(counts.get("held", 0)),
            "errors": errors,
            "error_for": error_for,
            "form": form or {},
            "next_after": str(rows[-1].id) if more and rows else "",
            "program": program,
        },
        status_code=status_code,
    )


@router.get("/console/referrals/queue")
def queue(
    request: Request,
    status: str = "held",
    after: str = "",
    web: WebContext = require("program.view"),
) -> HTMLResponse:
    return _queue_page(request, web, status, after)


@router.post("/console/referrals/{referral_id}/review", response_model=None)
def review(
    request: Request,
    referral_id: str,
    form: ConsoleForm,
    web: WebContext = require("referrals.review"),
) -> Response:
    rid = parse_uuid(referral_id)
    if rid is None:
        raise service.ReferralNotFound("referral not found")
    errors = FieldErrors(web)
    decision = errors.choice(form, "decision", ["approve", "reject"])
    reason = errors.text(form, "reason", required=True, max_length=500)
    if reason is not None and len(reason) < 3:
        errors.add("reason", N_("Say why, in at least 3 characters."))
    if not errors:
        assert reason is not None
        try:
            service.review(
                web.session,
                web.tenant,
                rid,
                approve=decision == "approve",
                reason=reason,
                actor=web.actor,
            )
            web.session.commit()
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, {"reason": "reason", "referral_not_held": "reason"}, MESSAGES)
    if errors:
        return _queue_page(
            request,
            web,
            "held",
            errors=errors,
            error_for=rid,
            form=form_dict(form),
            status_code=422,
        )
    flash(
        request,
        web.t(N_("Referral approved: it qualifies like any other."))
        if decision == "approve"
        else web.t(N_("Referral rejected: it will never earn anything.")),
    )
    return redirect(request, "/console/referrals/queue?status=held")


@router.get("/console/referrals/decisions")
def decisions(request: Request, web: WebContext = require("program.view")) -> HTMLResponse:
    program = program_of(web)
    rows = web.session.execute(
        select(ReferralDecision, Referral)
        .join(Referral, Referral.id == ReferralDecision.referral_id)
        .where(
            Referral.program_id == program.id,
            ReferralDecision.tenant_id == web.tenant.id,
            ReferralDecision.to_status.in_(("pending", "rejected")),
            ReferralDecision.from_status == "held",
        )
        .order_by(ReferralDecision.created_at.desc())
        .limit(200)
    ).all()
    names = _names(web, [r.referrer_id for _, r in rows] + [r.referee_id for _, r in rows])
    staff_ids = [
        parse_uuid(d.actor.removeprefix("staff:")) for d, _ in rows if d.actor.startswith("staff:")
    ]
    wanted = {s for s in staff_ids if s is not None}
    staff = (
        {
            f"staff:{sid}": name or email
            for sid, name, email in web.session.execute(
                select(StaffUser.id, StaffUser.name, StaffUser.email).where(
                    StaffUser.id.in_(wanted)
                )
            ).all()
        }
        if wanted
        else {}
    )
    return render(
        request,
        "console/referrals/decisions.html",
        {
            "rows": rows,
            "names": names,
            "staff": staff,
            "statuses": STATUSES,
            "held_reasons": HELD_REASONS,
            "held": _held_count(web, program.id),
        },
    )
