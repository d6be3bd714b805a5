"""``setia causes ...`` run in-process against the test database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.core.db import Database
from tests.causes.support import balance, member_with_points
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound

Invoke = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Invoke]:
    monkeypatch.setenv("SETIA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    core_db.set_database(None)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    yield invoke
    core_db.get_database().dispose()
    core_db.set_database(None)
    get_settings.cache_clear()


def test_put_list_donate_and_export(
    run: Invoke, db: Database, tenant: TenantFixture, tmp_path: Path
) -> None:
    invoke = run
    t = str(tenant.tenant_id)
    spec = [
        {
            "code": "tanam-pohon",
            "names": {"id": "Tanam Pohon", "en": "Plant a Tree"},
            "status": "active",
            "goal_points": 5000,
            "match_ratio": "0.5",
            "match_budget": 100,
        },
        {"code": "sedekah-ramadan", "names": {"id": "Sedekah Ramadan"}, "status": "draft"},
    ]
    path = tmp_path / "causes.json"
    path.write_text(json.dumps(spec))
    put = invoke("causes", "put", str(path), "--tenant", t)
    assert put.exit_code == 0, put.output
    out = json.loads(put.output)
    assert [(c["code"], c["created"], c["receipt_prefix"]) for c in out] == [
        ("tanam-pohon", True, "TP"),
        ("sedekah-ramadan", True, "SR"),
    ]
    listed = json.loads(invoke("causes", "list", "--tenant", t).output)
    assert [c["code"] for c in listed] == ["tanam-pohon"]
    every = json.loads(invoke("causes", "list", "--tenant", t, "--all").output)
    assert len(every) == 2

    m = member_with_points(db, tenant, 1000)
    args = ["causes", "donate", "tanam-pohon", "--tenant", t, "--member", str(m)]
    first = invoke(*args, "--points", "300", "--idempotency-key", "cli-1")
    assert first.exit_code == 0, first.output
    d = json.loads(first.output)
    assert (d["created"], d["points"], d["matched_points"]) == (True, 300, 100)
    again = json.loads(invoke(*args, "--points", "300", "--idempotency-key", "cli-1").output)
    assert (again["created"], again["id"]) == (False, d["id"])
    refused = invoke(*args, "--points", "5000")
    assert refused.exit_code == 1
    assert "not enough points" in refused.output
    closed_cause = invoke(
        "causes", "donate", "sedekah-ramadan", "--tenant", t, "--member", str(m), "--points", "1"
    )
    assert closed_cause.exit_code == 1
    assert "draft" in closed_cause.output
    assert balance(db, tenant, m) == 700

    as_json = json.loads(invoke("causes", "donations", "tanam-pohon", "--tenant", t).output)
    assert [x["receipt_number"] for x in as_json] == [d["receipt_number"]]
    as_csv = invoke("causes", "donations", "tanam-pohon", "--tenant", t, "--csv").output
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert rows[0]["receipt_number"] == d["receipt_number"]
    assert rows[0]["points"] == "300"

    text = invoke("causes", "receipt", d["id"], "--tenant", t, "--locale", "en")
    assert "Donation Receipt" in text.output
    assert "Plant a Tree" in text.output
    assert invoke("causes", "close", "tanam-pohon", "--tenant", t).exit_code == 0
    assert json.loads(invoke("causes", "list", "--tenant", t).output) == []
    assert_db_sound(db)


def test_put_all_or_nothing(run: Invoke, tenant: TenantFixture, tmp_path: Path) -> None:
    invoke = run
    t = str(tenant.tenant_id)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"code": "ok", "names": {"id": "Baik"}}, {"code": "bad"}]))
    bad = invoke("causes", "put", str(path), "--tenant", t)
    assert bad.exit_code == 1
    assert "names" in bad.output
    assert json.loads(invoke("causes", "list", "--tenant", t, "--all").output) == []
