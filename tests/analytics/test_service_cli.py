"""``setia analytics rfm`` against the service database."""

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
from tests.analytics.test_service_members import AS_OF, history, random_history
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


def test_rfm_cli_json_and_csv(db: Database, tenant: TenantFixture, cli: Any) -> None:
    random_history(db, tenant)
    t = str(tenant.tenant_id)
    r = cli("analytics", "rfm", "--tenant", t, "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["members"] == 25
    assert sum(s["members"] for s in data["segments"]) == 25
    assert data["fit"]["model"] == "bgnbd"

    r = cli("analytics", "rfm", "--tenant", t, "--as-of", AS_OF, "--csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 25
    by_segment: dict[str, int] = {}
    for row in rows:
        by_segment[row["segment"]] = by_segment.get(row["segment"], 0) + 1
        assert 1 <= int(row["r"]) <= 5
        assert row["p_alive"]
    assert by_segment == {s["segment"]: s["members"] for s in data["segments"]}


def test_rfm_cli_small_history(db: Database, tenant: TenantFixture, cli: Any) -> None:
    history(db, tenant)
    r = cli("analytics", "rfm", "--tenant", str(tenant.tenant_id), "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["members"] == 3
    assert data["fit"] is None
    assert "too few" in data["predictions_missing"]


def test_rfm_cli_bad_input(db: Database, tenant: TenantFixture, cli: Any) -> None:
    t = str(tenant.tenant_id)
    r = cli("analytics", "rfm", "--tenant", t, "--as-of", "yesterday")
    assert r.exit_code == 2
    assert "--as-of" in r.output
    r = cli("analytics", "rfm", "--tenant", t, "--as-of", "2026-03-01T00:00:00")
    assert r.exit_code == 2
    assert "offset" in r.output
    r = cli("analytics", "rfm", "--tenant", "not-a-uuid")
    assert r.exit_code != 0
