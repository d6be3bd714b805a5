"""Per-customer RFM summary in the buy-till-you-die conventions, and its compression.

From transactions (customer, date, optional amount) to, per customer:

- ``x``: repeat purchases = distinct purchase days − 1 (several purchases on one day are one);
- ``t_x``: recency, first purchase to last purchase, in the time unit;
- ``T``: age, first purchase to the end of the calibration (or observation) period;
- ``monetary``: mean of the repeat purchase days' totals (the first day excluded), 0 when x = 0.

The unit is a day or a week (7 days); ``t_x`` and ``T`` are day counts divided by the unit,
so they are multiples of 1/7 in weeks, as in Fader, Hardie & Lee's CDNOW summary and in
lifetimes' ``summary_data_from_transaction_data``. Everything is vectorised with NumPy.

Reading files: CSV with any delimiter (sniffed; runs of spaces count as one), a header or
not, column names or 0-based indexes; or Parquet (by extension or the ``PAR1`` magic bytes,
read in row-group batches with pyarrow: :mod:`setia.analytics.files`). Bad rows are collected
with their line numbers (CSV) or row numbers (Parquet).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from setia.core.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

UNITS = {"day": 1, "week": 7}
_EPOCH = dt.date(1970, 1, 1)
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)
MAX_REPORTED_BAD_ROWS = 5


@dataclass(frozen=True)
class BadRow:
    line: int  # 1-based line of a CSV file, or 1-based row of a Parquet file
    reason: str


@dataclass(frozen=True)
class Transactions:
    """Columns of a transactions table: customer, day number (days since 1970-01-01), amount.

    ``customer`` holds each row's customer key; or, when ``keys`` is given (the Parquet
    reader), each row's integer code into ``keys`` (distinct keys, sorted), so that millions
    of string keys are never sorted twice. Text keys from Parquet stay a pyarrow string
    array (anything with ``len``, ``filter(mask)`` and ``tolist()``): 10 million keys are
    not turned into Python strings. ``row_word`` names positions in messages.
    """

    customer: npt.NDArray[Any]
    day: npt.NDArray[np.integer[Any]]
    amount: FloatArray | None
    bad_rows: tuple[BadRow, ...] = ()
    keys: npt.NDArray[Any] | None = None
    row_word: str = "line"

    def __len__(self) -> int:
        return int(self.day.shape[0])


@dataclass(frozen=True)
class Summary:
    """One row per customer, sorted by customer key.

    Besides the BTYD fields: ``orders`` (transaction rows), ``spend`` (sum of amounts, refund
    lines netted) and ``refunds`` (sum of the negative amounts, as a positive number); both
    0 without an amount column. ``customer`` is a NumPy array, or the pyarrow string array of
    :class:`Transactions` ``keys``.
    """

    customer: npt.NDArray[Any]
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    monetary: FloatArray
    first_day: IntArray
    last_day: IntArray
    unit: str
    period_start: dt.date
    period_end: dt.date
    orders: IntArray
    spend: FloatArray
    refunds: FloatArray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def repeat_customers(self) -> int:
        return int(np.count_nonzero(self.x > 0))


@dataclass(frozen=True)
class Compressed:
    """Distinct (x, t_x, T) rows with integer weights; ``inverse`` maps customers to rows."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    weight: FloatArray
    inverse: IntArray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def day_number(value: dt.date) -> int:
    return (value - _EPOCH).days


def from_day_number(value: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(value))


def parse_date(text: str, date_format: str | None = None) -> dt.date:
    """A date from text: ``date_format`` (strptime) when given, else ISO or YYYYMMDD forms."""
    text = text.strip()
    if date_format:
        return dt.datetime.strptime(text, date_format).date()  # noqa: DTZ007 - a calendar day
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar day
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"unrecognised date {text!r}; pass --date-format") from None


