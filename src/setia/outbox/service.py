from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from setia.core.db import new_id
from setia.core.time import utcnow
from setia.outbox.models import OutboxMessage

# Built once: every recorded event publishes, and building the statement costs more than
# running it.
_INSERT = insert(cast(Table, OutboxMessage.__table__))


def _message(tenant_id: uuid.UUID, topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "tenant_id": tenant_id,
        "topic": topic,
        "payload": payload,
        "created_at": utcnow(),
    }


def publish(session: Session, tenant_id: uuid.UUID, topic: str, payload: dict[str, Any]) -> None:
    """Queue a domain event; it commits or rolls back with the caller's transaction."""
    session.execute(_INSERT, _message(tenant_id, topic, payload))


def publish_many(
    session: Session, tenant_id: uuid.UUID, topic: str, payloads: list[dict[str, Any]]
) -> None:
    """Queue several domain events of one topic with one statement, in list order."""
    if payloads:
        session.execute(_INSERT, [_message(tenant_id, topic, p) for p in payloads])
