"""Per-customer scores of a transactions file: predictions, RFM, segment and label, as a table.

Everything is vectorised over customers (10 million customers are scored in seconds):

- **predictions** (P(alive), expected purchases over the horizon, discounted purchases for
  CLV) once per distinct (x, t_x, T) row, spread to customers; Gamma-Gamma expected spend
  per customer; CLV = expected spend × discounted purchases;
- **RFM** scores as :func:`setia.analytics.rfm.quintile_scores` gives them (same ties rule
  as the service; :func:`quintile_scores` here is its fast equivalent for millions):
  R on days since the last purchase day, F on orders (transaction rows), M on net spend
  (amounts summed, refund lines netted). Without an amount column there is no M and the
  segment is read at FM = F. Segments from :data:`setia.analytics.rfm.DEFAULT_GRID`;
- **label**, the rules of :mod:`setia.analytics.labels` in the same precedence, from what a
  file holds: purchase days (x + 1), tenure (first purchase day → period end), recency (last
  purchase day → period end), P(alive), and refunds (negative amounts). ``none`` cannot occur
  (every customer in a file has a transaction). Loyalty *types* are not derived: they need
  the service's promotion awards, redemptions and advocacy events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from setia.analytics import models, rfm
from setia.analytics.labels import LABELS, Thresholds
from setia.analytics.summary import FloatArray, Summary, compress, day_number

SEGMENT_CODES = tuple(rfm.SEGMENTS)
_GRID = np.zeros((6, 6), dtype=np.int8)
for (_r, _fm), _seg in rfm.DEFAULT_GRID.items():
    _GRID[_r, _fm] = SEGMENT_CODES.index(_seg)

SCORE_COLUMNS = (
    "customer",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "first_purchase",
    "last_purchase",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "orders",
    "spend",
    "refunds",
    "recency_days",
    "tenure_days",
    "r",
    "f",
    "m",
    "segment",
    "label",
)


def quintile_scores(values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """:func:`setia.analytics.rfm.quintile_scores` (same ties rule: equal values share the
    lowest rank of their group) for millions of values: integers in a small range are ranked
    by counting (no sort), others with one argsort and a sequential pass (rfm's binary
    search of every value into the sorted array is slow at 10 M: cache misses)."""
    v = np.asarray(values)
    n = v.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    smaller: npt.NDArray[np.int64]
    if v.dtype.kind in "iu" and int(v.max()) - int(v.min()) < 4 * n + 1_000_000:
        offset = (v - v.min()).astype(np.int64)
        counts = np.bincount(offset)
        below = np.cumsum(counts) - counts
        smaller = below[offset]
    else:
        order = np.argsort(v)  # ties need no stable order: a group ranks at its start
        ordered = v[order]
        starts = np.empty(n, dtype=bool)
        starts[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
        first = np.where(starts, np.arange(n, dtype=np.int64), 0)
        np.maximum.accumulate(first, out=first)
        smaller = np.empty(n, dtype=np.int64)
        smaller[order] = first
    out: npt.NDArray[np.int64] = 1 + (5 * smaller) // n
    return out


def segment_codes(
    r: npt.NDArray[np.int64], f: npt.NDArray[np.int64], m: npt.NDArray[np.int64] | None
) -> npt.NDArray[np.int8]:
    """Index into :data:`SEGMENT_CODES` of each (R, F, M); FM = F when there is no M."""
    fm = f if m is None else (f + m + 1) // 2
    out: npt.NDArray[np.int8] = _GRID[r, fm]
    return out


def round4(values: FloatArray) -> FloatArray:
    """Python's ``round(v, 4)`` (correctly rounded) of every value, as the service rounds
    P(alive) before its thresholds; NumPy's faster rounding differs only near a tie
    (v·10⁴ close to k + ½), and those few values are rounded by Python."""
    out: FloatArray = np.round(values, 4)
    scaled = values * 1e4
    near = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    for i in near.tolist():
        out[i] = round(float(values[i]), 4)
    return out


def label_codes(
    purchase_days: npt.NDArray[np.int64],
    refunds: FloatArray,
    recency_days: npt.NDArray[np.int64],
    tenure_days: npt.NDArray[np.int64],
    p_alive: FloatArray | None,
    th: Thresholds,
) -> npt.NDArray[np.int8]:
    """Index into :data:`setia.analytics.labels.LABELS`, as ``labels._label`` decides it.

    ``p_alive`` is rounded to 4 decimals first, as the service's labels do.
    """
    n = purchase_days.shape[0]
    code = {name: i for i, name in enumerate(LABELS)}
    out = np.full(n, -1, dtype=np.int8)

    def assign(where: npt.NDArray[np.bool_], name: str) -> None:
        out[(out < 0) & where] = code[name]

    alive = None if p_alive is None else round4(p_alive)
    has_refunds = refunds > 0
    assign(purchase_days == 0, "dissatisfied")  # only with refunds; otherwise "none" below
    out[(out == code["dissatisfied"]) & ~has_refunds] = code["none"]
    assign(tenure_days < th.new_days, "new")
    assign(recency_days >= th.lost_days, "lost")
    if alive is not None:
        assign(alive < th.lost_p_alive, "lost")
    repeat = (purchase_days >= th.loyal_min_days) & (tenure_days >= th.loyal_min_tenure_days)
    active = recency_days <= th.active_days
    if alive is not None:
        active = active | (alive >= th.active_p_alive)
    assign(repeat & active, "loyal")
    assign(repeat, "at_risk")
    assign(~has_refunds, "happy")
    assign(np.ones(n, dtype=bool), "dissatisfied")
    return out


@dataclass(frozen=True)
class ScoreOptions:
    horizon: float = 52.0  # in the summary's time unit
    months: int = 12
    discount_rate: float = 0.01
    thresholds: Thresholds = field(default_factory=Thresholds)


def score_table(
    summary: Summary,
    fit: models.Fit,
    spend: models.Fit | None,
    *,
    has_amounts: bool,
    options: ScoreOptions | None = None,
) -> Any:
    """One row per customer with the columns of :data:`SCORE_COLUMNS` (a pyarrow Table)."""
    o = options or ScoreOptions()
    n = len(summary)
    c = compress(summary.x, summary.t_x, summary.T)
    alive = models.p_alive(fit, c.x, c.t_x, c.T)[c.inverse]
    expected = models.expected_purchases(fit, o.horizon, c.x, c.t_x, c.T)[c.inverse]
    exp_spend: FloatArray | None = None
    value: FloatArray | None = None
    if spend is not None:
        exp_spend = models.expected_spend(spend.params, summary.x, summary.monetary)
        per = models.discounted_purchases(
            fit,
            c.x,
            c.t_x,
            c.T,
            months=o.months,
            discount_rate=o.discount_rate,
            unit=summary.unit,
        )
        value = exp_spend * per[c.inverse]
    end = day_number(summary.period_end)
    recency_days = end - summary.last_day
    tenure_days = end - summary.first_day
    r = quintile_scores(-recency_days)
    f = quintile_scores(summary.orders)
    m = quintile_scores(summary.spend) if has_amounts else None
    seg = segment_codes(r, f, m)
    lab = label_codes(
        summary.x.astype(np.int64) + 1,
        summary.refunds,
        recency_days,
        tenure_days,
        alive,
        o.thresholds,
    )

    def money(values: FloatArray | None, decimals: int | None = None) -> Any:
        """Amount columns; sums of file amounts are rounded (74.02, not 74.02000000000001)."""
        if values is None or not has_amounts:
            return pa.nulls(n, pa.float64())
        return pa.array(values if decimals is None else np.round(values, decimals), pa.float64())

    def dates(days: npt.NDArray[np.int64]) -> Any:
        return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())

    keys = summary.customer
    customer = pa.array(keys) if isinstance(keys, np.ndarray) else keys
    columns: dict[str, Any] = {
        "customer": customer,
        "frequency": pa.array(summary.x.astype(np.int32)),
        "recency": pa.array(summary.t_x),
        "T": pa.array(summary.T),
        "monetary_value": money(summary.monetary, 6),
        "first_purchase": dates(summary.first_day),
        "last_purchase": dates(summary.last_day),
        "p_alive": pa.array(alive),
        "expected_purchases": pa.array(expected),
        "expected_spend": money(exp_spend),
        "clv": money(value),
        "orders": pa.array(summary.orders.astype(np.int32)),
        "spend": money(summary.spend, 6),
        "refunds": money(summary.refunds, 6),
        "recency_days": pa.array(recency_days.astype(np.int32)),
        "tenure_days": pa.array(tenure_days.astype(np.int32)),
        "r": pa.array(r.astype(np.int8)),
        "f": pa.array(f.astype(np.int8)),
        "m": pa.nulls(n, pa.int8()) if m is None else pa.array(m.astype(np.int8)),
        "segment": pa.DictionaryArray.from_arrays(
            pa.array(seg, pa.int8()), pa.array(SEGMENT_CODES, pa.string())
        ),
        "label": pa.DictionaryArray.from_arrays(
            pa.array(lab, pa.int8()), pa.array(LABELS, pa.string())
        ),
    }
    return pa.table(columns)
