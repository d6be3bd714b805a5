"""The analytics aggregations written once as Ibis expressions, run where the data lives.

The same expressions run on the service database (SQLite or PostgreSQL, through Ibis's
``sqlite`` and ``postgres`` backends over the service's own ``orders`` table) and on Apache
Spark (PySpark; local mode in the tests). They follow exactly the conventions of the
Python service:

- :func:`member_summary` — per customer: orders, spend (net of refunds), refunds, first and
  last order time, and the buy-till-you-die fields from the **local** purchase days (a
  purchase is an order whose net amount ``amount − refunded`` is positive; several on one
  local day are one purchase): ``x`` = distinct purchase days − 1, ``t_x`` = first → last
  purchase day, ``T`` = first purchase day → the local day of ``as_of``, ``monetary`` = mean
  of the repeat days' totals (0 when x = 0). As ``setia.analytics.members.summarise_program``
  (orders at or before ``as_of``; redemptions live in the ledger and are not part of it).
- :func:`rfm_scores` — R, F, M 1–5 and the segment, as ``setia.analytics.rfm``: "min"
  ranking (ties share the lowest rank of their group), score ``1 + floor(5 · rank0 / n)``
  with the 0-based rank, R on days since the last purchase day (fewer is better), F on
  orders, M on net spend, segment from R and FM = round-half-up((F + M) / 2).
- :func:`cohort_counts` / :func:`cohort_matrix` — the cohort retention matrix by the local
  month of the first purchase, as ``setia.analytics.kpis.cohorts`` (there a purchase is an
  order that is not fully refunded).
- :func:`sufficient_statistics` — the only thing model fitting needs: distinct
  ``(x, t_x, T)`` rows with their weights, grouped **in the engine**; only those rows come
  back to Python.

**Input.** A transactions table normalised to ``customer`` (string), ``us`` (the UTC
instant in microseconds since 1970-01-01, int64), ``amount`` and ``refunded`` (float64):
:func:`service_orders` builds it from the service's ``orders`` table, :func:`transactions`
from any table with a timestamp (or date) column.

**Local days without dialect time-zone functions.** SQLite has no time zones and
PostgreSQL's ``::date`` depends on the session's zone, so the local day is computed from
the UTC instant: the zone's UTC offset is piecewise constant, its change points over the
data's time range are found in Python (``zoneinfo``) and applied as a ``CASE`` on the epoch
second, and ``day = floor((second + offset) / 86400)``. The local month comes from the day
number through a ``CASE`` over the months' first days. Epoch seconds are
exact on every backend: SQLite's ``strftime('%s')`` rounds fractional seconds to
milliseconds (23:59:59.9996 would become the next day), so on SQLite the whole seconds and
the microseconds are read from the stored text separately.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import numpy as np
from sqlalchemy.engine import make_url

from setia.analytics import rfm
from setia.analytics.summary import UNITS, FloatArray, day_number
from setia.core.errors import InvalidInput
from setia.core.time import as_utc, zone

US = 1_000_000  # microseconds per second
DAY_SECONDS = 86_400
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SCAN_STEP = 6 * 3600  # offset changes are looked for every 6 hours, then bisected

Table = Any  # ibis.expr.types.Table (Ibis ships no type information)
Column = Any  # an Ibis value expression


def _unix_micros(ts: dt.datetime) -> int:
    """Spark SQL's ``unix_micros(timestamp)``; Spark runs it, this body never does."""
    raise NotImplementedError


# Ibis has no microsecond extraction on Spark: call Spark's own function.
_spark_unix_micros: Any = ibis.udf.scalar.builtin(_unix_micros, name="unix_micros")


# --------------------------------------------------------------------------- connections


def connect(database_url: str) -> Any:
    """An Ibis backend on the service database given by its SQLAlchemy URL."""
    url = make_url(database_url)
    name = url.get_backend_name()
    if name == "sqlite":
        return ibis.sqlite.connect(url.database or None)
    if name == "postgresql":
        return ibis.postgres.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
        )
    raise InvalidInput(
        f"the analytics engine runs on SQLite or PostgreSQL, not {name}", code="unsupported_engine"
    )


