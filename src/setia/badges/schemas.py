"""Request and response bodies of the badges API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from setia.core.i18n import Localized
from setia.events.schemas import EVENT_TYPE_PATTERN

Kind = Literal["badge", "challenge"]
Status = Literal["active", "archived"]
Measure = Literal["count", "sum", "distinct", "streak", "first"]
PeriodType = Literal["all_time", "month", "campaign"]
StreakUnit = Literal["day", "week", "month"]

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,59}$"


class CriteriaIn(BaseModel):
    """What counts. ``conditions`` filters the events (the rules' condition language; event
    fields and items tests only). ``field``: for ``sum`` one of ``event.amount``,
    ``items.amount``, ``items.quantity``, ``event.attributes.<name>``; for ``distinct`` one
    of ``item.sku``, ``item.category``, ``item.brand``, ``item.name``, ``event.store``,
    ``event.channel``, ``event.payment_method``, ``event.attributes.<name>``.
    ``items_where`` picks the order lines an ``item.*``/``items.*`` field reads."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(
        min_length=1, max_length=60, pattern=EVENT_TYPE_PATTERN, examples=["purchase"]
    )
    measure: Measure
    target: str | int = Field(
        description="How much completes it: a count, an amount (decimal string), a number "
        "of distinct values, of consecutive periods; 1 for `first`",
        examples=[5],
    )
    field: str | None = Field(default=None, max_length=120)
    items_where: dict[str, Any] | None = None
    conditions: dict[str, Any] | None = None
    streak_unit: StreakUnit | None = None


class PeriodIn(BaseModel):
    """When events count. ``all_time``; ``month`` with ``recurring: true`` (progress starts
    again each calendar month in the tenant's zone) or with ``month: "YYYY-MM"`` (that
    month only); ``campaign`` with ``starts_at`` and ``ends_at`` (end exclusive). A
    window (``starts_at``/``ends_at``) may also bound an all-time or a recurring one."""

    model_config = ConfigDict(extra="forbid")

    type: PeriodType = "all_time"
    recurring: bool = False
    month: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class RewardsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(default=0, ge=0, le=10**9)
    coupon_campaign_id: uuid.UUID | None = Field(
        default=None, description="A coupon campaign of the tenant: one code bound to the member"
    )


class DefinitionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "penjelajah-kopi",
                    "kind": "badge",
                    "names": {"id": "Penjelajah Kopi", "en": "Coffee Explorer"},
                    "descriptions": {"id": "Coba 5 minuman berbeda"},
                    "image_url": "https://cdn.example.com/badges/kopi.png",
                    "criteria": {
                        "event_type": "purchase",
                        "measure": "distinct",
                        "field": "item.sku",
                        "items_where": {"field": "item.category", "op": "eq", "value": "coffee"},
                        "target": 5,
                    },
                    "period": {"type": "all_time"},
                    "rewards": {"points": 500},
                }
            ]
        },
    )

    code: str = Field(pattern=CODE_PATTERN, description="Stable code; rules read it")
    kind: Kind = "badge"
    names: Localized
    descriptions: Localized | None = None
    image_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://\S+$")
    criteria: CriteriaIn
    period: PeriodIn = Field(default_factory=PeriodIn)
    rewards: RewardsIn = Field(default_factory=RewardsIn)
    status: Status = "active"

    @field_validator("descriptions", mode="before")
    @classmethod
    def _no_description(cls, value: Any) -> Any:
        return None if value == {} else value  # as a definition without one is answered


class DefinitionPatch(BaseModel):
    """Only the fields sent change. ``criteria`` and ``period`` can change only while no
    member has progress on the definition."""

    model_config = ConfigDict(extra="forbid")

    names: Localized | None = None
    descriptions: Localized | None = None
    image_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://\S+$")
    criteria: CriteriaIn | None = None
    period: PeriodIn | None = None
    rewards: RewardsIn | None = None
    status: Status | None = None

    @field_validator("descriptions", mode="before")
    @classmethod
    def _no_description(cls, value: Any) -> Any:
        return None if value == {} else value


class DefinitionOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    kind: Kind
    status: Status
    name: str
    description: str | None
    names: dict[str, Any]
    descriptions: dict[str, Any]
    image_url: str | None
    criteria: dict[str, Any]
    period: dict[str, Any]
    rewards: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class ProgressOut(BaseModel):
    badge_id: uuid.UUID
    code: str
    kind: Kind
    name: str
    image_url: str | None
    period: str = Field(description="`all`, or the local month `YYYY-MM` of a recurring one")
    value: str = Field(description="Progress so far (a count, or an amount for a sum)")
    target: str
    percent: int
    text: str = Field(examples=["3 of 5"])
    completed: bool
    completed_at: datetime | None
    reward: dict[str, Any] | None


class MemberBadgesOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    badges: list[str] = Field(description="Codes earned (what rules read as member.badges)")
    earned: list[ProgressOut]
    in_progress: list[ProgressOut]


class LeaderRow(BaseModel):
    rank: int
    display_name: str
    value: str
    completed_at: datetime | None


class LeaderboardOut(BaseModel):
    badge_id: uuid.UUID
    code: str
    name: str
    period: str
    target: str
    data: list[LeaderRow]


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opted_in: bool
    display_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="Shown on leaderboards; default: the first name and the initial of the last",
    )
    source: str = Field(min_length=1, max_length=100, examples=["app-settings"])


class ConsentOut(BaseModel):
    member_id: uuid.UUID
    opted_in: bool
    display_name: str | None
    shown_as: str | None = Field(description="What leaderboards show (null: not shown)")
    source: str | None
    changed_at: datetime | None
