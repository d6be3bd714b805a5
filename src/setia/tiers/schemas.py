"""Tier configuration as the API takes it, and the member's tier view as it gives it."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
METRICS = ("spend", "points", "orders", "visits", "event")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Names(Strict):
    id: str = Field(min_length=1, max_length=100, description="Bahasa Indonesia")
    ms: str = Field(min_length=1, max_length=100, description="Bahasa Melayu")
    en: str = Field(min_length=1, max_length=100, description="English")


class Metric(Strict):
    """What counts: ``spend`` (net of refunds, program currency), ``points`` earned by
    activity (never the balance; reversals count against it), ``orders`` (a fully refunded
    order does not count), ``visits`` (local days with at least one order), or ``event``:
    how many ``event_type`` events."""

    metric: Literal["spend", "points", "orders", "visits", "event"]
    event_type: str | None = Field(default=None, min_length=1, max_length=60)

    @model_validator(mode="after")
    def _event_type(self) -> Metric:
        if (self.metric == "event") != (self.event_type is not None):
            raise ValueError("event_type is needed for metric event, and only for it")
        return self


class Window(Strict):
    """Where qualification is counted: the last ``months`` months (``rolling``), the calendar
    year, the member's membership year (``anniversary_year``) or all time (``lifetime``), in
    the tenant's time zone."""

    kind: Literal["rolling", "calendar_year", "anniversary_year", "lifetime"]
    months: int | None = Field(default=None, ge=1, le=60)

    @model_validator(mode="after")
    def _months(self) -> Window:
        if (self.kind == "rolling") != (self.months is not None):
            raise ValueError("months is needed for a rolling window, and only for it")
        return self


class Retention(Strict):
    """How long a tier is kept once reached without qualifying again: ``months`` after the
    day it was last qualified for, until the end of the window after the one it was reached
    in (``end_of_next_window``: reached in 2026, kept until 31 Dec 2027), or ``none`` (until
    the next evaluation finds the member no longer qualifies)."""

    kind: Literal["months", "end_of_next_window", "none"]
    months: int | None = Field(default=None, ge=1, le=60)

    @model_validator(mode="after")
    def _months(self) -> Retention:
        if (self.kind == "months") != (self.months is not None):
            raise ValueError("months is needed for retention kind months, and only for it")
        return self


class Perk(Strict):
    id: str = Field(max_length=300)
    ms: str = Field(max_length=300)
    en: str = Field(max_length=300)


class TierIn(Strict):
    code: str = Field(description="Stable slug, e.g. gold", examples=["gold"])
    names: Names
    thresholds: list[str] = Field(
        description="One per metric of the tier set, as decimal strings; the first tier's are all 0"
    )
    invitation_only: bool = Field(
        default=False, description="Reached only by assignment or a paid membership"
    )
    earn_multiplier: Decimal = Field(default=Decimal(1), ge=1, le=100, decimal_places=4)
    perks: list[Perk] = Field(default_factory=list, max_length=50)
    support_priority: int = Field(default=0, ge=0, le=100)
    color: str | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _code(self) -> TierIn:
        if not CODE.match(self.code):
            raise ValueError("code must be lowercase letters, digits, - or _ (e.g. gold)")
        for t in self.thresholds:
            try:
                ok = Decimal(t) >= 0 and Decimal(t).is_finite()
            except InvalidOperation:
                ok = False
            if not ok:
                raise ValueError(f'threshold {t!r} must be a number of 0 or more, e.g. "5000000"')
        return self


class TierSetIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    metrics: list[Metric] = Field(min_length=1, max_length=2)
    combine: Literal["all", "any"] = Field(
        default="all", description="With two metrics: both thresholds, or either"
    )
    window: Window
    retention: Retention
    downgrade: Literal["one_level", "to_qualified"] = "one_level"
    grace_days: int = Field(default=0, ge=0, le=365)
    at_risk_days: int = Field(
        default=30, ge=0, le=365, description="tier.at_risk is sent this many days ahead"
    )
    tiers: list[TierIn] = Field(min_length=1, max_length=20, description="Lowest first")

    @model_validator(mode="after")
    def _shape(self) -> TierSetIn:
        if self.window.kind in ("rolling", "lifetime") and self.retention.kind == (
            "end_of_next_window"
        ):
            raise ValueError(
                f"retention end_of_next_window needs a calendar or anniversary window, "
                f"not {self.window.kind}"
            )
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise ValueError("tier codes must be unique")
        for t in self.tiers:
            if len(t.thresholds) != len(self.metrics):
                raise ValueError(
                    f"tier {t.code}: give one threshold per metric ({len(self.metrics)})"
                )
        if any(Decimal(x) != 0 for x in self.tiers[0].thresholds):
            raise ValueError("the first tier is where every member starts: its thresholds are 0")
        if self.tiers[0].invitation_only:
            raise ValueError("the first tier cannot be invitation-only")
        earlier: list[Decimal] | None = None
        for t in self.tiers[1:]:
            if t.invitation_only:
                continue
            now = [Decimal(x) for x in t.thresholds]
            if earlier is not None and not all(a >= b for a, b in zip(now, earlier, strict=True)):
                raise ValueError(f"tier {t.code}: thresholds must not be lower than the tier below")
            earlier = now
        return self


class TierOut(TierIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: uuid.UUID
    rank: int


class TierSetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    metrics: list[dict[str, Any]]
    combine: str
    window: dict[str, Any]
    retention: dict[str, Any]
    downgrade: str
    grace_days: int
    at_risk_days: int
    revision: int
    tiers: list[TierOut]


class OverrideIn(Strict):
    tier: str = Field(description="Tier code")
    until: date | None = Field(
        default=None, description="Last day (tenant's time zone) it holds; null: until removed"
    )
    reason: str = Field(min_length=3, max_length=500)


class TierRef(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    rank: int


class ChangeOut(BaseModel):
    at: datetime
    on_day: date
    reason: str
    from_tier: str | None
    to_tier: str
    actor: str
    details: dict[str, Any]


class EvaluateIn(Strict):
    on: date | None = Field(default=None, description="Evaluation day; default: today, local")


class EvaluationReport(BaseModel):
    tier_set_id: uuid.UUID
    on: date
    members_seen: int
    upgraded: int
    downgraded: int
    requalified: int
    overrides_ended: int
    plans_ended: int
    at_risk: int
    skipped_concurrent: int
