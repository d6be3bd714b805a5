"""What every router shares: the unit of work, authentication, pagination, problem docs."""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.errors import Forbidden, InvalidInput, SetiaError, Unauthorized
from setia.tenants import service as tenants
from setia.tenants.models import ApiKey, Tenant

T = TypeVar("T")


class Problem(BaseModel):
    """RFC 9457 problem details. ``code`` is stable: match on it, not on ``detail``."""

    type: str = Field(examples=["https://setia.dev/problems/insufficient_points"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["insufficient_points"])
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="Field errors (422)")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request",
        401: "Missing, unknown or revoked API key",
        403: "The API key's scope does not allow this",
        404: "Not found (or owned by another tenant)",
        409: "Business conflict; see `code`",
        413: "Request body too large",
        422: "Malformed payload; see `errors`",
    }
    return {
        s: {
            "model": Problem,
            "description": descriptions.get(s, ""),
            "content": {"application/problem+json": {}},
        }
        for s in (401, 422, *statuses)
    }


def answered(model: Any, status: int) -> dict[int | str, dict[str, Any]]:
    """The other success of a write that is safe to repeat: ``200`` when a repeat finds what
    the first call created (``201``), or ``201`` when the first call of a ``PUT`` creates."""
    description = (
        "Already done: the same request again answers what the first call did"
        if status == 200
        else "Created by this call (a later one answers 200)"
    )
    return {status: {"model": model, "description": description}}


class ServiceBusy(SetiaError):
    status = 503
    code = "database_busy"
    title = "Database busy"


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    """One session per request. Endpoints commit through ``commit``; anything else rolls back."""
    session = db.sessionmaker()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


# PostgreSQL broke a deadlock (40P01) or refused a serialization (40001): the whole
# transaction was rolled back and nothing was written, so running it again is safe.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def write(session: Session, fn: Callable[[], T], *, attempts: int = 3) -> T:
    """Run ``fn`` and commit. A unique-key race (a concurrent retry of the same request won)
    rolls back and runs ``fn`` again, which then finds the winner's result. A PostgreSQL
    deadlock or serialization failure (the transaction was rolled back whole) runs ``fn``
    again after a short random pause, up to ``attempts`` times; then, like an SQLite write
    that waited too long for the lock, it is ``503 database_busy``."""
    for attempt in range(attempts):
        try:
            result = fn()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            session.info.clear()
            if attempt == attempts - 1:
                raise
        except OperationalError as exc:
            session.rollback()
            if _retryable(exc) and attempt < attempts - 1:
                session.info.clear()
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                continue
            if _retryable(exc) or "locked" in str(exc).lower() or "deadlock" in str(exc).lower():
                raise ServiceBusy("the database is busy; retry the request") from None
            raise
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")


@dataclass
class Caller:
    tenant: Tenant
    key: ApiKey

    @property
    def actor(self) -> str:
        return f"api-key:{self.key.id}"


def _caller(
    session: SessionDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Caller:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send the API key as `Authorization: Bearer <key>`")
    tenant, key = tenants.authenticate(session, authorization[7:].strip())
    session.commit()
    return Caller(tenant=tenant, key=key)


def require(scope: str) -> Any:
    def dep(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if scope not in tenants.SCOPE_GRANTS[caller.key.scope]:
            raise Forbidden(
                f"this needs an API key with the {scope!r} scope; yours is {caller.key.scope!r}"
            )
        return caller

    return Depends(dep)


ReadCaller = Annotated[Caller, require("read")]
PosCaller = Annotated[Caller, require("pos")]
AdminCaller = Annotated[Caller, require("admin")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Makes a retried write safe"),
]


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise InvalidInput(
            "the cursor is not valid; use next_cursor from the previous page"
        ) from None


Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(description="next_cursor from the previous page")]
