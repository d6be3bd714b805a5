"""Per-member summary of a program from the service's own data, and per-member predictions.

Computed on demand (nothing is stored in this slice). For a program and a moment ``as_of``
(default now), from the events domain's ``orders`` (orders that occurred at or before
``as_of``):

- one SQL query grouped by member: orders, spend (net of refunds), refunds, first and last
  order time;
- one SQL query grouped by member over the ledger: redemptions (REDEEM transfers, kind
  POSTED or POST_PENDING, debiting the member's accounts);
- the buy-till-you-die fields from the orders' **local** purchase days in the tenant's time
  zone: SQL streams ``(member_id, occurred_at, amount − refunded_amount)`` ordered by member,
  Python turns each time into its local day with ``zoneinfo`` (correct across DST changes)
  and NumPy groups (member, local day) as ``setia.analytics.summary.summarise`` does.

A **purchase** is an order whose net amount (amount − refunded amount) is positive: a fully
refunded order counts in ``orders`` and ``refunds`` but is not a purchase day. Refunds are
netted into the day of the order they refund (not the day of the refund).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from setia.analytics import models, rfm
from setia.analytics.summary import (
    FloatArray,
    IntArray,
    compress,
    day_number,
    from_day_number,
)
from setia.core.errors import InvalidInput
from setia.core.time import as_utc, utcnow, zone
from setia.events.models import Order
from setia.ledger.models import Account, Transfer
from setia.programs.models import Program
from setia.tenants.models import Tenant

UNIT_DAYS = 7.0  # t_x and T are in weeks
MIN_PURCHASERS = 10  # members with a purchase needed before fitting BG/NBD
MIN_REPEAT_BUYERS = 3  # members with x > 0 needed before fitting BG/NBD
STREAM_CHUNK = 10_000


@dataclass(frozen=True)
class MemberRow:
    member_id: uuid.UUID
    orders: int
    spend: Decimal
    refunds: Decimal
    redemptions: int
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None
    purchase_days: int
    first_purchase_day: dt.date | None
    last_purchase_day: dt.date | None
    x: float
    t_x: float
    T: float
    monetary: float


@dataclass
class ProgramSummary:
    """Per-member rows of a program; ``purchasers`` indexes the rows with a purchase."""

    program_id: uuid.UUID
    currency: str
    timezone: str
    as_of: dt.datetime
    as_of_day: dt.date
    rows: list[MemberRow]
    index: dict[uuid.UUID, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {r.member_id: i for i, r in enumerate(self.rows)}

    @property
    def purchasers(self) -> list[MemberRow]:
        return [r for r in self.rows if r.purchase_days > 0]

    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(x, t_x, T, monetary) of the purchasers, in row order."""
        p = self.purchasers
        return (
            np.array([r.x for r in p], dtype=np.float64),
            np.array([r.t_x for r in p], dtype=np.float64),
            np.array([r.T for r in p], dtype=np.float64),
            np.array([r.monetary for r in p], dtype=np.float64),
        )


def resolve_as_of(as_of: dt.datetime | None) -> dt.datetime:
    now = utcnow()
    if as_of is None:
        return now
    if as_of.tzinfo is None:
        raise InvalidInput(
            "as_of needs a time zone offset, e.g. 2026-01-31T23:59:59+07:00",
            code="invalid_as_of",
            extra={"field": "as_of"},
        )
    return as_utc(as_of)


def local_days(times: Sequence[dt.datetime], tz_name: str) -> IntArray:
    """Day numbers (days since 1970-01-01) of the local calendar day of each UTC time."""
    tz = zone(tz_name)
    return np.fromiter(
        (day_number(as_utc(t).astimezone(tz).date()) for t in times),
        dtype=np.int64,
        count=len(times),
    )


def _aggregates(
    session: Session, program_id: uuid.UUID, as_of: dt.datetime, member_id: uuid.UUID | None
) -> dict[uuid.UUID, tuple[int, Decimal, Decimal, dt.datetime, dt.datetime]]:
    q = (
        select(
            Order.member_id,
            func.count(),
            func.coalesce(func.sum(Order.amount - Order.refunded_amount), 0),
            func.coalesce(func.sum(Order.refunded_amount), 0),
            func.min(Order.occurred_at),
            func.max(Order.occurred_at),
        )
        .where(Order.program_id == program_id, Order.occurred_at <= as_of)
        .group_by(Order.member_id)
    )
    if member_id is not None:
        q = q.where(Order.member_id == member_id)
    out: dict[uuid.UUID, tuple[int, Decimal, Decimal, dt.datetime, dt.datetime]] = {}
    for mid, n, spend, refunds, first, last in session.execute(q):
        out[mid] = (int(n), Decimal(spend), Decimal(refunds), as_utc(first), as_utc(last))
    return out


