"""Small helpers shared by the API tests: row counts and ready-made events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from setia.core.db import Database

PROBLEM = "application/problem+json"
COUNTED = ("events", "members", "orders", "ledger_transfers", "ledger_entries", "point_lots")


def row_counts(db: Database, tables: tuple[str, ...] = COUNTED) -> dict[str, int]:
    """Rows per table, read through a fresh connection (what is committed)."""
    with db.engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in tables
        }


def purchase(event_id: str = "e1", **kw: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "purchase",
        "member": {"phone": "0812-3456-7890"},
        "order_id": f"O-{event_id}",
        "amount": "85000",
        "currency": "IDR",
        **kw,
    }


def refund(event_id: str, order_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "refund",
        "member": {"phone": "0812-3456-7890"},
        "order_id": order_id,
        **kw,
    }
