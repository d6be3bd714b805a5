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


def test_replay_gives_completion_rewards_now_not_backdated(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """Purchases 20 months ago complete a badge created today. Its points are given now and
    expire 12 months from now (the program's rule), not born expired; the progress keeps
    the old completion time."""
    from datetime import UTC, datetime, timedelta

    from setia.badges import service as badges
    from setia.badges.schemas import DefinitionIn
    from setia.core.time import utcnow
    from setia.ledger.models import Lot
    from setia.tenants.models import Tenant

    with db.session() as s:
        program = programs.get_program(s, tenant.tenant_id, None)
        programs.update_program(
            s,
            program,
            {"expiry_policy": "after_duration", "expiry_months": 12},
            actor="test",
        )
        s.commit()
    long_ago = utcnow() - timedelta(days=610)
    events = [
        {
            "id": f"old-{i}",
            "type": "purchase",
            "member": {"phone": "0812-5555-0001"},
            "order_id": f"OLD-{i}",
            "amount": "30000",
            "currency": "IDR",
            "occurred_at": (long_ago + timedelta(days=i)).isoformat(),
        }
        for i in range(3)
    ]
    send(client, tenant, *events)
    before = utcnow()
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        program = programs.get_program(s, tenant.tenant_id, None)
        badges.create_definition(
            s,
            t,
            program,
            DefinitionIn.model_validate(
                {
                    "code": "tiga-kali",
                    "names": {"id": "Tiga kali", "en": "Three times"},
                    "criteria": {"event_type": "purchase", "measure": "count", "target": 3},
                    "rewards": {"points": 250},
                }
            ),
        )
        assert badges.replay(s, t, program) == 3
        s.commit()
    with db.session() as s:
        lot = s.execute(select(Lot).where(Lot.source_type == "badge")).scalar_one()
        transfer = s.get(Transfer, lot.transfer_id)
        assert transfer is not None
        assert lot.amount == 250
        assert lot.earned_at >= before
        assert transfer.effective_at >= before
        assert lot.expires_at is not None
        assert lot.expires_at > datetime.now(UTC) + timedelta(days=360)
    member = send(client, tenant, {**events[0], "id": "probe", "order_id": "PROBE"})[0]
    balance = client.get(
        f"/v1/members/{member['member_id']}/balance", headers=tenant.headers
    ).json()
    assert balance["available"] >= 250
    assert_db_sound(db)
