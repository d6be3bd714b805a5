from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

AMOUNT = Field(
    max_length=32,
    description="A decimal string in the program's currency (IDR: no decimals; MYR: up to 2)",
    examples=["25000"],
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WalletLifetime(BaseModel):
    credited: str = Field(description="Top-ups, gift cards, cashback and goodwill credits")
    spent: str = Field(description="Debits and captured holds (holds themselves not counted)")
    returned: str = Field(description="Refunds of debits and captures")
    merged_in: str = Field(description="Moved in from members merged into this one")
    merged_out: str = Field(description="Moved out when this member was merged into another")


class WalletOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    currency: str
    available: str = Field(description="Money the member can spend now")
    held: str = Field(description="Reserved by open wallet holds")
    lifetime: WalletLifetime


class WalletLine(BaseModel):
    id: uuid.UUID
    transfer_id: uuid.UUID
    code: str = Field(
        description="TOPUP, GIFT_CARD, CASHBACK, GOODWILL, WALLET_SPEND, RETURN or MERGE"
    )
    kind: str = Field(description="POSTED, PENDING (a hold), POST_PENDING, VOID_PENDING, ...")
    amount: str = Field(description="Change to the available balance (negative: money out)")
    balance_after: str
    source_type: str | None
    source_id: str | None
    reason: str | None
    created_at: datetime


class WalletStatement(BaseModel):
    currency: str
    data: list[WalletLine]
    next_cursor: str | None


class CreditIn(Strict):
    amount: str = AMOUNT
    code: str = Field(description="TOPUP, GIFT_CARD, CASHBACK or GOODWILL", examples=["TOPUP"])
    reason: str = Field(min_length=3, max_length=500)
    source_type: str | None = Field(default=None, max_length=30, examples=["gift_card"])
    source_id: str | None = Field(default=None, max_length=200, examples=["GC-2026-0001"])
    program_id: uuid.UUID | None = None


class DebitIn(Strict):
    amount: str = AMOUNT
    order_id: str = Field(min_length=1, max_length=200)
    program_id: uuid.UUID | None = None


class WalletHoldIn(DebitIn):
    timeout_minutes: int | None = Field(
        default=None, gt=0, le=60 * 24 * 30, description="Defaults to the program's hold timeout"
    )


class CaptureIn(Strict):
    amount: str | None = Field(
        default=None, max_length=32, description="Defaults to the whole hold", examples=["15000"]
    )


class RefundIn(Strict):
    amount: str = AMOUNT
    reason: str | None = Field(default=None, max_length=500)


class WalletOperationOut(BaseModel):
    transfer_id: uuid.UUID
    created: bool = Field(description="false when this was a retry of a request already done")
    amount: str
    wallet: WalletOut


class WalletHoldOut(BaseModel):
    hold_id: uuid.UUID
    member_id: uuid.UUID | None
    currency: str
    amount: str
    order_id: str | None
    status: str = Field(description="open, captured, voided or expired")
    expires_at: datetime | None
    captured: str | None = Field(description="What the capture spent (its refundable debit)")
    capture_transfer_id: uuid.UUID | None = Field(
        description="Refund a captured hold with POST /v1/wallet-debits/{this id}/refund"
    )
    resolved_at: datetime | None


class RefundOut(BaseModel):
    transfer_id: uuid.UUID
    created: bool
    debit_id: uuid.UUID
    refunded: str = Field(description="Given back by this refund")
    refunded_total: str = Field(description="Given back by all refunds of the debit so far")
    refundable: str = Field(description="Still refundable")
    wallet: WalletOut
