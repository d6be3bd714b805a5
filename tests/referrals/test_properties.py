"""Invariants over random histories: whatever the order of sign-ups and job runs around a
Jakarta month boundary, caps hold per local month and in total, every role of a referral is
rewarded at most once, the ledger holds exactly the points the reward rows say, and running
the job again changes nothing."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.events import service as events
from setia.events.schemas import EventIn
from setia.ledger.models import Transfer
from setia.members import service as members
from setia.programs import service as programs
from setia.referrals import jobs, service
from setia.referrals.models import ReferralReward
from setia.tenants.models import Tenant
from tests.conftest import make_tenant
from tests.ledger.support import assert_db_sound

BOUNDARY = datetime(2027, 1, 31, 17, 0, tzinfo=UTC)  # 00:00 on 1 February in Jakarta
_n = itertools.count()

steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(-30, 30)),  # (advocate, hours from the boundary)
    min_size=1,
    max_size=9,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=steps,
    per_month=st.integers(1, 3),
    lifetime=st.integers(1, 5),
    level2=st.booleans(),
)
def test_caps_and_exactly_once(
    db: Database, plan: list[tuple[int, int]], per_month: int, lifetime: int, level2: bool
) -> None:
    t = make_tenant(db, name=f"Prop {next(_n)}")
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        program = programs.get_program(s, tenant.id, t.program_id)
        programs.update_program(s, program, {"pending_days": 7}, actor="test")
        service.put_settings(
            s,
            tenant,
            program,
            {
                "enabled": True,
                "min_amount": 50000,
                "referrer_points": 10,
                "referee_points": 3,
                "level2_enabled": level2,
                "level2_points": 1,
                "cap_per_month": per_month,
                "cap_lifetime": lifetime,
                "velocity_count": 1000,
            },
            actor="test",
        )
        root = members.create_member(s, tenant, {"external_id": "root"}, source="test")
        advocates = [
            members.create_member(s, tenant, {"external_id": f"adv{i}"}, source="test")
            for i in range(3)
        ]
        # The advocates were themselves referred by root (qualified), for the second level.
        for a in advocates:
            service.attach(
                s, tenant, program, a, service.ensure_code(s, tenant.id, root).code, actor="t"
            )
        ids = [a.id for a in advocates]
        root_id = root.id
    bought = utcnow() - timedelta(hours=1)

    def purchase(member_id: object, order: str) -> None:
        with db.session() as s:
            tenant = s.get(Tenant, t.tenant_id)
            assert tenant is not None
            events.record_event(
                s,
                tenant,
                EventIn.model_validate(
                    {
                        "id": order,
                        "type": "purchase",
                        "occurred_at": bought.isoformat(),
                        "member": {"id": str(member_id)},
                        "order_id": order,
                        "amount": "60000",
                        "currency": "IDR",
                    }
                ),
            )

    for i, a in enumerate(ids):
        purchase(a, f"adv-{i}")
    jobs.run_due(db, BOUNDARY - timedelta(days=40))
    times = sorted(BOUNDARY + timedelta(hours=h) for _, h in plan)
    for k, ((adv, _), at) in enumerate(zip(plan, times, strict=True)):
        with db.session() as s:
            tenant = s.get(Tenant, t.tenant_id)
            assert tenant is not None
            program = programs.get_program(s, tenant.id, t.program_id)
            m = members.create_member(s, tenant, {"external_id": f"r{k}"}, source="test")
            advocate = members.get_member(s, tenant.id, ids[adv])
            service.attach(
                s, tenant, program, m, service.ensure_code(s, tenant.id, advocate).code, actor="t"
            )
            mid = m.id
        purchase(mid, f"o-{k}")
        jobs.run_due(db, at)
    with db.session() as s:
        rows = list(
            s.execute(
                select(ReferralReward).where(ReferralReward.tenant_id == t.tenant_id)
            ).scalars()
        )
        assert len({(r.referral_id, r.role) for r in rows}) == len(rows)
        given_ = [r for r in rows if r.status == "given"]
        advocate_rows = [r for r in given_ if r.role in ("referrer", "level2")]
        per = Counter((r.member_id, r.local_month) for r in advocate_rows)
        assert all(n <= per_month for n in per.values()), per
        total = Counter(r.member_id for r in advocate_rows)
        assert all(n <= lifetime for n in total.values()), total
        if not level2:
            assert not any(r.role == "level2" for r in rows)
        assert all(r.member_id != root_id or r.role == "referrer" or level2 for r in rows)
        points = s.execute(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.source_type == "referral", Transfer.program_id == t.program_id
            )
        ).scalar_one()
        assert int(points) == sum(r.points for r in given_)
        # Every referee got their reward exactly once.
        assert Counter(r.role for r in given_)["referee"] == len(plan) + 3
    # Again, at every instant: nothing changes.
    for at in times:
        assert jobs.run_due(db, at).as_dict() == {}
    assert_db_sound(db)
