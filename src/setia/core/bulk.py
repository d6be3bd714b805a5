"""Writing many rows at the driver level, for the set-based paths (the events batch, the
badges' progress).

``executemany(session, stmt, columns)`` does what ``session.execute(stmt, rows)`` does for a
Core ``INSERT`` or ``UPDATE`` with bound parameters, without SQLAlchemy's per-row parameter
handling (a dict per row, each value through the compiled statement's processors one at a
time), which costs more than the database itself on a batch's thousands of rows:

* the statement is compiled once per dialect and set of keys;
* each column's values are converted by SQLAlchemy's own bind processor for that column
  (so a value is stored exactly as ``session.execute`` would store it), a column at a time,
  each distinct value once (the same member, program or instant recurs on many rows); a
  column whose value is the same on every row can be given once (``constants``), and is
  converted once;
* rows can be gathered as tuples in a fixed column order (``Rows``): no dict per row.
* the rows go to the driver's ``executemany`` (on PostgreSQL, inserts go by ``COPY``: one
  round trip for the lot; constraints and triggers still apply).

Python-side column defaults are not applied: every column without a server default must be
given (a missing one fails to compile into the key list, loudly). A driver error is raised as
SQLAlchemy's own wrapper (``IntegrityError``, ...), like ``session.execute`` raises it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled once per dialect, with its parameters' converters in order."""

    sql: str
    names: tuple[str, ...]
    converters: tuple[Any, ...]
    positional: bool


_COMPILED: dict[tuple[int, str, tuple[str, ...]], _Compiled] = {}
_MISSING = object()
_EMPTY = object()  # the key of the empty document among converted values
# Columns whose values are all distinct (row ids): converted without the memo.
_UNIQUE = frozenset({"id", "row_id"})


class JsonText:
    """A document already serialized (exactly as the engine's JSON serializer would):
    ``executemany`` sends the text as it is instead of encoding a dict."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _compiled(stmt: Any, dialect: Any, keys: tuple[str, ...]) -> _Compiled:
    memo = (id(stmt), dialect.name, keys)
    c = _COMPILED.get(memo)
    if c is None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        names = (
            tuple(compiled.positiontup)
            if compiled.positional and compiled.positiontup
            else tuple(compiled.bind_names.values())
        )
        missing = set(names) - set(keys)
        if missing:
            raise ValueError(f"bulk write of {stmt} lacks values for {sorted(missing)}")
        procs = compiled._bind_processors
        c = _COMPILED[memo] = _Compiled(
            compiled.string, names, tuple(procs.get(n) for n in names), compiled.positional
        )
    return c


def _one(f: Any, v: Any) -> Any:
    """One value as ``_convert`` converts it."""
    if v is None:
        return None
    return v.text if v.__class__ is JsonText else f(v)


def _convert(name: str, f: Any, col: Sequence[Any]) -> Sequence[Any]:
    if f is None:
        return col
    if name in _UNIQUE:
        return [v if v.__class__ is str else f(v) for v in col]
    known: dict[Any, Any] = {None: None}
    out: list[Any] = []
    append = out.append
    for v in col:
        cls = v.__class__
        if cls is JsonText:
            append(v.text)
        elif cls is dict or cls is list:
            if v:
                append(f(v))
            else:
                key = (_EMPTY, cls)
                done = known.get(key, _MISSING)
                if done is _MISSING:
                    done = known[key] = f(v)
                append(done)
        else:
            done = known.get(v, _MISSING)
            if done is _MISSING:
                done = known[v] = f(v)
            append(done)
    return out


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``executemany``'s columns from rows that all have the same keys."""
    if not rows:
        return {}
    return {k: [r[k] for r in rows] for k in rows[0]}


class Rows:
    """Rows of one table gathered as tuples, their values in the order of ``names``, plus
    the values every row shares (``constants``): what ``executemany`` takes, without a dict
    per row."""

    __slots__ = ("constants", "names", "rows")

    def __init__(self, names: tuple[str, ...], **constants: Any) -> None:
        self.names = names
        self.constants = constants
        self.rows: list[tuple[Any, ...]] = []

    def write(self, session: Session, stmt: Any) -> int:
        if not self.rows:
            return 0
        columns = dict(zip(self.names, zip(*self.rows, strict=True), strict=True))
        return executemany(session, stmt, columns, self.constants)


def executemany(
    session: Session,
    stmt: Any,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> int:
    """``session.execute(stmt, rows)`` at the driver level, for ``columns`` (name: one value
    per row, all the same length) and ``constants`` (name: the one value of every row).
    Returns the driver's row count (rows inserted or matched)."""
    if not columns:
        return 0
    first = next(iter(columns.values()))
    if not first:
        return 0
    n = len(first)
    conn = session.connection()
    dialect = conn.dialect
    if constants:
        c = _compiled(stmt, dialect, (*columns, *constants))
        converted = [
            _convert(name, f, columns[name])
            if name in columns
            else [constants[name] if f is None else _one(f, constants[name])] * n
            for name, f in zip(c.names, c.converters, strict=True)
        ]
    else:
        c = _compiled(stmt, dialect, tuple(columns))
        converted = [
            _convert(name, f, columns[name]) for name, f in zip(c.names, c.converters, strict=True)
        ]
    values: list[Any] = list(zip(*converted, strict=True))
    # COPY only for plain inserts (an upsert's ON CONFLICT needs INSERT).
    copy = (
        dialect.name == "postgresql"
        and bool(stmt.is_insert)
        and getattr(stmt, "_post_values_clause", None) is None
    )
    if not (c.positional or copy):
        values = [dict(zip(c.names, v, strict=True)) for v in values]
    if not copy:
        return int(conn.exec_driver_sql(c.sql, values).rowcount)
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(stmt.table.name)} ({', '.join(quote(n) for n in c.names)}) FROM STDIN"
    raw: Any = cast(Any, conn.connection).dbapi_connection
    try:
        with raw.cursor() as cur, cur.copy(sql) as out_copy:
            for v in values:
                out_copy.write_row(v)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    return len(values)
