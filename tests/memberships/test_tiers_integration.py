"""With the real tiers service (no stand-ins): a plan protecting the demo's gold tier sets
the member's plan benefit on start and renewal, and clears it when the subscription lapses."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from setia.core.db import Database
from setia.demo.tiers import create_tiers
from setia.members import service as members
from setia.memberships import jobs, service
from setia.memberships.demo import create_plan
from setia.memberships.schemas import InitialPayment, PaymentIn
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.tiers.models import MemberTier, Tier
from tests.conftest import TenantFixture
from tests.memberships.conftest import jkt


def plan_state(db: Database, member_id: uuid.UUID) -> tuple[str | None, str | None, date | None]:
    with db.session() as s:
        row = s.execute(
            select(Tier.code, MemberTier.plan_mode, MemberTier.plan_until)
            .join(Tier, Tier.id == MemberTier.plan_tier_id, isouter=True)
            .where(MemberTier.member_id == member_id)
        ).one_or_none()
        return (row[0], row[1], row[2]) if row else (None, None, None)


def test_plan_benefit_follows_the_subscription(db: Database, tenant: TenantFixture) -> None:
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        program = s.get(Program, tenant.program_id)
        assert t is not None
        assert program is not None
        create_tiers(s, t, program)
        plan = create_plan(s, program)
        assert plan.tier_code == "emas"
        member = members.create_member(s, t, {"name": "Siti"}, source="test").id
        sub, _ = service.start_subscription(
            s,
            t,
            member_id=member,
            plan_code=plan.code,
            started_at=jkt(2024, 1, 31),
            payment=InitialPayment(
                gateway="midtrans", external_id="MP-1", amount="49000", currency="IDR"
            ),
            actor="test",
            now=jkt(2024, 1, 31),
        )
        sub_id = sub.id
    # Ends 29 Feb 10:00, plus 7 grace days: benefits through 7 March.
    assert plan_state(db, member) == ("emas", "protect", date(2024, 3, 7))
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        service.record_payment(
            s,
            t,
            PaymentIn(
                subscription_id=sub_id,
                gateway="midtrans",
                external_id="MP-2",
                status="paid",
                amount="49000",
                currency="IDR",
                occurred_at=jkt(2024, 2, 29, 9),
            ),
            actor="test",
            now=jkt(2024, 2, 29, 9),
        )
    assert plan_state(db, member) == ("emas", "protect", date(2024, 4, 7))
    jobs.run_due(db, jkt(2024, 4, 7, 10))
    assert plan_state(db, member)[0] is None


def test_a_plan_must_name_a_tier_the_program_has(db: Database, tenant: TenantFixture) -> None:
    import pytest

    from setia.core.errors import InvalidInput
    from tests.memberships.conftest import plan_body

    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        program = s.get(Program, tenant.program_id)
        assert t is not None
        assert program is not None
        create_tiers(s, t, program)
        with pytest.raises(InvalidInput) as err:
            service.create_plan(
                s, program, plan_body(tier_code="platinum", tier_mode="protect"), actor="test"
            )
        assert err.value.code == "tier_not_found"
        assert "perunggu, perak, emas, duta" in err.value.detail