def spark_session(
    master: str = "local[2]", shuffle_partitions: int = 4, conf: dict[str, str] | None = None
) -> Any:
    """A quiet SparkSession (no UI, few shuffle partitions, UTC session time zone; in local
    mode bound to 127.0.0.1); ``conf`` adds or overrides Spark settings."""
    from pyspark.sql import SparkSession

    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
    }
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "loopback address" warning
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName("setia-analytics")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_backend(session: Any = None) -> Any:
    """An Ibis PySpark backend on ``session`` (a new local one by default)."""
    return ibis.pyspark.connect(session if session is not None else spark_session())


# --------------------------------------------------------------------------- inputs


def _epoch_us(con: Any, col: Column) -> Column:
    """Microseconds since 1970-01-01 UTC of a timestamp column, exact on each backend."""
    name = con.name
    if name == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC): whole seconds and the
        # microseconds separately (strftime('%s') would round to milliseconds).
        text = col.cast("string")
        whole = text.substr(0, 19).cast("timestamp").epoch_seconds().cast("int64")
        micros = text.substr(20, 6).cast("int64").fill_null(0)
        return whole * US + micros
    if name == "postgres":
        # EXTRACT(epoch) is an exact numeric with the microseconds.
        return (col.epoch_seconds() * US).cast("int64")
    if name == "pyspark":
        return _spark_unix_micros(col).cast("int64")
    return col.epoch_seconds().cast("int64") * US


def service_orders(con: Any, program_id: uuid.UUID) -> Table:
    """The program's orders from the service's ``orders`` table, normalised."""
    t = con.table("orders")
    if con.name == "sqlite":  # UUIDs are stored as 32 hex digits
        t = t.filter(t.program_id == program_id.hex)
    else:
        t = t.filter(t.program_id.cast("string") == str(program_id))
    return t.select(
        customer=t.member_id.cast("string"),
        us=_epoch_us(con, t.occurred_at),
        amount=t.amount.cast("float64"),
        refunded=t.refunded_amount.cast("float64"),
    )


def transactions(
    con: Any,
    table: Table,
    *,
    customer: str,
    at: str | None = None,
    date: str | None = None,
    amount: str | None = None,
    refunded: str | None = None,
) -> Table:
    """Any transactions table, normalised: ``at`` a timestamp column (a UTC instant) or
    ``date`` a date column (the local day already: use the time zone ``UTC`` with it)."""
    if (at is None) == (date is None):
        raise InvalidInput("give exactly one of at (a timestamp) or date", code="bad_columns")
    when = table[at] if at is not None else table[date].cast("timestamp")
    zero = ibis.literal(0.0, type="float64")
    return table.select(
        customer=table[customer].cast("string"),
        us=_epoch_us(con, when),
        amount=table[amount].cast("float64") if amount is not None else zero,
        refunded=table[refunded].cast("float64") if refunded is not None else zero,
    )


# --------------------------------------------------------------------------- local days


def epoch_us(moment: dt.datetime) -> int:
    """Microseconds since 1970-01-01 UTC of an aware datetime (exact integer arithmetic)."""
    delta = as_utc(moment) - _EPOCH
    return (delta.days * DAY_SECONDS + delta.seconds) * US + delta.microseconds


def _offset(tz: Any, second: int) -> int:
    moment = _EPOCH + dt.timedelta(seconds=second)
    off = moment.astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def zone_offsets(tz_name: str, lo_second: int, hi_second: int) -> list[tuple[int, int]]:
    """``[(from_second, offset_seconds), …]``: the zone's UTC offset from each epoch second
    on (the first entry holds from −∞), covering ``[lo_second, hi_second]``."""
    tz = zone(tz_name)
    s = lo_second - DAY_SECONDS
    end = hi_second + DAY_SECONDS
    out = [(s, _offset(tz, s))]
    while s < end:
        n = min(s + _SCAN_STEP, end)
        if _offset(tz, n) != out[-1][1]:
            a, b = s, n  # offset(a) is the current one, offset(b) is not
            while b - a > 1:
                m = (a + b) // 2
                if _offset(tz, m) == out[-1][1]:
                    a = m
                else:
                    b = m
            out.append((b, _offset(tz, b)))
        s = n
    return out


def _fdiv(a: Column, b: int) -> Column:
    """floor(a / b) as int64, right for negative ``a`` on every backend (no integer
    division, whose rounding differs between dialects)."""
    return (a.cast("float64") / b).floor().cast("int64")


