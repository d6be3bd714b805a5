"""Program KPIs over a period and the cohort retention matrix, from the service database.

Read-only, set-based SQL (SQLAlchemy Core) that runs the same on SQLite and PostgreSQL.

**Purchases** are the program's ``orders`` rows (one per purchase event), except orders that
are fully refunded (``refunded_amount >= amount`` with a refund): a purchase that was taken
back entirely is not a purchase. A partly refunded order counts once, at its **net** value
``amount - refunded_amount``; refunds are those known when the report runs, whatever day
they were recorded, and are attributed to the order's day.

**Local days and months.** An order belongs to the local day / month (tenant's time zone) of
its ``occurred_at``. Boundaries are local midnights computed in Python (as the finance report
does, with its helpers) and passed to SQL as UTC instants, so no dialect date function is
needed and an order at 23:59 local time never slips into the next day.

See docs/analytics.md, section "KPIs", for every definition.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from setia.core.money import precision, to_str
from setia.core.time import utcnow, zone
from setia.events.models import Order
from setia.finance.service import (
    FIRST_YEAR,
    LAST_YEAR,
    Flows,
    _bucket,
    _grouped,
    _next_month,
    local_midnight,
)
from setia.finance.service import InvalidPeriod as _FinanceInvalidPeriod
from setia.programs.models import Program
from setia.tenants.models import Tenant

MAX_DAYS = 731
MAX_MONTHS = 60
NON_MEMBER_NOTE = (
    "every purchase Setia records belongs to a member (orders.member_id is required), "
    "so there is no non-member spend to compare with"
)


class InvalidPeriod(_FinanceInvalidPeriod):
    """422 ``invalid_period`` (the same code as the finance report's)."""


def check_period(start: date, end: date) -> None:
    if start > end:
        raise InvalidPeriod(
            f"from ({start}) is after to ({end}); give from <= to",
            extra={"from": start.isoformat(), "to": end.isoformat()},
        )
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InvalidPeriod(
            f"the period has {days} days; at most {MAX_DAYS} per request",
            extra={"days": days, "max_days": MAX_DAYS},
        )
    # The previous period of equal length must still be a representable local day.
    if (start - timedelta(days=days)).year < FIRST_YEAR:
        raise InvalidPeriod(
            f"from: {start} is too early; the previous period would start before {FIRST_YEAR}",
            extra={"field": "from"},
        )


def parse_day(value: str, field_name: str) -> date:
    try:
        if len(value) != 10 or value[4] != "-" or value[7] != "-":
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidPeriod(
            f"{field_name}: {value!r} is not a date; use YYYY-MM-DD", extra={"field": field_name}
        ) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidPeriod(
            f"{field_name}: {value} is out of range; use a day from {FIRST_YEAR} to {LAST_YEAR}",
            extra={"field": field_name},
        )
    return day


def parse_month(value: str, field_name: str) -> date:
    """A local month given as YYYY-MM, returned as its first day."""
    try:
        if len(value) != 7 or value[4] != "-":
            raise ValueError(value)
        month = date.fromisoformat(value + "-01")
    except ValueError:
        raise InvalidPeriod(
            f"{field_name}: {value!r} is not a month; use YYYY-MM", extra={"field": field_name}
        ) from None
    if not FIRST_YEAR <= month.year <= LAST_YEAR:
        raise InvalidPeriod(
            f"{field_name}: {value} is out of range; use a month from {FIRST_YEAR} to {LAST_YEAR}",
            extra={"field": field_name},
        )
    return month


def check_months(first: date, last: date) -> int:
    """Number of months from ``first`` to ``last`` inclusive (both first days of months)."""
    if first > last:
        raise InvalidPeriod(
            f"from_month ({first:%Y-%m}) is after to_month ({last:%Y-%m}); give from <= to",
            extra={"from_month": f"{first:%Y-%m}", "to_month": f"{last:%Y-%m}"},
        )
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > MAX_MONTHS:
        raise InvalidPeriod(
            f"the range has {months} months; at most {MAX_MONTHS} per request",
            extra={"months": months, "max_months": MAX_MONTHS},
        )
    return months


# --------------------------------------------------------------------------- helpers


def _purchase_filter(program_id: uuid.UUID) -> ColumnElement[bool]:
    """The program's orders that count as purchases (not fully refunded)."""
    fully_refunded = and_(Order.refunded_amount > 0, Order.refunded_amount >= Order.amount)
    return and_(Order.program_id == program_id, ~fully_refunded)


def _ratio(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


def _money(value: Any, currency: str) -> Decimal:
    """A summed Numeric column as a Decimal rounded to the currency (SQLite sums in floats)."""
    exp = Decimal(1).scaleb(-precision(currency))
    return Decimal(str(value or 0)).quantize(exp)


def _between(col: Any, lo: datetime, hi: datetime) -> ColumnElement[bool]:
    return and_(col >= lo, col < hi)


# --------------------------------------------------------------------------- KPIs


def kpis(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    start: date,
    end: date,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The KPIs for the local days ``start`` to ``end`` (inclusive)."""
    check_period(start, end)
    tz = zone(tenant.timezone)
    now = now or utcnow()
    n_days = (end - start).days + 1
    prev_start = start - timedelta(days=n_days)
    lo, hi = local_midnight(start, tz), local_midnight(end + timedelta(days=1), tz)
    prev_lo = local_midnight(prev_start, tz)
    cur = program.currency
    where = _purchase_filter(program.id)
    at = Order.occurred_at
    net = Order.amount - Order.refunded_amount

    # One row per member who ever purchased: first purchase, orders and net spend in the
    # period, whether active in the previous period.
    in_period = _between(at, lo, hi)
    per_member = (
        select(
            Order.member_id.label("member_id"),
            func.min(at).label("first_at"),
            func.sum(case((in_period, 1), else_=0)).label("orders"),
            func.sum(case((in_period, net), else_=0)).label("net"),
            func.max(case((_between(at, prev_lo, lo), 1), else_=0)).label("prev_active"),
        )
        .where(where, at < hi)
        .group_by(Order.member_id)
        .subquery()
    )
    active = per_member.c.orders > 0
    row = session.execute(
        select(
            func.sum(case((active, 1), else_=0)),
            func.sum(case((and_(active, per_member.c.first_at >= lo), 1), else_=0)),
            func.sum(case((and_(active, per_member.c.first_at < lo), 1), else_=0)),
            func.sum(per_member.c.orders),
            func.sum(per_member.c.net),
            func.sum(per_member.c.prev_active),
            func.sum(case((and_(active, per_member.c.prev_active == 1), 1), else_=0)),
        )
    ).one()
    active_n, new_n, returning_n, orders_n = (int(v or 0) for v in row[:4])
    net_total = _money(row[4], cur)
    prev_active_n, retained_n = int(row[5] or 0), int(row[6] or 0)

    # Repeat buyers: active members with purchases on two or more local days of the period.
    repeat_n = _repeat_buyers(session, where, start, end, tz)

    # Points from the ledger, classified as the finance report does.
    flows = Flows()
    for bucket, shape, amount in _grouped(session, program.id, [lo, hi], window_only=True):
        if bucket == 0:
            flows.add(shape, amount)
    points = flows.points_out()
    issued, redeemed, expired = flows.points["earned"], points["redeemed"], points["expired"]

    exp = Decimal(1).scaleb(-precision(cur))
    aov = None if orders_n == 0 else to_str((net_total / orders_n).quantize(exp), cur)
    frequency = (
        None
        if active_n == 0
        else str((Decimal(orders_n) / Decimal(active_n)).quantize(Decimal("0.0001")))
    )
    retention = _ratio(retained_n, prev_active_n)
    churn = None if retention is None else str(Decimal(1) - Decimal(retention))
    return {
        "program_id": str(program.id),
        "currency": cur,
        "timezone": tenant.timezone,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": n_days,
        "previous_from": prev_start.isoformat(),
        "previous_to": (start - timedelta(days=1)).isoformat(),
        "generated_at": now.isoformat(),
        "members": {
            "active": active_n,
            "new": new_n,
            "returning": returning_n,
            "repeat": repeat_n,
            "active_previous_period": prev_active_n,
            "retained": retained_n,
        },
        "orders": orders_n,
        "net_sales": to_str(net_total, cur),
        "repeat_purchase_rate": _ratio(repeat_n, active_n),
        "purchase_frequency": frequency,
        "average_order_value": aov,
        "retention_rate": retention,
        "churn_rate": churn,
        "points": {
            "issued": issued,
            "redeemed": redeemed,
            "expired": expired,
            "redemption_rate": _ratio(redeemed, issued),
        },
        "member_vs_non_member": None,
        "member_vs_non_member_note": NON_MEMBER_NOTE,
    }


def _repeat_buyers(
    session: Session, where: ColumnElement[bool], start: date, end: date, tz: ZoneInfo
) -> int:
    days = [start + timedelta(days=i) for i in range((end - start).days + 2)]
    bounds = [local_midnight(d, tz) for d in days]
    at = Order.occurred_at
    member_days = (
        select(Order.member_id.label("member_id"), _bucket(at, bounds).label("day"))
        .where(where, _between(at, bounds[0], bounds[-1]))
        .distinct()
        .subquery()
    )
    per_member = (
        select(member_days.c.member_id)
        .group_by(member_days.c.member_id)
        .having(func.count() >= 2)
        .subquery()
    )
    return int(session.execute(select(func.count()).select_from(per_member)).scalar_one())


# --------------------------------------------------------------------------- cohorts


def _month_bounds(first: date, months: int, tz: ZoneInfo) -> list[datetime]:
    starts = [first]
    for _ in range(months):
        starts.append(_next_month(starts[-1]))
    return [local_midnight(m, tz) for m in starts]


def cohort_query(program_id: uuid.UUID, bounds: list[datetime]) -> Select[Any]:
    """(cohort index, month index, members) for first-purchase months inside the bounds."""
    where = _purchase_filter(program_id)
    firsts = (
        select(Order.member_id.label("member_id"), func.min(Order.occurred_at).label("first_at"))
        .where(where)
        .group_by(Order.member_id)
        .subquery()
    )
    at = Order.occurred_at
    lo, hi = bounds[0], bounds[-1]
    cells = (
        select(
            Order.member_id.label("member_id"),
            _bucket(firsts.c.first_at, bounds).label("cohort"),
            _bucket(at, bounds).label("month"),
        )
        .join(firsts, firsts.c.member_id == Order.member_id)
        .where(where, _between(firsts.c.first_at, lo, hi), _between(at, lo, hi))
        .subquery()
    )
    return (
        select(cells.c.cohort, cells.c.month, func.count(func.distinct(cells.c.member_id)))
        .group_by(cells.c.cohort, cells.c.month)
        .order_by(cells.c.cohort, cells.c.month)
    )


def cohorts(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    first_month: date,
    last_month: date,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Cohort retention matrix: members by the local month of their first purchase, and how
    many of each cohort purchased in each later month up to ``last_month``."""
    months = check_months(first_month, last_month)
    tz = zone(tenant.timezone)
    now = now or utcnow()
    bounds = _month_bounds(first_month, months, tz)
    labels = []
    m = first_month
    for _ in range(months):
        labels.append(f"{m:%Y-%m}")
        m = _next_month(m)
    counts: dict[tuple[int, int], int] = {}
    for cohort, month, n in session.execute(cohort_query(program.id, bounds)).all():
        counts[(int(cohort), int(month))] = int(n)
    rows = []
    for c in range(months):
        size = counts.get((c, c), 0)
        if size == 0:
            continue
        rows.append(
            {
                "cohort": labels[c],
                "size": size,
                "months": [
                    {
                        "offset": k - c,
                        "month": labels[k],
                        "members": counts.get((c, k), 0),
                        "share": _ratio(counts.get((c, k), 0), size),
                    }
                    for k in range(c, months)
                ],
            }
        )
    return {
        "program_id": str(program.id),
        "timezone": tenant.timezone,
        "from_month": labels[0],
        "to_month": labels[-1],
        "generated_at": now.isoformat(),
        "cohorts": rows,
    }


__all__ = [
    "MAX_DAYS",
    "MAX_MONTHS",
    "InvalidPeriod",
    "check_months",
    "check_period",
    "cohort_query",
    "cohorts",
    "kpis",
    "parse_day",
    "parse_month",
]
