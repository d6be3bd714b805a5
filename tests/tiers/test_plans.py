"""The tiers side of a paid membership: ``set_plan_benefit`` / ``clear_plan_benefit`` as the
memberships domain calls them, in a session of its own."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from setia.core.db import Database
from setia.core.errors import NotFound
from setia.tenants.models import Tenant
from setia.tiers import service
from tests.conftest import TenantFixture
from tests.rules.helpers import Api, local
from tests.tiers.conftest import Clock
from tests.tiers.helpers import code_of, evaluate, history, member_id, outbox, setup, topics, view


def plan(
    db: Database,
    t: TenantFixture,
    member: str,
    *,
    mode: str,
    until: date | None,
    tier: str = "gold",
) -> None:
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        service.set_plan_benefit(
            s,
            tenant,
            t.program_id,
            uuid.UUID(member),
            tier_code=tier,
            mode=mode,
            until=until,
            actor="memberships",
            reference="SUB-1",
        )
        s.commit()


def lapse(db: Database, t: TenantFixture, member: str) -> None:
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        service.clear_plan_benefit(
            s, tenant, t.program_id, uuid.UUID(member), actor="memberships", reference="SUB-1"
        )
        s.commit()


def test_protect_keeps_the_tier_past_retention_then_the_lapse_lets_it_go(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    """Gold in 2025 (kept to 31 Dec 2026), nothing bought since. A paid plan protecting Gold
    keeps it at the evaluations of 2027; when the membership lapses, the next evaluation
    moves the member down one level (the retention has long passed)."""
    setup(api, at_risk_days=30)
    clock.set(2025, 4, 1)
    m = member_id(api.purchase(5_000_000, at=local(2025, 4, 1)))
    clock.set(2026, 6, 1)
    plan(db, tenant, m, mode="protect", until=None)
    v = view(api, m)
    assert (v["tier"]["code"], v["plan"]) == (
        "gold",
        {"tier": "gold", "mode": "protect", "until": None},
    )
    assert v["at_risk"] is None
    plan(db, tenant, m, mode="protect", until=None)  # the same again: nothing written
    assert [h["reason"] for h in history(api, m)] == ["plan", "upgraded"]
    for day in (date(2026, 12, 2), date(2027, 1, 1), date(2027, 3, 1)):
        r = evaluate(api, day)
        assert (r["downgraded"], r["at_risk"]) == (0, 0), day
    assert code_of(api, m) == "gold"
    clock.set(2027, 3, 10)
    lapse(db, tenant, m)
    assert code_of(api, m) == "gold"  # downgrades wait for the evaluation
    clock.set(2027, 3, 11, 0, 5)
    assert evaluate(api, date(2027, 3, 11))["downgraded"] == 1
    assert code_of(api, m) == "silver"
    assert topics(db) == ["tier.upgraded", "tier.downgraded"]
    assert [h["reason"] for h in history(api, m)][:2] == ["downgraded", "plan_ended"]


def test_protect_with_an_end_date_ends_at_the_evaluation_after_it(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    setup(api)
    m = member_id(api.purchase(5_000_000, at=local(2025, 4, 1)))
    clock.set(2026, 6, 1)
    plan(db, tenant, m, mode="protect", until=date(2027, 2, 28))
    assert evaluate(api, date(2027, 2, 28))["downgraded"] == 0
    r = evaluate(api, date(2027, 3, 1))
    assert (r["plans_ended"], r["downgraded"]) == (1, 1)
    assert code_of(api, m) == "silver"
    assert evaluate(api, date(2027, 3, 1)) == {**r, "plans_ended": 0, "downgraded": 0}


def test_protect_does_not_lift_a_lower_earned_tier(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    """Protect is not grant: a Silver member protected at Gold stays Silver, and keeps
    Silver past its retention."""
    setup(api)
    m = member_id(api.purchase(1_000_000, at=local(2025, 4, 1)))
    clock.set(2025, 5, 1)
    plan(db, tenant, m, mode="protect", until=None)
    assert code_of(api, m) == "silver"
    assert evaluate(api, date(2027, 1, 1))["downgraded"] == 0
    assert code_of(api, m) == "silver"


def test_grant_lifts_the_tier_while_the_plan_runs(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    setup(api)
    m = member_id(api.purchase(100_000, at=local(2025, 4, 1)))
    clock.set(2025, 4, 2)
    plan(db, tenant, m, mode="grant", until=date(2025, 5, 1), tier="silver")
    v = view(api, m)
    assert (v["tier"]["code"], v["earned_tier"]["code"]) == ("silver", "bronze")
    assert [(o["topic"], o["to"], o["reason"]) for o in outbox(db)] == [
        ("tier.upgraded", "silver", "plan")
    ]
    # Earning Gold on top of a Silver grant: Gold.
    api.purchase(5_000_000, at=local(2025, 4, 3))
    assert code_of(api, m) == "gold"
    assert evaluate(api, date(2025, 5, 2))["plans_ended"] == 1
    assert code_of(api, m) == "gold"  # earned, so nothing moves
    assert topics(db) == ["tier.upgraded", "tier.upgraded"]


def test_grant_ends_with_the_lapse_at_the_next_evaluation_or_at_once(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    setup(api)
    a = member_id(api.purchase(100_000, at=local(2025, 4, 1), member="A"))
    b = member_id(api.purchase(100_000, at=local(2025, 4, 1), member="B"))
    clock.set(2025, 4, 2)
    plan(db, tenant, a, mode="grant", until=date(2025, 4, 30))
    plan(db, tenant, b, mode="grant", until=None)
    assert (code_of(api, a), code_of(api, b)) == ("gold", "gold")
    assert evaluate(api, date(2025, 4, 30))["plans_ended"] == 0
    assert evaluate(api, date(2025, 5, 1))["plans_ended"] == 1
    assert (code_of(api, a), code_of(api, b)) == ("bronze", "gold")
    lapse(db, tenant, b)  # clearing a grant takes the tier away at once
    assert code_of(api, b) == "bronze"
    lapse(db, tenant, b)  # again: nothing
    assert [o["topic"] for o in outbox(db)].count("tier.downgraded") == 2
    assert len(history(api, b)) == 2


def test_plan_benefit_edges(api: Api, db: Database, tenant: TenantFixture) -> None:
    m = member_id(api.purchase(100_000))
    plan(db, tenant, m, mode="grant", until=None)  # no tier set yet: nothing, no error
    setup(api)
    with pytest.raises(NotFound) as err:
        plan(db, tenant, m, mode="grant", until=None, tier="platinum")
    assert err.value.code == "tier_not_found"
    with pytest.raises(ValueError, match="gift"):
        plan(db, tenant, m, mode="gift", until=None)
    assert code_of(api, m) == "bronze"
