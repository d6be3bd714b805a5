"""Parquet transaction files in, CSV and Parquet tables out (pyarrow).

**Reading** (:func:`read_parquet_transactions`): only the customer, date and amount columns
are read, one batch of rows at a time (``BATCH_ROWS``, within row groups), and each batch is
turned into NumPy columns by pyarrow compute kernels — no Python step per row:

- customer: integer columns stay integers (keys sorted numerically), anything else is text
  (keys sorted as text). Keys are coded once for the whole file: integers in a dense range
  through a presence table (no sort), otherwise with pyarrow's hash dictionary encoding and
  one sort of the distinct keys. :func:`setia.analytics.summary.summarise` then works on
  the integer codes.
- date: ``date32``/``date64``; timestamps (the local day of a zoned timestamp, the day of a
  naive one); text or integers (``20240131``) parsed as in CSV files, each distinct value
  once (``--date-format`` applies).
- amount: any numeric type (decimals too) as float64; text parsed like CSV amounts
  (``--decimal-comma`` applies), each distinct value once.

Bad rows (a null or empty customer, a null or unparseable date, a null, unparseable or
non-finite amount) are reported with their 1-based **row** number in the file, as CSV's are
with their line number.

**Writing** (:func:`write_table`, :func:`table_bytes`): a pyarrow table as Parquet (zstd) or
CSV (pyarrow's writer; values are quoted only when some text needs it).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from setia.analytics.summary import (
    BadRow,
    FloatArray,
    Transactions,
    bad_rows_error,
    day_number,
    parse_date,
)
from setia.core.errors import InvalidInput

BATCH_ROWS = 1 << 20
DENSE_KEY_FACTOR = 4  # integer keys are coded through a table when max − min < 4·rows (+ 1M)
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _column(spec: str, names: list[str], what: str) -> str:
    if spec in names:
        return spec
    if spec.isdigit() and int(spec) < len(names):
        return names[int(spec)]
    raise InvalidInput(
        f"{what} column {spec!r} is not in the Parquet file's columns {names}; "
        "give a column name or a 0-based index",
        code="unknown_column",
    )


class _Bad:
    """Bad rows of the file, by 1-based row number."""

    def __init__(self) -> None:
        self.rows: list[BadRow] = []

    def add(self, base: int, where: npt.NDArray[np.bool_], reason: Callable[[int], str]) -> None:
        for i in np.flatnonzero(where).tolist():
            self.rows.append(BadRow(base + i + 1, reason(i)))


def _valid(arr: Any) -> npt.NDArray[np.bool_]:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


class _DateParser:
    """Text (or integer) dates to day numbers, each distinct value parsed once per file."""

    def __init__(self, date_format: str | None) -> None:
        self.date_format = date_format
        self.cache: dict[str, int | None] = {}

    def days(self, arr: Any) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = pc.cast(arr, pa.string())
        enc = pc.dictionary_encode(arr)
        values = enc.dictionary.to_pylist()
        if not values:  # every value null
            return np.zeros(len(arr), dtype=np.int32), np.zeros(len(arr), dtype=bool)
        parsed = np.zeros(len(values), dtype=np.int32)
        ok = np.ones(len(values), dtype=bool)
        for k, text in enumerate(values):
            if text not in self.cache:
                try:
                    self.cache[text] = day_number(parse_date(text, self.date_format))
                except ValueError:
                    self.cache[text] = None
            day = self.cache[text]
            if day is None:
                ok[k] = False
            else:
                parsed[k] = day
        idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return parsed[idx], ok[idx] & _valid(arr)


def _dates(
    arr: Any, parser: _DateParser, name: str
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    t = arr.type
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        if pa.types.is_timestamp(t) or pa.types.is_date64(t):
            arr = pc.cast(arr, pa.date32())
        days = pc.cast(arr, pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        return days.astype(np.int32, copy=False), _valid(arr)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t):
        return parser.days(arr)
    raise InvalidInput(
        f"date column {name!r} has type {t}; expected a date, a timestamp, text or "
        "YYYYMMDD integers",
        code="unsupported_column_type",
    )


def _amounts(arr: Any, decimal_comma: bool, name: str) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """(values, valid and finite) of an amount batch."""
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(arr, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        valid = _valid(arr) & np.isfinite(values)
        return np.asarray(values, dtype=np.float64), valid
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InvalidInput(
            f"amount column {name!r} has type {t}; expected numbers or text",
            code="unsupported_column_type",
        )
    enc = pc.dictionary_encode(arr)
    texts = enc.dictionary.to_pylist()
    if not texts:  # every value null
        return np.zeros(len(arr)), np.zeros(len(arr), dtype=bool)
    parsed = np.zeros(len(texts), dtype=np.float64)
    ok = np.ones(len(texts), dtype=bool)
    for k, raw in enumerate(texts):
        text = raw.strip()
        if decimal_comma:
            text = text.replace(".", "").replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            ok[k] = False
            continue
        ok[k] = math.isfinite(value)
        parsed[k] = value if ok[k] else 0.0
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return parsed[idx], ok[idx] & _valid(arr)


def _amount_reason(raw: object, decimal_comma: bool) -> str:
    if isinstance(raw, str):
        text = raw.strip()
        if decimal_comma:
            text = text.replace(".", "").replace(",", ".")
        try:
            float(text)
        except ValueError:
            return f"amount {raw!r} is not a number"
    return f"amount {str(raw)!r} is not finite"


def _code_type(n: int) -> type[np.signedinteger[Any]]:
    """int32 codes (half the memory) unless there are 2³¹ distinct keys or more."""
    return np.int32 if n < 2**31 else np.int64


def _code_keys(
    int_chunks: list[npt.NDArray[np.int64]], text_chunks: list[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.signedinteger[Any]]]:
    """(sorted distinct keys, each row's code) over all batches: integer keys as a NumPy
    array, text keys as a pyarrow string array."""
    if int_chunks:
        values = np.concatenate(int_chunks)
        int_chunks.clear()  # the batches are copied: free them now (the caller's list too)
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < DENSE_KEY_FACTOR * values.shape[0] + 1_000_000:
            values -= lo
            seen = np.zeros(hi - lo + 1, dtype=bool)
            seen[values] = True
            code_of = np.cumsum(seen, dtype=np.int64) - 1
            code_of = code_of.astype(_code_type(code_of[-1] + 1))
            keys = np.flatnonzero(seen) + lo
            return keys.astype(np.int64), code_of[values]
        keys, codes = np.unique(values, return_inverse=True)
        return keys, codes.reshape(-1).astype(_code_type(keys.shape[0]))
    encoded = pc.dictionary_encode(pa.chunked_array(text_chunks, type=pa.string()))
    text_chunks.clear()
    dictionary = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], pa.string())
    order = pc.sort_indices(dictionary).to_numpy(zero_copy_only=False)
    rank = np.empty(order.shape[0], dtype=_code_type(order.shape[0]))
    rank[order] = np.arange(order.shape[0])
    idx = np.concatenate(
        [c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks]
        or [np.zeros(0, dtype=np.int64)]
    )
    return dictionary.take(pa.array(order)), rank[idx]  # text keys stay in Arrow


def read_parquet_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    date_format: str | None = None,
    skip_bad_rows: bool = False,
    decimal_comma: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> Transactions:
    """Transactions from a Parquet file (columns by name or 0-based index), in batches."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read {path} as Parquet: {exc}", code="unreadable_file") from exc
    names = list(pf.schema_arrow.names)
    cname = _column(customer_col, names, "customer")
    dname = _column(date_col, names, "date")
    aname = _column(amount_col, names, "amount") if amount_col is not None else None
    wanted = list(dict.fromkeys([cname, dname] + ([aname] if aname else [])))
    ctype = pf.schema_arrow.field(cname).type
    int_keys = pa.types.is_integer(ctype)

    bad = _Bad()
    parser = _DateParser(date_format)
    int_chunks: list[npt.NDArray[np.int64]] = []
    text_chunks: list[Any] = []
    day_chunks: list[npt.NDArray[np.int32]] = []
    amount_chunks: list[FloatArray] = []
    base = 0
    try:
        batches = pf.iter_batches(batch_size=batch_rows, columns=wanted)
        for batch in batches:
            n = batch.num_rows
            cust = batch.column(cname)
            ok = _valid(cust)
            bad.add(base, ~ok, lambda _i: "missing customer")
            if not int_keys:
                if not pa.types.is_string(cust.type):
                    cust = pc.cast(cust, pa.string())
                cust = pc.utf8_trim_whitespace(cust)
                empty = np.asarray(
                    pc.equal(pc.utf8_length(cust), 0)
                    .fill_null(False)
                    .to_numpy(zero_copy_only=False),
                    dtype=bool,
                )
                bad.add(base, ok & empty, lambda _i: "empty customer")
                ok &= ~empty
            days, dok = _dates(batch.column(dname), parser, dname)
            dcol = batch.column(dname)
            dvalid = _valid(dcol)
            bad.add(base, ok & ~dvalid, lambda _i: "missing date")

            def bad_date(i: int, col: Any = dcol) -> str:
                return f"date {str(col[i].as_py())!r} does not parse"

            bad.add(base, ok & dvalid & ~dok, bad_date)
            ok &= dok
            amounts: FloatArray | None = None
            if aname is not None:
                acol = batch.column(aname)
                amounts, aok = _amounts(acol, decimal_comma, aname)
                avalid = _valid(acol)
                bad.add(base, ok & ~avalid, lambda _i: "missing amount")

                def bad_amount(i: int, col: Any = acol) -> str:
                    return _amount_reason(col[i].as_py(), decimal_comma)

                bad.add(base, ok & avalid & ~aok, bad_amount)
                ok &= aok
            everything = bool(ok.all())
            mask = None if everything else pa.array(ok)
            if int_keys:
                values = cust if everything else cust.filter(mask)
                int_chunks.append(np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64))
            else:
                text_chunks.append(cust if everything else cust.filter(mask))
            day_chunks.append(days if everything else days[ok])
            if amounts is not None:
                amount_chunks.append(amounts if everything else amounts[ok])
            base += n
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot read {path} as Parquet: {exc}", code="unreadable_file") from exc
    if base == 0:
        raise InvalidInput(f"{path} has no rows", code="no_transactions")
    rows = sorted(bad.rows, key=lambda b: b.line)
    if rows and not skip_bad_rows:
        raise bad_rows_error(rows, path, "row")
    day = np.concatenate(day_chunks) if day_chunks else np.zeros(0, dtype=np.int32)
    day_chunks.clear()
    if day.shape[0] == 0:
        return Transactions(
            customer=np.zeros(0, dtype=np.int64),
            day=day,
            amount=None if aname is None else np.zeros(0),
            bad_rows=tuple(rows),
            keys=np.zeros(0, dtype=np.int64),
            row_word="row",
        )
    keys, codes = _code_keys(int_chunks, text_chunks)
    del int_chunks, text_chunks
    amount = np.concatenate(amount_chunks) if aname is not None else None
    amount_chunks.clear()
    return Transactions(
        customer=codes,
        day=day,
        amount=amount,
        bad_rows=tuple(rows),
        keys=keys,
        row_word="row",
    )


