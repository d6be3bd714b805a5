"""The cashier page (/console/pos): find a member by phone or QR, record a purchase, apply a
reward or coupon, pay with points.

A sale is one form and one transaction: the coupon is redeemed (coupons service), the points
payment held and captured at once (checkout service), and the purchase recorded (events
service) with the amount after the coupon. Every step is keyed by the form's hidden ``idem``
(a uuid made when the form was drawn), so a retried submit records the sale once. If any
step is refused, nothing is written and the reason is shown next to its field.

The portal's member QR code holds ``setia:member:<member uuid>``; the find box also takes a
phone number in any local format, an email, an external id or a bare member id. Keyboard-
wedge scanners type the code and Enter into the box; where the browser has the
BarcodeDetector API, a camera button scans it (``static/web/pos.js``).
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from setia.checkout import service as checkout
from setia.checkout.schemas import PointsPaymentIn
from setia.core.errors import SetiaError
from setia.core.i18n import pick
from setia.core.money import MoneyError, parse_amount, to_str
from setia.core.time import utcnow
from setia.coupons import service as coupons
from setia.coupons.discount import Cart, Line
from setia.coupons.discount import message as coupon_message
from setia.coupons.models import CouponRedemption
from setia.events import service as events
from setia.events.models import Order
from setia.events.schemas import EventIn
from setia.ledger import queries as ledger_queries
from setia.ledger.service import request_hash
from setia.members import service as members
from setia.members.models import Member
from setia.programs.models import Program
from setia.rewards import service as rewards
from setia.rewards.models import Reward, RewardRedemption
from setia.rewards.schemas import RedemptionIn
from setia.tiers import view as tier_view
from setia.web import errors as web_errors
from setia.web.console.current import current_program
from setia.web.deps import ConsoleForm, WebContext, flash, parse_uuid, require
from setia.web.forms import REQUIRED, FieldErrors
from setia.web.i18n import N_
from setia.web.templating import render

router = APIRouter(include_in_schema=False)

QR_PREFIX = "setia:member:"

NOT_FOUND = N_("No member found for “%(text)s”. Check the number or scan again.")
AMOUNT_POSITIVE = N_("Enter an amount above zero.")
AMOUNT_PRECISION = N_("Enter the amount in %(currency)s, for example %(example)s.")
ITEM_LINE = N_("Line %(line)s: write SKU, quantity, unit price — for example KOPI, 2, 25000.")
ORDER_TAKEN = N_("This order id was already used for another sale; use a new one.")
POINTS_OFF = N_("Paying with points is off in this program.")
POINTS_SHORT = N_("Not enough points: the member has %(available)s available.")
POINTS_MINIMUM = N_("The member needs a balance of %(minimum)s points before using points.")
POINTS_LIMIT = N_("Points may pay at most %(max_points)s points (%(max_amount)s) of this order.")
POINTS_TOO_SMALL = N_("These points are worth nothing; use more points.")
POINTS_MORE_THAN_ORDER = N_("Points cannot pay more than the order after the coupon.")
NOT_ACTIVE = N_("This member was merged or erased; find the member again.")
FORM_REUSED = N_("This form was already used for a different sale. Reload the page and try again.")
REWARD_SHORT = N_("Not enough points: %(needed)s needed, %(available)s available.")
REWARD_STOCK = N_("This reward is out of stock.")
REWARD_LIMIT = N_("The member reached this reward's limit.")
REWARD_NOT_ELIGIBLE = N_("The member may not redeem this reward.")
REWARD_UNAVAILABLE = N_("This reward is not available now.")


def _program(web: WebContext) -> Program:
    return current_program(web)


def _n(value: int, lang: str) -> str:
    from setia.web.i18n import number

    return number(value, lang)


# --------------------------------------------------------------------------- finding a member


def parse_scan(text: str) -> tuple[str, str]:
    """What the find box holds: ``("id", uuid)``, ``("external_id", x)``, ``("email", x)``
    or ``("phone", x)``. The portal's QR code is ``setia:member:<uuid>`` (or, for a member
    known by the till's own id, ``setia:member:<external id>``)."""
    raw = text.strip()
    if raw.lower().startswith(QR_PREFIX):
        rest = raw[len(QR_PREFIX) :].strip()
        return ("id", rest) if parse_uuid(rest) else ("external_id", rest)
    if parse_uuid(raw):
        return "id", raw
    if "@" in raw:
        return "email", raw
    if re.fullmatch(r"[+()\d][\d\s().+-]{5,}", raw):
        return "phone", raw
    return "external_id", raw


