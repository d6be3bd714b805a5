"""What a purchase earns: the seam where the rules engine plugs in.

Today the program's base earn rate is the only rule. The rules engine (a later issue)
replaces ``purchase_awards`` with an evaluation of the program's rules that returns the
same ``Award`` list; every award names the rule that made it, and the ledger records it
with the program revision, so nothing downstream changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from setia.events.schemas import EventIn
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import Tenant


@dataclass(frozen=True)
class Award:
    points: int
    rule: str
    pending_until: datetime | None
    expires_at: datetime | None


def purchase_awards(
    program: Program,
    tenant: Tenant,
    member: Member,
    event: EventIn,
    amount: Decimal,
    occurred_at: datetime,
) -> list[Award]:
    points = programs.base_points(program, amount)
    if points <= 0:
        return []
    return [
        Award(
            points=points,
            rule="base",
            pending_until=programs.pending_until(program, occurred_at),
            expires_at=programs.expires_at(program, occurred_at, tenant.timezone),
        )
    ]
