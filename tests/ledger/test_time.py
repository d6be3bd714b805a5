"""Time: expiry dates in the tenant's time zone, and pending points released on the dot.

Events must have happened in the past, so purchases use past dates and the jobs run with an
explicit ``now``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from setia.core.db import Database
from setia.core.time import utcnow
from setia.jobs.service import run_due
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import (
    assert_db_sound,
    balance,
    configure,
    lots_of,
    member_by_external_id,
    post_event,
)

JAKARTA = ZoneInfo("Asia/Jakarta")
KUALA_LUMPUR = ZoneInfo("Asia/Kuala_Lumpur")
SECOND = timedelta(seconds=1)


def jkt(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def buy(
    db: Database,
    t: TenantFixture,
    member: str,
    at: datetime,
    amount: str = "85000",
    currency: str = "IDR",
    order: str = "O1",
) -> dict[str, object]:
    rec = post_event(
        db,
        t,
        {
            "id": f"buy-{order}",
            "type": "purchase",
            "occurred_at": at.isoformat(),
            "member": {"external_id": member},
            "order_id": order,
            "amount": amount,
            "currency": currency,
        },
    )
    assert rec.created
    return rec.result


def assert_expires_exactly_at(
    db: Database, t: TenantFixture, member_external_id: str, points: int, expires: datetime
) -> None:
    """The lot carries ``expires``; the job leaves it a second before and takes it on the dot."""
    member_id = member_by_external_id(db, t, member_external_id)
    (lot,) = lots_of(db, t, member_id)
    assert lot.expires_at == expires.astimezone(UTC)
    report = run_due(db, now=expires - SECOND)
    assert report.expired_points == 0
    assert report.errors == []
    assert balance(db, t, member_id, expires - SECOND)["available"] == points
    report = run_due(db, now=expires)
    assert report.expired_points == points
    assert report.expired_lots == 1
    b = balance(db, t, member_id, expires)
    assert (b["available"], b["lifetime"]["expired"]) == (0, points)
    assert run_due(db, now=expires + timedelta(days=400)).expired_points == 0
    assert_db_sound(db)


@pytest.mark.parametrize(
    ("occurred", "months", "period", "expires"),
    [
        # 23:30 on 31 January in Jakarta: one month on is February, so the end of February.
        (jkt(2026, 1, 31, 23, 30), 1, "month", jkt(2026, 3, 1)),
        # 00:30 on 1 February in Jakarta is still 31 January in UTC: the end of March.
        (jkt(2026, 2, 1, 0, 30), 1, "month", jkt(2026, 4, 1)),
        (jkt(2026, 1, 15, 12, 0), 0, "month", jkt(2026, 2, 1)),
        (jkt(2026, 3, 31, 23, 30), 0, "quarter", jkt(2026, 4, 1)),
        (jkt(2026, 4, 1, 0, 30), 0, "quarter", jkt(2026, 7, 1)),
        (jkt(2026, 1, 31, 23, 30), 1, "quarter", jkt(2026, 4, 1)),
        (jkt(2026, 5, 1, 0, 30), 2, "quarter", jkt(2026, 10, 1)),
        (jkt(2025, 12, 31, 23, 30), 0, "year", jkt(2026, 1, 1)),
        (jkt(2026, 1, 1, 0, 30), 0, "year", jkt(2027, 1, 1)),
        (jkt(2025, 1, 31, 23, 30), 12, "year", jkt(2027, 1, 1)),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
)
def test_end_of_period_expiry_follows_jakarta_calendar(
    db: Database,
    tenant: TenantFixture,
    occurred: datetime,
    months: int,
    period: str,
    expires: datetime,
) -> None:
    configure(db, tenant, expiry_policy="end_of_period", expiry_months=months, expiry_period=period)
    result = buy(db, tenant, "C-1", occurred)
    (award,) = result["points"]["awards"]  # type: ignore[index]
    assert datetime.fromisoformat(award["expires_at"]) == expires
    assert_expires_exactly_at(db, tenant, "C-1", 85, expires)


def test_purchase_late_on_31_january_expires_end_of_february_jakarta(
    db: Database, tenant: TenantFixture
) -> None:
    """The issue's example, in UTC terms: 2026-01-31T23:30+07:00 expires 2026-02-28T17:00Z."""
    configure(db, tenant, expiry_policy="end_of_period", expiry_months=1, expiry_period="month")
    buy(db, tenant, "C-1", datetime.fromisoformat("2026-01-31T23:30:00+07:00"), order="late")
    buy(db, tenant, "C-2", datetime.fromisoformat("2026-02-01T00:30:00+07:00"), order="early")
    (late,) = lots_of(db, tenant, member_by_external_id(db, tenant, "C-1"))
    (early,) = lots_of(db, tenant, member_by_external_id(db, tenant, "C-2"))
    assert late.expires_at == datetime(2026, 2, 28, 17, 0, tzinfo=UTC)
    assert early.expires_at == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    # The two purchases are half an hour apart in UTC (both on 31 January there) and still
    # expire a month apart, because the month is Jakarta's.
    assert early.earned_at - late.earned_at == timedelta(hours=1)
    assert late.earned_at.date() == early.earned_at.date()


