from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from setia.core.db import Base, JSONType, new_id
from setia.core.time import utcnow


class Event(Base):
    """Something a member did, recorded once per client event id.

    ``request_hash`` makes retries safe: the same id with the same payload returns the
    stored ``result``; the same id with another payload is refused with 409.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "client_event_id"),
        Index("ix_events_member", "member_id", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    client_event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(60))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Order(Base):
    """A purchase, kept so that refunds can find what it earned and what was returned."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id"),
        # KPIs and cohorts over a window of time.
        Index("ix_orders_program_occurred", "program_id", "occurred_at"),
        # A member's orders in a program, in time order (a referee's first order, the rules'
        # order count): with the member alone, SQLite preferred the index above for its
        # order and walked the program's orders.
        Index("ix_orders_member_program", "member_id", "program_id", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    order_id: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    points_earned: Mapped[int] = mapped_column(default=0)
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    points_reversed: Mapped[int] = mapped_column(default=0)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
