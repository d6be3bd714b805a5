"""A till for checkout tests: one tenant (IDR), paying with points on, calls through the API."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.checkout.models import OrderRefundReturn, PointsPayment
from setia.core.db import Database
from setia.events.models import Event, Order
from setia.ledger.models import Lot, Transfer
from setia.members.models import Member
from setia.outbox.models import OutboxMessage
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, configure


class Till:
    def __init__(self, client: TestClient, db: Database, t: TenantFixture) -> None:
        self.c, self.db, self.t = client, db, t
        self._n = itertools.count(1)

    # -- plumbing
    def post(self, path: str, body: Any = None, key: str | None = None) -> Any:
        headers = dict(self.t.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.c.post(path, json=body, headers=headers)

    def get(self, path: str) -> Any:
        return self.c.get(path, headers=self.t.headers)

    def ok(self, response: Any, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        out: dict[str, Any] = response.json()
        return out

    # -- setup
    def configure(self, **changes: Any) -> None:
        configure(self.db, self.t, **changes)

    def member(self, name: str = "Siti") -> str:
        return str(self.ok(self.post("/v1/members", {"name": name}), 201)["id"])

    def grant(self, member: str, points: int) -> None:
        self.ok(
            self.post(
                f"/v1/members/{member}/points/adjust",
                {"points": points, "reason": "opening balance"},
                key=f"grant-{next(self._n)}",
            ),
            201,
        )

    def balance(self, member: str) -> dict[str, Any]:
        return self.ok(self.get(f"/v1/members/{member}/balance"))

    def available(self, member: str) -> int:
        return int(self.balance(member)["available"])

    # -- checkout
    def pay(
        self,
        member: str,
        order: str,
        *,
        total: str = "100000",
        key: str | None = None,
        **kw: Any,
    ) -> Any:
        body = {"member_id": member, "order_id": order, "order_total": total, "currency": "IDR"}
        return self.post("/v1/checkout/points-payments", {**body, **kw}, key=key)

    def held(self, member: str, order: str, points: int, **kw: Any) -> dict[str, Any]:
        return self.ok(self.pay(member, order, points=points, **kw), 201)

    def capture(self, payment: str, body: dict[str, Any] | None = None) -> Any:
        return self.post(f"/v1/checkout/points-payments/{payment}/capture", body)

    def release(self, payment: str) -> Any:
        return self.post(f"/v1/checkout/points-payments/{payment}/release")

    def paid(self, member: str, order: str, points: int, **kw: Any) -> dict[str, Any]:
        payment = self.held(member, order, points, **kw)
        return self.ok(self.capture(payment["id"]))

    def order(self, order: str) -> dict[str, Any]:
        return self.ok(self.get(f"/v1/checkout/orders/{order}"))

    def refund(self, order: str, amount: str, key: str | None = None) -> Any:
        return self.post(
            f"/v1/checkout/orders/{order}/refund",
            {"amount": amount, "reason": "customer returned it"},
            key=key or f"refund-{next(self._n)}",
        )

    # -- events
    def event(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.post("/v1/events", body)
        assert r.status_code in (200, 201), r.text
        out: dict[str, Any] = r.json()
        return out

    def purchase(self, member: str, order: str, amount: str) -> dict[str, Any]:
        return self.event(
            {
                "id": f"buy-{order}",
                "type": "purchase",
                "member": {"id": member},
                "order_id": order,
                "amount": amount,
                "currency": "IDR",
            }
        )

    def refund_event(self, member: str, order: str, amount: str, event_id: str) -> dict[str, Any]:
        return self.event(
            {
                "id": event_id,
                "type": "refund",
                "member": {"id": member},
                "order_id": order,
                "amount": amount,
                "currency": "IDR",
            }
        )

    # -- checks
    def counts(self) -> dict[str, int]:
        """Rows in every table a checkout write may touch."""
        with self.db.session() as s:
            return {
                m.__tablename__: int(s.execute(select(func.count()).select_from(m)).scalar_one())
                for m in (
                    PointsPayment,
                    OrderRefundReturn,
                    Transfer,
                    Lot,
                    OutboxMessage,
                    Event,
                    Order,
                    Member,
                )
            }

    def sound(self) -> None:
        assert_db_sound(self.db)


@pytest.fixture
def till(client: TestClient, db: Database, tenant: TenantFixture) -> Till:
    t = Till(client, db, tenant)
    t.configure(points_payment_rate=Decimal("1"), points_payment_max_percent=100)
    return t
