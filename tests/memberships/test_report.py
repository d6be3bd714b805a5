"""The monthly report, checked against figures computed by hand (Jakarta months)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.memberships import service
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.memberships.conftest import World, jkt


def scenario(world: World) -> None:
    """A: Jan start, renews Feb and Mar, cancels, ends 10 Apr.
    B: starts 1 Feb 03:00 Jakarta (still 31 Jan in UTC), never renews: lapses 8 Mar.
    C: Feb start, renews in Mar, the March payment is refunded on 20 Mar: ends at once."""
    world.plan()
    a = world.start(world.member("A"), jkt(2024, 1, 10))
    b = world.start(world.member("B"), jkt(2024, 2, 1, 3))
    c = world.start(world.member("C"), jkt(2024, 2, 15))
    world.pay(a, jkt(2024, 2, 10, 9))
    world.pay(a, jkt(2024, 3, 10, 9))
    world.pay(c, jkt(2024, 3, 15, 9), external_id="C-MAR")
    world.cancel(a, jkt(2024, 3, 20))
    world.pay(None, jkt(2024, 3, 20), status="refunded", external_id="C-MAR")
    world.run(jkt(2024, 3, 8, 3))
    world.run(jkt(2024, 4, 10, 10))
    assert world.sub(b).status == "lapsed"
    assert world.sub(c).end_reason == "refunded"
    assert world.sub(a).status == "cancelled"


EXPECTED = [
    {"month": "2024-01", "paid_members": 1, "new": 1, "churned": 0, "lapsed": 0,
     "cancelled": 0, "churn_rate": None, "revenue": {"IDR": "49000"}},
    {"month": "2024-02", "paid_members": 3, "new": 2, "churned": 0, "lapsed": 0,
     "cancelled": 0, "churn_rate": "0.0000", "revenue": {"IDR": "147000"}},
    {"month": "2024-03", "paid_members": 1, "new": 0, "churned": 2, "lapsed": 1,
     "cancelled": 1, "churn_rate": "0.6667", "revenue": {"IDR": "49000"}},
    {"month": "2024-04", "paid_members": 0, "new": 0, "churned": 1, "lapsed": 0,
     "cancelled": 1, "churn_rate": "1.0000", "revenue": {}},
]  # fmt: skip


def test_report_matches_hand_computed_figures(world: World) -> None:
    scenario(world)
    with world.db.session() as s:
        tenant = s.get(Tenant, world.t.tenant_id)
        program = s.get(Program, world.t.program_id)
        assert tenant is not None
        assert program is not None
        got = service.report(
            s, tenant, program, from_month="2024-01", to_month="2024-04", now=jkt(2024, 5, 1)
        )
    assert got == EXPECTED


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Any]:
    monkeypatch.setenv("SETIA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    core_db.set_database(None)
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    core_db.get_database().dispose()
    core_db.set_database(None)
    get_settings.cache_clear()


def test_cli_plans_report_and_run_due(world: World, cli: Any) -> None:
    scenario(world)
    tenant = str(world.t.tenant_id)
    r = cli("memberships", "plans", "--tenant", tenant)
    assert r.exit_code == 0, r.output
    assert '"code": "plus"' in r.stdout
    r = cli("memberships", "report", "--tenant", tenant, "--from", "2024-02", "--to", "2024-03")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1].split()[:5] == ["2024-02", "3", "2", "0", "0.0%"]
    assert lines[2].split()[:5] == ["2024-03", "1", "0", "2", "66.7%"]
    r = cli("memberships", "report", "--tenant", tenant, "--from", "2024-5", "--to", "2024-03")
    assert r.exit_code != 0
    assert "YYYY-MM" in r.stderr
    r = cli("memberships", "run-due", "--now", "2024-04-11T00:00:00+07:00")
    assert r.exit_code == 0, r.output
    assert '"lapsed": 0' in r.stdout