def find(web: WebContext, text: str) -> Member | None:
    kind, value = parse_scan(text)
    tenant = web.tenant
    try:
        if kind == "id":
            return members.find_member(web.session, tenant, member_id=uuid.UUID(value))
        if kind == "email":
            return members.find_member(web.session, tenant, email=value)
        if kind == "phone":
            found = members.find_member(web.session, tenant, phone=value)
            return found or members.find_member(web.session, tenant, external_id=value)
        return members.find_member(web.session, tenant, external_id=value)
    except SetiaError:
        # Not a valid phone or email: perhaps the till's own id.
        return members.find_member(web.session, tenant, external_id=text.strip())


@router.get("/console/pos")
def pos_index(request: Request, web: WebContext = require("pos.use")) -> Response:
    text = (request.query_params.get("find") or "").strip()[:200]
    errors = FieldErrors(web)
    if text:
        member = find(web, text)
        if member is not None and member.status == "active":
            return web_errors.redirect(request, f"/console/pos/m/{member.id}")
        errors.add("find", NOT_FOUND, text=text)
    return render(
        request,
        "console/pos/index.html",
        {"find": text, "errors": errors},
        status_code=404 if text else 200,
    )


# --------------------------------------------------------------------------- the member at the till


def _new_order_id() -> str:
    now = utcnow()
    return f"POS-{now:%Y%m%d}-{uuid.uuid4().hex[:6].upper()}"


def _rewards(web: WebContext, program: Program, member: Member) -> list[dict[str, Any]]:
    _points, catalog = rewards.member_catalog(
        web.session, web.tenant, program, member, now=utcnow()
    )
    out = []
    for reward, _info, block in catalog:
        out.append(
            {
                "code": reward.code,
                "name": pick(reward.names, web.lang) or reward.code,
                "points": reward.points,
                "kind": reward.kind,
                "idem": str(uuid.uuid4()),
                "blocked": None
                if block is None
                else rewards.reason_text(block, web.lang, program.points_name),
            }
        )
    return out


def _receipt(web: WebContext, program: Program, order_id: str | None) -> dict[str, Any] | None:
    if not order_id:
        return None
    order = web.session.execute(
        select(Order).where(Order.tenant_id == web.tenant.id, Order.order_id == order_id)
    ).scalar_one_or_none()
    if order is None:
        return None
    redemptions = list(
        web.session.execute(
            select(CouponRedemption).where(
                CouponRedemption.tenant_id == web.tenant.id,
                CouponRedemption.order_id == order_id,
                CouponRedemption.status == "active",
            )
        ).scalars()
    )
    payments = [
        p
        for p in checkout.get_order(web.session, web.tenant, order_id)["points_payments"]
        if p["status"] == "captured"
    ]
    return {
        "order": order,
        "discount": sum((r.discount for r in redemptions), Decimal(0)),
        "coupons": [
            coupons.get_coupon(web.session, web.tenant.id, r.coupon_id).code for r in redemptions
        ],
        "points_paid": sum(int(p["points"]) for p in payments),
        "points_value": sum((Decimal(p["amount"]) for p in payments), Decimal(0)),
    }


def _reward_done(web: WebContext, redemption_id: str | None) -> dict[str, Any] | None:
    rid = parse_uuid(redemption_id or "")
    if rid is None:
        return None
    red = web.session.get(RewardRedemption, rid)
    if red is None or red.tenant_id != web.tenant.id:
        return None
    program = _program(web)
    reward = web.session.get(Reward, red.reward_id)
    return {
        "redemption": red,
        "name": (pick(reward.names, web.lang) or reward.code) if reward else "",
        "coupon_code": rewards.coupon_code(web.session, red),
        "points_name": program.points_name,
    }


