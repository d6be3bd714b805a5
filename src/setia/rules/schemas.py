"""The shape of a rule, as stored (JSON) and as sent through the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from setia.rules.conditions import BENEFIT_FACTORS, DAYS, ConditionError, validate

TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
TRIGGER_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
# Time triggers, fired by the daily job in the member's time zone (or the tenant's).
TIME_TRIGGERS = ("schedule.birthday", "schedule.anniversary")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Hours(Strict):
    start: str = Field(pattern=TIME_PATTERN, examples=["06:00"])
    end: str = Field(pattern=TIME_PATTERN, examples=["10:00"], description="Exclusive")


class Schedule(Strict):
    """When a rule may fire, in the tenant's time zone. Every part is optional."""

    active_from: AwareDatetime | None = None
    active_to: AwareDatetime | None = Field(default=None, description="Exclusive")
    days: list[str] | None = Field(default=None, description="mon … sun")
    hours: Hours | None = None

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            bad = [d for d in v if d not in DAYS]
            if bad or not v:
                raise ValueError(f"days must be a non-empty list of {', '.join(DAYS)}")
        return v

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        if self.active_from and self.active_to and self.active_to <= self.active_from:
            raise ValueError("active_to must be after active_from")
        return self


class Effect(Strict):
    """What a rule gives.

    * ``per_amount``: ``points`` for every ``per`` of currency, on the whole order or only on
      the lines that match ``items_where`` (``scope: items``) — e.g. excluding delivery.
    * ``fixed``: ``points`` once.
    * ``multiplier``: the base rule's points for this event × (``factor`` − 1) as a bonus, so
      ``factor: "2"`` makes the total twice the base. ``factor`` may also be
      ``"member.tier_multiplier"`` or ``"member.plan_multiplier"``: the member's tier's or
      paid plan's earn multiplier (1 when they have none).
    * ``per_item``: ``points`` per unit of the lines matching ``items_where``.
    * ``add_tag``: adds ``tag`` to the member (no points).
    """

    type: Literal["per_amount", "fixed", "multiplier", "per_item", "add_tag"]
    points: int | None = Field(default=None, ge=0, le=10_000_000)
    per: str | None = Field(default=None, description='Currency amount, e.g. "1000"')
    scope: Literal["order", "items"] = "order"
    items_where: dict[str, Any] | None = None
    factor: str | None = Field(
        default=None,
        description='Decimal, e.g. "2" or "1.5", or "member.tier_multiplier" / '
        '"member.plan_multiplier"',
    )
    rounding: Literal["floor", "ceil", "round"] = "floor"
    tag: str | None = Field(default=None, min_length=1, max_length=50)
    pending_days: int | None = Field(
        default=None, ge=0, le=365, description="Overrides the program's"
    )
    expiry_months: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="Overrides the program's: expire N months after earning",
    )

    @model_validator(mode="after")
    def _needs(self) -> Effect:
        from decimal import Decimal, InvalidOperation

        def need(*names: str) -> None:
            missing = [n for n in names if getattr(self, n) is None]
            if missing:
                raise ValueError(f"effect {self.type} needs {', '.join(missing)}")

        if self.type == "per_amount":
            need("points", "per")
            try:
                ok = Decimal(str(self.per)) > 0
            except InvalidOperation:
                ok = False
            if not ok:
                raise ValueError('per must be a positive amount, e.g. "1000"')
            if self.scope == "items" and self.items_where is None:
                raise ValueError("scope items needs items_where")
        elif self.type in ("fixed", "per_item"):
            need("points")
        elif self.type == "multiplier":
            need("factor")
            try:
                ok = self.factor in BENEFIT_FACTORS or Decimal(str(self.factor)) >= 1
            except InvalidOperation:
                ok = False
            if not ok:
                raise ValueError(
                    'factor must be a number >= 1, e.g. "2", or "member.tier_multiplier" '
                    'or "member.plan_multiplier"'
                )
        elif self.type == "add_tag":
            need("tag")
        if self.items_where is not None:
            try:
                validate(self.items_where, "effect.items_where", item=True)
            except ConditionError as exc:
                raise ValueError(str(exc)) from None
        return self


class Limit(Strict):
    """A cap per member per period (tenant's time zone), or per order."""

    period: Literal["order", "day", "week", "month", "year", "lifetime"]
    max_points: int | None = Field(default=None, ge=0)
    max_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> Limit:
        if (self.max_points is None) == (self.max_count is None):
            raise ValueError("a limit has exactly one of max_points or max_count")
        if self.period == "order" and self.max_count is not None:
            raise ValueError("per-order limits are in points (max_points)")
        return self


class RuleBody(Strict):
    """A rule: triggers → conditions → effect, with limits, schedule and layering."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Akhir pekan 2× poin",
                    "triggers": ["purchase"],
                    "conditions": {
                        "all": [
                            {
                                "field": "event.local_day_of_week",
                                "op": "in",
                                "value": ["sat", "sun"],
                            }
                        ]
                    },
                    "effect": {"type": "multiplier", "factor": "2"},
                    "limits": [{"period": "month", "max_points": 500}],
                    "mode": "stackable",
                    "priority": 200,
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    triggers: list[str] = Field(
        min_length=1,
        max_length=20,
        description="Event types, or schedule.birthday / schedule.anniversary",
    )
    conditions: dict[str, Any] | None = Field(
        default=None, description="Condition tree; absent = always"
    )
    effect: Effect
    limits: list[Limit] = Field(default_factory=list, max_length=10)
    budget_points: int | None = Field(
        default=None, ge=0, description="Total points this rule may ever give"
    )
    schedule: Schedule | None = None
    mode: Literal["stackable", "exclusive", "universal"] = "stackable"
    priority: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="Lower runs first; the program's base rate runs at 100",
    )
    campaign_id: uuid.UUID | None = None
    enabled: bool = True

    @field_validator("triggers")
    @classmethod
    def _triggers(cls, v: list[str]) -> list[str]:
        import re

        for t in v:
            if not re.match(TRIGGER_PATTERN, t):
                raise ValueError(
                    f"{t!r} is not an event type (lowercase, dotted: purchase, review.submitted)"
                )
        return v

    @model_validator(mode="after")
    def _conditions(self) -> RuleBody:
        if self.conditions is not None:
            try:
                validate(self.conditions)
            except ConditionError as exc:
                raise ValueError(str(exc)) from None
        money_effect = self.effect.type in ("per_amount", "multiplier", "per_item")
        if money_effect and any(t != "purchase" for t in self.triggers):
            raise ValueError(
                f"effect {self.effect.type} needs an order: use it with the purchase trigger only"
            )
        return self


class RuleOut(RuleBody):
    id: uuid.UUID
    program_id: uuid.UUID
    revision: int
    created_at: datetime
    updated_at: datetime


class RevisionOut(BaseModel):
    revision: int
    definition: dict[str, Any]
    changed_by: str
    created_at: datetime


class CampaignBody(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Harbolnas 12.12"])
    description: str | None = Field(default=None, max_length=2000)
    schedule: Schedule | None = None
    budget_points: int | None = Field(default=None, ge=0)
    enabled: bool = True


class CampaignOut(CampaignBody):
    id: uuid.UUID
    program_id: uuid.UUID
    points_awarded: int = 0
    created_at: datetime