def test_end_of_month_in_kuala_lumpur(db: Database) -> None:
    t = make_tenant(db, name="Kedai KL", country="MY", currency="MYR", timezone="Asia/Kuala_Lumpur")
    configure(
        db,
        t,
        earn_per_amount=1,
        expiry_policy="end_of_period",
        expiry_months=1,
        expiry_period="month",
    )
    occurred = datetime(2026, 1, 31, 23, 30, tzinfo=KUALA_LUMPUR)
    buy(db, t, "K-1", occurred, amount="85.00", currency="MYR")
    expires = datetime(2026, 3, 1, tzinfo=KUALA_LUMPUR)
    assert expires.astimezone(UTC) == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert_expires_exactly_at(db, t, "K-1", 85, expires)


@pytest.mark.parametrize(
    ("occurred", "months", "expires"),
    [
        # One month from 31 January of a leap year is the last day of February: the 29th.
        (jkt(2024, 1, 31, 12, 0), 1, jkt(2024, 2, 29, 12, 0)),
        # Twelve months from a leap day clamp to the end of February: the 28th.
        (jkt(2024, 2, 29, 12, 0), 12, jkt(2025, 2, 28, 12, 0)),
        # Thirteen months from 31 January 2023 land in February of the leap year 2024.
        (jkt(2023, 1, 31, 12, 0), 13, jkt(2024, 2, 29, 12, 0)),
        (jkt(2025, 1, 31, 12, 0), 12, jkt(2026, 1, 31, 12, 0)),
        # Early in the morning in Jakarta it is still the day before in UTC; the calendar
        # that counts is the tenant's, so these clamp to Jakarta's month end too.
        (jkt(2024, 1, 31, 0, 30), 1, jkt(2024, 2, 29, 0, 30)),
        (jkt(2024, 2, 29, 0, 30), 12, jkt(2025, 2, 28, 0, 30)),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
)
def test_after_duration_clamps_to_the_month_end(
    db: Database, tenant: TenantFixture, occurred: datetime, months: int, expires: datetime
) -> None:
    configure(db, tenant, expiry_policy="after_duration", expiry_months=months)
    buy(db, tenant, "C-1", occurred)
    assert_expires_exactly_at(db, tenant, "C-1", 85, expires)


def test_pending_points_become_available_exactly_after_the_pending_period(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, pending_days=7)
    occurred = utcnow().replace(microsecond=0) - timedelta(hours=1)
    result = buy(db, tenant, "C-1", occurred)
    member_id = member_by_external_id(db, tenant, "C-1")
    (lot,) = lots_of(db, tenant, member_id)
    pending_until = occurred + timedelta(days=7)
    assert lot.pending_until == pending_until
    assert result["points"]["awards"][0]["pending_until"] == pending_until.isoformat()  # type: ignore[index]
    b = balance(db, tenant, member_id, occurred)
    assert (b["available"], b["pending"]) == (0, 85)
    assert b["pending_lots"] == [{"points": 85, "available_at": pending_until}]

    report = run_due(db, now=pending_until - SECOND)
    assert (report.released_lots, report.released_points, report.errors) == (0, 0, [])
    b = balance(db, tenant, member_id, pending_until - SECOND)
    assert (b["available"], b["pending"]) == (0, 85)

    report = run_due(db, now=pending_until)
    assert (report.released_lots, report.released_points, report.errors) == (1, 85, [])
    b = balance(db, tenant, member_id, pending_until)
    assert (b["available"], b["pending"], b["pending_lots"]) == (85, 0, [])

    assert run_due(db, now=pending_until + timedelta(days=1)).released_points == 0
    assert balance(db, tenant, member_id, pending_until)["available"] == 85
    assert_db_sound(db)


def test_purchase_older_than_the_pending_period_is_available_at_once(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, pending_days=7)
    occurred = utcnow().replace(microsecond=0) - timedelta(days=7, seconds=1)
    buy(db, tenant, "C-1", occurred)
    member_id = member_by_external_id(db, tenant, "C-1")
    b = balance(db, tenant, member_id, utcnow())
    assert (b["available"], b["pending"]) == (85, 0)
    assert run_due(db, now=utcnow()).released_points == 0
    assert_db_sound(db)


def test_pending_points_released_then_expired_in_one_run(
    db: Database, tenant: TenantFixture
) -> None:
    """A run that is late for both releases first and then expires, in that order."""
    configure(
        db,
        tenant,
        pending_days=7,
        expiry_policy="end_of_period",
        expiry_months=0,
        expiry_period="month",
    )
    occurred = utcnow().replace(microsecond=0) - timedelta(hours=1)
    buy(db, tenant, "C-1", occurred)
    member_id = member_by_external_id(db, tenant, "C-1")
    (lot,) = lots_of(db, tenant, member_id)
    assert lot.expires_at is not None
    assert lot.pending_until is not None
    late = max(lot.expires_at, lot.pending_until) + timedelta(days=1)
    report = run_due(db, now=late)
    assert (report.released_points, report.expired_points) == (85, 85)
    b = balance(db, tenant, member_id, late)
    assert (b["available"], b["pending"]) == (0, 0)
    assert_db_sound(db)


def test_member_without_expiry_keeps_points(db: Database, tenant: TenantFixture) -> None:
    buy(db, tenant, "C-1", utcnow() - timedelta(days=800))
    member_id = member_by_external_id(db, tenant, "C-1")
    assert run_due(db, now=utcnow() + timedelta(days=4000)).expired_points == 0
    assert balance(db, tenant, member_id, utcnow())["available"] == 85
    assert_db_sound(db)
