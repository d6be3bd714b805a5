"""``setia badges ...`` run in-process against the test database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from tests.badges.support import purchase, send
from tests.conftest import TenantFixture

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


def test_create_list_show_progress_leaderboard_archive(
    run: Invoke, client: TestClient, tenant: TenantFixture, tmp_path: Path
) -> None:
    t = str(tenant.tenant_id)
    path = tmp_path / "badges.json"
    path.write_text(
        json.dumps(
            [
                {
                    "code": "dua",
                    "names": {"id": "Dua Kali"},
                    "criteria": {"event_type": "purchase", "measure": "count", "target": 2},
                },
                {
                    "code": "tiga-sebulan",
                    "kind": "challenge",
                    "names": {"en": "Three a month"},
                    "criteria": {"event_type": "purchase", "measure": "count", "target": 3},
                    "period": {"type": "month", "recurring": True},
                },
            ]
        )
    )
    made = run("badges", "create", str(path), "--tenant", t)
    assert made.exit_code == 0, made.output
    assert [d["created"] for d in json.loads(made.output)] == [True, True]
    again = run("badges", "create", str(path), "--tenant", t)
    assert [d["created"] for d in json.loads(again.output)] == [False, False]
    listed = json.loads(run("badges", "list", "--tenant", t).output)
    assert [d["code"] for d in listed] == ["dua", "tiga-sebulan"]
    shown = json.loads(run("badges", "show", "dua", "--tenant", t).output)
    assert shown["name"] == "Dua Kali"

    answers = send(
        client,
        tenant,
        purchase("M1", "2026-10-01T10:00:00+07:00"),
        purchase("M1", "2026-10-02T10:00:00+07:00"),
    )
    m1 = answers[0]["member_id"]
    member = client.post(
        "/v1/members", json={"external_id": "M2", "name": "Dewi Lestari"}, headers=tenant.headers
    ).json()
    send(client, tenant, purchase("M2", "2026-10-03T10:00:00+07:00"))
    client.put(
        f"/v1/members/{member['id']}/leaderboard-consent",
        json={"opted_in": True, "source": "cli-test"},
        headers=tenant.headers,
    )
    prog = json.loads(run("badges", "progress", "M1", "--tenant", t, "--locale", "en").output)
    assert prog["badges"] == ["dua"]
    # what GET /v1/members/{id}/badges answers, written the same way (completed_at: "...Z")
    api = client.get(f"/v1/members/{m1}/badges?locale=en", headers=tenant.headers).json()
    assert prog == api
    assert prog["earned"][0]["completed_at"] == "2026-10-02T03:00:00Z"
    board = run("badges", "leaderboard", "tiga-sebulan", "--tenant", t, "--period", "2026-10")
    assert board.exit_code == 0, board.output
    assert [r["display_name"] for r in json.loads(board.output)["data"]] == ["Dewi L."]
    assert json.loads(board.output)["target"] == "3"
    wrong = run("badges", "leaderboard", "dua", "--tenant", t, "--period", "2026-10")
    assert wrong.exit_code == 1
    assert "counts over all time" in wrong.output

    archived = json.loads(run("badges", "archive", "dua", "--tenant", t).output)
    assert archived["status"] == "archived"
    assert [d["code"] for d in json.loads(run("badges", "list", "--tenant", t).output)] == [
        "tiga-sebulan"
    ]
    assert len(json.loads(run("badges", "list", "--tenant", t, "--all").output)) == 2


def test_mistakes_are_explained(run: Invoke, tenant: TenantFixture, tmp_path: Path) -> None:
    t = str(tenant.tenant_id)
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "code": "x",
                "names": {"id": "X"},
                "criteria": {"event_type": "purchase", "measure": "sum", "target": 5},
            }
        )
    )
    bad = run("badges", "create", str(path), "--tenant", t)
    assert bad.exit_code == 1
    assert "criteria.field" in bad.output
    # In a file of many, the error says which definition; the good one is not written either.
    good = {
        "code": "ok",
        "names": {"id": "Oke"},
        "criteria": {"event_type": "purchase", "measure": "count", "target": 2},
    }
    path.write_text(json.dumps([good, json.loads(path.read_text())]))
    bad = run("badges", "create", str(path), "--tenant", t)
    assert bad.exit_code == 1
    assert "definition 2 of 2 ('x')" in bad.output
    assert "criteria.field" in bad.output
    path.write_text(json.dumps([good, {"code": "y"}]))  # refused by the schema
    bad = run("badges", "create", str(path), "--tenant", t)
    assert bad.exit_code == 1
    assert "definition 2 of 2 ('y')" in bad.output
    assert run("badges", "show", "nope", "--tenant", t).exit_code == 1
    assert run("badges", "progress", "nobody", "--tenant", t).exit_code == 1
    assert run("badges", "list", "--tenant", t).output.strip() == "[]"


def test_the_leaderboard_writes_a_round_target_as_the_api_does(
    run: Invoke, client: TestClient, tenant: TenantFixture
) -> None:
    ten = {
        "code": "sepuluh",
        "names": {"id": "Sepuluh"},
        "criteria": {"event_type": "purchase", "measure": "count", "target": 10},
    }
    assert client.post("/v1/badges", json=ten, headers=tenant.headers).status_code == 201
    board = run("badges", "leaderboard", "sepuluh", "--tenant", str(tenant.tenant_id))
    assert board.exit_code == 0, board.output
    assert json.loads(board.output)["target"] == "10"  # never "1E+1"
