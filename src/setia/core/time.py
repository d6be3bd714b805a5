"""Time helpers. Storage is always timezone-aware UTC; day boundaries use a tenant's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC. Naive values are taken to be UTC already.

    SQLite gives naive datetimes back even for ``DateTime(timezone=True)``; everything we
    store is UTC, so attaching UTC is correct.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Jakarta"
        ) from exc


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar month arithmetic that clamps to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    return moment + relativedelta(months=months)


def end_of_period(moment_utc: datetime, tz_name: str, months_after: int, period: str) -> datetime:
    """The instant a period ends, in a tenant's zone.

    ``months_after`` months are added to the local date of ``moment_utc``; the result is the
    first instant *after* the month, quarter or year that contains that date (an exclusive
    bound: points are expired when ``now >= expires_at``).
    """
    tz = zone(tz_name)
    local = as_utc(moment_utc).astimezone(tz)
    target = (local + relativedelta(months=months_after)).date()
    if period == "month":
        start_next = datetime(target.year, target.month, 1, tzinfo=tz) + relativedelta(months=1)
    elif period == "quarter":
        quarter_first_month = 3 * ((target.month - 1) // 3) + 1
        start_next = datetime(target.year, quarter_first_month, 1, tzinfo=tz) + relativedelta(
            months=3
        )
    elif period == "year":
        start_next = datetime(target.year + 1, 1, 1, tzinfo=tz)
    else:  # pragma: no cover - validated by the schema
        raise ValueError(f"unknown period {period!r}")
    return start_next.astimezone(UTC)


def days(n: int) -> timedelta:
    return timedelta(days=n)
