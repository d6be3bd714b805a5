"""A pytest plugin that lists the SQL statements which walk a growing table.

It collects every distinct SQLite statement the tests run (with the parameters of its first
run and the place in ``src/setia`` that ran it); at the end of the session it runs ``EXPLAIN
QUERY PLAN`` on each against a freshly migrated SQLite file and writes, as JSON, those whose
plan scans a table that grows with the business, or narrows it only to the tenant or the
program. SQLite's plans without ``ANALYZE`` statistics do not depend on the number of rows,
so the tests' small databases show the plans of large ones. Most hits are right where they
are (reports, the ledger check, jobs over a tenant, paged lists); the rest are look-ups of
one member's rows that need an index (docs/benchmarks.md, "Look-ups against the size of the
tenant").

    PYTHONPATH=bench .venv/bin/pytest -q -p plan_audit tests --ignore=tests/web
    PLAN_AUDIT_OUT=/tmp/walks.json ...            # where the list goes (default below)
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

OUT = Path(os.environ.get("PLAN_AUDIT_OUT", "build/plan_audit.json"))
GROWING = (
    "members|ledger_accounts|ledger_transfers|ledger_entries|point_lots|point_lot_movements"
    "|rule_awards|events|orders|outbox|badge_progress|badge_tallies|referrals|referral_rewards|audit_log"
    "|tier_activity|member_scores|member_tiers|subscriptions|reward_redemptions|coupon_codes"
    "|consent_changes|sessions"
)
WALKS = (
    re.compile(rf"^SCAN ({GROWING})\b"),
    re.compile(rf"^SEARCH ({GROWING}) USING (COVERING )?INDEX \w+ \((tenant_id|program_id)=\?\)$"),
)
_seen: dict[str, tuple[Any, str]] = {}


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        if "/src/setia/" in frame.filename:
            return f"{frame.filename.split('/src/setia/')[1]}:{frame.lineno} {frame.name}"
    return "(tests)"


def pytest_configure(config: Any) -> None:
    # Registered when pytest loads the plugin, not on import: tests import WALKS from here.
    event.listen(Engine, "before_cursor_execute", _collect)


def _collect(conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
    if conn.dialect.name != "sqlite" or many or sql in _seen:
        return
    if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
        _seen[sql] = (params, _caller())


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    from setia.core.migrate import upgrade

    directory = tempfile.mkdtemp(prefix="setia-plan-audit-")
    upgrade(f"sqlite:///{directory}/audit.db")
    conn = sqlite3.connect(f"{directory}/audit.db")
    found = []
    try:
        for sql, (params, where) in _seen.items():
            try:
                plan = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            except sqlite3.Error:
                continue  # a statement on a table made by a test, or the like
            walks = [str(row[3]) for row in plan if any(w.search(str(row[3])) for w in WALKS)]
            if walks:
                found.append({"where": where, "plan": walks, "sql": " ".join(sql.split())})
    finally:
        conn.close()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(sorted(found, key=lambda f: f["where"]), indent=1))
    print(f"\nplan audit: {len(_seen)} statements, {len(found)} walk -> {OUT}")
