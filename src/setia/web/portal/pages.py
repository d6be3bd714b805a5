"""Member portal pages: balance, history, tier, rewards and redemption, referral sharing, badges, causes, profile and consents, data download, account deletion.

This module holds home, history and rewards; ``account.py`` (referral, badges, causes,
profile, data download, deletion) is mounted on this router."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.core.api import decode_cursor, encode_cursor, get_session, write
from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.core.time import utcnow
from setia.ledger import queries
from setia.rewards import service as rewards
from setia.rewards.models import Reward, RewardRedemption
from setia.rewards.schemas import RedemptionIn
from setia.tiers import view as tiers_view
from setia.web.deps import (
    MemberWeb,
    PortalForm,
    SignInRequired,
    WebContext,
    anon_csrf,
    flash,
    member_context,
)
from setia.web.errors import page, redirect
from setia.web.forms import FieldErrors
from setia.web.i18n import N_
from setia.web.portal import account
from setia.web.portal.common import (
    TENANT_COOKIE,
    find_tenant,
    member_id,
    member_qr,
    portal_balance,
    program_of,
)
from setia.web.templating import render

router = APIRouter(include_in_schema=False)
router.include_router(account.router)

SessionDep = Annotated[Session, Depends(get_session)]
HISTORY_PAGE = 20

# What each kind of ledger line means to a member.
LINE_LABELS = {
    "EARN": N_("Points earned"),
    "REDEEM": N_("Reward redeemed"),
    "EXPIRE": N_("Points expired"),
    "ADJUST": N_("Correction by the shop"),
    "MERGE": N_("Moved from another account"),
    "TRANSFER": N_("Transfer between members"),
    "REVERSAL": N_("Points taken back (refund)"),
    "DONATE": N_("Donation"),
    "RELEASE": N_("Pending points now available"),
    "RETURN": N_("Points returned"),
    "DEBT": N_("Points owed after a refund"),
    "DEBT_REPAY": N_("Owed points paid back"),
    "WRITE_OFF": N_("Owed points written off"),
}
HOLD_LABELS = {
    "PENDING": N_("Points set aside"),
    "POST_PENDING": N_("Set-aside points spent"),
    "VOID_PENDING": N_("Set-aside points released"),
    "EXPIRE_PENDING": N_("Set-aside points released"),
}
OTHER_LINE = N_("Other change")

REDEEM_ERRORS = {
    "out_of_stock": N_("This reward is out of stock."),
    "member_limit_reached": N_("You have reached the limit for this reward."),
    "not_eligible": N_("This reward is not available for your account."),
    "reward_unavailable": N_("This reward is not available right now."),
    "reward_not_found": N_("This reward is not available right now."),
    "idempotency_key_reused": N_("This form was already used. Open the reward again."),
}
REDEEM_FAILED = N_("The reward could not be redeemed. Try again.")
STATUS_LABELS = {
    "held": N_("Waiting"),
    "issued": N_("Ready to use"),
    "requested": N_("Requested"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}


# --- home ---------------------------------------------------------------------------------


def _tier(web: WebContext) -> dict[str, Any] | None:
    """The member's tier and how far along to the next one (None: the program has no tiers)."""
    assert web.member is not None
    try:
        view = tiers_view.member_view(
            web.session, web.tenant, program_of(web), web.member, locale=web.lang
        )
    except SetiaError:
        return None
    percent = 100
    prog = view.get("progress") or {}
    if prog.get("next_tier"):
        shares = []
        for item in prog.get("remaining") or []:
            need = Decimal(item["threshold"])
            have = Decimal(item["have"])
            shares.append(100 if need <= 0 else int(min(Decimal(100), have * 100 / need)))
        percent = (max(shares) if prog.get("combine") == "any" else min(shares)) if shares else 0
    return {**view, "percent": percent}


