from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MemberRef(Strict):
    """Who the event is about. Any one identity finds the member; with auto-creation on,
    an unknown identity creates the member with the profile fields given here."""

    id: uuid.UUID | None = None
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=3, max_length=40)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, pattern="^(id|ms|en)$")

    @model_validator(mode="after")
    def _one_identity(self) -> MemberRef:
        if not any((self.id, self.external_id, self.phone, self.email)):
            raise ValueError("give at least one of id, external_id, phone or email")
        return self


class LineItem(Strict):
    sku: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: str = Field(
        description="Price of one unit, as a decimal string", examples=["25000"]
    )


class ReturnedItem(Strict):
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=1_000_000)


class EventIn(Strict):
    """An event. ``id`` is the client's own id for it: resending the same event is safe."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "pos-42-000123",
                    "type": "purchase",
                    "occurred_at": "2026-11-20T09:15:00+07:00",
                    "member": {"phone": "0812-3456-7890"},
                    "order_id": "INV-2026-000123",
                    "amount": "85000",
                    "currency": "IDR",
                    "items": [
                        {
                            "sku": "KOPI-SUSU",
                            "name": "Es Kopi Susu",
                            "category": "coffee",
                            "quantity": 2,
                            "unit_price": "25000",
                        },
                        {
                            "sku": "CROISSANT",
                            "category": "bakery",
                            "quantity": 1,
                            "unit_price": "35000",
                        },
                    ],
                    "store": "bandung-dago",
                    "channel": "pos",
                },
                {
                    "id": "pos-42-000124",
                    "type": "refund",
                    "member": {"phone": "+6281234567890"},
                    "order_id": "INV-2026-000123",
                    "returned_items": [{"sku": "CROISSANT", "quantity": 1}],
                },
                {
                    "id": "app-778",
                    "type": "review.submitted",
                    "member": {"external_id": "C-1001"},
                    "attributes": {"rating": 5},
                },
            ]
        },
    )

    id: str = Field(min_length=1, max_length=200, description="Client event id (idempotency key)")
    type: str = Field(
        min_length=1,
        max_length=60,
        pattern=EVENT_TYPE_PATTERN,
        description="purchase, refund, or a custom type such as review.submitted",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="Defaults to the time received"
    )
    program_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the tenant's default program"
    )
    member: MemberRef
    order_id: str | None = Field(default=None, min_length=1, max_length=200)
    amount: str | None = Field(
        default=None, max_length=40, description='Decimal string, e.g. "85000"'
    )
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    items: list[LineItem] | None = Field(default=None, max_length=500)
    returned_items: list[ReturnedItem] | None = Field(default=None, max_length=500)
    store: str | None = Field(default=None, max_length=100)
    channel: str | None = Field(default=None, max_length=50)
    payment_method: str | None = Field(default=None, max_length=50)
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> EventIn:
        if self.type == "purchase":
            missing = [f for f in ("order_id", "amount", "currency") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a purchase needs {', '.join(missing)}")
            if self.returned_items:
                raise ValueError("returned_items belongs on a refund")
        elif self.type == "refund":
            if self.order_id is None:
                raise ValueError("a refund needs the order_id of the purchase")
            if (self.amount is None) == (self.returned_items is None):
                raise ValueError("a refund needs either amount or returned_items (not both)")
        return self


class EventResult(BaseModel):
    id: str = Field(description="The client event id")
    event_id: uuid.UUID
    type: str
    member_id: uuid.UUID
    program_id: uuid.UUID
    occurred_at: datetime
    member_created: bool = False
    points: dict[str, Any] | None = Field(default=None, description="What a purchase earned")
    refund: dict[str, Any] | None = Field(default=None, description="What a refund took back")


class BatchIn(Strict):
    events: list[dict[str, Any]] = Field(min_length=1, description="Up to 1,000 events")


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="HTTP status this event alone would have had")
    result: EventResult | None = None
    error: dict[str, Any] | None = Field(default=None, description="Problem details")


class BatchOut(BaseModel):
    created: int
    duplicates: int
    failed: int
    results: list[BatchItem]