def _redemptions(
    session: Session, program_id: uuid.UUID, as_of: dt.datetime, member_id: uuid.UUID | None
) -> dict[uuid.UUID, int]:
    q = (
        select(Account.member_id, func.count())
        .select_from(Transfer)
        .join(Account, Account.id == Transfer.debit_account_id)
        .where(
            Transfer.program_id == program_id,
            Transfer.code == "REDEEM",
            Transfer.kind.in_(["POSTED", "POST_PENDING"]),
            Transfer.created_at <= as_of,
            Account.member_id.is_not(None),
        )
        .group_by(Account.member_id)
    )
    if member_id is not None:
        q = q.where(Account.member_id == member_id)
    return {mid: int(n) for mid, n in session.execute(q) if mid is not None}


def _purchase_rows(
    session: Session, program_id: uuid.UUID, as_of: dt.datetime, member_id: uuid.UUID | None
) -> tuple[list[uuid.UUID], list[dt.datetime], list[Decimal]]:
    """(member, time, net amount) of every purchase, ordered by member, streamed in chunks."""
    net = Order.amount - Order.refunded_amount
    q = (
        select(Order.member_id, Order.occurred_at, net)
        .where(and_(Order.program_id == program_id, Order.occurred_at <= as_of, net > 0))
        .order_by(Order.member_id, Order.occurred_at)
        .execution_options(yield_per=STREAM_CHUNK)
    )
    if member_id is not None:
        q = q.where(Order.member_id == member_id)
    mids: list[uuid.UUID] = []
    times: list[dt.datetime] = []
    amounts: list[Decimal] = []
    for mid, at, amount in session.execute(q):
        mids.append(mid)
        times.append(at)
        amounts.append(Decimal(amount))
    return mids, times, amounts


