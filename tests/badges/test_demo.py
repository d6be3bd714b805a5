"""The demo's badges: progress computed from history by replay equals what counting the
events as they arrive gives; seeding twice adds nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.badges.models import LeaderboardConsent
from setia.core.db import Database
from setia.demo.badges import DEFINITIONS, seed_badges
from setia.ledger.models import Transfer
from setia.programs import service as programs
from setia.tenants import service as tenants
from tests.badges.support import progress_rows, send
from tests.badges.test_paths import history
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound


def _seed(db: Database, t: TenantFixture) -> dict[str, int]:
    with db.session() as s:
        tenant = tenants.get_tenant(s, t.tenant_id)
        out = seed_badges(s, tenant, programs.get_program(s, t.tenant_id, None))
        s.commit()
    return out


def _badge_points(db: Database, t: TenantFixture) -> list[int]:
    with db.session() as s:
        return sorted(
            s.execute(
                select(Transfer.amount).where(
                    Transfer.program_id == t.program_id, Transfer.source_type == "badge"
                )
            ).scalars()
        )


def test_replayed_history_matches_live_counting(client: TestClient, db: Database) -> None:
    live, demo = make_tenant(db), make_tenant(db)
    for body in DEFINITIONS:
        r = client.post("/v1/badges", json=body, headers=live.headers)
        assert r.status_code == 201, r.text
    events = history(5, 150)
    for e in events:
        for item in e.get("items", []):
            item["sku"] = {"TEH": "MOCHA2", "ROTI": "V60"}.get(item["sku"], item["sku"])
            item["category"] = "coffee"
    send(client, live, *events)
    send(client, demo, *events)
    out = _seed(db, demo)
    assert out["definitions"] == len(DEFINITIONS)
    assert out["events_counted"] == len(events)
    assert out["completions"] > 0
    assert progress_rows(db, live) == progress_rows(db, demo)
    assert _badge_points(db, live) == _badge_points(db, demo)
    again = _seed(db, demo)
    assert again["events_counted"] == 0
    assert again["leaderboard_opt_ins"] == 0
    assert progress_rows(db, live) == progress_rows(db, demo)
    assert _badge_points(db, live) == _badge_points(db, demo)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(LeaderboardConsent)).scalar_one() == 0
    assert_db_sound(db)
