"""``setia rules list/export/import/enable/disable/replay`` against the test database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.core.db import Database
from tests.conftest import TenantFixture, make_tenant
from tests.rules.helpers import Api, by_rule, counts, rule
from tests.rules.test_simulate import PROPOSED, replay_dataset

Invoke = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Invoke]:
    """``cli(*args)`` runs ``setia`` in-process on the test database."""
    monkeypatch.setenv("SETIA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    core_db.set_database(None)
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    core_db.get_database().dispose()
    core_db.set_database(None)
    monkeypatch.delenv("SETIA_DATABASE_URL")
    get_settings.cache_clear()


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def refused(result: Result, words: str) -> None:
    assert result.exit_code != 0, result.output
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.output


def write(tmp_path: Path, data: Any, name: str = "rules.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


RULES = [
    rule(name="Weekend 2x", effect={"type": "multiplier", "factor": "2"},
         schedule={"days": ["sat", "sun"]}, priority=150),
    rule(name="Review", triggers=["review.submitted"], effect={"type": "fixed", "points": 50},
         limits=[{"period": "lifetime", "max_count": 1}]),
]  # fmt: skip


def test_import_list_export(
    cli: Invoke, tenant: TenantFixture, tmp_path: Path, api: Api, db: Database
) -> None:
    t = str(tenant.tenant_id)
    created = ok(cli("rules", "import", write(tmp_path, {"rules": RULES}), "--tenant", t))
    assert [c["name"] for c in created] == ["Weekend 2x", "Review"]
    listed = ok(cli("rules", "list", "--tenant", t))
    assert [
        (r["name"], r["enabled"], r["priority"], r["revision"], r["triggers"]) for r in listed
    ] == [
        ("Weekend 2x", True, 150, 1, ["purchase"]),
        ("Review", True, 200, 1, ["review.submitted"]),
    ]
    exported = ok(cli("rules", "export", "--tenant", t))
    assert exported["rules"] == api.get("/v1/rules/export").json()["rules"]
    assert [r["name"] for r in exported["rules"]] == ["Weekend 2x", "Review"]
    # The export is valid input: import it into another tenant (a plain list works too).
    other = make_tenant(db, name="Other")
    ok(cli("rules", "import", write(tmp_path, exported["rules"], "list.json"),
           "--tenant", str(other.tenant_id)))  # fmt: skip
    again = ok(cli("rules", "export", "--tenant", str(other.tenant_id)))
    assert again == exported
    # The imported rules work.
    assert by_rule(api.purchase(50_000, at="2026-01-10T12:00:00+07:00")) == {
        "Base earn rate": 50,
        "Weekend 2x": 50,
    }


def test_import_is_all_or_nothing_and_names_the_rule_and_path(
    cli: Invoke, tenant: TenantFixture, tmp_path: Path, db: Database
) -> None:
    bad = rule(name="Broken", conditions={"all": [{"field": "event.amount", "op": "gte",
                                                  "value": "banyak"}]})  # fmt: skip
    before = counts(db, ("rules", "rule_revisions"))
    result = cli(
        "rules", "import", write(tmp_path, [RULES[0], bad]), "--tenant", str(tenant.tenant_id)
    )
    refused(result, "rule 2 (Broken)")
    assert "conditions.all[0].value" in result.stderr
    assert counts(db, ("rules", "rule_revisions")) == before


@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "cannot read"), ('{"rules": 5}', "list of rule objects"), ("[1, 2]", "list of rule objects")],
)  # fmt: skip
def test_import_refuses_files_that_are_not_rules(
    cli: Invoke, tenant: TenantFixture, tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    refused(cli("rules", "import", str(path), "--tenant", str(tenant.tenant_id)), words)


def test_unknown_tenant_and_rule(cli: Invoke, tmp_path: Path) -> None:
    refused(cli("rules", "list", "--tenant", str(uuid.uuid4())), "not found")
    refused(cli("rules", "export", "--tenant", str(uuid.uuid4())), "not found")
    path = write(tmp_path, RULES)
    refused(cli("rules", "import", path, "--tenant", str(uuid.uuid4())), "not found")
    refused(cli("rules", "replay", "--tenant", str(uuid.uuid4()), "--from", "2026-01-01",
                "--to", "2026-01-02", "--rules", path), "not found")  # fmt: skip
    refused(cli("rules", "list", "--tenant", "kopi"), "not a valid tenant id")
    refused(cli("rules", "enable", str(uuid.uuid4())), "not found")
    refused(cli("rules", "disable", "nope"), "not a valid rule id")


def test_enable_and_disable(cli: Invoke, api: Api) -> None:
    r = api.add_rule(name="Bonus", effect={"type": "fixed", "points": 10})
    assert ok(cli("rules", "disable", r["id"])) == {"id": r["id"], "enabled": False, "revision": 2}
    assert by_rule(api.purchase(10_000)) == {"Base earn rate": 10}
    assert ok(cli("rules", "enable", r["id"])) == {"id": r["id"], "enabled": True, "revision": 3}
    assert by_rule(api.purchase(10_000)) == {"Base earn rate": 10, "Bonus": 10}
    revs = api.get(f"/v1/rules/{r['id']}/revisions").json()
    assert [v["changed_by"] for v in revs][1:] == ["cli", "cli"]


def test_replay(cli: Invoke, api: Api, db: Database, tenant: TenantFixture, tmp_path: Path) -> None:
    replay_dataset(api, db, tenant)
    before = counts(db)
    out = ok(
        cli("rules", "replay", "--tenant", str(tenant.tenant_id), "--from", "2026-01-05",
            "--to", "2026-01-11", "--rules", write(tmp_path, {"rules": PROPOSED}))
    )  # fmt: skip
    assert counts(db) == before
    # The same figures as the API's replay of 5 Jan 00:00 to 12 Jan 00:00 Jakarta time.
    api_out = api.post(
        "/v1/rules/replay",
        {"from": "2026-01-05T00:00:00+07:00", "to": "2026-01-12T00:00:00+07:00", "rules": PROPOSED},
    ).json()
    for key in ("events", "current", "proposed", "difference"):
        assert out[key] == api_out[key], key
    assert out["current"]["points"] == 310
    assert out["proposed"]["points"] == 880
    assert Decimal(out["difference"]["cost"]) == 570 * 5


@pytest.mark.parametrize(
    ("dates", "words"),
    [(("2026-01-05", "2026-01-04"), "must not be before"), (("5/1/2026", "2026-01-04"), "YYYY-MM-DD")],
)  # fmt: skip
def test_replay_refuses_bad_dates(
    cli: Invoke, tenant: TenantFixture, tmp_path: Path, dates: tuple[str, str], words: str
) -> None:
    path = write(tmp_path, {"rules": []})
    refused(
        cli("rules", "replay", "--tenant", str(tenant.tenant_id), "--from", dates[0],
            "--to", dates[1], "--rules", path),
        words,
    )  # fmt: skip


def test_replay_refuses_an_invalid_proposed_rule(
    cli: Invoke, tenant: TenantFixture, tmp_path: Path
) -> None:
    path = write(tmp_path, [rule(effect={"type": "fixed"})])
    refused(
        cli("rules", "replay", "--tenant", str(tenant.tenant_id), "--from", "2026-01-01",
            "--to", "2026-01-02", "--rules", path),
        "effect",
    )  # fmt: skip
