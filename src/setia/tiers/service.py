"""Tiers: qualification, movement, overrides and the member's view (being written)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from setia.tenants.models import Tenant


def after_activity(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    occurred_at: datetime,
) -> None:
    """Upgrade at once when the member's activity now qualifies for a higher tier."""


def after_refund(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    occurred_at: datetime,
) -> None:
    """A refund that undoes the qualification of the member's tier marks it revoked."""
