from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PendingLot(BaseModel):
    points: int
    available_at: datetime


class ExpiringLot(BaseModel):
    points: int
    expires_at: datetime


class Lifetime(BaseModel):
    """Points over the member's whole history, the records merged into it included."""

    earned: int
    redeemed: int
    expired: int
    reversed: int


class BalanceOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    points_name: str
    available: int = Field(description="Points the member can spend now")
    held: int = Field(description="Reserved by open holds")
    pending: int = Field(description="Earned, inside the return window")
    pending_lots: list[PendingLot]
    expiring_soon: list[ExpiringLot]
    expiring_within_days: int
    debt: int = Field(description="Points owed after refunds of spent points")
    lifetime: Lifetime


class StatementLine(BaseModel):
    id: uuid.UUID
    at: datetime
    recorded_at: datetime
    balance: str = Field(description="available, pending or debt")
    change: int
    balance_after: int
    transfer_id: uuid.UUID
    code: str = Field(
        description="EARN, RELEASE, REDEEM, EXPIRE, ADJUST, REVERSAL, DEBT, DEBT_REPAY, TRANSFER, MERGE"
    )
    kind: str
    amount: int
    source_type: str | None
    source_id: str | None
    reason: str | None
    program_revision: int | None


class Statement(BaseModel):
    data: list[StatementLine]
    next_cursor: str | None


class RedeemIn(Strict):
    points: int = Field(gt=0, le=10**12)
    program_id: uuid.UUID | None = None
    reference: str | None = Field(
        default=None, max_length=200, description="Your order or reward id"
    )


class HoldIn(RedeemIn):
    timeout_minutes: int | None = Field(
        default=None, gt=0, le=60 * 24 * 30, description="Defaults to the program's hold timeout"
    )


class CaptureIn(Strict):
    points: int | None = Field(default=None, gt=0, description="Defaults to the whole hold")


class AdjustIn(Strict):
    points: int = Field(
        ge=-(10**12),
        le=10**12,
        description="Positive adds points, negative removes them",
        examples=[500, -200],
    )
    reason: str = Field(min_length=3, max_length=500)
    program_id: uuid.UUID | None = None


class TransferIn(Strict):
    to_member_id: uuid.UUID
    points: int = Field(gt=0, le=10**12)
    program_id: uuid.UUID | None = None


class OperationOut(BaseModel):
    transfer_id: uuid.UUID
    created: bool = Field(description="false when this was a retry of a request already done")
    amounts: dict[str, int]
    balance: BalanceOut


class HoldOut(BaseModel):
    hold_id: uuid.UUID
    member_id: uuid.UUID | None
    points: int
    status: str = Field(description="open, captured, voided or expired")
    expires_at: datetime | None
    resolution: dict[str, Any] | None = None
