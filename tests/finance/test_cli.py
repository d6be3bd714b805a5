"""``setia finance report``: JSON, CSV by day or by expiry month, bad periods."""

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
from tests.conftest import TenantFixture
from tests.ledger.support import new_member


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


def test_finance_report_cli(db: Database, tenant: TenantFixture, cli: Any) -> None:
    new_member(db, tenant, "ext-1")
    t = str(tenant.tenant_id)
    cli(
        "wallet",
        "credit",
        "ext-1",
        "5000",
        "--tenant",
        t,
        "--reason",
        "goodwill",
        "--code",
        "GOODWILL",
    )
    r = cli("finance", "report", "--tenant", t, "--from", "2026-01-01", "--to", "2026-01-03")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert len(data["daily"]) == 3
    assert data["wallet"]["balance"] == "5000"
    r = cli(
        "finance", "report", "--tenant", t, "--from", "2026-01-01", "--to", "2026-01-03", "--csv"
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["date"] for row in rows] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert rows[0]["earned"] == "0"
    assert rows[0]["wallet_credited"] == "0"
    r = cli(
        "finance",
        "report",
        "--tenant",
        t,
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-03",
        "--csv",
        "--section",
        "outstanding",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["month,points,held,value"]
    r = cli("finance", "report", "--tenant", t, "--from", "2026-01-03", "--to", "2026-01-01")
    assert r.exit_code != 0
    assert "after" in r.stderr