def btyd_fields(
    member_codes: IntArray, days: IntArray, amounts: FloatArray, n: int
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Per member code 0..n-1: (purchase days, first day, last day, repeat-days total)."""
    order = np.lexsort((days, member_codes))
    cust, day, amt = member_codes[order], days[order], amounts[order]
    n_days = np.zeros(n, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    repeat_total = np.zeros(n, dtype=np.float64)
    if cust.shape[0] == 0:
        return n_days, first, last, repeat_total
    new_day = np.empty(cust.shape[0], dtype=bool)
    new_day[0] = True
    new_day[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new_day)
    day_cust, day_day = cust[starts], day[starts]
    day_total = np.add.reduceat(amt, starts)
    n_days = np.bincount(day_cust, minlength=n).astype(np.int64)
    has = n_days > 0
    first_idx = np.searchsorted(day_cust, np.arange(n))
    last_idx = first_idx + n_days - 1
    first[has] = day_day[first_idx[has]]
    last[has] = day_day[last_idx[has]]
    all_total = np.bincount(day_cust, weights=day_total, minlength=n)
    repeat_total[has] = all_total[has] - day_total[first_idx[has]]
    return n_days, first, last, repeat_total


def summarise_program(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    as_of: dt.datetime | None = None,
    member_id: uuid.UUID | None = None,
) -> ProgramSummary:
    """The summary of every member of ``program`` with an order (or only ``member_id``)."""
    end = resolve_as_of(as_of)
    tz = tenant.timezone
    end_day = day_number(end.astimezone(zone(tz)).date())
    agg = _aggregates(session, program.id, end, member_id)
    red = _redemptions(session, program.id, end, member_id)
    mids, times, amounts = _purchase_rows(session, program.id, end, member_id)

    members = sorted(set(agg) | set(red) | ({member_id} if member_id else set()))
    code = {m: i for i, m in enumerate(members)}
    n = len(members)
    codes = np.fromiter((code[m] for m in mids), dtype=np.int64, count=len(mids))
    days = local_days(times, tz)
    amt = np.array([float(a) for a in amounts], dtype=np.float64)
    n_days, first, last, repeat_total = btyd_fields(codes, days, amt, n)

    zero = Decimal(0)
    rows: list[MemberRow] = []
    for i, m in enumerate(members):
        n_orders, spend, refunds, first_at, last_at = agg.get(m, (0, zero, zero, None, None))
        k = int(n_days[i])
        x = float(max(k - 1, 0))
        rows.append(
            MemberRow(
                member_id=m,
                orders=n_orders,
                spend=spend,
                refunds=refunds,
                redemptions=red.get(m, 0),
                first_order_at=first_at,
                last_order_at=last_at,
                purchase_days=k,
                first_purchase_day=from_day_number(int(first[i])) if k else None,
                last_purchase_day=from_day_number(int(last[i])) if k else None,
                x=x,
                t_x=float(last[i] - first[i]) / UNIT_DAYS if k else 0.0,
                T=float(end_day - first[i]) / UNIT_DAYS if k else 0.0,
                monetary=float(repeat_total[i]) / x if x > 0 else 0.0,
            )
        )
    return ProgramSummary(
        program_id=program.id,
        currency=program.currency,
        timezone=tz,
        as_of=end,
        as_of_day=from_day_number(end_day),
        rows=rows,
    )


# --- predictions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    """BG/NBD (+ Gamma-Gamma) fitted on a program's purchasers, and per-purchaser results.

    ``reason`` says why something is missing: no purchase model (too few purchasers or
    repeat buyers, or a failed fit) or no spend model (Gamma-Gamma could not be fitted).
    """

    fit: models.Fit | None
    spend_fit: models.Fit | None
    reason: str | None
    spend_reason: str | None
    horizon_weeks: float
    months: int
    discount_rate: float
    p_alive: FloatArray | None = None
    expected_purchases: FloatArray | None = None
    expected_spend: FloatArray | None = None
    clv: FloatArray | None = None


def predict(
    summary: ProgramSummary,
    *,
    horizon_weeks: float = 12.0,
    months: int = 12,
    discount_rate: float = 0.01,
) -> Predictions:
    """Fit the program's purchasers (compressed) and score each of them (summary order)."""
    if horizon_weeks <= 0:
        raise InvalidInput("horizon_weeks must be positive", code="bad_horizon")
    if months < 1:
        raise InvalidInput("months must be at least 1", code="bad_horizon")
    if discount_rate < 0:
        raise InvalidInput("discount_rate must be 0 or more", code="bad_discount_rate")
    x, t_x, T, monetary = summary.arrays()
    base: dict[str, Any] = {
        "horizon_weeks": horizon_weeks,
        "months": months,
        "discount_rate": discount_rate,
    }
    purchasers = int(x.shape[0])
    repeaters = int(np.count_nonzero(x > 0))
    if purchasers < MIN_PURCHASERS or repeaters < MIN_REPEAT_BUYERS:
        reason = (
            f"too few members to fit the purchase model: {purchasers} with a purchase "
            f"(needs {MIN_PURCHASERS}) and {repeaters} repeat buyers (needs "
            f"{MIN_REPEAT_BUYERS})"
        )
        return Predictions(None, None, reason, None, **base)
    if not np.any(T > 0):
        return Predictions(None, None, "every purchaser's first purchase is today", None, **base)
    try:
        fit = models.fit_bgnbd(x, t_x, T)
    except InvalidInput as exc:
        return Predictions(None, None, f"the purchase model failed: {exc.detail}", None, **base)
    # P(alive), expected purchases and the CLV factor depend on (x, t_x, T) only: computed
    # once per distinct row and spread to the members.
    c = compress(x, t_x, T)
    alive = models.bgnbd_p_alive(fit.params, c.x, c.t_x, c.T)[c.inverse]
    expected = models.bgnbd_expected_purchases(fit.params, horizon_weeks, c.x, c.t_x, c.T)[
        c.inverse
    ]
    spend_fit: models.Fit | None = None
    spend_reason: str | None = None
    spend: FloatArray | None = None
    value: FloatArray | None = None
    try:
        spend_fit = models.fit_gamma_gamma(x, monetary)
    except InvalidInput as exc:
        spend_reason = f"no spend model: {exc.detail}"
    if spend_fit is not None:
        if spend_fit.params["q"] <= 1:
            spend_reason = "no spend model: Gamma-Gamma q ≤ 1 gives no finite mean spend"
            spend_fit = None
        else:
            spend = models.expected_spend(spend_fit.params, x, monetary)
            per_spend = models.discounted_purchases(
                fit, c.x, c.t_x, c.T, months=months, discount_rate=discount_rate, unit="week"
            )
            value = spend * per_spend[c.inverse]
    return Predictions(
        fit,
        spend_fit,
        None,
        spend_reason,
        **base,
        p_alive=alive,
        expected_purchases=expected,
        expected_spend=spend,
        clv=value,
    )


# --- summary + RFM + predictions of a program ------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """A program's summary, the purchasers' RFM scores and predictions (purchaser order)."""

    summary: ProgramSummary
    purchasers: list[MemberRow]
    scores: rfm.Scores
    predictions: Predictions
    position: dict[uuid.UUID, int]

    def recency_days(self, row: MemberRow) -> int | None:
        if row.last_purchase_day is None:
            return None
        return (self.summary.as_of_day - row.last_purchase_day).days


def analyse(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    as_of: dt.datetime | None = None,
    horizon_weeks: float = 12.0,
    months: int = 12,
    discount_rate: float = 0.01,
) -> Analysis:
    summary = summarise_program(session, tenant, program, as_of=as_of)
    purchasers = summary.purchasers
    recency = [
        (summary.as_of_day - r.last_purchase_day).days
        for r in purchasers
        if r.last_purchase_day is not None
    ]
    scores = rfm.score(
        recency, [r.orders for r in purchasers], [float(r.spend) for r in purchasers]
    )
    predictions = predict(
        summary, horizon_weeks=horizon_weeks, months=months, discount_rate=discount_rate
    )
    return Analysis(
        summary=summary,
        purchasers=purchasers,
        scores=scores,
        predictions=predictions,
        position={r.member_id: i for i, r in enumerate(purchasers)},
    )
