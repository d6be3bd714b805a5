"""The finance report: outstanding points by expiry month, breakage, daily flows, wallets.

Read-only. Every figure comes from the ledger (``ledger_transfers``, ``ledger_accounts``,
``point_lots``) with set-based SQL that runs the same on SQLite and PostgreSQL.

**Local days and months.** A transfer belongs to the local day (tenant's time zone) of its
``effective_at``. Day and month boundaries are computed in Python with the zone's rules
(daylight saving and half-hour offsets included) and handed to SQL as UTC instants; each
row's bucket is a balanced tree of ``CASE WHEN ts < boundary`` (about log2(days)
comparisons per row), computed in a subquery and grouped in SQL. No dialect-specific date
function is needed, and a row never lands on the wrong side of a local midnight.

See docs/finance.md for the definition of every figure.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from setia.core.errors import InvalidInput
from setia.core.time import as_utc, utcnow, zone
from setia.ledger import queries as ledger_queries
from setia.ledger.models import (
    ADJUSTMENT,
    DEBT,
    EXPIRED,
    ISSUANCE,
    PENDING,
    POINTS,
    WALLET,
    WALLET_ISSUED,
    WALLET_SPENT,
    WRITE_OFF,
    Account,
    Lot,
    LotMovement,
    Transfer,
)
from setia.programs.models import Program
from setia.tenants.models import Tenant

MAX_DAYS = 366
# Program accounts that are not where spent points go.
_NOT_SPEND_SINKS = frozenset((ISSUANCE, EXPIRED, ADJUSTMENT, WRITE_OFF))
# Daily point figures, in output order.
DAILY_POINTS = (
    "earned",
    "redeemed",
    "returned",
    "reversed",
    "expired",
    "adjusted_out",
    "debt_repaid",
    "other",
)
DAILY_WALLET = ("credited", "spent", "returned")


class InvalidPeriod(InvalidInput):
    code = "invalid_period"
    title = "Invalid report period"


def check_period(start: date, end: date) -> None:
    if start > end:
        raise InvalidPeriod(
            f"from ({start}) is after to ({end}); give from <= to",
            extra={"from": start.isoformat(), "to": end.isoformat()},
        )
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InvalidPeriod(
            f"the period has {days} days; at most {MAX_DAYS} per report",
            extra={"days": days, "max_days": MAX_DAYS},
        )


FIRST_YEAR, LAST_YEAR = 1900, 9998  # every local midnight in between is a UTC instant


def parse_day(value: str, field_name: str) -> date:
    """A local day given as YYYY-MM-DD, between the years 1900 and 9998."""
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


# --------------------------------------------------------------------------- buckets


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a local day starts."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _bucket(col: Any, bounds: list[datetime], lo: int = 0, hi: int | None = None) -> Any:
    """Index i with bounds[i] <= col < bounds[i+1], for rows already inside the bounds."""
    if hi is None:
        hi = len(bounds) - 1
    if hi - lo == 1:
        return literal(lo)
    mid = (lo + hi) // 2
    return case(
        (col < bounds[mid], _bucket(col, bounds, lo, mid)), else_=_bucket(col, bounds, mid, hi)
    )


def _month_start(moment: datetime, tz: ZoneInfo) -> date:
    local = as_utc(moment).astimezone(tz)
    return date(local.year, local.month, 1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class Shape:
    """What a group of transfers looks like: enough to say which figure it belongs to."""

    code: str
    kind: str
    debit_code: str
    debit_member: bool
    credit_code: str
    credit_member: bool


def points_figure(s: Shape) -> tuple[str, int] | None:
    """(figure, sign) for a posted points transfer, or None when it moves nothing counted.

    Holds (``PENDING``) and their void/expiry do not count; a capture (``POST_PENDING``)
    counts as a redemption. Moves between members (RELEASE, TRANSFER, MERGE, debt merges)
    and debt bookkeeping count nowhere except as named below.
    """
    if s.kind not in ("POSTED", "POST_PENDING"):
        return None
    member_in = s.credit_member and s.credit_code in (POINTS, PENDING)
    member_out = s.debit_member and s.debit_code in (POINTS, PENDING)
    if member_in and member_out:
        return None  # RELEASE, TRANSFER, MERGE: still outstanding
    if s.code == "RETURN" and member_in:
        return ("returned", 1) if s.debit_code not in _NOT_SPEND_SINKS else ("adjusted_out", -1)
    if member_in and not s.debit_member and s.debit_code in (ISSUANCE, ADJUSTMENT):
        return ("earned", 1)
    if member_out and s.code == "EXPIRE":
        return ("expired", 1)
    if member_out and s.code == "REVERSAL":
        return ("reversal", 1)
    if member_out and s.credit_member and s.credit_code == DEBT:
        return ("debt_repaid", 1)
    if member_out and not s.credit_member and s.credit_code == ADJUSTMENT:
        return ("adjusted_out", 1)
    if member_out and not s.credit_member and s.credit_code not in _NOT_SPEND_SINKS:
        return ("redeemed_gross", 1)
    if s.code == "DEBT" and s.debit_member and s.debit_code == DEBT:
        return ("debt", 1)
    if s.code == "WRITE_OFF" and not s.debit_member and s.debit_code == WRITE_OFF:
        return ("written_off", 1)
    if s.debit_code in (DEBT, WRITE_OFF) or s.credit_code in (DEBT, WRITE_OFF):
        return None  # moves inside the debt bookkeeping (a merged member's debt)
    if member_in:
        return ("other", 1)
    if member_out:
        return ("other", -1)
    return None


def wallet_figure(s: Shape) -> str | None:
    if s.kind not in ("POSTED", "POST_PENDING"):
        return None
    if s.code == "RETURN" and s.credit_code == WALLET:
        return "returned"
    if s.debit_code == WALLET_ISSUED and s.credit_code == WALLET:
        return "credited"
    if s.debit_code == WALLET and s.credit_code == WALLET_SPENT:
        return "spent"
    return None


# --------------------------------------------------------------------------- queries


def _grouped(
    session: Session,
    program_id: uuid.UUID,
    bounds: list[datetime],
    *,
    window_only: bool = False,
) -> list[tuple[int, Shape, int]]:
    """(bucket, shape, total amount) over all the program's posted transfers, in one scan.

    Bucket ``i`` is the local day ``bounds[i] <= effective_at < bounds[i+1]``; ``-1`` is
    everything before the first day, ``len(bounds) - 1`` everything after the last.
    ``window_only`` reads only the transfers between the first and the last bound (through
    the ``(program_id, effective_at)`` index), for callers that ignore the other buckets.
    """
    debit = aliased(Account)
    credit = aliased(Account)
    base = (
        select(
            Transfer.code,
            Transfer.kind,
            debit.code.label("debit_code"),
            debit.member_id.is_not(None).label("debit_member"),
            credit.code.label("credit_code"),
            credit.member_id.is_not(None).label("credit_member"),
            Transfer.amount,
        )
        .join(debit, debit.id == Transfer.debit_account_id)
        .join(credit, credit.id == Transfer.credit_account_id)
        .where(Transfer.program_id == program_id)
    )
    base = base.where(Transfer.kind.in_(("POSTED", "POST_PENDING")))
    at = Transfer.effective_at
    if window_only:
        base = base.where(at >= bounds[0], at < bounds[-1])
    bucket = case(
        (at < bounds[0], literal(-1)),
        (at >= bounds[-1], literal(len(bounds) - 1)),
        else_=_bucket(at, bounds),
    )
    base = base.add_columns(bucket.label("bucket"))
    sub = base.subquery()
    names = ("code", "kind", "debit_code", "debit_member", "credit_code", "credit_member")
    group = [sub.c.bucket, *(sub.c[name] for name in names)]
    rows = session.execute(select(*group, func.sum(sub.c.amount)).group_by(*group)).all()
    return [
        (
            int(row[0]),
            Shape(
                code=row[1],
                kind=row[2],
                debit_code=row[3],
                debit_member=bool(row[4]),
                credit_code=row[5],
                credit_member=bool(row[6]),
            ),
            int(row[7]),
        )
        for row in rows
    ]


@dataclass
class Flows:
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wallet: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    redeemed_by_code: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, shape: Shape, amount: int) -> None:
        if shape.debit_code in (WALLET, WALLET_ISSUED, WALLET_SPENT):
            figure = wallet_figure(shape)
            if figure is not None:
                self.wallet[figure] += amount
            return
        found = points_figure(shape)
        if found is None:
            return
        name, sign = found
        self.points[name] += sign * amount
        if name == "redeemed_gross":
            self.redeemed_by_code[shape.code] += amount

    def points_out(self) -> dict[str, int]:
        p = self.points
        reversed_ = p["reversal"] + p["debt"] + p["written_off"]
        return {
            "earned": p["earned"],
            "redeemed": p["redeemed_gross"] - p["returned"],
            "returned": p["returned"],
            "reversed": reversed_,
            "expired": p["expired"],
            "adjusted_out": p["adjusted_out"],
            "debt_repaid": p["debt_repaid"],
            "other": p["other"],
        }

    def outstanding_change(self) -> int:
        """What these flows did to the points members hold (available + held + pending)."""
        p = self.points
        return (
            p["earned"]
            - p["redeemed_gross"]
            + p["returned"]
            - p["reversal"]
            - p["expired"]
            - p["adjusted_out"]
            - p["debt_repaid"]
            + p["other"]
        )


def _ratio(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


def outstanding_by_month(
    session: Session, program: Program, tz: ZoneInfo
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Points members hold, by the local month their lot expires ("never" last).

    Available and pending points are the lots' ``remaining``; points reserved by an open
    hold have left their lots, so they are counted back to the lots the hold took them from
    (``held``). The totals equal the program's liability.
    """
    member_lot = and_(
        Lot.program_id == program.id,
        Lot.account_id == Account.id,
        Account.member_id.is_not(None),
        Account.code.in_((POINTS, PENDING)),
    )
    resolved = aliased(Transfer)
    open_hold = and_(
        Transfer.id == LotMovement.transfer_id,
        Transfer.program_id == program.id,
        Transfer.kind == "PENDING",
        ~exists().where(resolved.pending_id == Transfer.id),
    )
    lots_sel = select(Lot.expires_at.label("at"), Lot.remaining.label("rem"), literal(0).label("h"))
    lots_sel = lots_sel.join(Account, member_lot).where(Lot.remaining > 0)
    held_sel = (
        select(
            Lot.expires_at.label("at"), literal(0).label("rem"), (-LotMovement.amount).label("h")
        )
        .join(Lot, Lot.id == LotMovement.lot_id)
        .join(Transfer, open_hold)
    )
    parts = [lots_sel.subquery(), held_sel.subquery()]
    span = [
        session.execute(select(func.min(p.c.at), func.max(p.c.at)).where(p.c.at.is_not(None))).one()
        for p in parts
    ]
    lows = [as_utc(s[0]) for s in span if s[0] is not None]
    highs = [as_utc(s[1]) for s in span if s[1] is not None]
    months: list[date] = []
    if lows:
        month = _month_start(min(lows), tz)
        last = _month_start(max(highs), tz)
        while month <= last:
            months.append(month)
            month = _next_month(month)
    bounds = [local_midnight(m, tz) for m in (*months, _next_month(months[-1]))] if months else []
    totals: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for part in parts:
        bucket: ColumnElement[Any] = (
            case((part.c.at.is_(None), literal(-1)), else_=_bucket(part.c.at, bounds))
            if bounds
            else literal(-1)
        )
        inner = select(bucket.label("b"), part.c.rem, part.c.h).subquery()
        for b, rem, held in session.execute(
            select(inner.c.b, func.sum(inner.c.rem), func.sum(inner.c.h)).group_by(inner.c.b)
        ).all():
            key = None if int(b) < 0 else int(b)
            totals[key][0] += int(rem or 0)
            totals[key][1] += int(held or 0)
    cpp = program.cost_per_point
    out: list[dict[str, Any]] = []
    for key in sorted(totals, key=lambda k: (k is None, k or 0)):
        rem, held = totals[key]
        points = rem + held
        if points == 0:
            continue
        out.append(
            {
                "month": "never" if key is None else months[key].strftime("%Y-%m"),
                "points": points,
                "held": held,
                "value": points * cpp,
            }
        )
    total_points = sum(b["points"] for b in out)
    total_held = sum(b["held"] for b in out)
    return out, {"points": total_points, "held": total_held}


