"""A controllable world for membership tests: one tenant (Asia/Jakarta, IDR), a plan, and
service calls at any moment (``at``), so a year is simulated in milliseconds."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from setia.core.db import Database
from setia.ledger.models import Transfer
from setia.members import service as members
from setia.memberships import jobs, service
from setia.memberships.models import Subscription
from setia.memberships.schemas import InitialPayment, PaymentIn, PlanIn
from setia.outbox.models import OutboxMessage
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture

JKT = ZoneInfo("Asia/Jakarta")


def jkt(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=JKT)


def plan_body(**kw: Any) -> PlanIn:
    body: dict[str, Any] = {
        "code": "plus",
        "names": {"id": "Member Plus", "en": "Member Plus"},
        "price": "49000",
        "currency": "IDR",
        "period": "monthly",
        "grace_days": 7,
        "earn_multiplier": "1.5",
        "monthly_bonus_points": 500,
        "tier_code": "gold",
        "tier_mode": "protect",
        **kw,
    }
    return PlanIn.model_validate(body)


@dataclass
class World:
    db: Database
    t: TenantFixture
    benefits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _n: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _tenant(self, session: Any) -> Tenant:
        tenant = session.get(Tenant, self.t.tenant_id)
        assert tenant is not None
        return tenant

    def member(self, name: str = "Siti") -> uuid.UUID:
        with self.db.session() as s:
            m = members.create_member(s, self._tenant(s), {"name": name}, source="test")
            return m.id

    def plan(self, **kw: Any) -> uuid.UUID:
        with self.db.session() as s:
            program = s.get(Program, self.t.program_id)
            assert program is not None
            return service.create_plan(s, program, plan_body(**kw), actor="test").id

    def start(
        self,
        member_id: uuid.UUID,
        at: datetime,
        *,
        pay: bool = True,
        plan: str = "plus",
        amount: str = "49000",
        **kw: Any,
    ) -> uuid.UUID:
        payment = (
            InitialPayment(
                gateway="midtrans",
                external_id=f"ORD-{next(self._n)}",
                amount=amount,
                currency="IDR",
                occurred_at=at,
            )
            if pay
            else None
        )
        with self.db.session() as s:
            sub, _ = service.start_subscription(
                s,
                self._tenant(s),
                member_id=member_id,
                plan_code=plan,
                started_at=at,
                payment=payment,
                actor="test",
                now=at,
                **kw,
            )
            return sub.id

    def pay(
        self,
        sub_id: uuid.UUID | None,
        at: datetime,
        *,
        status: str = "paid",
        external_id: str | None = None,
        amount: str = "49000",
        now: datetime | None = None,
        **kw: Any,
    ) -> service.PaymentResult:
        body = PaymentIn.model_validate(
            {
                "subscription_id": str(sub_id) if sub_id else None,
                "gateway": "midtrans",
                "external_id": external_id or f"ORD-{next(self._n)}",
                "status": status,
                "amount": amount,
                "currency": "IDR",
                "occurred_at": at.isoformat(),
                **kw,
            }
        )
        with self.db.session() as s:
            return service.record_payment(s, self._tenant(s), body, actor="test", now=now or at)

    def run(self, at: datetime) -> jobs.MembershipReport:
        return jobs.run_due(self.db, at)

    def sub(self, sub_id: uuid.UUID) -> Subscription:
        with self.db.session() as s:
            sub = s.get(Subscription, sub_id)
            assert sub is not None
            return sub

    def cancel(self, sub_id: uuid.UUID, at: datetime) -> Subscription:
        with self.db.session() as s:
            return service.cancel(s, self._tenant(s), sub_id, actor="test", now=at)

    def resume(self, sub_id: uuid.UUID, at: datetime) -> Subscription:
        with self.db.session() as s:
            return service.resume(s, self._tenant(s), sub_id, actor="test", now=at)

    def bonus_transfers(self, sub_id: uuid.UUID) -> int:
        with self.db.session() as s:
            return int(
                s.execute(
                    select(func.count())
                    .select_from(Transfer)
                    .where(
                        Transfer.source_type == "subscription", Transfer.source_id == str(sub_id)
                    )
                ).scalar_one()
            )

    def topics(self) -> list[str]:
        with self.db.session() as s:
            return list(
                s.execute(
                    select(OutboxMessage.topic)
                    .where(OutboxMessage.topic.like("membership.%"))
                    .order_by(OutboxMessage.id)
                ).scalars()
            )


@pytest.fixture
def world(db: Database, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch) -> World:
    w = World(db, tenant)

    def set_benefit(*_a: Any, **kw: Any) -> None:
        w.benefits.append(("set", kw))

    def clear_benefit(*_a: Any, **kw: Any) -> None:
        w.benefits.append(("clear", kw))

    monkeypatch.setattr("setia.tiers.service.set_plan_benefit", set_benefit)
    monkeypatch.setattr("setia.tiers.service.clear_plan_benefit", clear_benefit)
    return w
