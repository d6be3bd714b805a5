"""Rewards and stock; coupon campaigns (generate, import, export codes).

Routes (read: ``program.view``; changes: ``program.edit``):

- ``/console/rewards``: the catalog; ``/new``, ``/{code}``, ``/{code}/edit`` (with who may
  redeem: tiers, or above, paid membership, member tags), ``/{code}/stock`` (add or remove
  units with a reason), ``/{code}/status`` (activate, pause), ``/{code}/retire`` (with a
  confirmation page).
- ``/console/coupons``: coupon campaigns; ``/new``, ``/{id}`` (counts, conditions and codes),
  ``/{id}/edit`` (texts, dates, minimum spend, cap, uses, pattern: ``update_campaign``, as
  ``PATCH /v1/coupon-campaigns/{id}``), ``/{id}/generate``, ``/{id}/import`` (CSV upload,
  every bad line shown), ``/{id}/export.csv``, ``/{id}/status`` (pause, resume),
  ``/{id}/archive`` (with a confirmation page).

The small helpers here (the program, localized fields, service errors onto fields) are shared
by the other program pages (causes, badges, referrals).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.datastructures import FormData, UploadFile

from setia.audit import service as audit
from setia.core.errors import NotFound, SetiaError
from setia.core.i18n import pick
from setia.core.time import as_utc, utcnow, zone
from setia.coupons import service as coupons
from setia.coupons.discount import effective_expiry
from setia.coupons.models import Coupon, CouponCampaign
from setia.coupons.schemas import CampaignIn, CampaignPatch, Conditions, Discount
from setia.programs.models import Program
from setia.rewards import service
from setia.rewards.models import Reward, RewardRedemption
from setia.rewards.schemas import RewardIn, RewardPatch
from setia.web.console.current import current_program
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

LANGS = ("id", "ms", "en")
LANG_LABELS = {"id": "Bahasa Indonesia", "ms": "Bahasa Melayu", "en": "English"}
NEED_ID_OR_EN = N_("Give the text in Bahasa Indonesia or English at least.")
CHECK_FIELD = N_("Check this value: %(detail)s")

# --------------------------------------------------------------------------- shared helpers


def program_of(web: WebContext) -> Program:
    return current_program(web)


def new_idem() -> str:
    return str(uuid.uuid4())


def read_localized(
    errors: FieldErrors,
    form: FormData | Mapping[str, Any],
    prefix: str,
    *,
    required: bool = False,
    max_length: int = 2000,
) -> dict[str, str] | None:
    """The fields ``<prefix>_id``, ``<prefix>_ms``, ``<prefix>_en`` as a localized dict (the
    service's ``Localized``): id or en at least when ``required``; None when all are empty."""
    texts: dict[str, str] = {}
    for lang in LANGS:
        value = errors.text(form, f"{prefix}_{lang}", max_length=max_length)
        if value:
            texts[lang] = value
    if texts and not (texts.get("id") or texts.get("en")):
        errors.add(f"{prefix}_id", NEED_ID_OR_EN)
        return None
    if not texts:
        if required:
            errors.add(f"{prefix}_id", NEED_ID_OR_EN)
        return None
    return texts


def localized_form(prefix: str, texts: Mapping[str, Any] | None) -> dict[str, str]:
    return {f"{prefix}_{lang}": str((texts or {}).get(lang) or "") for lang in LANGS}


def place_error(
    errors: FieldErrors,
    exc: SetiaError,
    fields: Mapping[str, str] | None = None,
    messages: Mapping[str, str] | None = None,
) -> None:
    """A service error next to the field it names (``extra["field"]``, mapped through
    ``fields`` to the form's field name; else by its code), translated when ``messages`` has
    its code, else the service's own detail."""
    fields = fields or {}
    target = str(exc.extra.get("field") or "")
    name = fields.get(target) or fields.get(exc.code) or (target if target else "__all__")
    if messages and exc.code in messages:
        errors.add(name, messages[exc.code])
    else:
        errors.add(name, CHECK_FIELD, detail=exc.detail)


def validation_errors(
    errors: FieldErrors, exc: ValidationError, fields: Mapping[str, str] | None = None
) -> None:
    """Pydantic errors onto the form's fields (the error's dotted location, or its last part,
    mapped through ``fields``), in the reader's language."""
    from setia.web import forms

    fields = fields or {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
        dotted = ".".join(loc)
        last = loc[-1] if loc else "__all__"
        name = fields.get(dotted) or fields.get(last) or last
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        if kind == "missing":
            errors.add(name, forms.REQUIRED)
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            errors.add(name, forms.NOT_A_NUMBER)
        elif kind in ("greater_than_equal", "greater_than"):
            errors.add(name, forms.TOO_SMALL, minimum=ctx.get("ge", ctx.get("gt")))
        elif kind in ("less_than_equal", "less_than"):
            errors.add(name, forms.TOO_LARGE, maximum=ctx.get("le", ctx.get("lt")))
        elif kind == "string_too_long":
            errors.add(name, forms.TOO_LONG, max_length=ctx.get("max_length"))
        elif kind in ("literal_error", "enum"):
            errors.add(name, forms.NOT_A_CHOICE)
        else:
            detail = str(err.get("msg", "")).removeprefix("Value error, ")
            errors.add(name, CHECK_FIELD, detail=detail)


def local_day_start(value: date, tz: str) -> datetime:
    return datetime.combine(value, time(), tzinfo=zone(tz))


def read_date(errors: FieldErrors, form: FormData, name: str) -> date | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.add(name, N_("Enter a date, for example 2026-12-31."))
        return None


def form_dict(form: FormData) -> dict[str, str]:
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


# --------------------------------------------------------------------------- rewards

KINDS = {
    "discount_coupon": N_("Discount coupon"),
    "free_product": N_("Free product"),
    "free_shipping": N_("Free shipping"),
    "cashback": N_("Cashback"),
    "gift_card": N_("Gift card"),
    "physical": N_("Physical item"),
    "donation": N_("Donation"),
}
STATUSES = {"active": N_("Active"), "paused": N_("Paused"), "archived": N_("Retired")}
PERIODS = {
    "day": N_("per day"),
    "week": N_("per week"),
    "month": N_("per month"),
    "year": N_("per year"),
    "lifetime": N_("ever"),
}
REDEMPTION_STATUSES = {
    "held": N_("Held"),
    "issued": N_("Issued"),
    "requested": N_("Requested"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}
COUPON_KINDS = ("discount_coupon", "free_product", "free_shipping")
REWARD_FIELDS = {
    "names": "name_id",
    "descriptions": "description_id",
    "eligibility.tiers": "tiers",
    "eligibility.tags": "tags",
    "unknown_tier": "tiers",
    "coupon_campaign_id": "coupon_campaign_id",
    "cause_id": "cause_id",
    "cashback_amount": "cashback_amount",
    "value": "value",
    "cash_price": "cash_price",
    "points": "points",
    "code": "code",
}
REWARD_MESSAGES = {
    "unknown_tier": N_("Choose one of the options."),
    "missing_field": N_("This kind of reward needs this field."),
    "campaign_currency_mismatch": N_(
        "This coupon campaign counts another currency than the program."
    ),
}


def _redemption_counts(web: WebContext, program_id: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = web.session.execute(
        select(RewardRedemption.reward_id, func.count())
        .where(
            RewardRedemption.program_id == program_id,
            RewardRedemption.status.not_in(("cancelled", "expired")),
        )
        .group_by(RewardRedemption.reward_id)
    ).all()
    return {rid: int(n) for rid, n in rows}


@router.get("/console/rewards")
def rewards_index(
    request: Request, status: str = "", web: WebContext = require("program.view")
) -> HTMLResponse:
    program = program_of(web)
    rows = service.list_rewards(
        web.session, program.id, status=status if status in STATUSES else None
    )
    counts = _redemption_counts(web, program.id)
    now = utcnow()
    items = [
        {
            "reward": r,
            "name": pick(r.names, web.lang) or r.code,
            "stock": service.stock(web.session, r, web.tenant.timezone, now),
            "redemptions": counts.get(r.id, 0),
        }
        for r in rows
    ]
    return render(
        request,
        "console/rewards/index.html",
        {
            "rows": items,
            "program": program,
            "kinds": KINDS,
            "statuses": STATUSES,
            "status": status,
        },
    )


def _reward_context(web: WebContext, program: Program) -> dict[str, Any]:
    from setia.causes import service as causes

    campaigns = coupons.list_campaigns(web.session, web.tenant.id, status="active", limit=200)
    return {
        "program": program,
        "kind_options": [(k, web.t(v)) for k, v in KINDS.items()],
        "status_options": [(k, web.t(STATUSES[k])) for k in ("active", "paused")],
        "stock_period_options": [("", web.t(N_("No limit per period")))]
        + [(k, web.t(PERIODS[k])) for k in ("day", "week", "month")],
        "limit_period_options": [("", "—")] + [(k, web.t(v)) for k, v in PERIODS.items()],
        "campaign_options": [("", "—")]
        + [(str(c.id), f"{pick(c.names, web.lang) or c.code} ({c.code})") for c in campaigns],
        "cause_options": [("", "—")]
        + [
            (str(c.id), pick(c.names, web.lang) or c.code)
            for c in causes.list_causes(web.session, program.id, statuses=None)
        ],
        "langs": LANG_LABELS,
        "tier_options": _tier_options(web, program),
    }


def _tier_options(web: WebContext, program: Program) -> list[tuple[str, str]]:
    """The program's tiers, lowest first, as (code, name in the reader's language)."""
    from setia.tiers import service as tiers

    built = tiers.structure(web.session, program.id)
    if built is None:
        return []
    return [(t.code, pick(t.names, web.lang) or t.code) for t in built.tiers]


def _tier_names(web: WebContext, program: Program, codes: list[str]) -> list[str]:
    names = dict(_tier_options(web, program))
    return [names.get(code, code) for code in codes]


def _reward_form_values(reward: Reward, program: Program) -> dict[str, Any]:
    d = service.definition(reward, program.currency)
    values = {
        "code": reward.code,
        "kind": reward.kind,
        **localized_form("name", reward.names),
        **localized_form("description", reward.descriptions),
        "image_url": reward.image_url or "",
        "status": reward.status,
        "visible": "1" if reward.visible else "",
        "tiers": list(reward.eligible_tiers),
        "tiers_or_above": "1" if reward.tiers_or_above else "",
        "requires_membership": "1" if reward.requires_membership else "",
        "tags": ", ".join(reward.eligible_tags),
    }
    for key in (
        "points",
        "cash_price",
        "coupon_campaign_id",
        "coupon_validity_days",
        "cashback_amount",
        "value",
        "cause_id",
        "stock_total",
        "stock_per_period",
        "stock_period",
        "member_limit",
        "member_limit_period",
    ):
        value = d.get(key)
        values[key] = "" if value is None else str(value)
    return values


def _read_reward(web: WebContext, form: FormData, errors: FieldErrors) -> dict[str, Any]:
    """The form as a reward definition (the fields this form edits)."""
    data: dict[str, Any] = {}
    data["kind"] = errors.choice(form, "kind", list(KINDS))
    data["names"] = read_localized(errors, form, "name", required=True, max_length=200)
    data["descriptions"] = read_localized(errors, form, "description")
    image = errors.text(form, "image_url", max_length=500)
    if image and not image.startswith(("http://", "https://")):
        errors.add("image_url", N_("Enter a web address starting with https://"))
    data["image_url"] = image
    data["points"] = errors.integer(form, "points", required=True, minimum=0, maximum=1_000_000_000)
    for name in ("cash_price", "cashback_amount", "value"):
        amount = errors.amount(form, name)
        data[name] = None if amount is None else format(amount, "f")
    for name in ("coupon_campaign_id", "cause_id"):
        raw = str(form.get(name) or "").strip()
        data[name] = parse_uuid(raw) if raw else None
        if raw and data[name] is None:
            errors.add(name, N_("Choose one of the options."))
    data["coupon_validity_days"] = errors.integer(
        form, "coupon_validity_days", minimum=1, maximum=3650
    )
    data["stock_total"] = errors.integer(form, "stock_total", minimum=0, maximum=1_000_000_000)
    data["stock_per_period"] = errors.integer(
        form, "stock_per_period", minimum=0, maximum=1_000_000_000
    )
    data["stock_period"] = errors.choice(
        form, "stock_period", ["day", "week", "month"], required=False
    )
    if (data["stock_per_period"] is None) != (data["stock_period"] is None) and not (
        "stock_per_period" in errors or "stock_period" in errors
    ):
        errors.add("stock_period", N_("Give the units per period and the period together."))
    data["member_limit"] = errors.integer(form, "member_limit", minimum=1, maximum=1_000_000_000)
    data["member_limit_period"] = errors.choice(
        form, "member_limit_period", list(PERIODS), required=False
    )
    if data["member_limit"] is not None and data["member_limit_period"] is None:
        errors.add("member_limit_period", N_("Choose the period of the member limit."))
    data["visible"] = bool(form.get("visible"))
    data["status"] = errors.choice(form, "status", ["active", "paused"]) or "active"
    data["eligibility"] = _read_eligibility(web, form, errors)
    kind = data["kind"]
    need = {
        "discount_coupon": "coupon_campaign_id",
        "free_product": "coupon_campaign_id",
        "free_shipping": "coupon_campaign_id",
        "cashback": "cashback_amount",
        "gift_card": "value",
        "donation": "cause_id",
    }
    if kind in need and data[need[kind]] is None and need[kind] not in errors:
        errors.add(need[kind], N_("This kind of reward needs this field."))
    return data


def _read_eligibility(web: WebContext, form: FormData, errors: FieldErrors) -> dict[str, Any]:
    """Who may redeem: tiers (checked among the program's), or above, a live paid membership,
    member tags (any one; comma or line separated, as stored on members)."""
    from setia.web import forms

    known = [code for code, _ in _tier_options(web, program_of(web))]
    chosen = [str(v) for v in form.getlist("tiers") if str(v)]
    if any(code not in known for code in chosen):
        errors.add("tiers", N_("Choose one of the options."))
    tiers = [code for code in known if code in chosen]  # lowest first, no repeats
    tiers_or_above = bool(form.get("tiers_or_above"))
    if tiers_or_above and not tiers and "tiers" not in errors:
        errors.add("tiers", N_("Choose the lowest tier that may redeem."))
    raw = str(form.get("tags") or "")
    tags = list(dict.fromkeys(_split_list(raw) or []))
    if len(tags) > 50:
        errors.add("tags", N_("At most %(count)s tags."), count=50)
    elif any(len(tag) > 100 for tag in tags):
        errors.add("tags", forms.TOO_LONG, max_length=100)
    return {
        "tiers": tiers,
        "tiers_or_above": tiers_or_above,
        "requires_membership": bool(form.get("requires_membership")),
        "tags": tags,
    }


def _reward_values(form: FormData) -> dict[str, Any]:
    """The typed form for a re-render (the tier checkboxes are several values)."""
    return {**form_dict(form), "tiers": [str(v) for v in form.getlist("tiers")]}


def _reward_page(
    request: Request,
    web: WebContext,
    *,
    form: Mapping[str, Any],
    errors: FieldErrors | None,
    reward: Reward | None,
    status_code: int = 200,
) -> HTMLResponse:
    program = program_of(web)
    return render(
        request,
        "console/rewards/form.html",
        {
            **_reward_context(web, program),
            "form": form,
            "errors": errors,
            "reward": reward,
        },
        status_code=status_code,
    )


@router.get("/console/rewards/new")
def reward_new(request: Request, web: WebContext = require("program.edit")) -> HTMLResponse:
    form = {"kind": "physical", "status": "active", "visible": "1", "points": ""}
    return _reward_page(request, web, form=form, errors=None, reward=None)


@router.post("/console/rewards/new", response_model=None)
def reward_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    errors = FieldErrors(web)
    code = errors.text(form, "code", required=True, max_length=60)
    if code and not code.replace("-", "").replace("_", "").isalnum():
        errors.add("code", N_("Use letters, digits, - or _ only."))
    data = _read_reward(web, form, errors)
    values = _reward_values(form)
    if errors:
        return _reward_page(request, web, form=values, errors=errors, reward=None, status_code=422)
    program = program_of(web)
    assert code is not None
    try:
        service.get_reward(web.session, program.id, code)
        errors.add("code", N_("A reward with this code exists already."))
    except NotFound:
        pass
    if not errors:
        try:
            body = RewardIn.model_validate(data)
            service.put_reward(web.session, web.tenant, program, code, body, actor=web.actor)
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, REWARD_FIELDS)
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, REWARD_FIELDS, REWARD_MESSAGES)
    if errors:
        return _reward_page(request, web, form=values, errors=errors, reward=None, status_code=422)
    flash(request, web.t(N_("The reward %(code)s was created."), code=code))
    return redirect(request, f"/console/rewards/{code}")


def _reward_or_404(web: WebContext, code: str) -> tuple[Program, Reward]:
    program = program_of(web)
    return program, service.get_reward(web.session, program.id, code)


@router.get("/console/rewards/{code}")
def reward_show(
    request: Request, code: str, web: WebContext = require("program.view")
) -> HTMLResponse:
    program, reward = _reward_or_404(web, code)
    return _reward_detail(request, web, program, reward, errors=None, form={})


def _reward_detail(
    request: Request,
    web: WebContext,
    program: Program,
    reward: Reward,
    *,
    errors: FieldErrors | None,
    form: Mapping[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    stock = service.stock(web.session, reward, web.tenant.timezone, utcnow())
    recent = list(
        web.session.execute(
            select(RewardRedemption)
            .where(RewardRedemption.reward_id == reward.id)
            .order_by(RewardRedemption.created_at.desc())
            .limit(20)
        ).scalars()
    )
    return render(
        request,
        "console/rewards/show.html",
        {
            "program": program,
            "reward": reward,
            "name": pick(reward.names, web.lang) or reward.code,
            "description": pick(reward.descriptions, web.lang),
            "stock": stock,
            "kinds": KINDS,
            "statuses": STATUSES,
            "periods": PERIODS,
            "recent": recent,
            "redemption_statuses": REDEMPTION_STATUSES,
            "redemptions": _redemption_counts(web, program.id).get(reward.id, 0),
            "eligible_tiers": _tier_names(web, program, list(reward.eligible_tiers)),
            "errors": errors,
            "form": form,
            "idem": new_idem(),
        },
        status_code=status_code,
    )


@router.get("/console/rewards/{code}/edit")
def reward_edit(
    request: Request, code: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    program, reward = _reward_or_404(web, code)
    form = _reward_form_values(reward, program)
    return _reward_page(request, web, form=form, errors=None, reward=reward)


@router.post("/console/rewards/{code}/edit", response_model=None)
def reward_update(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program, reward = _reward_or_404(web, code)
    errors = FieldErrors(web)
    data = _read_reward(web, form, errors)
    values = {**_reward_values(form), "code": reward.code}
    if reward.status == "archived":
        data["status"] = "archived"
    if not errors:
        try:
            patch = RewardPatch.model_validate(data)
            service.patch_reward(
                web.session, web.tenant, program, reward.code, patch, actor=web.actor
            )
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, REWARD_FIELDS)
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, REWARD_FIELDS, REWARD_MESSAGES)
    if errors:
        reward = service.get_reward(web.session, program.id, code)
        return _reward_page(
            request, web, form=values, errors=errors, reward=reward, status_code=422
        )
    flash(request, web.t(N_("The reward %(code)s was saved."), code=reward.code))
    return redirect(request, f"/console/rewards/{reward.code}")


@router.post("/console/rewards/{code}/stock", response_model=None)
def reward_stock(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    """Add or remove units of the total stock, with a reason (audited). Removing more than is
    left, or changing a reward without a total, is refused next to the field."""
    program, reward = _reward_or_404(web, code)
    errors = FieldErrors(web)
    direction = errors.choice(form, "direction", ["add", "remove"])
    quantity = errors.integer(form, "quantity", required=True, minimum=1, maximum=1_000_000_000)
    reason = errors.text(form, "reason", required=True, max_length=500)
    stock = service.stock(web.session, reward, web.tenant.timezone, utcnow())
    if not errors and reward.stock_total is None:
        errors.add(
            "quantity",
            N_("This reward has no stock limit; set a total stock in its settings first."),
        )
    if not errors and direction == "remove" and quantity and quantity > (stock["left"] or 0):
        errors.add(
            "quantity", N_("Only %(left)s left: you cannot remove more."), left=stock["left"] or 0
        )
    if not errors and reward.status == "archived":
        errors.add("__all__", N_("A retired reward cannot change."))
    if not errors:
        assert quantity is not None
        assert reward.stock_total is not None
        delta = quantity if direction == "add" else -quantity
        try:
            service.patch_reward(
                web.session,
                web.tenant,
                program,
                reward.code,
                RewardPatch(stock_total=reward.stock_total + delta),
                actor=web.actor,
            )
            audit.record(
                web.session,
                tenant_id=web.tenant.id,
                actor=web.actor,
                action="reward.stock_adjusted",
                subject_type="reward",
                subject_id=reward.id,
                details={"delta": delta, "reason": reason, "stock_total": reward.stock_total},
            )
            web.session.commit()
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, {"stock_total": "quantity"})
    if errors:
        reward = service.get_reward(web.session, program.id, code)
        return _reward_detail(
            request, web, program, reward, errors=errors, form=form_dict(form), status_code=422
        )
    flash(request, web.t(N_("Stock changed: %(total)s in total."), total=reward.stock_total))
    return redirect(request, f"/console/rewards/{reward.code}")


@router.post("/console/rewards/{code}/status", response_model=None)
def reward_status(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program, reward = _reward_or_404(web, code)
    target = str(form.get("status") or "")
    if target not in ("active", "paused") or reward.status == "archived":
        return page(request, 409, web.t(N_("A retired reward cannot change.")))
    try:
        service.patch_reward(
            web.session,
            web.tenant,
            program,
            reward.code,
            RewardPatch.model_validate({"status": target}),
            actor=web.actor,
        )
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        return page(request, 409, exc.detail)
    flash(
        request,
        web.t(N_("The reward is active."))
        if target == "active"
        else web.t(N_("The reward is paused.")),
    )
    return redirect(request, f"/console/rewards/{reward.code}")


@router.get("/console/rewards/{code}/retire")
def reward_retire_confirm(
    request: Request, code: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    _, reward = _reward_or_404(web, code)
    return render(
        request,
        "console/rewards/retire.html",
        {"reward": reward, "name": pick(reward.names, web.lang) or reward.code},
    )


@router.post("/console/rewards/{code}/retire", response_model=None)
def reward_retire(
    request: Request, code: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    program, reward = _reward_or_404(web, code)
    service.archive_reward(web.session, program, reward.code, actor=web.actor)
    web.session.commit()
    flash(request, web.t(N_("The reward was retired; redemptions already made run on.")))
    return redirect(request, f"/console/rewards/{reward.code}")


# --------------------------------------------------------------------------- coupon campaigns

DISCOUNTS = {
    "fixed": N_("Amount off"),
    "percent": N_("Percent off"),
    "free_item": N_("Free item"),
    "free_shipping": N_("Free shipping"),
}
CAMPAIGN_STATUSES = {"active": N_("Active"), "paused": N_("Paused"), "archived": N_("Archived")}
CAMPAIGN_FIELDS = {
    "names": "name_id",
    "descriptions": "description_id",
    "conditions.max_uses": "max_uses",
    "max_uses": "max_uses",
    "conditions.per_member_limit": "per_member_limit",
    "per_member_limit": "per_member_limit",
    "uses_per_code": "uses_per_code",
    "conditions.valid_from": "valid_from",
    "discount.amount": "amount",
    "discount.percent": "percent",
    "discount.max_amount": "max_amount",
    "discount.skus": "skus",
    "amount": "amount",
    "percent": "percent",
    "max_amount": "max_amount",
    "skus": "skus",
    "conditions.min_spend": "min_spend",
    "min_spend": "min_spend",
    "conditions.valid_until": "valid_until",
    "valid_until": "valid_until",
    "valid_from": "valid_from",
    "code_pattern": "code_pattern",
    "pattern": "code_pattern",
    "public_code": "public_code",
    "code": "code",
    "campaign_code_taken": "code",
    "coupon_code_taken": "public_code",
}
CAMPAIGN_ARCHIVED = N_(
    "This campaign is archived: only its name and description can change. Nothing was saved."
)
CAMPAIGN_MESSAGES = {
    "campaign_archived": CAMPAIGN_ARCHIVED,
    "campaign_code_taken": N_("A campaign with this code exists already."),
    "coupon_code_taken": N_("This code is already used by another coupon."),
    "pattern_too_small": N_(
        "This pattern makes too few different codes; add more # or ? characters."
    ),
}
IMPORT_ERRORS = (
    ("empty code", N_("The code is empty.")),
    ("bad code", N_("Not a valid code: 3 to 64 letters, digits, - or _.")),
    ("duplicate of line", N_("The same code is on an earlier line.")),
    ("expires_at", N_("The expiry is not a date (use 2026-12-31).")),
    ("the code already exists", N_("This code exists already.")),
    ("no active member", N_("No active member has this external id.")),
    ("more fields", N_("This line has more fields than the header.")),
    ("no `code` column", N_("The first line must be a header with a code column.")),
    ("unknown columns", N_("Unknown columns: use code, member_external_id, expires_at.")),
    ("the campaign is member-bound", N_("This campaign needs member_external_id on each line.")),
    ("too many lines", N_("Too many lines; split the file.")),
    ("no codes", N_("The file has no codes.")),
)


def _import_error(web: WebContext, text: str) -> str:
    for prefix, msgid in IMPORT_ERRORS:
        if text.startswith(prefix):
            return web.t(msgid)
    return text


def _campaign_or_404(web: WebContext, campaign_id: str) -> CouponCampaign:
    cid = parse_uuid(campaign_id)
    if cid is None:
        raise coupons.CampaignNotFound("campaign not found")
    return coupons.get_campaign(web.session, web.tenant.id, cid)


def _discount_text(web: WebContext, c: CouponCampaign) -> str:
    d = coupons.campaign_definition(c)["discount"]
    from setia.web.i18n import money, number

    kind = d.get("type")
    if kind == "fixed" and d.get("amount"):
        return web.t(N_("%(amount)s off"), amount=money(d["amount"], c.currency, web.lang))
    if kind == "percent" and d.get("percent"):
        return web.t(
            N_("%(percent)s%% off"), percent=number(Decimal(str(d["percent"])), web.lang, 0)
        )
    return web.t(DISCOUNTS.get(str(kind), str(kind)))


def _code_counts(web: WebContext, campaign: CouponCampaign) -> dict[str, int]:
    """Codes issued, redeemed (used at least once), expired (unused, past their expiry) and
    cancelled."""
    now = utcnow()
    rows = web.session.execute(
        select(Coupon.status, Coupon.uses, Coupon.expires_at).where(
            Coupon.campaign_id == campaign.id
        )
    ).all()
    end = as_utc(campaign.valid_until) if campaign.valid_until is not None else None
    out = {"issued": 0, "redeemed": 0, "expired": 0, "cancelled": 0, "available": 0}
    for status, uses, expires in rows:
        out["issued"] += 1
        if status == "cancelled":
            out["cancelled"] += 1
            continue
        if uses > 0:
            out["redeemed"] += 1
            continue
        ends = [t for t in (as_utc(expires) if expires else None, end) if t is not None]
        if ends and min(ends) <= now:
            out["expired"] += 1
        else:
            out["available"] += 1
    return out


@router.get("/console/coupons")
def coupons_index(request: Request, web: WebContext = require("program.view")) -> HTMLResponse:
    campaigns = coupons.list_campaigns(web.session, web.tenant.id, limit=500)
    counts = dict(
        web.session.execute(
            select(Coupon.campaign_id, func.count())
            .where(Coupon.tenant_id == web.tenant.id)
            .group_by(Coupon.campaign_id)
        ).all()
    )
    items = [
        {
            "campaign": c,
            "name": pick(c.names, web.lang) or c.code,
            "discount": _discount_text(web, c),
            "codes": int(counts.get(c.id, 0)),
        }
        for c in campaigns
    ]
    return render(
        request,
        "console/coupons/index.html",
        {"rows": items, "statuses": CAMPAIGN_STATUSES},
    )


def _campaign_form_page(
    request: Request,
    web: WebContext,
    form: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/coupons/form.html",
        {
            "form": form,
            "errors": errors,
            "discount_options": [(k, web.t(v)) for k, v in DISCOUNTS.items()],
            "langs": LANG_LABELS,
            "currency": program_of(web).currency,
        },
        status_code=status_code,
    )


@router.get("/console/coupons/new")
def coupon_new(request: Request, web: WebContext = require("program.edit")) -> HTMLResponse:
    form = {"type": "fixed", "uses_per_code": "1", "idem": new_idem()}
    return _campaign_form_page(request, web, form, None)


def _split_list(raw: str) -> list[str] | None:
    values = [v.strip() for v in raw.replace("\n", ",").split(",") if v.strip()]
    return values or None


@router.post("/console/coupons/new", response_model=None)
def coupon_create(
    request: Request, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    errors = FieldErrors(web)
    code = errors.text(form, "code", required=True, max_length=60)
    if code and not code.replace("-", "").replace("_", "").isalnum():
        errors.add("code", N_("Use letters, digits, - or _ only."))
    names = read_localized(errors, form, "name", required=True, max_length=200)
    descriptions = read_localized(errors, form, "description")
    kind = errors.choice(form, "type", list(DISCOUNTS))
    amount = errors.amount(form, "amount")
    percent = errors.amount(form, "percent")
    max_amount = errors.amount(form, "max_amount")
    min_spend = errors.amount(form, "min_spend")
    skus = _split_list(str(form.get("skus") or ""))
    if kind == "fixed" and amount is None and "amount" not in errors:
        errors.add("amount", N_("Enter the amount taken off."))
    if kind == "percent" and "percent" not in errors:
        if percent is None:
            errors.add("percent", N_("Enter the percent taken off."))
        elif not Decimal(0) < percent <= Decimal(100):
            errors.add("percent", N_("Enter a percent above 0 and at most 100."))
    if kind == "free_item" and not skus:
        errors.add("skus", N_("List the products (SKUs) that can be free."))
    valid_from = read_date(errors, form, "valid_from")
    valid_until = read_date(errors, form, "valid_until")
    if valid_from and valid_until and valid_until < valid_from:
        errors.add("valid_until", N_("The last day is before the first day."))
    uses_per_code = errors.integer(form, "uses_per_code", minimum=1, maximum=1_000_000_000)
    per_member = errors.integer(form, "per_member_limit", minimum=1, maximum=1_000_000_000)
    max_uses = errors.integer(form, "max_uses", minimum=1, maximum=1_000_000_000)
    public_code = errors.text(form, "public_code", max_length=64)
    pattern = errors.text(form, "code_pattern", max_length=64)
    idem = str(form.get("idem") or "") or None
    values = form_dict(form)
    if not errors:
        tz = web.tenant.timezone
        try:
            body = CampaignIn(
                code=code or "",
                names=names,
                descriptions=descriptions,
                discount=Discount(
                    type=kind,
                    amount=None if amount is None or kind != "fixed" else format(amount, "f"),
                    percent=None if percent is None or kind != "percent" else format(percent, "f"),
                    max_amount=None if max_amount is None else format(max_amount, "f"),
                    skus=skus if kind == "free_item" else None,
                ),
                conditions=Conditions(
                    valid_from=None if valid_from is None else local_day_start(valid_from, tz),
                    valid_until=None
                    if valid_until is None
                    else local_day_start(valid_until + timedelta(days=1), tz),
                    min_spend=None if min_spend is None else format(min_spend, "f"),
                    max_uses=max_uses,
                    per_member_limit=per_member,
                ),
                uses_per_code=uses_per_code,
                code_pattern=pattern,
                public_code=public_code,
            )
            campaign, _ = coupons.create_campaign(
                web.session, web.tenant, body, idempotency_key=idem and f"web:{idem}"
            )
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, CAMPAIGN_FIELDS)
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, CAMPAIGN_FIELDS, CAMPAIGN_MESSAGES)
    if errors:
        return _campaign_form_page(request, web, values, errors, status_code=422)
    flash(request, web.t(N_("The campaign %(code)s was created."), code=campaign.code))
    return redirect(request, f"/console/coupons/{campaign.id}")


def _campaign_page(
    request: Request,
    web: WebContext,
    campaign: CouponCampaign,
    *,
    errors: FieldErrors | None = None,
    form: Mapping[str, Any] | None = None,
    import_errors: list[dict[str, Any]] | None = None,
    after: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    limit = 50
    rows = coupons.list_codes(
        web.session,
        web.tenant.id,
        campaign.id,
        status=None,
        member_id=None,
        batch_id=None,
        after=parse_uuid(after) if after else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    codes = [{"coupon": c, "expires": effective_expiry(c, campaign)} for c in rows]
    return render(
        request,
        "console/coupons/show.html",
        {
            "campaign": campaign,
            "name": pick(campaign.names, web.lang) or campaign.code,
            "discount": _discount_text(web, campaign),
            "counts": _code_counts(web, campaign),
            "codes": codes,
            "next_after": str(rows[-1].id) if more and rows else "",
            "statuses": CAMPAIGN_STATUSES,
            "errors": errors,
            "form": {"idem": new_idem(), "import_idem": new_idem(), **(form or {})},
            "import_errors": import_errors,
            "now": utcnow(),
            "terms": {
                "valid_from": _local_date(campaign.valid_from, web.tenant.timezone),
                "valid_until": _local_date(campaign.valid_until, web.tenant.timezone, end=True),
            },
        },
        status_code=status_code,
    )


@router.get("/console/coupons/{campaign_id}")
def coupon_show(
    request: Request, campaign_id: str, after: str = "", web: WebContext = require("program.view")
) -> HTMLResponse:
    return _campaign_page(request, web, _campaign_or_404(web, campaign_id), after=after)


@router.post("/console/coupons/{campaign_id}/generate", response_model=None)
def coupon_generate(
    request: Request, campaign_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    campaign = _campaign_or_404(web, campaign_id)
    errors = FieldErrors(web)
    count = errors.integer(form, "count", required=True, minimum=1, maximum=100_000)
    pattern = errors.text(form, "pattern", max_length=64)
    expires_on = read_date(errors, form, "expires_on")
    idem = str(form.get("idem") or "") or None
    if not errors:
        assert count is not None
        try:
            batch, _ = coupons.generate_codes(
                web.session,
                web.tenant,
                campaign.id,
                count=count,
                pattern=pattern,
                expires_at=None
                if expires_on is None
                else local_day_start(expires_on + timedelta(days=1), web.tenant.timezone),
                idempotency_key=idem and f"web:{idem}",
            )
            web.session.commit()
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, CAMPAIGN_FIELDS, CAMPAIGN_MESSAGES)
    if errors:
        campaign = _campaign_or_404(web, campaign_id)
        return _campaign_page(
            request, web, campaign, errors=errors, form=form_dict(form), status_code=422
        )
    flash(request, web.t(N_("%(count)s codes were made."), count=batch.count))
    return redirect(request, f"/console/coupons/{campaign.id}")


@router.post("/console/coupons/{campaign_id}/import", response_model=None)
async def coupon_import(
    request: Request, campaign_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    campaign = _campaign_or_404(web, campaign_id)
    errors = FieldErrors(web)
    upload = form.get("file")
    text = ""
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors.add("file", N_("Choose a CSV file."))
    else:
        raw = await upload.read(5_000_001)
        if len(raw) > 5_000_000:
            errors.add("file", N_("The file is larger than 5 MB; split it."))
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                errors.add("file", N_("The file is not UTF-8 text."))
    idem = str(form.get("import_idem") or "") or None
    import_errors: list[dict[str, Any]] | None = None
    if not errors:
        try:
            batch, _ = coupons.import_codes(
                web.session, web.tenant, campaign.id, text, idempotency_key=idem and f"web:{idem}"
            )
            web.session.commit()
        except coupons.CsvInvalid as exc:
            web.session.rollback()
            import_errors = [
                {"line": e.get("line"), "error": _import_error(web, str(e.get("error", "")))}
                for e in exc.extra.get("errors", [])
            ]
            errors.add(
                "file",
                N_("%(count)s lines are wrong; nothing was imported. Fix them and upload again."),
                count=exc.extra.get("error_count", len(import_errors)),
            )
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, {}, CAMPAIGN_MESSAGES)
            if "__all__" in errors and "file" not in errors:
                errors.add_text("file", errors.get("__all__") or "")
    if errors:
        campaign = _campaign_or_404(web, campaign_id)
        return _campaign_page(
            request,
            web,
            campaign,
            errors=errors,
            import_errors=import_errors,
            status_code=422,
        )
    flash(request, web.t(N_("%(count)s codes were imported."), count=batch.count))
    return redirect(request, f"/console/coupons/{campaign.id}")


EXPORT_FIELDS = [
    "code",
    "status",
    "member_id",
    "member_external_id",
    "uses",
    "max_uses",
    "expires_at",
    "is_public",
    "created_at",
]


@router.get("/console/coupons/{campaign_id}/export.csv")
def coupon_export(
    request: Request, campaign_id: str, web: WebContext = require("program.view")
) -> StreamingResponse:
    campaign = _campaign_or_404(web, campaign_id)

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for i, row in enumerate(coupons.export_rows(web.session, campaign.id), 1):
            writer.writerow(row)
            if i % 1000 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign.code}-codes.csv"'},
    )


@router.post("/console/coupons/{campaign_id}/status", response_model=None)
def coupon_status(
    request: Request, campaign_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    """Pause or resume (archiving has its own confirmation page)."""
    campaign = _campaign_or_404(web, campaign_id)
    target = str(form.get("status") or "")
    if target not in ("active", "paused"):
        return page(request, 422, web.t(N_("Choose one of the options.")))
    try:
        coupons.update_campaign(
            web.session, web.tenant, campaign.id, CampaignPatch.model_validate({"status": target})
        )
        web.session.commit()
    except coupons.CampaignArchived:
        web.session.rollback()
        return page(request, 409, web.t(CAMPAIGN_ARCHIVED))
    except SetiaError as exc:
        web.session.rollback()
        return page(request, 409, exc.detail)
    flash(
        request,
        web.t(N_("The campaign is now: %(status)s."), status=web.t(CAMPAIGN_STATUSES[target])),
    )
    return redirect(request, f"/console/coupons/{campaign.id}")


# --------------------------------------------------------------------------- campaign edit

EDIT_FIELDS = (
    "max_amount",
    "valid_from",
    "valid_until",
    "min_spend",
    "uses_per_code",
    "per_member_limit",
    "max_uses",
    "code_pattern",
)


def _local_date(value: datetime | None, tz: str, *, end: bool = False) -> date | None:
    """A stored instant as the local day a person typed: ``end`` is an exclusive end, so a
    local midnight is the day before."""
    if value is None:
        return None
    local = as_utc(value).astimezone(zone(tz))
    if end and local.time() == time():
        return local.date() - timedelta(days=1)
    return local.date()


def _campaign_edit_values(web: WebContext, c: CouponCampaign) -> dict[str, str]:
    """The campaign as the edit form shows it."""
    tz = web.tenant.timezone
    d = coupons.campaign_definition(c)
    start = _local_date(c.valid_from, tz)
    end = _local_date(c.valid_until, tz, end=True)

    def text(value: object) -> str:
        return "" if value is None else str(value)

    return {
        **localized_form("name", c.names),
        **localized_form("description", c.descriptions),
        "max_amount": text(d["discount"]["max_amount"]),
        "valid_from": "" if start is None else start.isoformat(),
        "valid_until": "" if end is None else end.isoformat(),
        "min_spend": text(d["conditions"]["min_spend"]),
        "uses_per_code": text(c.uses_per_code),
        "per_member_limit": text(c.per_member_limit),
        "max_uses": text(c.max_uses),
        "code_pattern": c.code_pattern or "",
    }


def _campaign_edit_page(
    request: Request,
    web: WebContext,
    campaign: CouponCampaign,
    form: Mapping[str, Any],
    errors: FieldErrors | None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/coupons/edit.html",
        {
            "campaign": campaign,
            "name": pick(campaign.names, web.lang) or campaign.code,
            "discount": _discount_text(web, campaign),
            "form": form,
            "errors": errors,
            "langs": LANG_LABELS,
            "currency": campaign.currency,
            "statuses": CAMPAIGN_STATUSES,
            "texts_only": campaign.status == "archived",
        },
        status_code=status_code,
    )


@router.get("/console/coupons/{campaign_id}/edit")
def coupon_edit(
    request: Request, campaign_id: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    campaign = _campaign_or_404(web, campaign_id)
    return _campaign_edit_page(request, web, campaign, _campaign_edit_values(web, campaign), None)


def _read_campaign_patch(
    web: WebContext, campaign: CouponCampaign, form: FormData, errors: FieldErrors
) -> dict[str, Any]:
    """The form as a ``CampaignPatch`` body: the texts always; the other fields only where
    they differ from what the form was filled with (so an untouched end time that is not a
    local midnight, or a condition the form does not show, stays as it is). An empty field
    clears its value."""
    body: dict[str, Any] = {}
    names = read_localized(errors, form, "name", required=True, max_length=200)
    descriptions = read_localized(errors, form, "description")
    if names is not None:
        body["names"] = names
    if descriptions is not None:
        body["descriptions"] = descriptions
    elif campaign.descriptions and "description_id" not in errors:
        errors.add(
            "description_id",
            N_("A description cannot be removed; write the new one instead."),
        )
    if form.get("texts_only"):
        return body
    before = _campaign_edit_values(web, campaign)
    tz = web.tenant.timezone
    conditions: dict[str, Any] = {}

    def changed(name: str, value: object) -> bool:
        old = before[name]
        if isinstance(value, Decimal):
            return old == "" or Decimal(old) != value
        return str("" if value is None else value) != old

    max_amount = errors.amount(form, "max_amount")
    fixed = campaign.discount_type == "fixed"
    if not fixed and "max_amount" not in errors and changed("max_amount", max_amount):
        body["max_amount"] = None if max_amount is None else format(max_amount, "f")
    valid_from = read_date(errors, form, "valid_from")
    valid_until = read_date(errors, form, "valid_until")
    if valid_from and valid_until and valid_until < valid_from:
        errors.add("valid_until", N_("The last day is before the first day."))
    if "valid_from" not in errors and changed("valid_from", valid_from):
        conditions["valid_from"] = None if valid_from is None else local_day_start(valid_from, tz)
    if "valid_until" not in errors and changed("valid_until", valid_until):
        conditions["valid_until"] = (
            None if valid_until is None else local_day_start(valid_until + timedelta(days=1), tz)
        )
    min_spend = errors.amount(form, "min_spend")
    if "min_spend" not in errors and changed("min_spend", min_spend):
        conditions["min_spend"] = None if min_spend is None else format(min_spend, "f")
    for name in ("per_member_limit", "max_uses"):
        value = errors.integer(form, name, minimum=1, maximum=1_000_000_000)
        if name not in errors and changed(name, value):
            conditions[name] = value
    uses = errors.integer(form, "uses_per_code", minimum=1, maximum=1_000_000_000)
    if "uses_per_code" not in errors and changed("uses_per_code", uses):
        body["uses_per_code"] = uses
    pattern = errors.text(form, "code_pattern", max_length=64)
    if "code_pattern" not in errors and changed("code_pattern", pattern):
        body["code_pattern"] = pattern
    if conditions:
        body["conditions"] = conditions
    return body


@router.post("/console/coupons/{campaign_id}/edit", response_model=None)
def coupon_update(
    request: Request, campaign_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    """Save the campaign's texts, conditions, cap, pattern and uses per code. An archived
    campaign (also one archived since the form was opened) refuses any change but its texts:
    409 with the reason above the form, nothing saved."""
    campaign = _campaign_or_404(web, campaign_id)
    errors = FieldErrors(web)
    body = _read_campaign_patch(web, campaign, form, errors)
    values = form_dict(form)
    status_code = 422
    if not errors:
        try:
            patch = CampaignPatch.model_validate(body)
            coupons.update_campaign(web.session, web.tenant, campaign.id, patch)
            web.session.commit()
        except ValidationError as exc:
            web.session.rollback()
            validation_errors(errors, exc, CAMPAIGN_FIELDS)
        except coupons.CampaignArchived:
            web.session.rollback()
            errors.add("__all__", CAMPAIGN_ARCHIVED)
            status_code = 409
        except SetiaError as exc:
            web.session.rollback()
            place_error(errors, exc, CAMPAIGN_FIELDS, CAMPAIGN_MESSAGES)
            status_code = 409 if exc.status == 409 else 422
    if errors:
        campaign = _campaign_or_404(web, campaign_id)
        return _campaign_edit_page(request, web, campaign, values, errors, status_code)
    flash(request, web.t(N_("The campaign %(code)s was saved."), code=campaign.code))
    return redirect(request, f"/console/coupons/{campaign.id}")


@router.get("/console/coupons/{campaign_id}/archive")
def coupon_archive_confirm(
    request: Request, campaign_id: str, web: WebContext = require("program.edit")
) -> HTMLResponse:
    campaign = _campaign_or_404(web, campaign_id)
    return render(
        request,
        "console/coupons/archive.html",
        {"campaign": campaign, "name": pick(campaign.names, web.lang) or campaign.code},
    )


@router.post("/console/coupons/{campaign_id}/archive", response_model=None)
def coupon_archive(
    request: Request, campaign_id: str, form: ConsoleForm, web: WebContext = require("program.edit")
) -> Response:
    """Archive after the confirmation page: its codes stop working; safe to repeat."""
    campaign = _campaign_or_404(web, campaign_id)
    if campaign.status != "archived":
        coupons.update_campaign(
            web.session, web.tenant, campaign.id, CampaignPatch(status="archived")
        )
        web.session.commit()
    flash(request, web.t(N_("The campaign was archived; its codes no longer work.")))
    return redirect(request, f"/console/coupons/{campaign.id}")
