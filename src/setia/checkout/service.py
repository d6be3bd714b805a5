"""Paying part of an order with points, and what a refund of the order gives back.

Every function runs inside the caller's transaction and never commits.

* **Conversion.** The program's ``points_payment_rate`` is the currency value of one point.
  The value of N points is N x rate rounded *down* to the currency's precision; the points
  needed for an amount are amount / rate rounded *up*. So the member never gets more off
  than their points are worth, and asking for an amount never takes fewer points than it
  is worth.
* **Holds.** A payment holds its points in the ledger (``REDEEM``, kind ``PENDING``, source
  ``order`` + the order id). Capture posts all or part (the rest goes back to the lots it
  came from), release voids it, and past ``expires_at`` the ledger's hold job expires it and
  ``setia.checkout.jobs`` marks the payment ``expired``.
* **One live payment per order.** ``live_order_id`` is the order id while a payment is held
  or captured and unique per tenant: of two payments for one order at once, one commits and
  the other is refused (``order_already_paid_with_points``).
* **Refunds.** Cumulative and floored, like the points earned: after refunds totalling R of
  an order of total T, the points given back are floor(captured x R / T) in total, and all
  of them once the order is fully refunded; each refund gives back that target minus what
  earlier refunds gave. The ledger's ``return_spent`` refuses to give back more than the
  capture, and each refund is keyed by its event (or Idempotency-Key), so it gives back once.
  A refund event that fully refunds an order whose payment is still *held* releases it (the
  points go back at once and the payment can no longer be captured); a partial one leaves
  the hold to the till.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.checkout.models import (
    CAPTURED,
    EXPIRED,
    HELD,
    RELEASED,
    OrderRefundReturn,
    PointsPayment,
)
from setia.checkout.schemas import PointsPaymentIn, QuoteIn, RefundIn
from setia.core.db import new_id
from setia.core.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from setia.core.money import MoneyError, check_currency, parse_amount, precision, to_str
from setia.core.time import utcnow
from setia.coupons import service as coupons
from setia.coupons.models import Coupon, CouponRedemption
from setia.events.models import Order
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import Transfer
from setia.members import service as members
from setia.outbox.service import publish
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import Tenant

# --------------------------------------------------------------------------- errors


class PointsPaymentDisabled(Conflict):
    code = "points_payment_disabled"
    title = "The program does not offer paying with points"


class PointsPaymentLimit(Conflict):
    code = "points_payment_limit"
    title = "More points than the program lets pay for this order"


class PointsPaymentTooSmall(Conflict):
    code = "points_payment_too_small"
    title = "These points are worth nothing in the currency"


class OrderAlreadyPaidWithPoints(Conflict):
    code = "order_already_paid_with_points"
    title = "The order already has a points payment held or captured"


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"
    title = "The currency is not the program's"


class PointsPaymentNotFound(NotFound):
    code = "points_payment_not_found"
    title = "Points payment not found"


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class OrderHasPurchaseEvent(Conflict):
    code = "order_has_purchase_event"
    title = "The order was recorded by a purchase event: refund it with a refund event"


class PointsPaymentNotCaptured(Conflict):
    code = "points_payment_not_captured"
    title = "The order has no captured points payment"


class RefundExceedsOrder(Conflict):
    code = "refund_exceeds_order"
    title = "The refund is larger than what is left to refund"


# --------------------------------------------------------------------------- conversion


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-precision(currency))


def points_value(points: int, rate: Decimal, currency: str) -> Decimal:
    """What ``points`` are worth: points x rate, rounded down to the currency's precision."""
    return (Decimal(points) * rate).quantize(_quantum(currency), rounding=ROUND_FLOOR)


def points_for(amount: Decimal, rate: Decimal) -> int:
    """The points needed to pay ``amount``: amount / rate, rounded up."""
    return int((amount / rate).to_integral_value(rounding=ROUND_CEILING))


