"""Request and response bodies of the causes API."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from setia.core.i18n import Localized

CauseStatus = Literal["draft", "active", "closed"]
Locale = Literal["id", "ms", "en"]


class CauseIn(BaseModel):
    """A cause's definition (``PUT /v1/causes/{code}`` creates or replaces it; its donation
    totals are kept). Dates are in the tenant's time zone, both inclusive."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "names": {"id": "Tanam Pohon", "ms": "Tanam Pokok", "en": "Plant a Tree"},
                    "descriptions": {"id": "Satu pohon untuk setiap 1.000 Poin"},
                    "status": "active",
                    "goal_points": 1000000,
                    "starts_on": "2026-03-01",
                    "ends_on": "2026-03-30",
                    "min_points": 100,
                    "max_points": 100000,
                    "match_ratio": "1",
                    "match_budget": 200000,
                    "match_cap_per_member": 5000,
                    "receipt_prefix": "TP",
                }
            ]
        },
    )

    names: Localized
    descriptions: Localized | None = None
    image_urls: Localized | None = None
    status: CauseStatus = "draft"
    goal_points: int | None = Field(default=None, ge=1, le=10**15)
    value_per_point: Decimal | None = Field(
        default=None,
        ge=0,
        le=10**9,
        description="Currency value of one donated point; the program's cost_per_point if null",
    )
    starts_on: date | None = None
    ends_on: date | None = None
    min_points: int = Field(default=1, ge=1, le=10**12)
    max_points: int | None = Field(default=None, ge=1, le=10**12)
    match_ratio: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        description="Points the business adds per point given (1 = 1:1, 0.5 = half)",
    )
    match_budget: int = Field(
        default=0, ge=0, le=10**15, description="Most points the business matches in all"
    )
    match_cap_per_member: int | None = Field(
        default=None, ge=0, le=10**15, description="Most matched points per member"
    )
    receipt_prefix: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9]{1,12}$",
        description="Receipt numbers read <prefix>-<year>-<number>; initials of the code if null",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CauseIn:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        if self.max_points is not None and self.max_points < self.min_points:
            raise ValueError("max_points is below min_points")
        return self


class CauseFileIn(CauseIn):
    """A cause as the CLI reads it from a file: the definition plus its code."""

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")


class Progress(BaseModel):
    donated_points: int
    matched_points: int
    total_points: int = Field(description="donated + matched")
    goal_points: int | None
    percent: float | None = Field(description="total ÷ goal × 100 (may pass 100); null: no goal")
    donors: int
    donations: int
    value: str = Field(description="Worth of the total in the program's currency")
    value_display: str = Field(examples=["Rp 5.000"])
    currency: str
    days_left: int | None = Field(
        description="Days until the end, today included (0: ended); null: no end"
    )


class Matching(BaseModel):
    ratio: str
    budget: int
    matched: int
    remaining: int
    cap_per_member: int | None


class CauseOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    name: str = Field(description="In the requested locale")
    description: str | None
    image_url: str | None
    names: dict[str, str]
    descriptions: dict[str, str]
    image_urls: dict[str, str]
    status: CauseStatus
    open: bool = Field(description="Active and within its period now")
    starts_on: date | None
    ends_on: date | None
    min_points: int
    max_points: int | None
    value_per_point: str
    receipt_prefix: str
    matching: Matching
    progress: Progress
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class DonationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID
    points: int = Field(ge=1, le=10**12)


class DonationOut(BaseModel):
    id: uuid.UUID
    cause_id: uuid.UUID
    cause_code: str
    member_id: uuid.UUID
    points: int
    matched_points: int
    value: str
    matched_value: str
    currency: str
    receipt_number: str
    transfer_id: uuid.UUID
    source_type: str | None
    source_id: str | None
    created_at: datetime


class MemberDonations(BaseModel):
    member_id: uuid.UUID
    data: list[DonationOut]
    total_points: int
    total_matched_points: int
    total_value: str
    currency: str


class ReceiptOut(BaseModel):
    receipt_number: str
    donation_id: uuid.UUID
    date: dt.date = Field(description="The day of the donation in the tenant's time zone")
    created_at: datetime
    member_id: uuid.UUID
    member_name: str | None
    cause_id: uuid.UUID
    cause_code: str
    cause_name: str
    points: int
    points_name: str
    value: str
    value_display: str
    matched_points: int
    matched_value: str
    currency: str
    locale: Locale
    message: str = Field(description="A thank-you sentence in the locale")
    text: str = Field(description="The whole receipt as plain text")


class CauseSummary(BaseModel):
    cause_id: uuid.UUID
    code: str
    status: CauseStatus
    donations: int
    donors: int
    donated_points: int
    matched_points: int
    total_points: int
    value: str
    matched_value: str
    currency: str
    match_budget: int
    match_remaining: int
    by_day: list[dict[str, int | str]] = Field(
        description="Per day in the tenant's zone: date, donations, points, matched_points"
    )
