"""``setia analytics kpis`` and ``setia analytics cohorts`` against the service database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.core.db import Database
from tests.analytics.test_kpis import history
from tests.conftest import TenantFixture


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


def test_kpis_cli(db: Database, tenant: TenantFixture, cli: Any) -> None:
    history(db, tenant)
    t = str(tenant.tenant_id)
    r = cli("analytics", "kpis", "--tenant", t, "--from", "2026-02-01", "--to", "2026-02-28")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["members"]["active"] == 4
    assert data["retention_rate"] == "0.6667"
    r = cli(
        "analytics", "kpis", "--tenant", t, "--from", "2026-02-01", "--to", "2026-02-28", "--csv"
    )
    assert r.exit_code == 0, r.output
    rows = dict(csv.reader(io.StringIO(r.stdout)))
    assert rows["metric"] == "value"
    assert rows["members.new"] == "2"
    assert rows["average_order_value"] == "27143"
    assert rows["points.redemption_rate"] == "0.0500"
    assert rows["member_vs_non_member"] == ""
    r = cli("analytics", "kpis", "--tenant", t, "--from", "2026-03-01", "--to", "2026-02-01")
    assert r.exit_code == 2
    assert "after" in r.output


def test_cohorts_cli(db: Database, tenant: TenantFixture, cli: Any) -> None:
    history(db, tenant)
    t = str(tenant.tenant_id)
    args = ("analytics", "cohorts", "--tenant", t, "--from-month", "2026-01", "--to-month")
    r = cli(*args, "2026-02")
    assert r.exit_code == 0, r.output
    assert [(c["cohort"], c["size"]) for c in json.loads(r.stdout)["cohorts"]] == [
        ("2026-01", 3),
        ("2026-02", 2),
    ]
    r = cli(*args, "2026-02", "--csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["cohort"], x["offset"], x["members"], x["share"]) for x in rows] == [
        ("2026-01", "0", "3", "1.0000"),
        ("2026-01", "1", "2", "0.6667"),
        ("2026-02", "0", "2", "1.0000"),
    ]
    r = cli(*args, "2025-12")
    assert r.exit_code == 2