def summarise(
    tx: Transactions,
    *,
    unit: str = "week",
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> Summary:
    """The per-customer summary of ``tx`` up to ``calibration_end`` (inclusive).

    Without a calibration end the period ends at ``observation_end`` or the last date seen.
    Customers whose first purchase is after the end are not in the summary.
    """
    if unit not in UNITS:
        raise InvalidInput(f"time unit must be one of {sorted(UNITS)}", code="invalid_time_unit")
    if len(tx) == 0:
        raise InvalidInput("no transactions to summarise", code="no_transactions")
    end_date = calibration_end or observation_end or from_day_number(int(tx.day.max()))
    end = day_number(end_date)
    keep = tx.day <= end
    if not keep.any():
        raise InvalidInput(
            f"no transactions on or before {end_date.isoformat()}", code="no_transactions"
        )
    everything = bool(keep.all())
    if tx.keys is None:
        keys, codes = np.unique(tx.customer[keep], return_inverse=True)
        codes = codes.reshape(-1)
    else:
        keys, codes = tx.keys, tx.customer if everything else tx.customer[keep]
    day = tx.day if everything else tx.day[keep]
    amount = None if tx.amount is None else tx.amount if everything else tx.amount[keep]
    orders = np.bincount(codes, minlength=len(keys))
    present = orders > 0
    if not present.all():  # customers whose purchases are all after the end
        codes = (np.cumsum(present) - 1)[codes]
        keys = keys[present] if isinstance(keys, np.ndarray) else keys.filter(present)
        orders = orders[present]
    n = len(keys)

    # Distinct (customer, day) pairs: one int64 key per row and a plain sort (no argsort,
    # no lexsort). The sorted pairs are grouped by customer, days ascending within each.
    dmin = int(day.min())
    span = end - dmin + 1
    offset = day - np.asarray(dmin, dtype=day.dtype)  # int32 days stay int32
    pair = codes.astype(np.int64)  # in place from here: one int64 array, sorted in place
    pair *= span
    pair += offset
    pair.sort()
    new_pair = np.empty(pair.shape[0], dtype=bool)
    new_pair[0] = True
    np.not_equal(pair[1:], pair[:-1], out=new_pair[1:])
    pair = pair[new_pair]
    del new_pair
    pair_cust = pair // span
    n_days = np.bincount(pair_cust, minlength=n)
    first_idx = np.zeros(n, dtype=np.int64)
    np.cumsum(n_days[:-1], out=first_idx[1:])
    first_off = pair[first_idx] - pair_cust[first_idx] * span
    last_idx = first_idx + n_days - 1
    last_off = pair[last_idx] - pair_cust[last_idx] * span
    del pair, pair_cust
    first_day = first_off + dmin
    last_day = last_off + dmin
    x = (n_days - 1).astype(np.float64)
    scale = float(UNITS[unit])
    t_x = (last_off - first_off) / scale
    age = (end - first_day) / scale
    if amount is None:
        spend = np.zeros(n)
        refunds = np.zeros(n)
        monetary = np.zeros(n)
    else:
        spend = np.asarray(np.bincount(codes, weights=amount, minlength=n), dtype=np.float64)
        if bool((amount < 0).any()):
            negative = np.bincount(codes, weights=np.minimum(amount, 0.0), minlength=n)
            refunds = 0.0 - np.asarray(negative, dtype=np.float64)  # 0.0, not -0.0
        else:
            refunds = np.zeros(n)
        on_first = np.where(offset == first_off.astype(offset.dtype)[codes], amount, 0.0)
        repeat_total = spend - np.bincount(codes, weights=on_first, minlength=n)
        monetary = np.divide(repeat_total, x, out=np.zeros(n), where=x > 0)
    return Summary(
        customer=keys,
        x=x,
        t_x=t_x.astype(np.float64),
        T=age.astype(np.float64),
        monetary=monetary,
        first_day=first_day.astype(np.int64),
        last_day=last_day.astype(np.int64),
        unit=unit,
        period_start=from_day_number(int(first_day.min())),
        period_end=end_date,
        orders=orders.astype(np.int64),
        spend=spend,
        refunds=refunds,
    )


def _column_codes(values: FloatArray) -> tuple[FloatArray, IntArray]:
    """(sorted distinct values, each value's index among them)."""
    uniq = np.unique(values)  # a plain sort, no argsort
    if uniq.shape[0] <= 1 << 16:  # a small table: binary searches stay in cache
        return uniq, np.searchsorted(uniq, values).astype(np.int64)
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.reshape(-1).astype(np.int64)


def compress(x: FloatArray, t_x: FloatArray, T: FloatArray) -> Compressed:
    """Merge identical (x, t_x, T) rows; ``weight`` counts the customers of each row.

    Each column is coded by its distinct values, the three codes are packed into one int64
    key, and the keys are made unique (a 1-D sort, much faster than unique rows of floats).
    When the key space is small (as with whole-day summaries: a few hundred distinct values
    per column) the keys are counted in a table instead, with no sort at all; the result is
    the same (rows in key order).
    """
    ux, ix = _column_codes(x)
    ut, it = _column_codes(t_x)
    uT, iT = _column_codes(T)
    nt, nT = ut.shape[0], uT.shape[0]
    size = ux.shape[0] * nt * nT
    if size <= 4 * x.shape[0] + (1 << 20):
        key = (ix * nt + it) * nT + iT
        counts = np.bincount(key, minlength=size)
        present = np.flatnonzero(counts)
        code_of = np.zeros(size, dtype=np.int64)
        code_of[present] = np.arange(present.shape[0], dtype=np.int64)
        return Compressed(
            x=ux[present // (nt * nT)].astype(np.float64),
            t_x=ut[(present // nT) % nt].astype(np.float64),
            T=uT[present % nT].astype(np.float64),
            weight=counts[present].astype(np.float64),
            inverse=code_of[key],
        )
    if size < 2**62:
        key = (ix * nt + it) * nT + iT
        uniq, first, inverse, counts = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
        del uniq
        return Compressed(
            x=x[first].astype(np.float64),
            t_x=t_x[first].astype(np.float64),
            T=T[first].astype(np.float64),
            weight=counts.astype(np.float64),
            inverse=inverse.reshape(-1).astype(np.int64),
        )
    stacked = np.column_stack((x, t_x, T))
    rows, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return Compressed(
        x=np.ascontiguousarray(rows[:, 0]),
        t_x=np.ascontiguousarray(rows[:, 1]),
        T=np.ascontiguousarray(rows[:, 2]),
        weight=counts.astype(np.float64),
        inverse=inverse.reshape(-1).astype(np.int64),
    )


# --- reading files -------------------------------------------------------------------------


def _split_rows(lines: Sequence[str], sample: str) -> tuple[Iterator[list[str]], str]:
    stripped = [ln.strip() for ln in sample.splitlines() if ln.strip()]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t| ")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = "," if any("," in ln for ln in stripped) else " "
    if delimiter == " ":
        return (ln.split() for ln in lines), "whitespace"
    return csv.reader(lines, delimiter=delimiter), delimiter


def _column_index(spec: str, header: list[str] | None, what: str) -> int:
    if header is not None:
        names = [h.strip() for h in header]
        if spec in names:
            return names.index(spec)
        if spec.isdigit() and int(spec) < len(names):
            return int(spec)
        raise InvalidInput(
            f"{what} column {spec!r} is not in the header (first line) {names}; "
            "if the file has no header, give 0-based column indexes",
            code="unknown_column",
        )
    if not spec.isdigit():
        raise InvalidInput(
            f"{what} column {spec!r}: the file has no header, give a 0-based index",
            code="unknown_column",
        )
    return int(spec)


PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def is_parquet(path: Path) -> bool:
    """A Parquet file: by its extension, or by the ``PAR1`` magic bytes at its start."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def bad_rows_error(bad: Sequence[BadRow], path: Path, word: str) -> InvalidInput:
    """``bad_rows`` (422) listing the first few bad rows by ``word`` (line or row) number."""
    shown = "; ".join(f"{word} {b.line}: {b.reason}" for b in bad[:MAX_REPORTED_BAD_ROWS])
    extra = len(bad) - MAX_REPORTED_BAD_ROWS
    more = f" (and {extra} more)" if extra > 0 else ""
    return InvalidInput(
        f"{len(bad)} bad row(s) in {path}: {shown}{more}",
        code="bad_rows",
        extra={"bad_rows": [{word: b.line, "reason": b.reason} for b in bad[:100]]},
    )


def read_transactions(
    path: Path | str,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    date_format: str | None = None,
    skip_bad_rows: bool = False,
    decimal_comma: bool = False,
) -> Transactions:
    """Read a transactions CSV (any delimiter, header or not) or Parquet file.

    Columns are names (the first line is then the header) or 0-based indexes (a first line
    whose date does not parse is taken as a header). Bad rows (missing fields, unparseable
    dates or amounts, empty customer) raise ``InvalidInput`` listing the first few with their
    line numbers, unless ``skip_bad_rows``: then they are dropped and returned in ``bad_rows``.
    With ``decimal_comma`` amounts are written as in Indonesia: ``1.234.567,50``.
    """
    p = Path(path)
    if is_parquet(p):
        from setia.analytics import files

        return files.read_parquet_transactions(
            p,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            date_format=date_format,
            skip_bad_rows=skip_bad_rows,
            decimal_comma=decimal_comma,
        )
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {p}: {exc.strerror}", code="unreadable_file") from exc
    lines = text.splitlines()
    if not any(ln.strip() for ln in lines):
        raise InvalidInput(f"{p} is empty", code="no_transactions")
    rows, _ = _split_rows(lines, "\n".join(lines[:50]))
    numbered = ((i + 1, r) for i, r in enumerate(rows) if r and any(f.strip() for f in r))
    head = next(numbered, None)
    if head is None:
        raise InvalidInput(f"{p} has no non-empty rows", code="no_transactions")
    first_line, first = head
    specs = [customer_col, date_col] + ([amount_col] if amount_col is not None else [])
    header: list[str] | None = None
    pending: list[tuple[int, list[str]]] = []
    if not all(s.isdigit() for s in specs):
        header = first
    else:
        di = int(date_col)
        try:
            parse_date(first[di], date_format)
            pending.append((first_line, first))
        except (ValueError, IndexError):
            header = first
    ci = _column_index(customer_col, header, "customer")
    di = _column_index(date_col, header, "date")
    ai = _column_index(amount_col, header, "amount") if amount_col is not None else None
    need = max(ci, di, ai if ai is not None else 0) + 1

    customers: list[str] = []
    date_texts: list[str] = []
    amounts: list[float] = []
    bad: list[BadRow] = []
    line_of: list[int] = []

    def take(line: int, row: list[str]) -> None:
        if len(row) < need:
            bad.append(BadRow(line, f"{len(row)} fields, expected at least {need}"))
            return
        key = row[ci].strip()
        if not key:
            bad.append(BadRow(line, "empty customer"))
            return
        if ai is not None:
            raw = row[ai].strip()
            text = raw.replace(".", "").replace(",", ".") if decimal_comma else raw
            try:
                value = float(text)
            except ValueError:
                bad.append(BadRow(line, f"amount {raw!r} is not a number"))
                return
            if not math.isfinite(value):
                bad.append(BadRow(line, f"amount {raw!r} is not finite"))
                return
            amounts.append(value)
        customers.append(key)
        date_texts.append(row[di].strip())
        line_of.append(line)

    for line, row in pending:
        take(line, row)
    for line, row in numbered:
        take(line, row)

    # Dates: parse each distinct text once.
    uniq, inv = np.unique(np.asarray(date_texts, dtype=np.str_), return_inverse=True)
    parsed = np.empty(uniq.shape[0], dtype=np.int64)
    failed = np.zeros(uniq.shape[0], dtype=bool)
    for k, s in enumerate(uniq.tolist()):
        try:
            parsed[k] = day_number(parse_date(s, date_format))
        except ValueError:
            failed[k] = True
    days = parsed[inv]
    ok = ~failed[inv]
    if not ok.all():
        for j in np.flatnonzero(~ok).tolist():
            bad.append(BadRow(line_of[j], f"date {date_texts[j]!r} does not parse"))
    bad.sort(key=lambda b: b.line)
    if bad and not skip_bad_rows:
        raise bad_rows_error(bad, p, "line")
    cust_arr = np.asarray(customers, dtype=np.str_)[ok]
    amount_arr = np.asarray(amounts, dtype=np.float64)[ok] if ai is not None else None
    return Transactions(customer=cust_arr, day=days[ok], amount=amount_arr, bad_rows=tuple(bad))