@router.get("/portal", response_model=None)
def home(request: Request, session: SessionDep) -> Response:
    try:
        web = member_context(request, session)
    except SignInRequired as exc:
        if not exc.location.startswith("/portal?"):
            return redirect(request, exc.location)
        tenant = find_tenant(session, request.cookies.get(TENANT_COOKIE) or "")
        if tenant is not None:
            return redirect(request, f"/portal/{tenant.id}/sign-in")
        anon_csrf(request)  # for the language switch
        return render(request, "portal/landing.html", {})
    program = program_of(web)
    balance = portal_balance(session, program.id, member_id(web))
    return render(
        request,
        "portal/home.html",
        {
            "active": "home",
            "program": program,
            "balance": balance,
            "tier": _tier(web),
            "member_qr": member_qr(member_id(web)),
        },
    )


# --- history ------------------------------------------------------------------------------


def _line_label(row: dict[str, Any]) -> str:
    """A reward's points are first set aside, then spent: the member sees "Reward redeemed"
    for the first and nothing for the second (it changes no balance)."""
    if row["kind"] in ("VOID_PENDING", "EXPIRE_PENDING") or row["code"] not in LINE_LABELS:
        return HOLD_LABELS.get(row["kind"], OTHER_LINE)
    return LINE_LABELS[row["code"]]


@router.get("/portal/history", response_model=None)
def history(request: Request, web: MemberWeb, cursor: str | None = None) -> Response:
    program = program_of(web)
    try:
        before = decode_cursor(cursor)
    except SetiaError:
        before = None
    rows = queries.statement(
        web.session, program.id, member_id(web), limit=HISTORY_PAGE + 1, before=before
    )
    more = len(rows) > HISTORY_PAGE
    rows = rows[:HISTORY_PAGE]
    lines = [{**r, "label": web.t(_line_label(r))} for r in rows if r["change"] != 0]
    return render(
        request,
        "portal/history.html",
        {
            "active": "history",
            "program": program,
            "lines": lines,
            "next_cursor": encode_cursor(rows[-1]["id"]) if more and rows else None,
            "first_page": before is None,
        },
    )


# --- rewards ------------------------------------------------------------------------------


def _catalog(web: WebContext) -> tuple[int, list[dict[str, Any]]]:
    assert web.member is not None
    program = program_of(web)
    points, rows = rewards.member_catalog(
        web.session, web.tenant, program, web.member, now=utcnow()
    )
    items = []
    for reward, info, block in rows:
        items.append(
            {
                "reward": reward,
                "code": reward.code,
                "name": pick(reward.names, web.lang) or reward.code,
                "description": pick(reward.descriptions, web.lang),
                "terms": pick(reward.terms, web.lang),
                "points": reward.points,
                "left": rewards._stock_left(info),
                "redeemable": block is None,
                "reason": (
                    rewards.reason_text(block, web.lang, program.points_name) if block else None
                ),
            }
        )
    return points, items


def _redemption_name(session: Session, red: RewardRedemption, lang: str) -> str:
    reward = session.get(Reward, red.reward_id)
    return (pick(reward.names, lang) if reward else None) or red.reward_code


@router.get("/portal/rewards", response_model=None)
def rewards_page(request: Request, web: MemberWeb) -> Response:
    points, items = _catalog(web)
    program = program_of(web)
    recent = rewards.list_redemptions(web.session, web.tenant.id, member_id=member_id(web), limit=3)
    return render(
        request,
        "portal/rewards.html",
        {
            "active": "rewards",
            "program": program,
            "points": points,
            "items": items,
            "recent": [
                {
                    "red": r,
                    "name": _redemption_name(web.session, r, web.lang),
                    "status": web.t(STATUS_LABELS.get(r.status, OTHER_LINE)),
                }
                for r in recent
            ],
        },
    )


def _find_item(web: WebContext, code: str) -> tuple[int, dict[str, Any] | None]:
    points, items = _catalog(web)
    return points, next((i for i in items if i["code"] == code), None)


