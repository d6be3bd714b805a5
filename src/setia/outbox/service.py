from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from setia.core.db import new_id
from setia.core.time import utcnow
from setia.outbox.models import OutboxMessage


def publish(session: Session, tenant_id: uuid.UUID, topic: str, payload: dict[str, Any]) -> None:
    """Queue a domain event; it commits or rolls back with the caller's transaction."""
    session.execute(
        insert(OutboxMessage).values(
            id=new_id(), tenant_id=tenant_id, topic=topic, payload=payload, created_at=utcnow()
        )
    )