def order_limit(order_total: Decimal, program: Program, rate: Decimal) -> tuple[Decimal, int]:
    """The most an order may be paid with points: (amount, points), from the program's
    ``points_payment_max_percent`` (the amount rounded down; the points worth at most it)."""
    max_amount = (order_total * program.points_payment_max_percent / 100).quantize(
        _quantum(program.currency), rounding=ROUND_FLOOR
    )
    max_points = int((max_amount / rate).to_integral_value(rounding=ROUND_FLOOR))
    return max_amount, max_points


def _rate(program: Program) -> Decimal:
    rate = program.points_payment_rate
    if rate is None or rate <= 0:
        raise PointsPaymentDisabled(
            "this program does not offer paying with points; an admin sets "
            "points_payment_rate on the program to turn it on"
        )
    return Decimal(rate)


def _money(value: object, currency: str, field: str) -> Decimal:
    try:
        return parse_amount(value, currency)
    except MoneyError as exc:
        raise InvalidInput(f"{field}: {exc}", extra={"field": field}, code=exc.code) from None


def _currency(value: str, program: Program) -> str:
    try:
        currency = check_currency(value)
    except MoneyError as exc:
        raise InvalidInput(str(exc), extra={"field": "currency"}, code=exc.code) from None
    if currency != program.currency:
        raise CurrencyMismatch(
            f"this program counts {program.currency}; the order is in {currency}",
            extra={"field": "currency", "program_currency": program.currency},
        )
    return currency


