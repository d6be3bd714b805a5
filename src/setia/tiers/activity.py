"""What events add to ``tier_activity``: called in the event's own transaction.

One call per event (``record``) or one per batch (``record_many``): rows with the same key
are summed first and written with a single upsert, so a batch of a thousand purchases is
one statement, and two transactions adding to the same day both count (the database adds).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from setia.core import bulk
from setia.core.time import as_utc, zone
from setia.tiers.models import EVENT_PREFIX, PURCHASE, TierActivity

_TABLE = cast(Table, TierActivity.__table__)
_KEY = ("program_id", "member_id", "day", "kind")
_SUMS = ("spend", "points", "orders", "count")
_UPSERTS: dict[str, Any] = {}  # the upsert statement per dialect, built once


@dataclass(frozen=True)
class Activity:
    program_id: uuid.UUID
    member_id: uuid.UUID
    day: date
    kind: str
    spend: Decimal = Decimal(0)
    points: int = 0
    orders: int = 0
    count: int = 0


def local_day(moment: datetime, tz_name: str) -> date:
    return as_utc(moment).astimezone(zone(tz_name)).date()


def purchase(
    program_id: uuid.UUID, member_id: uuid.UUID, day: date, amount: Decimal, points: int
) -> Activity:
    return Activity(program_id, member_id, day, PURCHASE, spend=amount, points=points, orders=1)


def refund(
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    purchase_day: date,
    amount: Decimal,
    points_reversed: int,
    *,
    order_now_fully_refunded: bool,
) -> Activity:
    """A refund counts against the day of the purchase it refunds, so it takes back exactly
    what that purchase added to whichever window holds it; a full refund also takes back
    the order (and so the visit, when it was the day's only order)."""
    return Activity(
        program_id,
        member_id,
        purchase_day,
        PURCHASE,
        spend=-amount,
        points=-points_reversed,
        orders=-1 if order_now_fully_refunded else 0,
    )


def custom(
    program_id: uuid.UUID, member_id: uuid.UUID, day: date, event_type: str, points: int
) -> Activity:
    return Activity(program_id, member_id, day, EVENT_PREFIX + event_type, points=points, count=1)


def record(session: Session, activity: Activity) -> None:
    record_many(session, [activity])


def record_many(session: Session, activities: Iterable[Activity]) -> None:
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for a in activities:
        key = (a.program_id, a.member_id, a.day, a.kind)
        row = merged.get(key)
        if row is None:
            merged[key] = {
                "program_id": a.program_id,
                "member_id": a.member_id,
                "day": a.day,
                "kind": a.kind,
                "spend": a.spend,
                "points": a.points,
                "orders": a.orders,
                "count": a.count,
            }
        else:
            row["spend"] += a.spend
            row["points"] += a.points
            row["orders"] += a.orders
            row["count"] += a.count
    if not merged:
        return
    dialect = session.get_bind().dialect.name
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = make(_TABLE)
        stmt = _UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={name: _TABLE.c[name] + stmt.excluded[name] for name in _SUMS},
        )
    # Sorted so concurrent batches touch rows in one order (no deadlock on PostgreSQL).
    rows = sorted(merged.values(), key=lambda r: (str(r["member_id"]), r["day"], r["kind"]))
    bulk.executemany(session, stmt, bulk.rows_to_columns(rows))
