"""Random sequences of redeem (held or at once), confirm, cancel and the due-work job,
checked after every step against a plain model: stock used and member usage equal the
live redemptions, each member's available and held points are what the model says, every
refusal has the code the model expects, and ``setia ledger verify`` passes at the end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.jobs.service import run_due
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.members import service as members
from setia.programs.models import Program
from setia.rewards import service
from setia.rewards.models import Reward, RewardMemberUsage, RewardRedemption
from setia.rewards.schemas import RedemptionIn, RewardIn
from setia.tenants.models import Tenant
from tests.conftest import make_tenant
from tests.ledger.support import assert_db_sound

START = 200
REWARDS = {
    # code: (points, stock_total, member_limit)
    "A": (30, 4, None),
    "B": (50, None, 2),
    "C": (70, 2, 1),
}
LIVE = ("held", "requested")

op = st.one_of(
    st.tuples(
        st.just("redeem"), st.integers(0, 2), st.sampled_from(sorted(REWARDS)), st.booleans()
    ),
    st.tuples(st.just("confirm"), st.integers(0, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("job")),
)


@dataclass
class Model:
    reds: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, member, code, st

    def live(self, code: str | None = None, member: str | None = None) -> int:
        return sum(
            1
            for _, m, c, s in self.reds
            if s in LIVE and (code is None or c == code) and (member is None or m == member)
        )

    def spent(self, member: str) -> int:
        return sum(REWARDS[c][0] for _, m, c, s in self.reds if m == member and s in LIVE)

    def held(self, member: str) -> int:
        return sum(REWARDS[c][0] for _, m, c, s in self.reds if m == member and s == "held")

    def expect_redeem(self, member: str, code: str) -> str | None:
        points, total, limit = REWARDS[code]
        if total is not None and self.live(code) >= total:
            return "out_of_stock"
        if limit is not None and self.live(code, member) >= limit:
            return "member_limit_reached"
        if START - self.spent(member) < points:
            return "insufficient_points"
        return None


def _setup(db: Database) -> tuple[uuid.UUID, uuid.UUID, list[str]]:
    t = make_tenant(db, name=f"Prop {uuid.uuid4().hex[:6]}")
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        for code, (points, total, limit) in REWARDS.items():
            body: dict[str, Any] = {
                "kind": "physical",
                "names": {"en": code},
                "points": points,
                "stock_total": total,
            }
            if limit is not None:
                body |= {"member_limit": limit, "member_limit_period": "lifetime"}
            service.put_reward(s, tenant, program, code, RewardIn.model_validate(body), actor="t")
        ids = []
        for n in range(3):
            m = members.create_member(s, tenant, {"external_id": f"P{n}"}, source="test")
            ledger.earn(
                s,
                ledger.Context(
                    program_id=program.id,
                    idempotency_key=f"seed:{m.id}",
                    request_hash="seed",
                    actor="test",
                ),
                member_id=m.id,
                amount=START,
                earned_at=utcnow(),
                pending_until=None,
                expires_at=None,
            )
            ids.append(str(m.id))
    return t.tenant_id, t.program_id, ids


def _unit(db: Database, fn: Any) -> Any:
    with db.session() as s:
        return fn(s)


def _outcome(db: Database, fn: Any) -> tuple[Any, str | None]:
    """(result, None) when ``fn`` commits; (None, error code) when it is refused."""
    try:
        return _unit(db, fn), None
    except SetiaError as exc:
        return None, exc.code


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_random_sequences_match_the_model(db: Database, ops: list[tuple[Any, ...]]) -> None:
    tenant_id, program_id, member_ids = _setup(db)
    model = Model()

    def tenant_program(s: Session) -> tuple[Tenant, Program]:
        tenant = s.get(Tenant, tenant_id)
        program = s.get(Program, program_id)
        assert tenant is not None
        assert program is not None
        return tenant, program

    for step in ops:
        if step[0] == "redeem":
            _, mi, code, confirm = step
            member = member_ids[mi]
            expected = model.expect_redeem(member, code)

            body = RedemptionIn(reward=code, confirm=confirm)

            def redeem(s: Session, member: str = member, body: RedemptionIn = body) -> str:
                tenant, program = tenant_program(s)
                red, _ = service.redeem(
                    s, tenant, program, uuid.UUID(member), body, actor="t", idempotency_key=None
                )
                return str(red.id)

            rid, refused = _outcome(db, redeem)
            assert refused == expected, step
            if rid is not None:
                model.reds.append((rid, member, code, "requested" if confirm else "held"))
        elif step[0] in ("confirm", "cancel") and model.reds:
            i = step[1] % len(model.reds)
            rid, member, code, status = model.reds[i]

            def act(s: Session, what: str = step[0], rid: str = rid) -> str:
                tenant, _ = tenant_program(s)
                if what == "confirm":
                    return service.confirm(s, tenant, uuid.UUID(rid), actor="t").status
                return service.cancel(s, tenant, uuid.UUID(rid), actor="t")[0].status

            if step[0] == "confirm":
                want = {"held": "requested", "requested": "requested"}.get(status)
                fail = "invalid_transition"
            else:
                want = {
                    "held": "cancelled",
                    "requested": "cancelled",
                    "cancelled": "cancelled",
                }.get(status)
                fail = "not_cancellable"
            got, refused = _outcome(db, act)
            assert got == want, (step, status)
            assert refused == (fail if want is None else None), (step, status)
            if got is not None:
                model.reds[i] = (rid, member, code, got)
        elif step[0] == "job":
            report = run_due(db, utcnow() + timedelta(days=1))
            assert report.errors == []
            model.reds = [(a, b, c, "expired" if s == "held" else s) for a, b, c, s in model.reds]
        # the database agrees with the model after every step
        for member in member_ids:
            bal = _unit(
                db, lambda s, m=member: queries.balance(s, program_id, uuid.UUID(m), now=utcnow())
            )
            assert bal["available"] == START - model.spent(member)
            assert bal["held"] == model.held(member)
        with db.session() as s:
            statuses = dict(
                s.execute(
                    select(RewardRedemption.id, RewardRedemption.status).where(
                        RewardRedemption.program_id == program_id
                    )
                ).all()
            )
            assert {str(k): v for k, v in statuses.items()} == {r[0]: r[3] for r in model.reds}
            used = dict(
                s.execute(
                    select(Reward.code, Reward.stock_used).where(Reward.program_id == program_id)
                ).all()
            )
            usage = {
                (str(m), c): u
                for m, c, u in s.execute(
                    select(RewardMemberUsage.member_id, Reward.code, RewardMemberUsage.used)
                    .join(Reward, Reward.id == RewardMemberUsage.reward_id)
                    .where(Reward.program_id == program_id)
                )
            }
        for code, (_, total, limit) in REWARDS.items():
            if total is not None:
                assert used[code] == model.live(code)
            if limit is not None:
                for member in member_ids:
                    assert usage.get((member, code), 0) == model.live(code, member)
    assert_db_sound(db)
