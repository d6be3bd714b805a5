"""Tables of the checkout domain: points paid towards orders, and what refunds gave back.

A ``points_payments`` row is one attempt to pay part of an order with points: a ledger hold
(``REDEEM``, ``PENDING`` kind) captured on payment, released on cancellation, expired by the
job. ``live_order_id`` is the order id while the payment is ``held`` or ``captured`` and
null otherwise; it is unique per tenant, so an order has at most one live points payment
(a released or expired one leaves room for a new attempt).

``order_refund_returns`` records each refund of an order that gave something back through
checkout (points paid, coupons restored). It is append-only; ``source_key`` (the refund
event, or the API's Idempotency-Key) is unique per tenant, so a refund gives back once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow

HELD = "held"
CAPTURED = "captured"
RELEASED = "released"
EXPIRED = "expired"
LIVE = (HELD, CAPTURED)


class PointsPayment(Base):
    __tablename__ = "points_payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        UniqueConstraint("tenant_id", "live_order_id"),
        Index("ix_points_payments_order", "tenant_id", "order_id"),
        Index("ix_points_payments_member", "member_id", "id"),
        Index("ix_points_payments_due", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    order_id: Mapped[str] = mapped_column(String(200))
    live_order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(10), default=HELD)
    currency: Mapped[str] = mapped_column(String(3))
    order_total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    # The program's points_payment_rate when the points were held (value of one point).
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    points_held: Mapped[int] = mapped_column(BigInteger)
    # Points held while ``held``; points captured once ``captured``; 0 after release/expiry.
    points: Mapped[int] = mapped_column(BigInteger)
    # The currency value of ``points`` (points x rate, rounded down to the currency).
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    hold_transfer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), default=None
    )
    resolution_transfer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), default=None
    )
    expires_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    # Refunds: the amount refunded through POST /checkout/orders/{id}/refund (orders without
    # a purchase event) and the points given back by all refunds.
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRefundReturn(Base):
    """What one refund of an order gave back through checkout. Append-only."""

    __tablename__ = "order_refund_returns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_key"),
        Index("ix_order_refund_returns_order", "tenant_id", "order_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    order_id: Mapped[str] = mapped_column(String(200))
    # "event" (a refund event) or "api" (POST /checkout/orders/{id}/refund)
    source: Mapped[str] = mapped_column(String(8))
    source_key: Mapped[str] = mapped_column(String(250))
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    refunded_total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    order_total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    fully_refunded: Mapped[bool] = mapped_column(default=False)
    points_payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("points_payments.id"), default=None
    )
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    return_transfer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), default=None
    )
    coupons_restored: Mapped[list[str]] = mapped_column(JSONType, default=list)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
