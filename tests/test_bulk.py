"""``setia.core.bulk`` stores what ``session.execute`` stores: rows given as columns, as
tuples (``Rows``) or with values every row shares (``constants``) read back alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select

from setia.core import bulk
from setia.core.db import Database, dump_json, new_id
from setia.outbox.models import OutboxMessage
from tests.conftest import TenantFixture

_TABLE = OutboxMessage.__table__
_INSERT = insert(_TABLE)
_JAKARTA = timezone(timedelta(hours=7))


def _messages(db: Database, topic_prefix: str) -> list[tuple[Any, ...]]:
    c = _TABLE.c
    with db.session() as session:
        rows = session.execute(
            select(c.tenant_id, c.topic, c.payload, c.created_at, c.processed_at)
            .where(c.topic.startswith(topic_prefix))
            .order_by(c.id)
        ).all()
    return [(r[0], r[1][len(topic_prefix) :], r[2], r[3], r[4]) for r in rows]


def test_rows_and_constants_store_what_execute_stores(db: Database, tenant: TenantFixture) -> None:
    at = datetime(2026, 1, 31, 23, 30, tzinfo=_JAKARTA)  # 16:30 UTC: stored in UTC
    payloads: list[Any] = [
        {"b": 1, "a": "Rp 50.000"},
        {},
        {"nested": {"list": [1, 2, {"x": None}]}, "ünï": "kopi ☕"},
        {"b": 1, "a": "Rp 50.000"},
    ]
    reference = [
        {
            "id": new_id(),
            "tenant_id": tenant.tenant_id,
            "topic": f"ref.{i}",
            "payload": p,
            "created_at": at,
            "processed_at": None,
        }
        for i, p in enumerate(payloads)
    ]
    rows = bulk.Rows(("id", "topic", "payload"), tenant_id=tenant.tenant_id, created_at=at)
    rows.rows.extend(
        (
            new_id(),
            f"bulk.{i}",
            # one document given already serialized, as the engine's serializer writes it
            bulk.JsonText(dump_json(p)) if i == 2 else p,
        )
        for i, p in enumerate(payloads)
    )
    rows.constants["processed_at"] = None
    with db.session() as session:
        session.execute(_INSERT, reference)
        assert rows.write(session, _INSERT) == len(payloads)
        session.commit()

    stored = _messages(db, "bulk.")
    assert stored == _messages(db, "ref.")
    assert [s[2] for s in stored] == payloads
    assert {s[3] for s in stored} == {at.astimezone(UTC)}


def test_constants_only_widen_the_columns(db: Database, tenant: TenantFixture) -> None:
    """Columns given per row and constants together: each row gets its own values and the
    shared ones; nothing to write writes nothing."""
    at = datetime(2026, 2, 28, 17, 0, tzinfo=UTC)
    with db.session() as session:
        empty = bulk.Rows(("id", "topic", "payload"), tenant_id=tenant.tenant_id, created_at=at)
        assert empty.write(session, _INSERT) == 0
        n = bulk.executemany(
            session,
            _INSERT,
            {"id": [new_id(), new_id()], "topic": ["mix.a", "mix.b"]},
            {"tenant_id": tenant.tenant_id, "payload": {"same": True}, "created_at": at},
        )
        assert n == 2
        session.commit()
    stored = _messages(db, "mix.")
    assert stored == [
        (tenant.tenant_id, "a", {"same": True}, at, None),
        (tenant.tenant_id, "b", {"same": True}, at, None),
    ]