def _till(
    request: Request,
    web: WebContext,
    member: Member,
    *,
    form: Any = None,
    errors: FieldErrors | None = None,
    reward_errors: dict[str, str] | None = None,
    check: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    program = _program(web)
    balance = ledger_queries.balance(web.session, program.id, member.id, now=utcnow())
    try:
        tier = tier_view.member_view(web.session, web.tenant, program, member, locale=web.lang)
    except SetiaError:
        tier = None
    if form is None:
        form = {"order_id": _new_order_id(), "idem": str(uuid.uuid4())}
    return render(
        request,
        "console/pos/member.html",
        {
            "member": member,
            "program": program,
            "currency": program.currency,
            "points_name": program.points_name,
            "balance": balance,
            "tier": tier,
            "form": form,
            "errors": errors,
            "check": check,
            "rewards": _rewards(web, program, member),
            "reward_errors": reward_errors or {},
            "receipt": _receipt(web, program, request.query_params.get("receipt")),
            "reward_done": _reward_done(web, request.query_params.get("redeemed")),
            "points_on": program.points_payment_rate is not None,
            "rate": program.points_payment_rate,
            "max_percent": program.points_payment_max_percent,
        },
        status_code=status,
    )


def _active_member(request: Request, web: WebContext, member_id: str) -> Member | Response:
    mid = parse_uuid(member_id)
    member = web.session.get(Member, mid) if mid else None
    if member is None or member.tenant_id != web.tenant.id:
        return web_errors.page(request, 404, web.t("No member with this id."))
    if member.status == "merged" and member.merged_into_id:
        return web_errors.redirect(request, f"/console/pos/m/{member.merged_into_id}")
    return member


@router.get("/console/pos/m/{member_id}")
def pos_member(request: Request, member_id: str, web: WebContext = require("pos.use")) -> Response:
    found = _active_member(request, web, member_id)
    if not isinstance(found, Member):
        return found
    return _till(request, web, found)


# --------------------------------------------------------------------------- the sale


def _items(
    errors: FieldErrors, form: FormData, currency: str
) -> tuple[list[dict[str, Any]], list[Line]]:
    raw = str(form.get("items") or "").strip()
    items: list[dict[str, Any]] = []
    lines: list[Line] = []
    for n, text in enumerate(raw.splitlines(), 1):
        if not text.strip():
            continue
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or int(parts[1]) < 1:
            errors.add("items", ITEM_LINE, line=n)
            return [], []
        try:
            raw_price = parts[2].replace(".", "") if currency == "IDR" else parts[2]
            price = parse_amount(raw_price, currency, allow_zero=True)
        except MoneyError:
            errors.add("items", ITEM_LINE, line=n)
            return [], []
        items.append(
            {
                "sku": parts[0][:100],
                "quantity": int(parts[1]),
                "unit_price": to_str(price, currency),
            }
        )
        lines.append(
            Line(sku=parts[0][:100], category=None, quantity=int(parts[1]), unit_price=price)
        )
    if len(items) > 500:
        errors.add("items", ITEM_LINE, line=501)
        return [], []
    return items, lines


def _sale_input(
    web: WebContext, program: Program, form: FormData
) -> tuple[FieldErrors, dict[str, Any]]:
    errors = FieldErrors(web)
    currency = program.currency
    amount = errors.amount(form, "amount", required=True)
    total: Decimal | None = None
    if amount is not None and amount <= 0:
        errors.add("amount", AMOUNT_POSITIVE)
    elif amount is not None:
        try:
            total = parse_amount(format(amount, "f"), currency)
        except MoneyError:
            errors.add(
                "amount",
                AMOUNT_PRECISION,
                currency=currency,
                example="25000" if currency == "IDR" else "12.50",
            )
    order_id = errors.text(form, "order_id", required=True, max_length=200)
    store = errors.text(form, "store", max_length=100)
    coupon = errors.text(form, "coupon", max_length=64)
    points = errors.integer(form, "points", minimum=1, maximum=10**12)
    items, lines = _items(errors, form, currency)
    return errors, {
        "total": total,
        "order_id": order_id,
        "store": store,
        "coupon": coupon,
        "points": points,
        "items": items,
        "lines": lines,
        "idem": _idem(form),
    }


def _idem(form: FormData) -> str:
    raw = str(form.get("idem") or "")
    return raw if parse_uuid(raw) else str(uuid.uuid4())


def _cart(currency: str, total: Decimal, lines: list[Line]) -> Cart:
    if not lines:
        lines = [Line(sku="POS", category=None, quantity=1, unit_price=total)]
    return Cart(currency=currency, lines=tuple(lines))


def _coupon_error(web: WebContext, errors: FieldErrors, exc: SetiaError) -> None:
    reason = str(exc.extra.get("reason_code") or "unknown")
    params = exc.extra.get("reason_params") or {}
    try:
        text = coupon_message(reason, web.lang, params, web.tenant.timezone)
    except KeyError:
        text = exc.detail
    errors.add_text("coupon", text)


def _points_error(web: WebContext, errors: FieldErrors, exc: SetiaError, currency: str) -> bool:
    code = exc.code
    extra = exc.extra
    if code == "insufficient_points":
        errors.add("points", POINTS_SHORT, available=_n(int(extra.get("available", 0)), web.lang))
    elif code == "below_minimum_redeem":
        errors.add("points", POINTS_MINIMUM, minimum=_n(int(extra.get("minimum", 0)), web.lang))
    elif code == "points_payment_limit":
        from setia.web.i18n import money

        errors.add(
            "points",
            POINTS_LIMIT,
            max_points=_n(int(extra.get("max_points", 0)), web.lang),
            max_amount=money(extra.get("max_amount", "0"), currency, web.lang),
        )
    elif code == "points_payment_disabled":
        errors.add("points", POINTS_OFF)
    elif code == "points_payment_too_small":
        errors.add("points", POINTS_TOO_SMALL)
    else:
        return False
    return True


def _record_sale(web: WebContext, program: Program, member: Member, sale: dict[str, Any]) -> None:
    """Coupon, points payment and purchase, in the caller's transaction (raises on refusal)."""
    session = web.session
    tenant = web.tenant
    currency = program.currency
    total: Decimal = sale["total"]
    idem: str = sale["idem"]
    order_id: str = sale["order_id"]
    members._active(member)
    discount = Decimal(0)
    if sale["coupon"]:
        cart = _cart(currency, total, sale["lines"])
        cart_json = {
            "currency": currency,
            "items": sale["items"]
            or [{"sku": "POS", "quantity": 1, "unit_price": to_str(total, currency)}],
        }
        payload = {
            "code": sale["coupon"],
            "order_id": order_id,
            "member_id": str(member.id),
            "cart": cart_json,
        }
        redemption, _created = coupons.redeem(
            session,
            tenant.id,
            code=sale["coupon"],
            order_id=order_id,
            cart=cart,
            member_id=member.id,
            message=lambda o: coupon_message(
                o.reason_code or "unknown", web.lang, o.params, tenant.timezone
            ),
            idempotency_key=f"pos:{tenant.id}:{idem}:coupon",
            request_hash=request_hash(payload),
            cart_json=cart_json,
        )
        discount = min(Decimal(redemption.discount), total)
    net = total - discount
    if sale["points"]:
        if net <= 0:
            raise _FieldProblem("points", POINTS_MORE_THAN_ORDER)
        body = PointsPaymentIn(
            member_id=member.id,
            order_id=order_id,
            points=sale["points"],
            order_total=to_str(net, currency),
            currency=currency,
        )
        payment, _created = checkout.create_payment(
            session, tenant, body, actor=web.actor, idempotency_key=f"pos:{tenant.id}:{idem}:points"
        )
        if payment.status == "held":
            checkout.capture(session, tenant, payment.id)
    event: dict[str, Any] = {
        "id": f"pos:{idem}",
        "type": "purchase",
        "member": {"id": str(member.id)},
        "order_id": order_id,
        "amount": to_str(net, currency),
        "currency": currency,
        "channel": "pos",
    }
    if sale["store"]:
        event["store"] = sale["store"]
    if sale["items"]:
        event["items"] = sale["items"]
    if sale["coupon"]:
        event["attributes"] = {"coupon": sale["coupon"], "discount": to_str(discount, currency)}
    events.record_event(session, tenant, EventIn.model_validate(event))


class _FieldProblem(SetiaError):
    status = 422
    code = "pos_field"

    def __init__(self, field: str, msgid: str) -> None:
        super().__init__(msgid)
        self.field = field
        self.msgid = msgid


@router.post("/console/pos/m/{member_id}/sale")
def pos_sale(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("pos.use")
) -> Response:
    found = _active_member(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    program = _program(web)
    errors, sale = _sale_input(web, program, form)
    view: dict[str, Any] = {**dict(form), "idem": sale["idem"]}
    if errors:
        return _till(request, web, member, form=view, errors=errors, status=422)
    session = web.session
    status = 409
    try:
        _record_sale(web, program, member, sale)
        session.commit()
    except _FieldProblem as exc:
        session.rollback()
        errors.add(exc.field, exc.msgid)
        status = 422
    except ValidationError as exc:
        session.rollback()
        errors.from_validation(exc)
        status = 422
    except SetiaError as exc:
        session.rollback()
        code = exc.code
        if code.startswith("coupon_"):
            _coupon_error(web, errors, exc)
        elif _points_error(web, errors, exc, program.currency):
            pass
        elif code == "order_exists" or code == "order_already_paid_with_points":
            errors.add("order_id", ORDER_TAKEN)
        elif code in ("event_id_reused", "idempotency_key_reused"):
            errors.add("__all__", FORM_REUSED)
        elif code == "member_not_active":
            errors.add("__all__", NOT_ACTIVE)
        elif exc.extra.get("field") == "amount" or code.startswith("amount"):
            errors.add_text("amount", exc.detail)
        else:
            errors.add_text("__all__", exc.detail)
    if errors:
        session.refresh(member)
        return _till(request, web, member, form=view, errors=errors, status=status)
    flash(request, web.t("Purchase recorded."), "ok")
    return web_errors.redirect(request, f"/console/pos/m/{member.id}?receipt={sale['order_id']}")


@router.post("/console/pos/m/{member_id}/coupon-check")
def pos_coupon_check(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("pos.use")
) -> Response:
    """What the coupon would take off this sale (writes nothing)."""
    found = _active_member(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    program = _program(web)
    errors, sale = _sale_input(web, program, form)
    check: dict[str, Any] | None = None
    if not sale["coupon"] and "coupon" not in errors:
        errors.add("coupon", REQUIRED)
    if sale["total"] is not None and sale["coupon"] and "items" not in errors:
        outcome = coupons.validate(
            web.session,
            web.tenant.id,
            code=sale["coupon"],
            cart=_cart(program.currency, sale["total"], sale["lines"]),
            member_id=member.id,
        ).outcome
        if outcome.valid:
            check = {
                "code": sale["coupon"],
                "discount": outcome.discount,
                "net": sale["total"] - min(outcome.discount, sale["total"]),
            }
        else:
            errors.add_text(
                "coupon",
                coupon_message(
                    outcome.reason_code or "unknown", web.lang, outcome.params, web.tenant.timezone
                ),
            )
    view: dict[str, Any] = {**dict(form), "idem": sale["idem"]}
    if request.headers.get("hx-request"):
        return render(
            request,
            "console/pos/_coupon_check.html",
            {"check": check, "errors": errors, "currency": program.currency},
        )
    return _till(request, web, member, form=view, errors=errors if errors else None, check=check)


# --------------------------------------------------------------------------- rewards


@router.post("/console/pos/m/{member_id}/reward")
def pos_reward(
    request: Request, member_id: str, form: ConsoleForm, web: WebContext = require("pos.use")
) -> Response:
    found = _active_member(request, web, member_id)
    if not isinstance(found, Member):
        return found
    member = found
    program = _program(web)
    code = str(form.get("reward") or "").strip()[:60]
    raw_idem = str(form.get("idem") or "")
    idem = raw_idem if parse_uuid(raw_idem) else str(uuid.uuid4())
    problems: dict[str, str] = {}
    session = web.session
    red = None
    if not code:
        return web_errors.page(request, 400, web.t("Choose a reward."))
    try:
        red, _created = rewards.redeem(
            session,
            web.tenant,
            program,
            member.id,
            RedemptionIn(reward=code, channel="pos"),
            actor=web.actor,
            idempotency_key=f"pos:{web.tenant.id}:{idem}:reward",
        )
        session.commit()
    except SetiaError as exc:
        session.rollback()
        extra = exc.extra
        messages = {
            "insufficient_points": (
                REWARD_SHORT,
                {
                    "needed": _n(int(extra.get("needed", 0)), web.lang),
                    "available": _n(int(extra.get("available", 0)), web.lang),
                },
            ),
            "below_minimum_redeem": (
                POINTS_MINIMUM,
                {"minimum": _n(int(extra.get("minimum", 0)), web.lang)},
            ),
            "out_of_stock": (REWARD_STOCK, {}),
            "member_limit_reached": (REWARD_LIMIT, {}),
            "not_eligible": (REWARD_NOT_ELIGIBLE, {}),
            "reward_unavailable": (REWARD_UNAVAILABLE, {}),
            "member_not_active": (NOT_ACTIVE, {}),
            "idempotency_key_reused": (FORM_REUSED, {}),
        }
        if exc.code in messages:
            msgid, values = messages[exc.code]
            problems[code] = web.t(msgid, **values)
        else:
            problems[code] = exc.detail
    if problems or red is None:
        session.refresh(member)
        return _till(request, web, member, reward_errors=problems, status=409)
    flash(request, web.t("Reward redeemed."), "ok")
    return web_errors.redirect(request, f"/console/pos/m/{member.id}?redeemed={red.id}")


__all__ = ["QR_PREFIX", "parse_scan", "router"]
