"""``setia tiers``: load a structure from a file, evaluate, show a member, count per tier."""

from __future__ import annotations

import json
from pathlib import Path

from setia.demo.tiers import TIER_SET
from tests.test_cli import Invoke, cli, cli_for, create_tenant, ok_json  # noqa: F401

HISTORY = (
    "id,type,occurred_at,member_phone,order_id,amount,currency\n"
    "e1,purchase,2026-01-05T10:00:00+07:00,0812-3456-7890,INV-1,2500000,IDR\n"
    "e2,purchase,2026-02-05T10:00:00+07:00,0812-3456-7890,INV-2,700000,IDR\n"
    "e3,purchase,2026-01-06T09:00:00+07:00,0813-1111-2222,INV-3,120000,IDR\n"
)


def test_set_import_evaluate_show_and_summary(cli: Invoke, tmp_path: Path) -> None:  # noqa: F811
    tenant = create_tenant(cli)
    t = tenant["tenant_id"]
    structure = tmp_path / "tiers.json"
    structure.write_text(json.dumps(TIER_SET), encoding="utf-8")
    saved = ok_json(cli("tiers", "set", str(structure), "--tenant", t))
    assert saved["tiers"] == ["perunggu", "perak", "emas", "duta"]
    assert saved["revision"] == 1

    history = tmp_path / "history.csv"
    history.write_text(HISTORY, encoding="utf-8")
    assert cli("import", "events", str(history), "--tenant", t).exit_code == 0

    summary = ok_json(cli("tiers", "summary", "--tenant", t))
    assert {row["tier"]: row["members"] for row in summary} == {
        "perunggu": 1,
        "perak": 0,
        "emas": 1,  # Rp 3.200.000 within the rolling 12 months: upgraded at the second purchase
        "duta": 0,
    }
    report = ok_json(cli("tiers", "evaluate", "--tenant", t, "--on", "2026-03-01"))
    assert (report["members_seen"], report["upgraded"], report["downgraded"]) == (2, 0, 0)

    members = ok_json(cli("tiers", "summary", "--tenant", t))
    assert members == summary  # evaluating changed nothing: Emas is secure for 6 months


def test_set_explains_a_bad_file(cli: Invoke, tmp_path: Path) -> None:  # noqa: F811
    tenant = create_tenant(cli)
    bad = tmp_path / "tiers.json"
    bad.write_text(json.dumps({**TIER_SET, "window": {"kind": "rolling"}}), encoding="utf-8")
    result = cli("tiers", "set", str(bad), "--tenant", tenant["tenant_id"])
    assert result.exit_code == 1
    assert "months is needed for a rolling window" in result.stderr
    missing = cli("tiers", "evaluate", "--tenant", tenant["tenant_id"])
    assert missing.exit_code == 1
    assert "has no tiers yet" in missing.stderr
    wrong_day = cli("tiers", "evaluate", "--tenant", tenant["tenant_id"], "--on", "31-12-2026")
    assert wrong_day.exit_code == 1
    assert "YYYY-MM-DD" in wrong_day.stderr
