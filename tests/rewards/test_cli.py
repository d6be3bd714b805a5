"""``setia rewards ...``: put a catalog from JSON, list it (JSON and CSV), redeem, fulfil,
cancel; mistakes exit non-zero with a message and change nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from setia.core.db import Database
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound
from tests.rewards.helpers import Api, counts, reward
from tests.test_cli import Invoke, cli, cli_for, ok_json  # noqa: F401  (fixtures)


def test_put_list_redeem_fulfil_cancel(
    cli: Invoke,  # noqa: F811
    db: Database,
    tenant: TenantFixture,
    client: TestClient,
    tmp_path: Path,
) -> None:
    api = Api(client, tenant)
    t = str(tenant.tenant_id)
    catalog = [
        {"code": "MUG", **reward("physical", 100, stock_total=2)},
        {"code": "KAOS", **reward("physical", 300, stock_per_period=5, stock_period="week")},
    ]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    out = ok_json(cli("rewards", "put", str(path), "--tenant", t))
    assert [(r["code"], r["created"]) for r in out] == [("MUG", True), ("KAOS", True)]
    again = ok_json(cli("rewards", "put", str(path), "--tenant", t))
    assert [r["created"] for r in again] == [False, False]

    listed = ok_json(cli("rewards", "list", "--tenant", t))
    assert {r["code"]: r["stock_left"] for r in listed} == {"KAOS": None, "MUG": 2}
    result = cli("rewards", "list", "--tenant", t, "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["code"] for r in rows] == ["KAOS", "MUG"]
    assert rows[0]["left_this_period"] == "5"

    m = api.member()
    api.give(m, 500)
    red = ok_json(cli("rewards", "redeem", m, "MUG", "--tenant", t))
    assert red["status"] == "requested"
    assert red["created"] is True
    shipped = ok_json(
        cli(
            "rewards",
            "fulfil",
            red["id"],
            "--tenant",
            t,
            "--status",
            "shipped",
            "--tracking",
            "JNE-1",
        )
    )
    assert shipped["status"] == "shipped"
    assert shipped["tracking"] == "JNE-1"
    refused = cli("rewards", "cancel", red["id"], "--tenant", t)
    assert refused.exit_code == 1
    assert "shipped" in refused.stderr

    second = ok_json(cli("rewards", "redeem", m, "MUG", "--tenant", t))
    cancelled = ok_json(cli("rewards", "cancel", second["id"], "--tenant", t, "--reason", "x"))
    assert cancelled["status"] == "cancelled"
    assert api.available(m) == 400
    assert_db_sound(db)


def test_mistakes_exit_non_zero_and_write_nothing(
    cli: Invoke,  # noqa: F811
    db: Database,
    tenant: TenantFixture,
    client: TestClient,
    tmp_path: Path,
) -> None:
    t = str(tenant.tenant_id)
    good = {"code": "MUG", **reward("physical", 100)}
    bad = {"code": "CB", **reward("cashback", 100)}  # no cashback_amount
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps([good, bad]))
    before = counts(db)
    result = cli("rewards", "put", str(path), "--tenant", t)
    assert result.exit_code == 1
    assert "cashback_amount" in result.stderr
    assert counts(db) == before
    api = Api(client, tenant)
    m = api.member()
    cases: list[tuple[tuple[str, ...], str]] = [
        (("rewards", "redeem", m, "NOPE", "--tenant", t), "not found"),
        (("rewards", "redeem", "not-a-uuid", "MUG", "--tenant", t), "not a valid member id"),
        (("rewards", "cancel", "0193a1c2-0000-7000-8000-000000000001", "--tenant", t), "not found"),
        (
            (
                "rewards",
                "fulfil",
                "0193a1c2-0000-7000-8000-000000000001",
                "--tenant",
                t,
                "--status",
                "lost",
            ),
            "shipped or delivered",
        ),
    ]
    snapshot: dict[str, Any] = counts(db)
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code != 0, args
        assert message in result.stderr, (args, result.stderr)
    assert counts(db) == snapshot
