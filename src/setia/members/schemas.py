from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MemberCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "external_id": "C-1001",
                    "name": "Siti Rahayu",
                    "phone": "0812-3456-7890",
                    "email": "siti@example.co.id",
                    "locale": "id",
                    "birthday": "1994-03-17",
                    "tags": ["walk-in"],
                    "consents": {"whatsapp": True, "email": False},
                    "consent_source": "pos-form",
                }
            ]
        },
    )

    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(
        default=None, max_length=40, description="Any format; stored as E.164"
    )
    email: str | None = Field(default=None, max_length=320)
    locale: str | None = Field(default=None, pattern="^(id|ms|en)$")
    birthday: date | None = None
    timezone: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = None
    consents: dict[str, bool] | None = Field(default=None, description="email, whatsapp, sms")
    consent_source: str = Field(default="api", max_length=100)
    referral_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="A referrer's code: the new member is linked to them (docs/referrals.md); "
        "a refused code refuses the sign-up, nothing written",
    )
    device_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The sign-up device's id (referral self-referral check)",
    )


class MemberUpdate(Strict):
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    locale: str | None = Field(default=None, pattern="^(id|ms|en)$")
    birthday: date | None = None
    timezone: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = Field(
        default=None, max_length=100, description="null clears the member's tags"
    )
    attributes: dict[str, Any] | None = Field(
        default=None, description="null clears the member's attributes"
    )

    @field_validator("tags", "attributes", mode="after")
    @classmethod
    def _null_clears(cls, value: Any, info: Any) -> Any:
        if value is None:
            return [] if info.field_name == "tags" else {}
        return value

    @model_validator(mode="after")
    def _locale_given(self) -> MemberUpdate:
        if "locale" in self.model_fields_set and self.locale is None:
            raise ValueError("locale cannot be null: give id, ms or en")
        return self


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str | None
    name: str | None
    phone: str | None
    email: str | None
    locale: str
    birthday: date | None
    timezone: str | None
    tags: list[str]
    attributes: dict[str, Any]
    status: str
    merged_into_id: uuid.UUID | None
    last_activity_at: datetime | None
    created_at: datetime
    consents: dict[str, bool] = Field(default_factory=dict)
    referral_count: int = Field(default=0, description="Qualified referrals the member made")
    badges: list[str] = Field(
        default_factory=list,
        description="Codes of the badges and challenges the member completed in the default "
        "program (what rules read as member.badges)",
    )


class ConsentIn(Strict):
    channel: str = Field(pattern="^(email|whatsapp|sms)$")
    granted: bool
    source: str = Field(
        min_length=1, max_length=100, examples=["portal", "pos-form", "whatsapp-optout"]
    )


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    granted: bool
    source: str
    changed_at: datetime


class MergeIn(Strict):
    source_member_id: uuid.UUID = Field(description="The duplicate that is folded into this member")
    reason: str = Field(min_length=3, max_length=500)


class EraseIn(Strict):
    reason: str = Field(min_length=3, max_length=500, examples=["data subject request 2026-11-23"])
    confirm: bool = Field(description="Must be true: erasure cannot be undone")
