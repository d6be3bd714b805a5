"""``setia referrals ...`` run in-process against the test database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from setia.cli import app
from setia.core import db as core_db
from setia.core.config import get_settings
from tests.referrals.conftest import World, after_window

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


def test_the_operator_commands(run: Invoke, world: World, tmp_path: Path) -> None:
    t = str(world.t.tenant_id)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"review_required": True, "referrer_points": 300}))
    out = run("referrals", "settings", "--tenant", t, "--set", str(path))
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["referrer_points"] == 300
    siti, budi = world.member("Siti"), world.member("Budi")
    code = run("referrals", "code", str(siti), "--tenant", t, "--locale", "en")
    assert code.exit_code == 0, code.output
    body = json.loads(code.output)
    assert body["share_text"].startswith("Join")
    attached = run("referrals", "attach", str(budi), body["code"], "--tenant", t)
    assert attached.exit_code == 0, attached.output
    referral = json.loads(attached.output)
    assert (referral["created"], referral["status"]) == (True, "held")
    self_ref = run("referrals", "attach", str(siti), body["code"], "--tenant", t)
    assert self_ref.exit_code != 0
    assert "own referral code" in self_ref.output
    held = json.loads(run("referrals", "list", "--tenant", t, "--status", "held").output)
    assert [h["id"] for h in held] == [referral["id"]]
    no_reason = run("referrals", "approve", referral["id"], "--tenant", t)
    assert no_reason.exit_code != 0
    ok = run("referrals", "approve", referral["id"], "--tenant", t, "--reason", "checked by phone")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["status"] == "pending"
    again = run("referrals", "reject", referral["id"], "--tenant", t, "--reason", "oops")
    assert again.exit_code != 0
    world.buy(budi, "75000")
    world.run(after_window())
    funnel = json.loads(run("referrals", "funnel", "--tenant", t).output)
    assert (funnel["signups"], funnel["rewarded"]) == (1, 1)
    top = json.loads(run("referrals", "top", "--tenant", t, "--limit", "5").output)
    assert top[0]["member_id"] == str(siti)
    assert top[0]["referee_spend"] == "75000"
    bad = run("referrals", "funnel", "--tenant", t, "--from", "yesterday")
    assert bad.exit_code != 0
    for command in ("funnel", "top"):
        backwards = run(
            "referrals", command, "--tenant", t, "--from", "2026-12-01", "--to", "2026-11-01"
        )
        assert backwards.exit_code == 1, backwards.output
        assert "from must not be after to" in backwards.output
