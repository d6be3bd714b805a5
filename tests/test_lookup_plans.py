"""Recording events, and reading a member's balance, statement and wallet, look members,
their ledger accounts and entries and an occasion's usage rows up through indexes, never by
walking a whole tenant, program or table: checked on SQLite's query plans of the statements
the API actually runs (one by one, a member created by its first purchase with a signup
rule, a batch; the reads a till or the member portal make after it), and so do a member's
merge, export and erasure and the hold-expiry job.

The plans come from a migrated SQLite file of this test's own (SQLite plans without
``ANALYZE`` statistics do not depend on how many rows there are, so a small database shows
the plan a large one gets); it runs whichever backend the suite was started with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from bench.plan_audit import WALKS
from fastapi.testclient import TestClient
from sqlalchemy import event

from setia.app import create_app
from setia.core.db import Database
from setia.core.migrate import upgrade
from tests.conftest import make_tenant


# What counts as a walk (a full scan of a table that grows with the business, or a search
# that narrows only to the tenant or the program) is the plan audit's own WALKS.
def _statement(sql: str) -> bool:
    return sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))


@contextmanager
def _captured(db: Database, keep: Callable[[str], bool] = _statement) -> Iterator[dict[str, Any]]:
    """The distinct statements ``db`` runs meanwhile (those ``keep`` keeps), with their first
    parameters."""
    statements: dict[str, Any] = {}

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if not many and keep(sql):
            statements.setdefault(sql, params)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _walks(db: Database, statements: dict[str, Any]) -> list[str]:
    found = []
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for sql, params in statements.items():
            for row in cur.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall():
                detail = str(row[3])
                if any(p.search(detail) for p in WALKS):
                    found.append(f"{detail}  <-  {' '.join(sql.split())[:300]}")
    finally:
        raw.close()
    return found


def test_recording_events_never_walks_a_tenant_or_a_program(sqlite_db: Database) -> None:
    tenant = make_tenant(sqlite_db)
    headers = tenant.headers

    with TestClient(create_app(sqlite_db), raise_server_exceptions=False) as client:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = client.post(path, json=body, headers=headers)
            assert r.status_code in (200, 201), r.text
            out: dict[str, Any] = r.json()
            return out

        post(
            "/v1/rules",
            {
                "name": "Welcome",
                "triggers": ["member.signup"],
                "effect": {"type": "fixed", "points": 5},
            },
        )
        post("/v1/members", {"external_id": "C-1", "phone": "0812-1111-2222"})

        def purchase(n: int, member: dict[str, str]) -> dict[str, Any]:
            return {
                "id": f"ev-{n}",
                "type": "purchase",
                "member": member,
                "order_id": f"O-{n}",
                "amount": "50000",
                "currency": "IDR",
            }

        with _captured(sqlite_db) as statements:
            # One by one: a known member by phone, by external id; a new one (created by the
            # purchase, with the signup rule's bonus: the occasion's usage rows are looked up).
            post("/v1/events", purchase(1, {"phone": "081211112222"}))
            post("/v1/events", purchase(2, {"external_id": "C-1"}))
            post("/v1/events", purchase(3, {"email": "new@example.com", "phone": "0813-5555-6666"}))
            # A batch: known and new members (with a signup rule, new ones go the full way).
            post(
                "/v1/events/batch",
                {
                    "events": [
                        purchase(4, {"phone": "081211112222"}),
                        purchase(5, {"external_id": "C-9"}),
                        purchase(6, {"email": "new@example.com"}),
                    ]
                },
            )

            # The reads: look-up by phone, the member, balance (with lifetime totals), statement,
            # wallet.
            def get(path: str) -> dict[str, Any]:
                r = client.get(path, headers=headers)
                assert r.status_code == 200, r.text
                out: dict[str, Any] = r.json()
                return out

            member_id = get("/v1/members/lookup?phone=0812-1111-2222")["id"]
            get(f"/v1/members/{member_id}")
            assert get(f"/v1/members/{member_id}/balance")["lifetime"]["earned"] > 0
            get(f"/v1/members/{member_id}/ledger")
            # The wallet's totals read its entries: it needs money in it first.
            post(
                f"/v1/members/{member_id}/wallet/credits",
                {"amount": "50000", "code": "TOPUP", "reason": "counter top-up"},
            )
            assert get(f"/v1/members/{member_id}/wallet")["lifetime"]["credited"] == "50000"

    # The paths above ran, the occasion's look-up among them.
    assert any("rule_awards.trigger_key" in sql for sql in statements), list(statements)
    assert _walks(sqlite_db, statements) == []


def test_the_check_sees_a_walk(sqlite_db: Database) -> None:
    # The detector itself: the old member look-up (tenant AND (id OR external OR phone ...))
    # and an account look-up by program and member without the member index are walks.
    make_tenant(sqlite_db)
    old_find = (
        "SELECT members.id FROM members WHERE members.tenant_id = ? AND (members.id = ? "
        "OR members.external_id = ? OR members.phone = ? OR members.email = ?)"
    )
    accounts = (
        "SELECT ledger_accounts.id FROM ledger_accounts NOT INDEXED "
        "WHERE ledger_accounts.program_id = ? AND ledger_accounts.member_id = ?"
    )
    like = "SELECT rule_awards.id FROM rule_awards WHERE rule_awards.trigger_key LIKE ?"
    found = _walks(
        sqlite_db,
        {old_find: ("t", "i", "x", "p", "e"), accounts: ("p", "m"), like: ("k:%",)},
    )
    assert len(found) == 3, found


def test_a_members_merge_export_erasure_and_the_hold_job_never_walk(
    sqlite_db: Database,
) -> None:
    from setia.jobs.service import run_due

    tenant = make_tenant(sqlite_db)
    headers = tenant.headers

    with TestClient(create_app(sqlite_db), raise_server_exceptions=False) as client:

        def post(path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
            r = client.post(path, json=body, headers=headers)
            assert r.status_code in (status, 201), r.text
            out: dict[str, Any] = r.json()
            return out

        ids = {}
        for n, ext in enumerate(("C-1", "C-2", "C-3"), start=1):
            ids[ext] = post("/v1/members", {"external_id": ext})["id"]
            post(
                "/v1/events",
                {
                    "id": f"ev-{n}",
                    "type": "purchase",
                    "member": {"external_id": ext},
                    "order_id": f"O-{n}",
                    "amount": "50000",
                    "currency": "IDR",
                },
            )
        with _captured(sqlite_db) as statements:
            post(
                f"/v1/members/{ids['C-1']}/merge",
                {"source_member_id": ids["C-2"], "reason": "the same person"},
            )
            r = client.get(f"/v1/members/{ids['C-1']}/export", headers=headers)
            assert r.status_code == 200, r.text
            post(
                f"/v1/members/{ids['C-3']}/erase",
                {"reason": "data subject request", "confirm": True},
            )

    # The hold-expiry claim, among the job's statements on the ledger.
    with _captured(sqlite_db, lambda sql: "FROM ledger_transfers" in sql) as ledger:
        run_due(sqlite_db, analytics=False)
    assert any("ledger_transfers.expires_at <=" in sql for sql in ledger), list(ledger)

    assert _walks(sqlite_db, statements | ledger) == []
