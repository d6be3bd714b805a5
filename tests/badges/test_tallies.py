"""Running progress is one tally row per member, program and period; completions keep their
own row; migration 0016 folds old progress rows into tallies and its downgrade unfolds them."""

from __future__ import annotations

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.badges.models import BadgeProgress, BadgeTally
from setia.core.db import Database
from setia.core.migrate import alembic_config, upgrade
from tests.badges.support import define, progress_rows, purchase, send, send_batch
from tests.conftest import TenantFixture

COFFEE = {"field": "item.category", "op": "eq", "value": "coffee"}


def _setup(client: TestClient, t: TenantFixture) -> None:
    define(client, t, "lima", {"event_type": "purchase", "measure": "count", "target": 5})
    define(client, t, "pertama", {"event_type": "purchase", "measure": "first", "target": 1})
    define(
        client,
        t,
        "penjelajah",
        {"event_type": "purchase", "measure": "distinct", "field": "item.sku", "target": 3},
    )
    define(
        client,
        t,
        "bulanan",
        {"event_type": "purchase", "measure": "count", "target": 2},
        kind="challenge",
        period={"type": "month", "recurring": True},
    )


def _coffee(sku: str) -> list[dict[str, object]]:
    return [{"sku": sku, "category": "coffee", "quantity": 1, "unit_price": "25000"}]


def test_one_tally_row_per_member_and_period_whatever_the_definitions(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    _setup(client, t)
    send(client, t, purchase("A", "2026-10-05T09:00:00+07:00", items=_coffee("KOPI")))
    send_batch(
        client,
        t,
        [
            purchase("A", "2026-10-06T09:00:00+07:00", items=_coffee("LATTE")),
            purchase("B", "2026-10-06T10:00:00+07:00", items=_coffee("KOPI")),
            purchase("A", "2026-11-01T09:00:00+07:00", items=_coffee("KOPI")),
        ],
    )
    with db.session() as s:
        tallies = s.execute(select(func.count()).select_from(BadgeTally)).scalar_one()
        completions = s.execute(select(func.count()).select_from(BadgeProgress)).scalar_one()
    # A: "all", 2026-10 and 2026-11; B: "all" and 2026-10
    assert tallies == 5
    # pertama (A, B) and A's October challenge (2 purchases): completion rows only
    assert completions == 3
    rows = {(r["member"], r["code"], r["period"]): r for r in progress_rows(db, t)}
    assert rows[("A", "lima", "all")]["value"] == "3"
    assert rows[("A", "lima", "all")]["completed_at"] is None
    assert rows[("A", "penjelajah", "all")]["state"] == {"values": ["KOPI", "LATTE"]}
    assert rows[("A", "bulanan", "2026-10")]["completed_at"] is not None
    assert rows[("A", "bulanan", "2026-11")]["value"] == "1"
    assert rows[("B", "pertama", "all")]["completed_at"] is not None


def test_migration_0016_folds_progress_rows_and_its_downgrade_unfolds_them(
    client: TestClient, db: Database, db_url: str, tenant: TenantFixture
) -> None:
    t = tenant
    _setup(client, t)
    send(
        client,
        t,
        purchase("A", "2026-10-05T09:00:00+07:00", items=_coffee("KOPI")),
        purchase("A", "2026-10-06T09:00:00+07:00", items=_coffee("LATTE")),
        purchase("B", "2026-10-06T10:00:00+07:00", items=_coffee("KOPI")),
    )
    before = progress_rows(db, t)
    assert any(r["completed_at"] is None for r in before)
    assert any(r["completed_at"] is not None for r in before)
    db.dispose()

    command.downgrade(alembic_config(db_url), "0015")
    down = Database(db_url)
    try:
        with down.session() as s:
            rows = s.execute(
                select(
                    BadgeProgress.__table__.c.period_key,
                    BadgeProgress.__table__.c.value,
                    BadgeProgress.__table__.c.completed_at,
                )
            ).all()
    finally:
        down.dispose()
    # every piece of progress is a row again, complete or not
    assert len(rows) == len(before)
    assert sum(1 for r in rows if r.completed_at is None) == sum(
        1 for r in before if r["completed_at"] is None
    )

    upgrade(db_url)
    assert progress_rows(db, t) == before


def test_counts_periods_and_has_progress_read_the_tallies_exactly(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    from setia.badges import service
    from setia.badges.models import BadgeDefinition

    t = tenant
    _setup(client, t)
    # A completes October's challenge (2 purchases); B is at 1 of 2 in October and November
    send_batch(
        client,
        t,
        [
            purchase("A", "2026-10-05T09:00:00+07:00", items=_coffee("KOPI")),
            purchase("A", "2026-10-06T09:00:00+07:00", items=_coffee("LATTE")),
            purchase("B", "2026-10-06T10:00:00+07:00", items=_coffee("KOPI")),
            purchase("B", "2026-11-02T10:00:00+07:00", items=_coffee("KOPI")),
        ],
    )
    with db.session() as s:
        defs = {
            d.code: d
            for d in s.execute(
                select(BadgeDefinition).where(BadgeDefinition.program_id == t.program_id)
            ).scalars()
        }
        challenge = defs["bulanan"]
        assert service.period_counts(s, challenge, "2026-10") == (2, 1)
        assert service.period_counts(s, challenge, "2026-11") == (1, 0)
        assert service.period_counts(s, challenge, "2026-12") == (0, 0)
        assert service.periods(s, challenge) == ["2026-11", "2026-10"]
        assert service.periods(s, defs["lima"]) == ["all"]
        assert service.period_counts(s, defs["lima"], "all") == (2, 0)
        assert service.period_counts(s, defs["pertama"], "all") == (2, 2)
        assert service._has_progress(s, challenge.id)
    define(client, t, "baru", {"event_type": "purchase", "measure": "count", "target": 9})
    with db.session() as s:
        fresh = s.execute(
            select(BadgeDefinition).where(BadgeDefinition.code == "baru")
        ).scalar_one()
        assert not service._has_progress(s, fresh.id)
        assert service.periods(s, fresh) == []
