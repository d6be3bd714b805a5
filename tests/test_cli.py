"""The ``setia`` command line, run in-process against the test database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from setia.app import create_app
from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.core.db import Database
from tests.events.helpers import row_counts

Invoke = Callable[..., Result]


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SETIA_DATABASE_URL", url)
    get_settings.cache_clear()
    core_db.set_database(None)


@pytest.fixture
def cli_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Invoke]]:
    """``cli_for(url)`` gives an ``invoke(*args)`` that runs ``setia`` on that database."""
    runner = CliRunner()

    def bind(url: str) -> Invoke:
        _use_database(monkeypatch, url)

        def invoke(*args: str) -> Result:
            return runner.invoke(app, list(args))

        return invoke

    yield bind
    core_db.get_database().dispose()
    core_db.set_database(None)
    monkeypatch.delenv("SETIA_DATABASE_URL")
    get_settings.cache_clear()


@pytest.fixture
def cli(cli_for: Callable[[str], Invoke], db_url: str) -> Invoke:
    return cli_for(db_url)


@pytest.fixture
def empty_url(backend: str, _template: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_template, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield _template.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def create_tenant(cli: Invoke, name: str = "Kopi Nusantara") -> dict[str, Any]:
    out: dict[str, Any] = ok_json(
        cli(
            "tenant",
            "create",
            name,
            "--country",
            "ID",
            "--currency",
            "IDR",
            "--timezone",
            "Asia/Jakarta",
        )
    )
    return out


# --------------------------------------------------------------------------- schema


def test_an_empty_database_says_to_run_db_upgrade(
    cli_for: Callable[[str], Invoke], empty_url: str
) -> None:
    cli = cli_for(empty_url)
    for args in (
        ("tenant", "create", "X", "--country", "ID", "--currency", "IDR", "--timezone", "UTC"),
        ("ledger", "verify"),
        ("key", "revoke", str(uuid.uuid4())),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "setia db upgrade" in result.stderr
        assert "Traceback" not in result.output
    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "schema is current" in upgraded.stdout
    assert create_tenant(cli)["tenant_id"]


# --------------------------------------------------------------------------- tenants and keys


def test_tenant_create_prints_the_ids_and_a_working_key(cli: Invoke, db: Database) -> None:
    out = create_tenant(cli)
    assert {"tenant_id", "program_id", "api_key", "api_key_id", "name"} <= set(out)
    uuid.UUID(out["tenant_id"])
    uuid.UUID(out["program_id"])
    with TestClient(create_app(db)) as client:
        r = client.get("/v1/tenant", headers={"Authorization": f"Bearer {out['api_key']}"})
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["name"], r.json()["locale"]) == (
            out["tenant_id"],
            "Kopi Nusantara",
            "id",
        )
        programs = client.get(
            "/v1/programs", headers={"Authorization": f"Bearer {out['api_key']}"}
        ).json()
        assert [p["id"] for p in programs] == [out["program_id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--country", "XX", "--currency", "IDR", "--timezone", "Asia/Jakarta"), "country"),
        (("--country", "ID", "--currency", "RPH", "--timezone", "Asia/Jakarta"), "currency"),
        (("--country", "ID", "--currency", "IDR", "--timezone", "Asia/Bandung"), "time zone"),
    ],
)
def test_tenant_create_refuses_bad_settings(
    cli: Invoke, db: Database, args: tuple[str, ...], message: str
) -> None:
    result = cli("tenant", "create", "Kopi", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert row_counts(db, ("tenants",)) == {"tenants": 0}


def test_key_create_and_revoke(cli: Invoke, db: Database) -> None:
    tenant = create_tenant(cli)
    key = ok_json(cli("key", "create", "--tenant", tenant["tenant_id"], "--scope", "read"))
    assert key["scope"] == "read"
    assert key["api_key"].startswith("sk_read_")
    bearer = {"Authorization": f"Bearer {key['api_key']}"}
    with TestClient(create_app(db)) as client:
        assert client.get("/v1/tenant", headers=bearer).status_code == 200
        assert (
            client.post("/v1/members", json={"external_id": "X"}, headers=bearer).status_code == 403
        )
        revoked = ok_json(cli("key", "revoke", key["api_key_id"]))
        assert revoked["api_key_id"] == key["api_key_id"]
        assert revoked["revoked_at"]
        r = client.get("/v1/tenant", headers=bearer)
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
        # The tenant's admin key is unaffected.
        admin = {"Authorization": f"Bearer {tenant['api_key']}"}
        assert client.get("/v1/tenant", headers=admin).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("key", "create", "--tenant", "not-a-uuid"), "not a valid tenant id"),
        (("key", "create", "--tenant", str(uuid.uuid4())), "not found"),
        (("key", "revoke", str(uuid.uuid4())), "not found"),
        (("key", "revoke", "123"), "not a valid API key id"),
    ],
)
def test_key_commands_explain_mistakes(cli: Invoke, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_key_create_refuses_an_unknown_scope(cli: Invoke) -> None:
    tenant = create_tenant(cli)
    result = cli("key", "create", "--tenant", tenant["tenant_id"], "--scope", "root")
    assert result.exit_code == 1
    assert "admin, pos, read" in result.stderr


# --------------------------------------------------------------------------- import


CSV = (
    "id,type,occurred_at,member_phone,order_id,amount,currency\n"
    "e1,purchase,2026-01-05T10:00:00+07:00,0812-3456-7890,INV-1,85000,IDR\n"
    "e2,purchase,2026-01-05T11:00:00+07:00,0812-3456-7890,INV-2,-1,IDR\n"
    "e3,purchase,2026-01-06T09:00:00+07:00,0813-1111-2222,INV-3,120000,IDR\n"
    "e4,refund,2026-01-07T09:00:00+07:00,0813-1111-2222,INV-404,1000,IDR\n"
)
IMPORT_TABLES = ("events", "members", "orders", "ledger_transfers", "ledger_entries", "outbox")


def test_import_keeps_good_rows_lists_bad_ones_and_reruns_change_nothing(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    tenant = create_tenant(cli)
    path = tmp_path / "history.csv"
    path.write_text(CSV, encoding="utf-8")
    errors = tmp_path / "rejected.jsonl"
    args = ("import", "events", str(path), "--tenant", tenant["tenant_id"], "--errors", str(errors))

    first = cli(*args)
    assert first.exit_code == 1, first.output
    assert "2 recorded, 0 already present, 2 rejected (of 4 rows)" in first.stdout
    assert "line 3: " in first.stderr
    assert "greater than zero" in first.stderr
    assert "line 5: " in first.stderr
    assert "INV-404" in first.stderr
    rejected = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(e["line"], e["id"], e["code"]) for e in rejected] == [
        (3, "e2", "invalid_amount"),
        (5, "e4", "order_not_found"),
    ]
    after_first = row_counts(db, IMPORT_TABLES)
    assert (after_first["events"], after_first["members"], after_first["orders"]) == (2, 2, 2)

    second = cli(*args)
    assert second.exit_code == 1, second.output
    assert "0 recorded, 2 already present, 2 rejected (of 4 rows)" in second.stdout
    assert row_counts(db, IMPORT_TABLES) == after_first

    with TestClient(create_app(db)) as client:
        admin = {"Authorization": f"Bearer {tenant['api_key']}"}
        member = client.get(
            "/v1/members/lookup", params={"phone": "0812-3456-7890"}, headers=admin
        ).json()
        balance = client.get(f"/v1/members/{member['id']}/balance", headers=admin).json()
        assert balance["available"] == 85

    assert ok_ledger(cli)


def test_import_of_a_clean_file_exits_0(cli: Invoke, tmp_path: Path) -> None:
    tenant = create_tenant(cli)
    path = tmp_path / "clean.jsonl"
    event = {"id": "j1", "type": "visit", "member": {"external_id": "C-1"}}
    path.write_text(json.dumps(event) + "\n", encoding="utf-8")
    result = cli("import", "events", str(path), "--tenant", tenant["tenant_id"])
    assert result.exit_code == 0, result.output
    assert "1 recorded, 0 already present, 0 rejected (of 1 rows)" in result.stdout


@pytest.mark.parametrize(
    ("name", "tenant_id", "message"),
    [
        ("history.xlsx", None, ".csv"),
        ("history.csv", str(uuid.UUID(int=1)), "no tenant has id"),
        ("history.csv", "kopi", "not a valid tenant id"),
    ],
)
def test_import_refuses_what_it_cannot_do(
    cli: Invoke, db: Database, tmp_path: Path, name: str, tenant_id: str | None, message: str
) -> None:
    tenant = create_tenant(cli)
    path = tmp_path / name
    path.write_text(CSV, encoding="utf-8")
    result = cli("import", "events", str(path), "--tenant", tenant_id or tenant["tenant_id"])
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert row_counts(db, ("events",)) == {"events": 0}


def test_import_of_a_missing_file_is_a_usage_error(cli: Invoke, tmp_path: Path) -> None:
    result = cli("import", "events", str(tmp_path / "nope.csv"), "--tenant", str(uuid.uuid4()))
    assert result.exit_code == 2
    # Click's usage error comes in a box as wide as the terminal: the long temporary path
    # wraps it at a place that depends on the path's length, so read it unwrapped.
    assert "does not exist" in " ".join(result.stderr.replace("│", " ").split())


# --------------------------------------------------------------------------- ledger verify


def ok_ledger(cli: Invoke) -> bool:
    result = cli("ledger", "verify")
    assert "Traceback" not in result.output
    return result.exit_code == 0


def _with_points(cli: Invoke, db: Database, tmp_path: Path) -> None:
    """A tenant whose member earned 85 points (by import) and spent 5, and was renamed."""
    tenant = create_tenant(cli)
    path = tmp_path / "h.csv"
    path.write_text(CSV.split("e2,")[0], encoding="utf-8")  # header and the first purchase
    assert cli("import", "events", str(path), "--tenant", tenant["tenant_id"]).exit_code == 0
    admin = {"Authorization": f"Bearer {tenant['api_key']}"}
    with TestClient(create_app(db)) as client:
        member = client.get(
            "/v1/members/lookup", params={"phone": "0812-3456-7890"}, headers=admin
        ).json()
        url = f"/v1/members/{member['id']}"
        assert client.post(f"{url}/points/redeem", json={"points": 5}, headers=admin).is_success
        assert client.patch(url, json={"locale": "en"}, headers=admin).is_success


def test_ledger_verify_passes_on_a_sound_ledger(cli: Invoke, db: Database, tmp_path: Path) -> None:
    _with_points(cli, db, tmp_path)
    result = cli("ledger", "verify")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout
    assert "[ok  ] account counters equal their transfers" in result.stdout


def test_ledger_verify_reports_a_tampered_counter(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    _with_points(cli, db, tmp_path)
    with db.engine.begin() as conn:
        changed = conn.execute(
            text(
                "UPDATE ledger_accounts SET credits_posted = credits_posted + 7 "
                "WHERE code = 'POINTS' AND member_id IS NOT NULL"
            )
        ).rowcount
    assert changed == 1
    result = cli("ledger", "verify")
    assert result.exit_code == 1, result.output
    assert "[FAIL] account counters equal their transfers" in result.stdout
    assert "[FAIL] programs balance (debits = credits)" in result.stdout
    assert "[FAIL] lots match balances" in result.stdout
    assert "(5, 92, 0, 0)" in result.stdout  # the tampered counters, as found
    assert "the ledger is inconsistent" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_transfers SET amount = amount + 1",
        "DELETE FROM ledger_transfers",
        "UPDATE ledger_entries SET amount = 0",
        "DELETE FROM ledger_entries",
        "DELETE FROM point_lot_movements",
        "UPDATE audit_log SET actor = 'nobody'",
    ],
)
def test_the_ledger_log_is_append_only(
    cli: Invoke, db: Database, tmp_path: Path, statement: str
) -> None:
    _with_points(cli, db, tmp_path)
    tables = ("ledger_transfers", "ledger_entries", "point_lot_movements", "audit_log")
    before = row_counts(db, tables)
    assert all(before.values()), before
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert row_counts(db, tables) == before
    assert ok_ledger(cli)