def wallet_liability(session: Session, program_id: uuid.UUID) -> dict[str, int]:
    row = session.execute(
        select(
            func.coalesce(func.sum(Account.credits_posted - Account.debits_posted), 0),
            func.coalesce(func.sum(Account.debits_pending), 0),
            func.count(),
        ).where(
            Account.program_id == program_id,
            Account.code == WALLET,
            Account.member_id.is_not(None),
        )
    ).one()
    return {"balance": int(row[0]), "held": int(row[1]), "wallets": int(row[2])}


def report(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    start: date,
    end: date,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The finance report for the local days ``start`` to ``end`` (inclusive)."""
    from setia.wallet.service import money_str

    check_period(start, end)
    tz = zone(tenant.timezone)
    now = now or utcnow()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    bounds = [local_midnight(d, tz) for d in (*days, end + timedelta(days=1))]

    daily = [Flows() for _ in days]
    period, opening, lifetime = Flows(), Flows(), Flows()
    for bucket, shape, amount in _grouped(session, program.id, bounds):
        lifetime.add(shape, amount)
        if bucket < 0:
            opening.add(shape, amount)
        elif bucket < len(days):
            daily[bucket].add(shape, amount)
            period.add(shape, amount)
    buckets, outstanding = outstanding_by_month(session, program, tz)
    liability_points = ledger_queries.liability(session, program.id)
    cpp = program.cost_per_point
    cur = program.currency
    wallets = wallet_liability(session, program.id)
    opening_points = opening.outstanding_change()
    closing_points = opening_points + period.outstanding_change()

    def breakage(flows: Flows) -> dict[str, Any]:
        issued, expired = flows.points["earned"], flows.points["expired"]
        return {"issued": issued, "expired": expired, "rate": _ratio(expired, issued)}

    period_points = period.points_out()
    return {
        "program_id": str(program.id),
        "currency": cur,
        "timezone": tenant.timezone,
        "cost_per_point": str(cpp),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": now.isoformat(),
        "outstanding": {
            "by_expiry_month": [{**b, "value": str(b["value"])} for b in buckets],
            "points": outstanding["points"],
            "held": outstanding["held"],
            "value": str(outstanding["points"] * cpp),
            "liability_points": liability_points,
            "liability_value": str(liability_points * cpp),
        },
        "breakage": {"lifetime": breakage(lifetime), "period": breakage(period)},
        "period": {
            "points": period_points,
            "reversed_detail": {
                "reversal": period.points["reversal"],
                "debt": period.points["debt"],
                "written_off": period.points["written_off"],
            },
            "redeemed_by_code": dict(sorted(period.redeemed_by_code.items())),
            "opening_outstanding": opening_points,
            "closing_outstanding": closing_points,
            "wallet": {k: money_str(period.wallet[k], cur) for k in DAILY_WALLET},
        },
        "daily": [
            {
                "date": day.isoformat(),
                "points": flows.points_out(),
                "wallet": {k: money_str(flows.wallet[k], cur) for k in DAILY_WALLET},
            }
            for day, flows in zip(days, daily, strict=True)
        ],
        "wallet": {
            "balance": money_str(wallets["balance"], cur),
            "held": money_str(wallets["held"], cur),
            "available": money_str(wallets["balance"] - wallets["held"], cur),
            "wallets": wallets["wallets"],
        },
    }