def _offset_expr(second: Column, offsets: Sequence[tuple[int, int]]) -> Column:
    if len(offsets) == 1:
        return ibis.literal(offsets[0][1], type="int64")
    mid = len(offsets) // 2
    return ibis.ifelse(
        second < offsets[mid][0],
        _offset_expr(second, offsets[:mid]),
        _offset_expr(second, offsets[mid:]),
    )


def _span(tx: Table) -> tuple[int, int] | None:
    row = tx.aggregate(lo=tx.us.min(), hi=tx.us.max()).to_pyarrow().to_pylist()[0]
    if row["lo"] is None:
        return None
    return int(row["lo"]) // US, int(row["hi"]) // US


@functools.lru_cache(maxsize=64)
def fixed_offset(tz_name: str) -> int | None:
    """The zone's UTC offset if it is the same every 10 days from 1970 to 2100 (Asia/Jakarta:
    25200), else None (a zone with daylight saving time or another change since 1970)."""
    tz = zone(tz_name)
    first = _offset(tz, 0)
    step = 10 * DAY_SECONDS
    for second in range(step, 130 * 365 * DAY_SECONDS, step):
        if _offset(tz, second) != first:
            return None
    return first


def with_local_day(tx: Table, tz_name: str, span: tuple[int, int] | None = None) -> Table:
    """``tx`` with ``day``: the number (days since 1970-01-01) of the local calendar day of
    ``us`` in the zone. For a zone whose offset changes, the change points are taken over
    ``span`` (epoch seconds), by default the data's (one small query)."""
    fixed = fixed_offset(tz_name)
    if fixed is not None:
        offsets = [(0, fixed)]
    else:
        if span is None:
            span = _span(tx) or (0, 0)
        offsets = zone_offsets(tz_name, *span)
    second = _fdiv(tx.us, US)
    return tx.mutate(day=_fdiv(second + _offset_expr(second, offsets), DAY_SECONDS))


def _bucket(value: Column, bounds: Sequence[int], lo: int = 0, hi: int | None = None) -> Column:
    """Index i with bounds[i] <= value < bounds[i+1] (−1 below bounds[0], len − 1 from the
    last bound on): a binary ``CASE`` tree, about log2(len) comparisons per row."""
    if hi is None:
        return ibis.ifelse(value < bounds[0], -1, _bucket(value, bounds, 0, len(bounds)))
    if hi - lo == 1:
        return ibis.literal(lo, type="int64")
    mid = (lo + hi) // 2
    return ibis.ifelse(
        value < bounds[mid], _bucket(value, bounds, lo, mid), _bucket(value, bounds, mid, hi)
    )


