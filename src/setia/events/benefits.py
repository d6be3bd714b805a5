"""What a member's standing adds to the rules' context: tier and paid membership.

The one place the event path asks other domains about a member, so the single-event path
and the batch path read the same thing: ``member_benefits`` for one member,
``member_benefits_many`` for a batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from setia.memberships import service as memberships
from setia.tiers import context as tiers


def member_benefits(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID
) -> dict[str, Any]:
    return member_benefits_many(session, program_id, [member_id])[member_id]


def member_benefits_many(
    session: Session, program_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    ids = list(dict.fromkeys(member_ids))
    tier = tiers.tiers_of(session, program_id, ids)
    # One query for the whole list: each member's live subscription, if any.
    plans = memberships.plan_benefits_many(session, program_id, ids)
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for m in ids:
        plan = plans.get(m)
        out[m] = {
            **tier[m],
            "plan": plan[0] if plan else None,
            "plan_multiplier": plan[1] if plan else Decimal(1),
        }
    return out
