"""The demo's plan and a year of subscriptions, through the real services."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from setia.core.time import utcnow
from setia.ledger.models import Transfer
from setia.ledger.verify import verify
from setia.memberships.demo import seed_demo
from setia.memberships.models import Subscription, SubscriptionPayment
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.memberships.conftest import World


def test_seed_demo_spreads_subscriptions_realistically(world: World) -> None:
    members = [world.member(f"M{i}") for i in range(300)]
    with world.db.session() as s:
        tenant = s.get(Tenant, world.t.tenant_id)
        program = s.get(Program, world.t.program_id)
        assert tenant is not None
        assert program is not None
        counts = seed_demo(s, tenant, program, members, random.Random(7), utcnow())
    assert sum(counts.values()) == 24
    assert {"active", "cancelled", "lapsed"} <= set(counts)
    with world.db.session() as s:
        statuses = dict(
            s.execute(select(Subscription.status, func.count()).group_by(Subscription.status)).all()
        )
        assert statuses == counts
        refunded = s.execute(
            select(func.count()).where(SubscriptionPayment.status == "refunded")
        ).scalar_one()
        assert refunded == 1
        assert s.execute(select(func.count()).select_from(SubscriptionPayment)).scalar_one() > 20
        assert verify(s).ok
        bonus = s.execute(
            select(func.count()).select_from(Transfer).where(Transfer.source_type == "subscription")
        ).scalar_one()
        assert bonus > 24  # a bonus per paid month, through the ledger