def _month_starts(first_month: dt.date, months: int) -> list[int]:
    """Day numbers of the first days of ``months + 1`` consecutive months."""
    out = []
    y, m = first_month.year, first_month.month
    for _ in range(months + 1):
        out.append(day_number(dt.date(y, m, 1)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Period:
    """The end of the summary: ``as_of`` (UTC), its local day and the time unit."""

    as_of: dt.datetime
    as_of_us: int
    as_of_day: int
    unit: str

    @classmethod
    def of(cls, as_of: dt.datetime, tz_name: str, unit: str = "week") -> Period:
        if as_of.tzinfo is None:
            raise InvalidInput("as_of needs a time zone offset", code="invalid_as_of")
        if unit not in UNITS:
            raise InvalidInput(
                f"time unit must be one of {sorted(UNITS)}", code="invalid_time_unit"
            )
        end = as_utc(as_of)
        local = end.astimezone(zone(tz_name)).date()
        return cls(as_of=end, as_of_us=epoch_us(end), as_of_day=day_number(local), unit=unit)


def member_summary(
    tx: Table, tz_name: str, as_of: dt.datetime, *, unit: str = "week", every_row: bool = False
) -> Table:
    """One row per customer with an order at or before ``as_of`` (see the module doc).

    Columns: customer, orders, spend, refunds, first_order_us, last_order_us,
    purchase_days, first_day, last_day (day numbers, null without a purchase), x,
    t_x_days, T_days, repeat_total, monetary, t_x, T (in ``unit``), recency_days (as_of's
    local day − last purchase day, null without a purchase).
    """
    period = Period.of(as_of, tz_name, unit)
    scale = float(UNITS[unit])
    t = tx.filter(tx.us <= period.as_of_us)
    net = t.amount - t.refunded
    orders = t.group_by("customer").aggregate(
        orders=t.count(),
        spend=net.sum(),
        refunds=t.refunded.sum(),
        first_order_us=t.us.min(),
        last_order_us=t.us.max(),
    )
    # the service: a purchase is an order with a positive net amount; a transactions file
    # (``every_row``): every row is a purchase and a day's amounts are added, whatever sign
    bought = with_local_day(t if every_row else t.filter(net > 0), tz_name)
    per_day = bought.group_by(["customer", "day"]).aggregate(
        total=(bought.amount - bought.refunded).sum()
    )
    per_customer = per_day.group_by("customer").aggregate(
        purchase_days=per_day.count(),
        first_day=per_day.day.min(),
        last_day=per_day.day.max(),
        all_total=per_day.total.sum(),
    )
    first_totals = per_day.select("customer", first_day="day", first_total="total")
    days = per_customer.join(first_totals, ["customer", "first_day"])
    s = orders.left_join(days, "customer").select(
        "customer",
        "orders",
        "spend",
        "refunds",
        "first_order_us",
        "last_order_us",
        "first_day",
        "last_day",
        "all_total",
        "first_total",
        purchase_days=ibis._.purchase_days.fill_null(0),
    )
    has = s.purchase_days > 0
    x = ibis.ifelse(has, s.purchase_days - 1, 0).cast("int64")
    t_x_days = ibis.ifelse(has, s.last_day - s.first_day, 0).cast("int64")
    age_days = ibis.ifelse(has, period.as_of_day - s.first_day, 0).cast("int64")
    repeat_total = ibis.ifelse(has, s.all_total - s.first_total, 0.0).cast("float64")
    s = s.mutate(x=x, t_x_days=t_x_days, T_days=age_days, repeat_total=repeat_total)
    has = s.purchase_days > 0
    return s.select(
        "customer",
        "orders",
        "spend",
        "refunds",
        "first_order_us",
        "last_order_us",
        "purchase_days",
        "first_day",
        "last_day",
        "x",
        "t_x_days",
        "T_days",
        "repeat_total",
        monetary=ibis.ifelse(s.x > 0, s.repeat_total / s.x.cast("float64"), 0.0),
        t_x=s.t_x_days.cast("float64") / scale,
        T=s.T_days.cast("float64") / scale,
        recency_days=ibis.ifelse(has, period.as_of_day - s.last_day, ibis.null("int64")).cast(
            "int64"
        ),
    )


# --------------------------------------------------------------------------- RFM


def _quintile(rank0: Column, n: Column) -> Column:
    """1 + floor(5 · rank0 / n), rank0 the 0-based "min" rank (values strictly better)."""
    return (1 + ((5 * rank0).cast("float64") / n.cast("float64")).floor()).cast("int64")


_SEGMENT_KEYS = {r * 10 + fm: name for (r, fm), name in rfm.DEFAULT_GRID.items()}


def rfm_scores(summary: Table) -> Table:
    """R, F, M (1–5) and the segment of every purchaser of a :func:`member_summary`.

    Columns: customer, recency_days, orders, spend, r, f, m, segment.
    """
    p = summary.filter(summary.purchase_days > 0)
    w_all = ibis.window()
    scored = p.select(
        "customer",
        "recency_days",
        "orders",
        "spend",
        n=p.customer.count().over(w_all),
        # R: fewer days is better, so rank by days descending
        r0=ibis.rank().over(order_by=ibis.desc(p.recency_days)),
        f0=ibis.rank().over(order_by=p.orders),
        m0=ibis.rank().over(order_by=p.spend),
    )
    r = _quintile(scored.r0, scored.n)
    f = _quintile(scored.f0, scored.n)
    m = _quintile(scored.m0, scored.n)
    scored = scored.select("customer", "recency_days", "orders", "spend", r=r, f=f, m=m)
    fm = _fdiv(scored.f + scored.m + 1, 2)
    key = scored.r * 10 + fm
    return scored.mutate(segment=key.substitute(_SEGMENT_KEYS, else_=ibis.null("string")))


# --------------------------------------------------------------------------- cohorts


def _month_number(month: dt.date) -> int:
    return month.year * 12 + month.month - 1


def cohort_counts(tx: Table, tz_name: str, first_month: dt.date, last_month: dt.date) -> Table:
    """(cohort, month, members): members whose first purchase is in local month ``cohort``
    and who purchased in local month ``month``, both as 0-based indexes from
    ``first_month`` and up to ``last_month``. A purchase is an order that is not refunded
    in full, as in the KPIs."""
    months = _month_number(last_month) - _month_number(first_month) + 1
    fully_refunded = (tx.refunded > 0) & (tx.refunded >= tx.amount)
    d = with_local_day(tx.filter(~fully_refunded), tz_name)
    # month index of the local day: −1 before first_month, ``months`` after last_month
    d = d.select("customer", mon=_bucket(d.day, _month_starts(first_month, months)))
    firsts = d.group_by("customer").aggregate(cohort=d.mon.min())
    cells = d.join(firsts, "customer")
    cells = cells.filter(
        cells.cohort >= 0, cells.cohort < months, cells.mon >= 0, cells.mon < months
    )
    return (
        cells.group_by(["cohort", "mon"])
        .aggregate(members=cells.customer.nunique())
        .rename(month="mon")
        .order_by(["cohort", "month"])
    )


def _ratio(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


def cohort_matrix(
    tx: Table, tz_name: str, first_month: dt.date, last_month: dt.date
) -> list[dict[str, Any]]:
    """The ``cohorts`` list of ``setia.analytics.kpis.cohorts`` computed in the engine."""
    first_month, last_month = first_month.replace(day=1), last_month.replace(day=1)
    months = _month_number(last_month) - _month_number(first_month) + 1
    labels = []
    for k in range(months):
        n = _month_number(first_month) + k
        labels.append(f"{n // 12:04d}-{n % 12 + 1:02d}")
    counts: dict[tuple[int, int], int] = {}
    rows = cohort_counts(tx, tz_name, first_month, last_month).to_pyarrow().to_pylist()
    for row in rows:
        counts[(int(row["cohort"]), int(row["month"]))] = int(row["members"])
    out: list[dict[str, Any]] = []
    for c in range(months):
        size = counts.get((c, c), 0)
        if size == 0:
            continue
        out.append(
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
    return out


# --------------------------------------------------------------------------- fitting input


@dataclass(frozen=True)
class SufficientStatistics:
    """Distinct (x, t_x, T) rows of the purchasers and how many customers share each, as
    ``setia.analytics.summary.compress`` gives (without the per-customer ``inverse``)."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    weight: FloatArray
    unit: str

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def customers(self) -> int:
        return int(self.weight.sum())


def sufficient_statistics(summary: Table, *, unit: str = "week") -> SufficientStatistics:
    """Group the purchasers of a :func:`member_summary` by (x, t_x, T) in the engine (on
    whole days, exact) and bring back only the distinct rows with their weights."""
    p = summary.filter(summary.purchase_days > 0)
    g = (
        p.group_by(["x", "t_x_days", "T_days"])
        .aggregate(weight=p.count())
        .order_by(["x", "t_x_days", "T_days"])
    )
    table = g.to_pyarrow()
    scale = float(UNITS[unit])

    def col(name: str) -> FloatArray:
        return np.asarray(table.column(name).to_numpy(), dtype=np.float64)

    return SufficientStatistics(
        x=col("x"),
        t_x=col("t_x_days") / scale,
        T=col("T_days") / scale,
        weight=col("weight"),
        unit=unit,
    )


@dataclass(frozen=True)
class FileSummary:
    """What :func:`summarise_file` brings back: the sufficient statistics, the repeat
    customers' (x, mean spend) for Gamma-Gamma, and counts for the report."""

    stats: SufficientStatistics
    spend_x: FloatArray
    spend_mean: FloatArray
    transactions: int
    bad_rows: int
    customers: int
    repeat_customers: int
    period_start: dt.date | None
    period_end: dt.date | None


def _file_date(col: Column) -> Column:
    """A date from a text column: YYYY-MM-DD (optionally with a time), YYYYMMDD or
    YYYY/MM/DD; null when it does not parse."""
    text = col.cast("string").strip()
    compact = text.substr(0, 4) + "-" + text.substr(4, 2) + "-" + text.substr(6, 2)
    iso = ibis.ifelse(text.re_search(r"^[0-9]{8}$"), compact, text.substr(0, 10).replace("/", "-"))
    return iso.try_cast("date")


def summarise_file(
    con: Any,
    path: str,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    calibration_end: dt.date | None = None,
    unit: str = "week",
    skip_bad_rows: bool = False,
) -> FileSummary:
    """The file CLI's summary (``summary.summarise`` conventions: every row a purchase, a
    day's amounts added) computed by an engine that reads the file itself (Spark), so only
    the (x, t_x, T) statistics and the repeat customers' (x, mean spend) come back.

    CSV needs a header line with the column names (the delimiter is sniffed among
    ``, ; tab |``); Parquet columns are taken by name. Bad rows (empty customer, a date or
    amount that does not parse, a non-finite amount) are counted, not located: the engine
    knows no line numbers.
    """
    if unit not in UNITS:
        raise InvalidInput(f"time unit must be one of {sorted(UNITS)}", code="invalid_time_unit")
    if path.lower().endswith(".parquet"):
        raw = con.read_parquet(path)
    else:
        import csv

        try:
            with open(path, encoding="utf-8-sig") as fh:
                sample = fh.read(64 * 1024)
        except OSError as exc:
            raise InvalidInput(
                f"cannot read {path}: {exc.strerror}", code="unreadable_file"
            ) from exc
        try:
            sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
        raw = con.read_csv(path, header=True, inferSchema=False, sep=sep)
    missing = [c for c in (customer_col, date_col, amount_col) if c and c not in raw.columns]
    if missing:
        raise InvalidInput(
            f"column(s) {missing} not in the file's columns {list(raw.columns)}; the engine "
            "reads columns by name (CSV needs a header line)",
            code="unknown_column",
        )
    date_type = raw[date_col].type()
    day = (
        raw[date_col]
        if date_type.is_date()
        else (raw[date_col].date() if date_type.is_timestamp() else _file_date(raw[date_col]))
    )
    customer = raw[customer_col].cast("string").strip()
    amount = (
        raw[amount_col].cast("string").strip().try_cast("float64")
        if amount_col is not None
        else ibis.literal(0.0, type="float64")
    )
    t = raw.select(customer=customer, day=day, amount=amount)
    bad = t.customer.isnull() | (t.customer == "") | t.day.isnull() | t.amount.isnull()
    bad = bad | t.amount.isinf() | t.amount.isnan()
    counts = rows(
        t.aggregate(
            n=t.count(),
            bad=bad.cast("int64").sum(),
            last=ibis.ifelse(bad, ibis.null("date"), t.day).max(),
        )
    )[0]
    n_bad = int(counts["bad"] or 0)
    if n_bad and not skip_bad_rows:
        raise InvalidInput(
            f"{n_bad} bad row(s) in {path} (empty customer, a date or amount that does not "
            "parse); the engine does not report line numbers: read the file without "
            "--engine to see them, or pass --skip-bad-rows",
            code="bad_rows",
        )
    end = calibration_end or counts["last"]
    if end is None:
        raise InvalidInput("no transactions to summarise", code="no_transactions")
    good = t.filter(~bad)
    tx = transactions(con, good, customer="customer", date="day", amount="amount")
    as_of = dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC) + dt.timedelta(
        days=1, microseconds=-1
    )
    summary = member_summary(tx, "UTC", as_of, unit=unit, every_row=True)
    stats = sufficient_statistics(summary, unit=unit)
    repeat = summary.filter(summary.x > 0)
    spend = rows(repeat.group_by(["x", "monetary"]).aggregate(weight=repeat.count()))
    weights = np.array([r["weight"] for r in spend], dtype=np.int64)
    first = rows(summary.aggregate(first=summary.first_day.min()))[0]["first"]
    return FileSummary(
        stats=stats,
        spend_x=np.repeat(np.array([r["x"] for r in spend], dtype=np.float64), weights),
        spend_mean=np.repeat(np.array([r["monetary"] for r in spend], dtype=np.float64), weights),
        transactions=int(counts["n"]) - n_bad,
        bad_rows=n_bad,
        customers=stats.customers,
        repeat_customers=int(weights.sum()),
        period_start=None if first is None else _EPOCH.date() + dt.timedelta(days=int(first)),
        period_end=end,
    )


def rows(expr: Table) -> list[dict[str, Any]]:
    """Run ``expr`` and return its rows as dicts (small results only)."""
    result: list[dict[str, Any]] = expr.to_pyarrow().to_pylist()
    return result


__all__ = [
    "FileSummary",
    "Period",
    "SufficientStatistics",
    "cohort_counts",
    "cohort_matrix",
    "connect",
    "epoch_us",
    "member_summary",
    "rfm_scores",
    "rows",
    "service_orders",
    "spark_backend",
    "spark_session",
    "sufficient_statistics",
    "summarise_file",
    "transactions",
    "with_local_day",
    "zone_offsets",
]
