"""Tiers: qualification, movement, overrides and the member's view (being written)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

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


def set_plan_benefit(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    tier_code: str,
    mode: str,
    until: date | None,
    actor: str,
    reference: str,
) -> None:
    """A paid membership grants (``grant``: the tier is a floor) or protects (``protect``: no
    downgrade below the earned tier) a tier until ``until`` (inclusive, tenant's local date;
    None = until cleared). Raises NotFound (code ``tier_not_found``) for an unknown tier code.
    Does nothing when the program has no tier set. Idempotent."""


def clear_plan_benefit(
    session: Session,
    tenant: Tenant,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    actor: str,
    reference: str,
) -> None:
    """The membership ended (lapsed, cancelled, refunded): the plan's tier benefit goes.
    The member keeps what they earned; a downgrade still waits for the next evaluation."""
