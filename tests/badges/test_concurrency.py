"""Events of one member recorded at the same time (PostgreSQL: real parallel writers) count
each once: the first progress row is created once, later ones wait for its lock."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.app import create_app
from setia.core.db import Database
from tests.badges.support import define, progress, purchase
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound


def _parallel(db: Database, t: TenantFixture, bodies: list[tuple[str, Any]]) -> list[int]:
    barrier = threading.Barrier(len(bodies), timeout=60)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def run(path: str, body: Any) -> None:
        try:
            with TestClient(create_app(db), raise_server_exceptions=False) as c:
                barrier.wait()
                r = c.post(path, json=body, headers=t.headers)
                statuses.append(r.status_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=b) for b in bodies]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    return statuses


@pytest.mark.postgres_only
def test_parallel_events_of_one_member_count_each_once(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "empat",
        {"event_type": "purchase", "measure": "count", "target": 4},
        rewards={"points": 40},
    )
    define(
        client,
        t,
        "toko",
        {"event_type": "purchase", "measure": "distinct", "field": "event.store", "target": 6},
    )
    r = client.post("/v1/members", json={"external_id": "M1"}, headers=t.headers)
    assert r.status_code == 201
    single = [
        ("/v1/events", purchase("M1", f"2026-10-0{i + 1}T10:00:00+07:00", store=f"s{i}"))
        for i in range(3)
    ]
    batch = [
        (
            "/v1/events/batch",
            {"events": [purchase("M1", "2026-10-05T10:00:00+07:00", store="s3")]},
        )
    ]
    statuses = _parallel(db, t, single + batch)
    assert sorted(statuses) == [200, 201, 201, 201]
    assert progress(db, t, "M1", "empat")["value"] == "4"
    assert progress(db, t, "M1", "empat")["reward_points"] == 40
    assert progress(db, t, "M1", "toko")["value"] == "4"
    # Replaying all of them at once again counts nothing.
    _parallel(db, t, single + batch)
    assert progress(db, t, "M1", "empat")["events"] == 4
    assert_db_sound(db)
