from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from setia.core.api import AdminCaller, ReadCaller, SessionDep, problems, write
from setia.tenants import service

router = APIRouter(prefix="/v1", tags=["tenant"])


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    country: str
    currency: str
    timezone: str
    locale: str
    auto_create_members: bool


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field(pattern="^(admin|pos|read)$")
    name: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    scope: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    api_key: str = Field(description="Shown once; store it now")


@router.get("/tenant", response_model=TenantOut, responses=problems(403))
def get_tenant(caller: ReadCaller) -> Any:
    """The tenant (business) the API key belongs to, with its settings."""
    return caller.tenant


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: str | None = Field(default=None, pattern="^(id|ms|en)$")
    timezone: str | None = Field(default=None, max_length=64, examples=["Asia/Kuala_Lumpur"])
    auto_create_members: bool | None = Field(
        default=None, description="Create a member when an event names an unknown identity"
    )


@router.patch("/tenant", response_model=TenantOut, responses=problems(403))
def update_tenant(body: TenantUpdate, session: SessionDep, caller: AdminCaller) -> Any:
    """Change the tenant's settings (admin)."""
    changes = body.model_dump(exclude_unset=True)
    return write(
        session,
        lambda: service.update_tenant(session, caller.tenant.id, changes, actor=caller.actor),
    )


@router.get("/api-keys", response_model=list[KeyOut], responses=problems(403))
def list_keys(session: SessionDep, caller: AdminCaller) -> Any:
    """The tenant's API keys, revoked ones included. Keys are shown by prefix only."""
    return service.list_keys(session, caller.tenant.id)


@router.post("/api-keys", response_model=NewKeyOut, status_code=201, responses=problems(403))
def create_key(body: KeyIn, session: SessionDep, caller: AdminCaller) -> Any:
    """Create an API key with the `admin`, `pos` or `read` scope. The key is in this answer only."""
    key, secret = write(
        session,
        lambda: service.create_key(session, caller.tenant.id, scope=body.scope, name=body.name),
    )
    return NewKeyOut(**KeyOut.model_validate(key).model_dump(), api_key=secret)


@router.delete("/api-keys/{key_id}", response_model=KeyOut, responses=problems(403, 404))
def revoke_key(key_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Any:
    """Revoke an API key; it is refused (401) from the next request on."""
    return write(session, lambda: service.revoke_key(session, key_id, caller.tenant.id))