# --- writing -------------------------------------------------------------------------------


def _needs_quotes(table: Any, delimiter: str) -> bool:
    pattern = "[" + "".join("\\" + c for c in (delimiter, '"')) + "\\r\\n]"
    for name, col in zip(table.column_names, table.columns, strict=True):
        if any(ch in name for ch in (delimiter, '"', "\n", "\r")):
            return True
        t = col.type
        if pa.types.is_dictionary(t):
            col = pa.chunked_array(
                [c.dictionary for c in col.chunks] or [pa.array([], pa.string())]
            )
            t = col.type
        if (pa.types.is_string(t) or pa.types.is_large_string(t)) and pc.any(
            pc.match_substring_regex(col, pattern)
        ).as_py():
            return True
    return False


def write_csv(table: Any, sink: IO[bytes] | str | Path, *, delimiter: str = ",") -> None:
    """CSV with a header; quoting (RFC 4180) only when some value or name needs it."""
    quote = "needed" if _needs_quotes(table, delimiter) else "none"
    options = pa_csv.WriteOptions(
        delimiter=delimiter, quoting_style=quote, quoting_header=quote, eol="\n"
    )
    pa_csv.write_csv(table, str(sink) if isinstance(sink, Path) else sink, options)


def write_parquet(table: Any, sink: IO[bytes] | str | Path) -> None:
    pq.write_table(
        table,
        str(sink) if isinstance(sink, Path) else sink,
        compression="zstd",
        row_group_size=1 << 20,
    )


def output_format(path: Path) -> str:
    """``parquet`` for a .parquet/.pq/.parq path, ``csv`` otherwise."""
    from setia.analytics.summary import PARQUET_SUFFIXES

    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"


def write_table(table: Any, path: Path) -> str:
    """Write ``table`` to ``path`` as Parquet or CSV (by extension); returns the format."""
    fmt = output_format(path)
    if fmt == "parquet":
        write_parquet(table, path)
    else:
        write_csv(table, path)
    return fmt


def table_bytes(table: Any, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "parquet":
        write_parquet(table, buf)
    else:
        write_csv(table, buf)
    return buf.getvalue()


def table_from_rows(columns: Sequence[tuple[str, Any]], rows: Sequence[Sequence[Any]]) -> Any:
    """A pyarrow table from row tuples, with explicit column types (for small exports)."""
    data = {name: pa.array([r[i] for r in rows], type=t) for i, (name, t) in enumerate(columns)}
    return pa.table(data, schema=pa.schema(list(columns)))
