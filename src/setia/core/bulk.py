"""Writing many rows at the driver level, for the set-based paths (the events batch, the
badges' progress).

``executemany(session, stmt, columns)`` does what ``session.execute(stmt, rows)`` does for a
Core ``INSERT`` or ``UPDATE`` with bound parameters, without SQLAlchemy's per-row parameter
handling (a dict per row, each value through the compiled statement's processors one at a
time), which costs more than the database itself on a batch's thousands of rows:

* the statement is compiled once per dialect and set of keys;
* each column's values are converted by SQLAlchemy's own bind processor for that column
  (so a value is stored exactly as ``session.execute`` would store it), a column at a time,
  each distinct value once (the same member, program or instant recurs on many rows);
* the rows go to the driver's ``executemany`` (on PostgreSQL, inserts go by ``COPY``: one
  round trip for the lot; constraints and triggers still apply).

Python-side column defaults are not applied: every column without a server default must be
given (a missing one fails to compile into the key list, loudly). A driver error is raised as
SQLAlchemy's own wrapper (``IntegrityError``, ...), like ``session.execute`` raises it.
"""

from __future__ import annotations

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


def _convert(name: str, f: Any, col: list[Any]) -> list[Any]:
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


def executemany(session: Session, stmt: Any, columns: dict[str, list[Any]]) -> int:
    """``session.execute(stmt, rows)`` at the driver level, for ``columns`` (name: one value
    per row, all the same length). Returns the driver's row count (rows inserted or
    matched)."""
    if not columns:
        return 0
    first = next(iter(columns.values()))
    if not first:
        return 0
    conn = session.connection()
    dialect = conn.dialect
    c = _compiled(stmt, dialect, tuple(columns))
    converted = [_convert(n, f, columns[n]) for n, f in zip(c.names, c.converters, strict=True)]
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