def _confirm(
    request: Request,
    web: WebContext,
    code: str,
    errors: FieldErrors | None = None,
    status_code: int = 200,
    form: Any = None,
) -> Response:
    points, item = _find_item(web, code)
    if item is None:
        return page(request, 404)
    return render(
        request,
        "portal/redeem.html",
        {
            "active": "rewards",
            "program": program_of(web),
            "points": points,
            "item": item,
            "after": points - item["points"],
            "idem": str(form.get("idem")) if form and form.get("idem") else uuid.uuid4().hex,
            "errors": errors,
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/portal/rewards/{code}", response_model=None)
def redeem_page(request: Request, code: str, web: MemberWeb) -> Response:
    return _confirm(request, web, code)


@router.post("/portal/rewards/{code}/redeem", response_model=None)
def redeem(request: Request, code: str, form: PortalForm, web: MemberWeb) -> Response:
    errors = FieldErrors(web)
    idem = errors.text(form, "idem", required=True, max_length=64)
    if idem is None:
        errors.add("__all__", "This form was already used. Open the reward again.")
        return _confirm(request, web, code, errors, 422)
    _points, item = _find_item(web, code)
    if item is None:
        return page(request, 404)
    address = None
    if item["reward"].kind == "physical":
        address = errors.text(form, "address", required=True, max_length=500)
        if address is None:
            return _confirm(request, web, code, errors, 422, form)
    program = program_of(web)
    body = RedemptionIn(
        reward=code,
        channel="portal",
        program_id=program.id,
        shipping_address={"text": address} if address else None,
    )
    try:
        red, created = write(
            web.session,
            lambda: rewards.redeem(
                web.session,
                web.tenant,
                program,
                member_id(web),
                body,
                actor=web.actor,
                idempotency_key=f"portal:{member_id(web)}:{idem}",
            ),
        )
    except SetiaError as exc:
        web.session.rollback()
        if exc.code == "insufficient_points":
            errors.add(
                "__all__",
                "You need %(missing)s more %(points)s for this reward.",
                missing=exc.extra.get("missing", "?"),
                points=program.points_name,
            )
        elif exc.code == "below_minimum_redeem":
            errors.add(
                "__all__",
                "You can redeem once your balance reaches %(minimum)s %(points)s.",
                minimum=exc.extra.get("minimum", "?"),
                points=program.points_name,
            )
        else:
            message = REDEEM_ERRORS.get(exc.code, REDEEM_FAILED)
            errors.add_text("__all__", web.t(message))
        return _confirm(request, web, code, errors, 409, form)
    if created:
        flash(request, web.t("Done! Your reward is ready."), "ok")
    return redirect(request, f"/portal/my-rewards/{red.id}")


@router.get("/portal/my-rewards", response_model=None)
def my_rewards(request: Request, web: MemberWeb) -> Response:
    rows = rewards.list_redemptions(web.session, web.tenant.id, member_id=member_id(web), limit=100)
    return render(
        request,
        "portal/my_rewards.html",
        {
            "active": "rewards",
            "rows": [
                {
                    "red": r,
                    "name": _redemption_name(web.session, r, web.lang),
                    "code": rewards.coupon_code(web.session, r),
                    "status": web.t(STATUS_LABELS.get(r.status, OTHER_LINE)),
                }
                for r in rows
            ],
        },
    )


@router.get("/portal/my-rewards/{redemption_id}", response_model=None)
def redemption_page(request: Request, redemption_id: str, web: MemberWeb) -> Response:
    try:
        ident = uuid.UUID(redemption_id)
    except ValueError:
        return page(request, 404)
    red = web.session.scalars(
        select(RewardRedemption).where(
            RewardRedemption.id == ident,
            RewardRedemption.tenant_id == web.tenant.id,
            RewardRedemption.member_id == member_id(web),
        )
    ).first()
    if red is None:
        return page(request, 404)
    code = rewards.coupon_code(web.session, red)
    reference = str(red.id).replace("-", "")[-8:].upper()
    return render(
        request,
        "portal/redemption.html",
        {
            "active": "rewards",
            "red": red,
            "name": _redemption_name(web.session, red, web.lang),
            "code": code,
            "reference": reference,
            "qr_text": code or f"setia:redemption:{red.id}",
            "status": web.t(STATUS_LABELS.get(red.status, OTHER_LINE)),
            "program": program_of(web),
        },
    )
