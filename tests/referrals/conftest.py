"""A referral world: a tenant (Asia/Jakarta, IDR) with a 7-day return window and a referral
program, members created through the API, purchases and refunds as events, the job run at
chosen instants."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.ledger.models import Account, Transfer
from setia.members.models import Member
from setia.outbox.models import OutboxMessage
from setia.referrals import jobs
from setia.referrals.models import (
    Referral,
    ReferralCode,
    ReferralDecision,
    ReferralReward,
    ReferralShare,
)
from setia.referrals.service import JobReport
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, configure

PROBLEM = "application/problem+json"
SETTINGS = {
    "enabled": True,
    "min_amount": "50000",
    "referrer_points": 500,
    "referee_points": 250,
    "velocity_count": 5,
    "velocity_minutes": 10,
    "share_url": "https://kopi.example/r/{code}",
}


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["detail"].strip()
    return body


class World:
    def __init__(self, db: Database, client: TestClient, tenant: TenantFixture) -> None:
        self.db, self.client, self.t = db, client, tenant
        self._n = itertools.count(1)

    @property
    def h(self) -> dict[str, str]:
        return self.t.headers

    def settings(self, **changes: Any) -> dict[str, Any]:
        r = self.client.put("/v1/referrals/settings", json=changes, headers=self.h)
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def member(self, name: str | None = None, **fields: Any) -> uuid.UUID:
        n = next(self._n)
        body = {"external_id": f"M{n}", "name": name or f"Member {n}", **fields}
        r = self.client.post("/v1/members", json=body, headers=self.h)
        assert r.status_code == 201, r.text
        return uuid.UUID(r.json()["id"])

    def code(self, member_id: uuid.UUID) -> str:
        r = self.client.get(f"/v1/members/{member_id}/referral", headers=self.h)
        assert r.status_code == 200, r.text
        code: str = r.json()["code"]
        return code

    def referred(
        self, referrer: uuid.UUID, name: str | None = None, **fields: Any
    ) -> tuple[uuid.UUID, dict[str, Any]]:
        """A new member who signs up with ``referrer``'s code; returns (member, referral)."""
        member_id = self.member(name, referral_code=self.code(referrer), **fields)
        return member_id, self.referral_of(member_id)

    def referral_of(self, referee: uuid.UUID) -> dict[str, Any]:
        r = self.client.get("/v1/referrals", params={"member_id": str(referee)}, headers=self.h)
        assert r.status_code == 200, r.text
        rows = [x for x in r.json()["data"] if x["referee_id"] == str(referee)]
        assert len(rows) == 1, rows
        return self.referral(rows[0]["id"])

    def referral(self, referral_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/referrals/{referral_id}", headers=self.h)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def buy(
        self, member_id: uuid.UUID, amount: str, at: datetime | None = None, order: str = ""
    ) -> str:
        order_id = order or f"INV-{next(self._n)}"
        at = at or utcnow() - timedelta(hours=1)
        r = self.client.post(
            "/v1/events",
            json={
                "id": f"ev-{order_id}",
                "type": "purchase",
                "occurred_at": at.isoformat(),
                "member": {"id": str(member_id)},
                "order_id": order_id,
                "amount": amount,
                "currency": "IDR",
            },
            headers=self.h,
        )
        assert r.status_code in (200, 201), r.text
        return order_id

    def refund(self, member_id: uuid.UUID, order_id: str, amount: str) -> None:
        r = self.client.post(
            "/v1/events",
            json={
                "id": f"rf-{order_id}-{next(self._n)}",
                "type": "refund",
                "occurred_at": (utcnow() - timedelta(minutes=5)).isoformat(),
                "member": {"id": str(member_id)},
                "order_id": order_id,
                "amount": amount,
                "currency": "IDR",
            },
            headers=self.h,
        )
        assert r.status_code in (200, 201), r.text

    def run(self, at: datetime) -> JobReport:
        return jobs.run_due(self.db, at)

    def points(self, member_id: uuid.UUID) -> int:
        r = self.client.get(f"/v1/members/{member_id}/balance", headers=self.h)
        assert r.status_code == 200, r.text
        body = r.json()
        return int(body["available"]) + int(body.get("pending", 0))

    def referral_transfers(self) -> int:
        with self.db.session() as s:
            q = select(func.count()).select_from(Transfer).where(Transfer.source_type == "referral")
            return int(s.execute(q).scalar_one())

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            return {
                m.__tablename__: int(s.execute(select(func.count()).select_from(m)).scalar_one())
                for m in (
                    Member,
                    Referral,
                    ReferralCode,
                    ReferralDecision,
                    ReferralReward,
                    ReferralShare,
                    Transfer,
                    OutboxMessage,
                )
            }

    def topics(self, prefix: str = "referral.") -> list[str]:
        with self.db.session() as s:
            return [
                t
                for t in s.execute(select(OutboxMessage.topic).order_by(OutboxMessage.id)).scalars()
                if t.startswith(prefix)
            ]

    def sound(self) -> None:
        assert_db_sound(self.db)

    def rewards(self, member_id: uuid.UUID) -> list[tuple[str, str, int]]:
        """(role, status, points) of every referral reward row of the member."""
        with self.db.session() as s:
            return [
                (r.role, r.status, r.points)
                for r in s.execute(
                    select(ReferralReward)
                    .where(ReferralReward.member_id == member_id)
                    .order_by(ReferralReward.id)
                ).scalars()
            ]

    def referral_points(self, member_id: uuid.UUID) -> int:
        with self.db.session() as s:
            return int(
                s.execute(
                    select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                        Transfer.source_type == "referral",
                        Transfer.credit_account_id.in_(
                            select(Account.id).where(Account.member_id == member_id)
                        ),
                    )
                ).scalar_one()
            )


def after_window(days: int = 8) -> datetime:
    return utcnow() + timedelta(days=days)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.fixture
def world(db: Database, client: TestClient, tenant: TenantFixture) -> World:
    configure(db, tenant, pending_days=7)
    w = World(db, client, tenant)
    w.settings(**SETTINGS)
    return w
