"""The demo's referral history on a small year of members and purchases."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.demo.referrals import BURST, seed_referrals
from setia.events import service as events
from setia.events.models import Order
from setia.events.schemas import EventIn
from setia.members import service as members
from setia.programs.models import Program
from setia.referrals.models import Referral, ReferralReward
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, configure


def _year(db: Database, t: TenantFixture, n: int = 80) -> None:
    rng = random.Random(3)
    now = utcnow()
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        for i in range(n):
            joined = now - timedelta(days=360 - i * 4, hours=rng.randint(0, 20))
            m = members.create_member(
                s, tenant, {"external_id": f"D{i}", "name": f"Demo {i}"}, source="test"
            )
            m.created_at = joined
            s.flush()
            for k in range(2):
                at = joined + timedelta(days=1 + 30 * k, hours=1)
                if at > now - timedelta(hours=1):
                    break
                order = f"D{i}-{k}"
                amount = rng.choice(("30000", "60000", "90000", "150000"))
                events.record_event(
                    s,
                    tenant,
                    EventIn.model_validate(
                        {
                            "id": order,
                            "type": "purchase",
                            "occurred_at": at.isoformat(),
                            "member": {"id": str(m.id)},
                            "order_id": order,
                            "amount": amount,
                            "currency": "IDR",
                        }
                    ),
                )
                if k == 0 and i % 9 == 0:
                    events.record_event(
                        s,
                        tenant,
                        EventIn.model_validate(
                            {
                                "id": f"{order}-refund",
                                "type": "refund",
                                "occurred_at": (at + timedelta(days=2)).isoformat(),
                                "member": {"id": str(m.id)},
                                "order_id": order,
                                "amount": amount,
                                "currency": "IDR",
                            }
                        ),
                    )


def test_demo_referral_history(db: Database, tenant: TenantFixture) -> None:
    configure(db, tenant, pending_days=7)
    _year(db, tenant)
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        p = s.get(Program, tenant.program_id)
        assert t is not None
        assert p is not None
        summary = seed_referrals(s, t, p, random.Random(7))
    by_status = summary["by_status"]
    assert by_status["held"] >= BURST
    assert by_status.get("rewarded", 0) >= 1
    assert by_status.get("cancelled", 0) >= 1
    assert summary["referrals"] >= BURST + 3
    with db.session() as s:
        # Every historical referral was made before the referee's first order.
        rows = s.execute(select(Referral).where(Referral.held_reason.is_(None))).scalars().all()
        for r in rows:
            first = s.execute(
                select(func.min(Order.occurred_at)).where(Order.member_id == r.referee_id)
            ).scalar_one()
            assert first is None or first >= r.created_at
        given = s.execute(
            select(func.count()).select_from(ReferralReward).where(ReferralReward.status == "given")
        ).scalar_one()
        assert given >= 2
    assert_db_sound(db)
