"""``setia wallet show`` and ``setia wallet credit``."""

from __future__ import annotations

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
from tests.ledger.support import assert_db_sound, new_member


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


def test_wallet_show_and_credit(db: Database, tenant: TenantFixture, cli: Any) -> None:
    m = new_member(db, tenant, "ext-1")
    t = str(tenant.tenant_id)
    r = cli(
        "wallet",
        "credit",
        "ext-1",
        "25000",
        "--tenant",
        t,
        "--reason",
        "gift card GC-1",
        "--code",
        "GIFT_CARD",
        "--idempotency-key",
        "gc-1",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["created"] is True
    assert out["credited"] == "25000"
    assert out["wallet"]["available"] == "25000"
    # The same key again credits nothing more.
    r = cli(
        "wallet",
        "credit",
        "ext-1",
        "25000",
        "--tenant",
        t,
        "--reason",
        "gift card GC-1",
        "--code",
        "GIFT_CARD",
        "--idempotency-key",
        "gc-1",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["created"] is False
    r = cli("wallet", "show", str(m), "--tenant", t)
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["available"] == "25000"
    assert shown["lifetime"]["credited"] == "25000"
    r = cli("wallet", "credit", "ext-1", "1.5", "--tenant", t, "--reason", "oops")
    assert r.exit_code != 0
    assert "decimal" in r.stderr
    r = cli("wallet", "show", "nobody", "--tenant", t)
    assert r.exit_code != 0
    assert "not found" in r.stderr
    assert_db_sound(db)
