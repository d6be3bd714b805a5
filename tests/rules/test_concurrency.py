"""Limits and budgets under concurrent events: threads released together on a barrier, each
with its own API client, one database. On SQLite ``BEGIN IMMEDIATE`` serialises the same
race; on PostgreSQL it takes row locks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from setia.app import create_app
from setia.core.db import Database
from setia.ledger.verify import verify
from tests.conftest import TenantFixture
from tests.rules.helpers import Api, local

T = TypeVar("T")


def race(n: int, work: Callable[[TestClient, int], T], db: Database) -> list[T]:
    barrier = threading.Barrier(n, timeout=60)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with TestClient(create_app(db), raise_server_exceptions=False) as client:
                barrier.wait()
                results[i] = work(client, i)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def purchases(n: int, tenant: TenantFixture, db: Database, member: str = "M1") -> list[Any]:
    def post(client: TestClient, i: int) -> Any:
        r = client.post(
            "/v1/events",
            json={"id": f"race-{i}", "type": "purchase", "member": {"external_id": member},
                  "order_id": f"R-{i}", "amount": "10000", "currency": "IDR",
                  "occurred_at": local(2026, 1, 5, 9, i % 60)},
            headers=tenant.headers,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()

    return race(n, post, db)


def bonus_total(results: list[Any], name: str = "Bonus") -> int:
    return sum(
        a["points"] for r in results for a in r["points"]["awards"] if a["rule_name"] == name
    )


@pytest.mark.parametrize(
    ("limit", "expected"),
    [({"period": "day", "max_count": 1}, 100), ({"period": "month", "max_points": 250}, 250)],
    ids=["count", "points"],
)
def test_concurrent_purchases_of_one_member_respect_the_limit(
    api: Api, db: Database, tenant: TenantFixture, limit: dict[str, Any], expected: int
) -> None:
    api.add_rule(name="Bonus", effect={"type": "fixed", "points": 100}, limits=[limit])
    api.post("/v1/members", {"external_id": "M1"})
    results = purchases(8, tenant, db)
    assert bonus_total(results) == expected
    with db.session() as s:
        assert verify(s).ok


def test_concurrent_purchases_respect_a_rule_budget(
    api: Api, db: Database, tenant: TenantFixture
) -> None:
    api.add_rule(name="Bonus", effect={"type": "fixed", "points": 100}, budget_points=350)
    for i in range(8):
        api.post("/v1/members", {"external_id": f"M{i}"})

    def post(client: TestClient, i: int) -> Any:
        r = client.post(
            "/v1/events",
            json={"id": f"race-{i}", "type": "purchase", "member": {"external_id": f"M{i}"},
                  "order_id": f"R-{i}", "amount": "10000", "currency": "IDR"},
            headers=tenant.headers,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()

    results = race(8, post, db)
    assert bonus_total(results) == 350


def test_concurrent_batches_with_limits_and_budgets_neither_deadlock_nor_overspend(
    api: Api, db: Database, tenant: TenantFixture
) -> None:
    """Rules whose checks lock in different orders (a limit on big baskets, a budget on
    every purchase) across batches of several members: every batch goes through, every cap
    holds."""
    api.add_rule(
        name="Big basket",
        effect={"type": "fixed", "points": 100},
        conditions={"field": "event.amount", "op": "gte", "value": "50000"},
        limits=[{"period": "day", "max_count": 1}],
        priority=150,
    )
    api.add_rule(
        name="Budgeted", effect={"type": "fixed", "points": 10}, budget_points=500, priority=250
    )
    members = [f"M{i}" for i in range(5)]
    for m in members:
        api.post("/v1/members", {"external_id": m})

    def batch(client: TestClient, i: int) -> Any:
        events = [
            {"id": f"b{i}-{k}", "type": "purchase", "member": {"external_id": members[(i + k) % 5]},
             "order_id": f"B{i}-{k}", "amount": "80000" if k % 2 else "20000", "currency": "IDR",
             "occurred_at": local(2026, 1, 5, 9, k)}
            for k in range(20)
        ]  # fmt: skip
        r = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 20, r.text
        return r.json()

    results = race(4, batch, db)
    awards = [
        (item["result"]["member_id"], a["rule_name"], a["points"])
        for out in results
        for item in out["results"]
        for a in item["result"]["points"]["awards"]
    ]
    big = [m for m, name, _ in awards if name == "Big basket"]
    assert sorted(big) == sorted(set(big))  # at most once per member (one day)
    assert len(big) == 5
    assert sum(p for _, name, p in awards if name == "Budgeted") == 500
    with db.session() as s:
        assert verify(s).ok
