"""The nightly evaluation: a second run on the same day changes nothing; chunks do not
change the outcome; two runs at once (PostgreSQL) do not move anyone twice."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest

from setia.core.db import Database
from setia.tiers import service
from tests.conftest import TenantFixture
from tests.rules.helpers import Api, local
from tests.tiers.conftest import Clock
from tests.tiers.helpers import code_of, evaluate, member_id, outbox, setup, snapshot


def population(api: Api, clock: Clock) -> dict[str, str]:
    """Members in every situation an evaluation handles, as of early 2027."""
    out = {}
    # Gold in 2025, nothing since: Gold → Silver on 1 Jan 2027.
    out["lapsed_gold"] = member_id(api.purchase(5_000_000, at=local(2025, 3, 1), member="G"))
    # Silver in 2025 and 2026: stays.
    out["steady"] = member_id(api.purchase(1_000_000, at=local(2025, 3, 1), member="S"))
    api.purchase(1_000_000, at=local(2026, 3, 1), member="S")
    # Gold revoked by a refund: moves at the next evaluation.
    out["refunded"] = member_id(
        api.purchase(5_000_000, at=local(2026, 3, 1), member="R", order_id="R-1")
    )
    api.send(
        {
            "id": "refund-R",
            "type": "refund",
            "member": {"external_id": "R"},
            "order_id": "R-1",
            "amount": "4500000",
            "occurred_at": local(2026, 4, 1),
        }
    )
    # Override to Gold until 10 Jan 2027.
    out["override"] = member_id(api.purchase(10_000, at=local(2026, 3, 1), member="O"))
    clock.set(2026, 3, 1)
    r = api.put(
        f"/v1/members/{out['override']}/tier/override",
        {"tier": "gold", "until": "2027-01-10", "reason": "uji coba"},
    )
    assert r.status_code == 200, r.text
    # Base tier, some spend: nothing to do.
    out["base"] = member_id(api.purchase(10_000, at=local(2026, 3, 1), member="B"))
    return out


DAYS = (date(2026, 4, 2), date(2026, 12, 2), date(2027, 1, 1), date(2027, 1, 11))


def test_rerunning_the_evaluation_on_the_same_day_changes_nothing(
    api: Api, db: Database, clock: Clock
) -> None:
    setup(api, at_risk_days=30)
    members = population(api, clock)
    moved = 0
    for day in DAYS:
        clock.set(day.year, day.month, day.day, 0, 5)
        first = evaluate(api, day)
        moved += sum(first[k] for k in ("downgraded", "at_risk", "overrides_ended"))
        after_first = snapshot(db)
        clock.set(day.year, day.month, day.day, 3)
        second = evaluate(api, day)
        assert snapshot(db) == after_first, day
        assert (second["upgraded"], second["downgraded"], second["requalified"]) == (0, 0, 0)
        assert (second["at_risk"], second["overrides_ended"]) == (0, 0)
    assert moved == 4  # revoked, at risk, Gold → Silver, override ended
    assert {k: code_of(api, m) for k, m in members.items()} == {
        "lapsed_gold": "silver",
        "steady": "silver",
        "refunded": "bronze",
        "override": "bronze",
        "base": "bronze",
    }


def test_chunk_size_does_not_change_the_outcome(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    setup(api)
    for i in range(7):
        api.purchase(5_000_000, at=local(2025, 3, 1), member=f"C{i}")
    report = service.evaluate(db, tenant.tenant_id, tenant.program_id, date(2027, 1, 1), chunk=2)
    assert (report.members_seen, report.downgraded) == (7, 7)
    assert [o["to"] for o in outbox(db) if o["topic"] == "tier.downgraded"] == ["silver"] * 7


@pytest.mark.postgres_only
def test_two_evaluations_at_once_do_not_double_move(
    api: Api, db: Database, tenant: TenantFixture, clock: Clock
) -> None:
    """40 Gold members whose retention ended; two evaluations of the same day run together
    in small chunks: each member is moved once (one history line, one message), and the
    reports add up to 40."""
    setup(api, at_risk_days=0)
    members = [
        member_id(api.purchase(5_000_000, at=local(2025, 3, 1), member=f"P{i}")) for i in range(40)
    ]
    clock.set(2027, 1, 1, 0, 5)
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(
                service.evaluate(db, tenant.tenant_id, tenant.program_id, date(2027, 1, 1), chunk=3)
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.downgraded for r in reports) == 40
    down = [o for o in outbox(db) if o["topic"] == "tier.downgraded"]
    assert sorted(o["member_id"] for o in down) == sorted(members)
    assert {o["to"] for o in down} == {"silver"}
    with db.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(
            text("SELECT member_id, COUNT(*) FROM tier_changes GROUP BY member_id")
        ).all()
        versions = conn.execute(text("SELECT DISTINCT version FROM member_tiers")).scalars().all()
    assert {int(n) for _, n in rows} == {2}  # upgraded, then downgraded once
    assert versions == [2]
    again = service.evaluate(db, tenant.tenant_id, tenant.program_id, date(2027, 1, 1))
    assert again.downgraded == 0