def _rate_str(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


# --------------------------------------------------------------------------- reading


def get_payment(session: Session, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> PointsPayment:
    payment = session.execute(
        select(PointsPayment).where(
            PointsPayment.id == payment_id, PointsPayment.tenant_id == tenant_id
        )
    ).scalar_one_or_none()
    if payment is None:
        raise PointsPaymentNotFound(f"points payment {payment_id} not found")
    return payment


def _locked(session: Session, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> PointsPayment:
    """The payment, row-locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises)."""
    payment = session.execute(
        select(PointsPayment)
        .where(PointsPayment.id == payment_id, PointsPayment.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if payment is None:
        raise PointsPaymentNotFound(f"points payment {payment_id} not found")
    return payment


def payment_dict(payment: PointsPayment, created: bool = False) -> dict[str, Any]:
    return {
        "id": payment.id,
        "member_id": payment.member_id,
        "program_id": payment.program_id,
        "order_id": payment.order_id,
        "status": payment.status,
        "points": payment.points,
        "amount": to_str(payment.amount, payment.currency),
        "points_held": payment.points_held,
        "currency": payment.currency,
        "order_total": to_str(payment.order_total, payment.currency),
        "rate": _rate_str(payment.rate),
        "hold_id": payment.hold_transfer_id,
        "expires_at": payment.expires_at,
        "resolved_at": payment.resolved_at,
        "points_returned": payment.points_returned,
        "refunded_amount": to_str(payment.refunded_amount, payment.currency),
        "created_at": payment.created_at,
        "created": created,
    }


def refund_dict(row: OrderRefundReturn, created: bool = False) -> dict[str, Any]:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "source": row.source,
        "event_id": row.event_id,
        "amount": to_str(row.amount, row.currency),
        "refunded_total": to_str(row.refunded_total, row.currency),
        "order_total": to_str(row.order_total, row.currency),
        "currency": row.currency,
        "fully_refunded": row.fully_refunded,
        "points_payment_id": row.points_payment_id,
        "points_returned": row.points_returned,
        "return_transfer_id": row.return_transfer_id,
        "coupons_restored": list(row.coupons_restored),
        "reason": row.reason,
        "created_at": row.created_at,
        "created": created,
    }


def quote(session: Session, tenant: Tenant, body: QuoteIn) -> dict[str, Any]:
    """What a member can pay with points on an order of this total (for the till or UI)."""
    program = programs.get_program(session, tenant.id, body.program_id)
    rate = _rate(program)
    currency = _currency(body.currency, program)
    member = members.get_member(session, tenant.id, body.member_id)
    order_total = _money(body.order_total, currency, "order_total")
    _max_amount, order_max = order_limit(order_total, program, rate)
    available = int(queries.balance(session, program.id, member.id, now=utcnow())["available"])
    usable = member.status == "active" and available >= max(program.min_redeem_points, 1)
    max_points = min(available, order_max) if usable else 0
    if max_points and points_value(max_points, rate, currency) <= 0:
        max_points = 0
    return {
        "member_id": member.id,
        "program_id": program.id,
        "currency": currency,
        "order_total": to_str(order_total, currency),
        "rate": _rate_str(rate),
        "max_percent": program.points_payment_max_percent,
        "min_redeem_points": program.min_redeem_points,
        "available_points": available,
        "max_points": max_points,
        "max_amount": to_str(points_value(max_points, rate, currency), currency),
        "order_max_points": order_max,
        "usable": max_points > 0,
    }


# --------------------------------------------------------------------------- holding


def _apply_resolution(session: Session, payment: PointsPayment, resolution: Transfer) -> None:
    """Make the payment say what became of its hold in the ledger."""
    now = utcnow()
    payment.resolution_transfer_id = resolution.id
    payment.resolved_at = resolution.created_at or now
    payment.updated_at = now
    if resolution.kind == "POST_PENDING":
        payment.status = CAPTURED
        payment.points = resolution.amount
        payment.amount = points_value(resolution.amount, payment.rate, payment.currency)
        return
    payment.status = RELEASED if resolution.kind == "VOID_PENDING" else EXPIRED
    payment.live_order_id = None
    payment.points = 0
    payment.amount = Decimal(0)
    # Frees the order at once: a new attempt for it may follow in this transaction.
    session.flush()


def _hold(session: Session, payment: PointsPayment) -> Transfer:
    assert payment.hold_transfer_id is not None
    hold = session.get(Transfer, payment.hold_transfer_id)
    assert hold is not None
    return hold


def expire_payment(session: Session, payment: PointsPayment) -> bool:
    """Bring a held payment past its deadline up to date: expire its hold in the ledger if
    the hold job has not yet (same key as the job, so only one of them writes), then mark
    the payment. A hold resolved another way (the generic holds API) is mirrored as it is.
    Returns whether the payment changed. The payment must be locked."""
    if payment.status != HELD:
        return False
    hold = _hold(session, payment)
    resolution = ledger.hold_resolution(session, hold.id)
    if resolution is None:
        ctx = ledger.Context(
            program_id=hold.program_id,
            idempotency_key=f"hold-expire:{hold.id}",
            request_hash=ledger.request_hash({"expire_hold": str(hold.id)}),
            actor="job",
            source_type=hold.source_type,
            source_id=hold.source_id,
        )
        res = ledger.resolve_hold(session, ctx, hold, action="expire")
        resolution = session.get(Transfer, res.transfer_id)
        assert resolution is not None
    _apply_resolution(session, payment, resolution)
    publish(
        session,
        payment.tenant_id,
        f"points_payment.{payment.status}",
        {"points_payment_id": str(payment.id), "order_id": payment.order_id},
    )
    return True


def create_payment(
    session: Session,
    tenant: Tenant,
    body: PointsPaymentIn,
    *,
    actor: str,
    idempotency_key: str | None,
) -> tuple[PointsPayment, bool]:
    """Hold points towards an order. Returns (payment, created); a retry with the same
    Idempotency-Key and body returns the first payment, whatever became of it since."""
    digest = ledger.request_hash({"op": "points_payment", **body.model_dump(mode="json")})
    if idempotency_key:
        found = session.execute(
            select(PointsPayment).where(
                PointsPayment.tenant_id == tenant.id,
                PointsPayment.idempotency_key == idempotency_key,
            )
        ).scalar_one_or_none()
        if found is not None:
            if found.request_hash != digest:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key {idempotency_key!r} was already used for another request"
                )
            return found, False
    program = programs.get_program(session, tenant.id, body.program_id)
    rate = _rate(program)
    currency = _currency(body.currency, program)
    order_total = _money(body.order_total, currency, "order_total")
    if body.points is not None:
        points = body.points
    else:
        points = points_for(_money(body.amount, currency, "amount"), rate)
    member = members.get_member(session, tenant.id, body.member_id)
    members._active(member)
    value = points_value(points, rate, currency)
    if value <= 0:
        raise PointsPaymentTooSmall(
            f"{points} point(s) are worth less than the currency's smallest unit at a rate "
            f"of {_rate_str(rate)}; use more points",
            extra={"points": points},
        )
    max_amount, max_points = order_limit(order_total, program, rate)
    if points > max_points:
        raise PointsPaymentLimit(
            f"points may pay at most {program.points_payment_max_percent}% of this order: "
            f"{max_points} points ({to_str(max_amount, currency)} {currency}); "
            f"{points} were asked",
            extra={
                "max_points": max_points,
                "max_amount": to_str(max_amount, currency),
                "max_percent": program.points_payment_max_percent,
                "points": points,
            },
        )
    live = session.execute(
        select(PointsPayment)
        .where(PointsPayment.tenant_id == tenant.id, PointsPayment.live_order_id == body.order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if live is not None and idempotency_key and live.idempotency_key == idempotency_key:
        # The same request, committed by a concurrent retry after the look-up by key above
        # (each statement sees what is committed when it starts, on PostgreSQL): a replay.
        if live.request_hash != digest:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {idempotency_key!r} was already used for another request"
            )
        return live, False
    if live is not None and live.status == HELD and live.expires_at <= utcnow():
        expire_payment(session, live)  # dead already: it cannot be captured any more
        live = None
    if live is not None:
        raise OrderAlreadyPaidWithPoints(
            f"order {body.order_id!r} already has a {live.status} points payment "
            f"({live.id}); release it first or use it",
            extra={"points_payment_id": str(live.id), "payment_status": live.status},
        )
    minutes = body.timeout_minutes or program.hold_timeout_minutes
    now = utcnow()
    payment = PointsPayment(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=program.id,
        member_id=member.id,
        order_id=body.order_id,
        live_order_id=body.order_id,
        status=HELD,
        currency=currency,
        order_total=order_total,
        rate=rate,
        points_held=points,
        points=points,
        amount=value,
        expires_at=now + timedelta(minutes=minutes),
        refunded_amount=Decimal(0),
        points_returned=0,
        idempotency_key=idempotency_key,
        request_hash=digest,
        actor=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    # The row claims the order first (unique live_order_id): a concurrent payment for the
    # same order fails here, before touching the ledger.
    session.flush()
    ctx = ledger.Context(
        program_id=program.id,
        idempotency_key=f"checkout:{tenant.id}:{idempotency_key}"
        if idempotency_key
        else f"checkout:hold:{payment.id}",
        request_hash=digest,
        source_type="order",
        source_id=body.order_id,
        actor=actor,
        program_revision=program.revision,
        details={"points_payment_id": str(payment.id)},
    )
    res = ledger.spend(
        session,
        ctx,
        member_id=member.id,
        amount=points,
        min_balance=program.min_redeem_points,
        hold_for=timedelta(minutes=minutes),
    )
    hold = session.get(Transfer, res.transfer_id)
    assert hold is not None
    assert hold.expires_at is not None
    payment.hold_transfer_id = hold.id
    payment.expires_at = hold.expires_at
    publish(
        session,
        tenant.id,
        "points_payment.held",
        {
            "points_payment_id": str(payment.id),
            "member_id": str(member.id),
            "order_id": body.order_id,
            "points": points,
            "amount": to_str(value, currency),
        },
    )
    session.flush()
    return payment, True


def capture(
    session: Session,
    tenant: Tenant,
    payment_id: uuid.UUID,
    *,
    points: int | None = None,
    amount: str | None = None,
) -> tuple[PointsPayment, bool]:
    """Spend the held points (all, or fewer: the rest goes back to the member's lots).
    Repeating the same capture returns the payment; anything else on a payment that is no
    longer held is ``409 hold_not_open``."""
    payment = _locked(session, tenant.id, payment_id)
    if amount is not None:
        points = points_for(_money(amount, payment.currency, "amount"), payment.rate)
    hold = _hold(session, payment)
    ctx = ledger.Context(
        program_id=payment.program_id,
        idempotency_key=f"checkout:capture:{payment.id}",
        request_hash=ledger.request_hash({"capture": str(payment.id), "points": points}),
        source_type="order",
        source_id=payment.order_id,
        actor="checkout",
        details={"points_payment_id": str(payment.id)},
    )
    try:
        res = ledger.resolve_hold(session, ctx, hold, action="capture", amount=points)
    except (ledger.HoldNotOpen, IdempotencyKeyReused) as exc:
        status = payment.status
        if status == HELD and payment.expires_at <= utcnow():
            status = EXPIRED
        raise ledger.HoldNotOpen(
            f"points payment {payment.id} cannot be captured: it is {status}"
            + (f" ({exc.detail})" if isinstance(exc, ledger.HoldNotOpen) else ""),
            extra={**exc.extra, "payment_status": status, "points_payment_id": str(payment.id)},
        ) from None
    if not res.created:
        return payment, False
    resolution = session.get(Transfer, res.transfer_id)
    assert resolution is not None
    _apply_resolution(session, payment, resolution)
    publish(
        session,
        tenant.id,
        "points_payment.captured",
        {
            "points_payment_id": str(payment.id),
            "member_id": str(payment.member_id),
            "order_id": payment.order_id,
            "points": payment.points,
            "released": payment.points_held - payment.points,
        },
    )
    session.flush()
    return payment, True


def release(session: Session, tenant: Tenant, payment_id: uuid.UUID) -> tuple[PointsPayment, bool]:
    """Give every held point back (the order was cancelled). Releasing a payment that is
    already released or expired changes nothing; a captured one is ``409 hold_not_open``
    (refund the order instead)."""
    payment = _locked(session, tenant.id, payment_id)
    if payment.status in (RELEASED, EXPIRED):
        return payment, False
    if payment.status == CAPTURED:
        raise ledger.HoldNotOpen(
            f"points payment {payment.id} was captured; refund the order to give points back",
            extra={"payment_status": CAPTURED, "points_payment_id": str(payment.id)},
        )
    hold = _hold(session, payment)
    resolution = ledger.hold_resolution(session, hold.id)
    if resolution is None:
        ctx = ledger.Context(
            program_id=payment.program_id,
            idempotency_key=f"checkout:release:{payment.id}",
            request_hash=ledger.request_hash({"release": str(payment.id)}),
            source_type="order",
            source_id=payment.order_id,
            actor="checkout",
            details={"points_payment_id": str(payment.id)},
        )
        res = ledger.resolve_hold(session, ctx, hold, action="void")
        resolution = session.get(Transfer, res.transfer_id)
        assert resolution is not None
    _apply_resolution(session, payment, resolution)
    publish(
        session,
        tenant.id,
        f"points_payment.{payment.status}",
        {"points_payment_id": str(payment.id), "order_id": payment.order_id},
    )
    return payment, True


# --------------------------------------------------------------------------- refunds


@dataclass
class Returned:
    points: int = 0
    transfer_id: uuid.UUID | None = None


def _return_points(
    session: Session,
    payment: PointsPayment | None,
    *,
    refunded: Decimal,
    order_total: Decimal,
    fully: bool,
    key: str,
    actor: str,
    reason: str | None,
    details: dict[str, Any],
) -> Returned:
    """Give back the captured points a refund owes: the cumulative target minus what
    earlier refunds gave back."""
    if payment is None or payment.status != CAPTURED or payment.points <= 0:
        return Returned()
    if fully or order_total <= 0:
        target = payment.points
    else:
        target = int(
            (Decimal(payment.points) * refunded / order_total).to_integral_value(
                rounding=ROUND_FLOOR
            )
        )
    target = min(target, payment.points)
    n = target - payment.points_returned
    if n <= 0:
        return Returned()
    assert payment.resolution_transfer_id is not None
    original = ledger.get_transfer(session, payment.program_id, payment.resolution_transfer_id)
    ctx = ledger.Context(
        program_id=payment.program_id,
        idempotency_key=key,
        request_hash=ledger.request_hash({"return": str(payment.id), "points": n}),
        # Not ``order``: points given back must never count as the order's earned points.
        source_type="points_payment",
        source_id=str(payment.id),
        actor=actor,
        reason=reason or "order refunded",
        details={"order_id": payment.order_id, **details},
    )
    res = ledger.return_spent(session, ctx, original=original, amount=n)
    if not res.created:
        return Returned()
    payment.points_returned += n
    payment.updated_at = utcnow()
    return Returned(points=n, transfer_id=res.transfer_id)


def _restore_coupons(
    session: Session, tenant_id: uuid.UUID, program: Program, order_id: str
) -> list[str]:
    """On a full refund, when the program says so: the order's coupons are usable again.
    Returns the redemptions voided now (none on a second call)."""
    if not program.refund_restores_coupon:
        return []
    voided = coupons.void_for_order(
        session, tenant_id=tenant_id, order_id=order_id, reason="order refunded"
    )
    return [str(r.id) for r in voided]


def _live_payment(session: Session, tenant_id: uuid.UUID, order_id: str) -> PointsPayment | None:
    return session.execute(
        select(PointsPayment)
        .where(PointsPayment.tenant_id == tenant_id, PointsPayment.live_order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _find_refund(
    session: Session, tenant_id: uuid.UUID, source_key: str
) -> OrderRefundReturn | None:
    return session.execute(
        select(OrderRefundReturn).where(
            OrderRefundReturn.tenant_id == tenant_id, OrderRefundReturn.source_key == source_key
        )
    ).scalar_one_or_none()


def _result(row: OrderRefundReturn) -> dict[str, Any]:
    return {
        "points_payment_id": str(row.points_payment_id) if row.points_payment_id else None,
        "points_returned": row.points_returned,
        "return_transfer_id": str(row.return_transfer_id) if row.return_transfer_id else None,
        "coupons_restored": list(row.coupons_restored),
        "points_released": int((row.details or {}).get("points_released", 0)),
    }


def on_order_refund(
    session: Session,
    *,
    tenant: Tenant,
    program: Program,
    order: Order,
    refund_amount: Decimal,
    fully_refunded: bool,
    event_id: uuid.UUID,
) -> dict[str, Any]:
    """Called by the events service for every refund event, after the order row (locked)
    has its new ``refunded_amount``: give back the points paid for the order (cumulative
    rule over the purchase's amount) and, on a full refund, its coupons. Returns what it
    gave back, or {} when the order used neither."""
    if program.id != order.program_id:
        found = session.get(Program, order.program_id)
        assert found is not None
        program = found
    source_key = f"event:{event_id}"
    done = _find_refund(session, tenant.id, source_key)
    if done is not None:
        return _result(done)
    payment = _live_payment(session, tenant.id, order.order_id)
    released = 0
    if payment is not None and payment.status == HELD and fully_refunded:
        # The order is wholly refunded before its points payment was captured: it will never
        # be captured now, so the held points go back at once (the hold is voided, as a
        # release does) instead of waiting for the hold to expire, and a late capture is
        # refused. A partial refund leaves the hold for the till to capture or release.
        held = payment.points
        payment, _changed = release(session, tenant, payment.id)
        released = held if payment.status == RELEASED else 0  # not if it had expired
    returned = _return_points(
        session,
        payment,
        refunded=order.refunded_amount,
        order_total=order.amount,
        fully=fully_refunded,
        key=f"event:{event_id}:points-payment-return",
        actor="event",
        reason="order refunded",
        details={"event_id": str(event_id)},
    )
    restored = (
        _restore_coupons(session, tenant.id, program, order.order_id) if fully_refunded else []
    )
    if payment is None and not restored:
        return {}
    row = OrderRefundReturn(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=order.program_id,
        order_id=order.order_id,
        source="event",
        source_key=source_key,
        event_id=event_id,
        currency=order.currency,
        amount=refund_amount,
        refunded_total=order.refunded_amount,
        order_total=order.amount,
        fully_refunded=fully_refunded,
        points_payment_id=payment.id if payment is not None else None,
        points_returned=returned.points,
        return_transfer_id=returned.transfer_id,
        coupons_restored=restored,
        actor="event",
        details={"points_released": released} if released else {},
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _published(session, tenant.id, row, payment)
    return _result(row)


def _published(
    session: Session, tenant_id: uuid.UUID, row: OrderRefundReturn, payment: PointsPayment | None
) -> None:
    if row.points_returned or row.coupons_restored:
        publish(
            session,
            tenant_id,
            "order.refund_returned",
            {
                "order_id": row.order_id,
                "member_id": str(payment.member_id) if payment is not None else None,
                "points_returned": row.points_returned,
                "coupons_restored": list(row.coupons_restored),
            },
        )


def refund_order(
    session: Session,
    tenant: Tenant,
    order_id: str,
    body: RefundIn,
    *,
    actor: str,
    idempotency_key: str | None,
) -> tuple[OrderRefundReturn, bool]:
    """Refund (part of) an order that has a captured points payment but no purchase event
    (an order earning no points). Same cumulative rule, over the payment's order_total."""
    digest = ledger.request_hash(
        {"op": "order_refund", "order_id": order_id, **body.model_dump(mode="json")}
    )
    source_key = f"api:{idempotency_key}" if idempotency_key else f"api:{new_id()}"
    done = _find_refund(session, tenant.id, source_key)
    if done is not None:
        if done.request_hash != digest:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {idempotency_key!r} was already used for another request"
            )
        return done, False
    if session.execute(
        select(Order.id).where(Order.tenant_id == tenant.id, Order.order_id == order_id)
    ).first():
        raise OrderHasPurchaseEvent(
            f"order {order_id!r} was recorded by a purchase event; send a refund event for it "
            "(POST /v1/events, type refund): that reverses the points it earned and gives "
            "back the points paid in one step"
        )
    payment = _live_payment(session, tenant.id, order_id)
    if payment is None or payment.status != CAPTURED:
        any_payment = session.execute(
            select(PointsPayment.id).where(
                PointsPayment.tenant_id == tenant.id, PointsPayment.order_id == order_id
            )
        ).first()
        if any_payment is None:
            raise OrderNotFound(f"no points payment for order {order_id!r}")
        raise PointsPaymentNotCaptured(
            f"order {order_id!r} has no captured points payment: nothing was paid with points "
            "(release a held payment instead)"
        )
    program = session.get(Program, payment.program_id)
    assert program is not None
    amount = _money(body.amount, payment.currency, "amount")
    left = payment.order_total - payment.refunded_amount
    if amount > left:
        raise RefundExceedsOrder(
            f"only {to_str(left, payment.currency)} {payment.currency} of order {order_id!r} "
            "is left to refund",
            extra={"refundable": to_str(left, payment.currency)},
        )
    refunded = payment.refunded_amount + amount
    fully = refunded >= payment.order_total
    row_id = new_id()
    returned = _return_points(
        session,
        payment,
        refunded=refunded,
        order_total=payment.order_total,
        fully=fully,
        key=f"checkout:refund:{row_id}",
        actor=actor,
        reason=body.reason,
        details={"refund_id": str(row_id)},
    )
    payment.refunded_amount = refunded
    payment.updated_at = utcnow()
    restored = _restore_coupons(session, tenant.id, program, order_id) if fully else []
    row = OrderRefundReturn(
        id=row_id,
        tenant_id=tenant.id,
        program_id=payment.program_id,
        order_id=order_id,
        source="api",
        source_key=source_key,
        currency=payment.currency,
        amount=amount,
        refunded_total=refunded,
        order_total=payment.order_total,
        fully_refunded=fully,
        points_payment_id=payment.id,
        points_returned=returned.points,
        return_transfer_id=returned.transfer_id,
        coupons_restored=restored,
        reason=body.reason,
        request_hash=digest,
        actor=actor,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _published(session, tenant.id, row, payment)
    return row, True


# --------------------------------------------------------------------------- orders


def _coupon_redemptions(
    session: Session, tenant_id: uuid.UUID, order_id: str
) -> list[dict[str, Any]]:
    """The order's coupon redemptions (read-only, from the coupons domain's tables)."""
    rows = session.execute(
        select(CouponRedemption, Coupon.code)
        .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
        .where(CouponRedemption.tenant_id == tenant_id, CouponRedemption.order_id == order_id)
        .order_by(CouponRedemption.id)
    ).all()
    return [
        {
            "id": str(r.id),
            "code": code,
            "coupon_id": str(r.coupon_id),
            "campaign_id": str(r.campaign_id),
            "discount": to_str(r.discount, r.currency),
            "currency": r.currency,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
            "voided_at": r.voided_at.isoformat() if r.voided_at else None,
            "void_reason": r.void_reason,
        }
        for r, code in rows
    ]


def get_order(session: Session, tenant: Tenant, order_id: str) -> dict[str, Any]:
    """What an order used at checkout: points payments, coupons, and what refunds gave back."""
    payments = list(
        session.execute(
            select(PointsPayment)
            .where(PointsPayment.tenant_id == tenant.id, PointsPayment.order_id == order_id)
            .order_by(PointsPayment.id)
        ).scalars()
    )
    refunds = list(
        session.execute(
            select(OrderRefundReturn)
            .where(OrderRefundReturn.tenant_id == tenant.id, OrderRefundReturn.order_id == order_id)
            .order_by(OrderRefundReturn.id)
        ).scalars()
    )
    coupons = _coupon_redemptions(session, tenant.id, order_id)
    order = session.execute(
        select(Order).where(Order.tenant_id == tenant.id, Order.order_id == order_id)
    ).scalar_one_or_none()
    if not payments and not refunds and not coupons and order is None:
        raise OrderNotFound(f"order {order_id!r} has no points payment, coupon or purchase")
    captured = [p for p in payments if p.status == CAPTURED]
    currency = payments[0].currency if payments else None
    return {
        "order_id": order_id,
        "points_payments": [payment_dict(p) for p in payments],
        "points_paid": sum(p.points for p in captured),
        "amount_paid_with_points": to_str(sum((p.amount for p in captured), Decimal(0)), currency)
        if currency
        else None,
        "points_returned": sum(p.points_returned for p in payments),
        "coupon_redemptions": coupons,
        "refunds": [refund_dict(r) for r in refunds],
        "purchase": None
        if order is None
        else {
            "member_id": str(order.member_id),
            "amount": to_str(order.amount, order.currency),
            "currency": order.currency,
            "refunded_amount": to_str(order.refunded_amount, order.currency),
            "points_earned": order.points_earned,
            "points_reversed": order.points_reversed,
        },
    }
