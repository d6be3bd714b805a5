"""HTTP API of checkout: paying part of an order with points, and refunds of such orders."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from setia.checkout import service
from setia.checkout.models import OrderRefundReturn, PointsPayment
from setia.checkout.schemas import (
    CaptureIn,
    OrderOut,
    PointsPaymentIn,
    PointsPaymentOut,
    QuoteIn,
    QuoteOut,
    RefundIn,
    RefundOut,
)
from setia.core.api import (
    IdempotencyKey,
    PosCaller,
    ReadCaller,
    SessionDep,
    answered,
    problems,
    write,
)

router = APIRouter(prefix="/v1", tags=["checkout"])

OrderId = Annotated[str, Path(min_length=1, max_length=200, examples=["INV-2026-0001"])]


def _out(payment: PointsPayment, created: bool = False) -> PointsPaymentOut:
    return PointsPaymentOut.model_validate(service.payment_dict(payment, created))


@router.post("/checkout/points-quote", response_model=QuoteOut, responses=problems(403, 404, 409))
def points_quote(body: QuoteIn, session: SessionDep, caller: ReadCaller) -> QuoteOut:
    """How many points the member can use on an order of this total and what they are
    worth: the lower of the member's available points and the program's maximum share of
    the order (`max_percent`), or 0 when the balance is below `min_redeem_points`. 409
    `points_payment_disabled` when the program has no `points_payment_rate`."""
    return QuoteOut.model_validate(service.quote(session, caller.tenant, body))


@router.post(
    "/checkout/points-payments",
    response_model=PointsPaymentOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(PointsPaymentOut, 200)},
)
def create_points_payment(
    body: PointsPaymentIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PointsPaymentOut:
    """Hold points towards an order: `points`, or the `amount` to pay (converted at the
    program's `points_payment_rate`, rounded up to whole points). The points are reserved
    until `expires_at` (`timeout_minutes`, default the program's `hold_timeout_minutes`);
    capture them when the order is paid, release them when it is cancelled.

    409: `points_payment_disabled`, `points_payment_limit` (with `max_points` and
    `max_amount`), `below_minimum_redeem`, `insufficient_points`, `currency_mismatch`,
    `order_already_paid_with_points`, `member_not_active`. With an `Idempotency-Key`, a
    retry answers `200` with the first payment."""

    def run() -> tuple[PointsPayment, bool]:
        return service.create_payment(
            session, caller.tenant, body, actor=caller.actor, idempotency_key=idempotency_key
        )

    payment, created = write(session, run)
    response.status_code = 201 if created else 200
    return _out(payment, created)


@router.get(
    "/checkout/points-payments/{payment_id}",
    response_model=PointsPaymentOut,
    responses=problems(403, 404),
)
def get_points_payment(
    payment_id: uuid.UUID, session: SessionDep, caller: ReadCaller
) -> PointsPaymentOut:
    """One points payment: held, captured, released or expired, and what refunds gave back."""
    return _out(service.get_payment(session, caller.tenant.id, payment_id))


@router.post(
    "/checkout/points-payments/{payment_id}/capture",
    response_model=PointsPaymentOut,
    responses=problems(403, 404, 409),
)
def capture_points_payment(
    payment_id: uuid.UUID,
    session: SessionDep,
    caller: PosCaller,
    body: Annotated[CaptureIn | None, Body()] = None,
) -> PointsPaymentOut:
    """The order is paid: spend the held points. Send `points` (or `amount`) to capture
    fewer; the rest goes back to the member. Repeating the same capture is safe (`200`,
    the same result). 409 `hold_not_open` when the payment is no longer held (captured
    differently, released, or past `expires_at`); `capture_exceeds_hold`."""
    body = body or CaptureIn()

    def run() -> tuple[PointsPayment, bool]:
        return service.capture(
            session, caller.tenant, payment_id, points=body.points, amount=body.amount
        )

    payment, _created = write(session, run)
    return _out(payment)


@router.post(
    "/checkout/points-payments/{payment_id}/release",
    response_model=PointsPaymentOut,
    responses=problems(403, 404, 409),
)
def release_points_payment(
    payment_id: uuid.UUID, session: SessionDep, caller: PosCaller
) -> PointsPaymentOut:
    """The order was cancelled: every held point goes back to the member. Safe to repeat;
    a payment that already expired stays `expired`. 409 `hold_not_open` once captured
    (refund the order instead)."""
    payment, _changed = write(session, lambda: service.release(session, caller.tenant, payment_id))
    return _out(payment)


@router.get("/checkout/orders/{order_id}", response_model=OrderOut, responses=problems(403, 404))
def get_order(order_id: OrderId, session: SessionDep, caller: ReadCaller) -> OrderOut:
    """What an order used at checkout: its points payments (every attempt), its coupon
    redemptions, the purchase event's figures if there was one, and what each refund gave
    back (points, coupons)."""
    return OrderOut.model_validate(service.get_order(session, caller.tenant, order_id))


@router.post(
    "/checkout/orders/{order_id}/refund",
    response_model=RefundOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(RefundOut, 200)},
)
def refund_order(
    order_id: OrderId,
    body: RefundIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RefundOut:
    """Refund (part of) an order paid partly with points that has **no purchase event**
    (orders with one are refunded by a refund event, which does the same). The points
    given back are cumulative: floor(captured x refunded so far / order_total) in total,
    all of them once fully refunded; a full refund also restores the order's coupons when
    the program's `refund_restores_coupon` is on. 409 `order_has_purchase_event`,
    `points_payment_not_captured`, `refund_exceeds_order`. Send an `Idempotency-Key`: a
    retry answers `200` with the first result."""

    def run() -> tuple[OrderRefundReturn, bool]:
        return service.refund_order(
            session,
            caller.tenant,
            order_id,
            body,
            actor=caller.actor,
            idempotency_key=idempotency_key,
        )

    row, created = write(session, run)
    response.status_code = 201 if created else 200
    return RefundOut.model_validate(service.refund_dict(row, created))
