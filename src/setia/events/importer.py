"""Load event history from a file (``setia import events FILE --tenant ID``).

Two formats, chosen by the file's extension:

``.jsonl`` / ``.ndjson``
    One event per line, each a JSON object exactly as ``POST /v1/events`` takes it
    (see ``setia.events.schemas.EventIn``). Blank lines are skipped.

``.csv``
    UTF-8 (a byte-order mark from Excel is fine), comma-separated (or semicolon-separated,
    as spreadsheets set to Indonesian or Malay save it: told by the header), with a header
    row.
    Column order does not matter; an empty cell means "not given". Columns:

    ====================  ========  ===========================================================
    column                required  meaning
    ====================  ========  ===========================================================
    id                    yes       your id for the event; re-importing it is a no-op
    type                  yes       ``purchase``, ``refund`` or a custom type (``review.submitted``)
    occurred_at           no        ISO 8601, e.g. ``2026-11-20T09:15:00+07:00``; defaults to now
    member_external_id    one of    the member's id in your own system
    member_phone          these     any local format, e.g. ``0812-3456-7890``
    member_email          four      email address
    member_id                       a Setia member id (UUID)
    member_name           no        name, used when the member is created by this event
    order_id              purchase  the order (invoice) number; a refund names the purchase's
    amount                purchase  decimal string in the currency's precision (``85000``, ``12.50``)
    currency              purchase  ISO 4217, e.g. ``IDR`` or ``MYR``
    store                 no        store or outlet code
    channel               no        ``pos``, ``online``, ``whatsapp`` ...
    payment_method        no        ``cash``, ``qris``, ``card`` ...
    program_id            no        a program id (UUID); defaults to the tenant's default program
    items                 no        JSON array of line items:
                                    ``[{"sku": "KOPI", "quantity": 2, "unit_price": "25000"}]``
    returned_items        no        refunds: JSON array ``[{"sku": "KOPI", "quantity": 1}]``
    attributes            no        JSON object of anything else, e.g. ``{"rating": 5}``
    ====================  ========  ===========================================================

A timestamp without a UTC offset (in either format) is read in the tenant's time zone,
because that is how tills and spreadsheets write them.

The whole file is checked to be UTF-8 before anything is recorded (a file that is not is
refused with the line to fix, nothing imported). Rows are then recorded in chunks of
``batch_size``, one transaction per chunk, each row in its own savepoint
(``setia.events.api.record_batch``): valid rows are kept, a bad row is reported with its
line number, a readable reason and a stable code, and never spoils the others. Events are
idempotent by ``id``, so importing the same file again changes nothing: rows already
recorded are counted as duplicates; an import that stopped (the database refused a chunk,
or the operator pressed Ctrl-C) is finished by running it again.
"""

from __future__ import annotations

import csv
import itertools
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from setia.core.db import Database
from setia.core.errors import InvalidInput, NotFound, SetiaError
from setia.core.time import zone
from setia.events.api import record_batch
from setia.tenants import service as tenants

CSV_EXTENSIONS = (".csv",)
JSONL_EXTENSIONS = (".jsonl", ".ndjson")

# CSV column -> where it goes in the event.
MEMBER_COLUMNS = {
    "member_id": "id",
    "member_external_id": "external_id",
    "member_phone": "phone",
    "member_email": "email",
    "member_name": "name",
}
PLAIN_COLUMNS = (
    "id",
    "type",
    "occurred_at",
    "order_id",
    "amount",
    "currency",
    "store",
    "channel",
    "payment_method",
    "program_id",
)
JSON_COLUMNS = {"items": list, "returned_items": list, "attributes": dict}
COLUMNS = (*PLAIN_COLUMNS, *MEMBER_COLUMNS, *JSON_COLUMNS)


class ImportFileError(InvalidInput):
    """The file as a whole cannot be read: wrong format, missing columns, bad encoding."""

    code = "import_file_invalid"
    title = "Cannot import this file"


class ImportInterrupted(SetiaError):
    """The database refused a whole chunk (it is down, locked, or out of space)."""

    status = 503
    code = "import_interrupted"
    title = "Import interrupted"


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    last_line: int = 0  # the last line whose chunk was recorded


@dataclass
class _Row:
    line: int
    event_id: str | None
    data: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None


def _problem(row: _Row, error: str, code: str) -> _Row:
    row.error, row.code = error, code
    return row


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CSV_EXTENSIONS:
        return "csv"
    if suffix in JSONL_EXTENSIONS:
        return "jsonl"
    raise ImportFileError(
        f"cannot import {path.name!r}: the file must end in .csv (with a header row) or "
        ".jsonl/.ndjson (one JSON event per line)",
        code="unsupported_file_type",
    )


def _scan(path: Path) -> int:
    """The file's line count, once it is known to be UTF-8 throughout: a file that is not
    is refused before anything is recorded, with the line and column to fix. (Line by line
    is exact: no byte of a UTF-8 sequence is a newline.)"""
    lines = 0
    try:
        with path.open("rb") as fh:
            for chunk in fh:
                # Lines end as the reader's text mode ends them (\n, \r\n or a lone \r, as
                # "CSV (Macintosh)" saves them): a chunk ends at \n, so \r\n stays whole.
                for raw in chunk.splitlines():
                    lines += 1
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        column = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
                        raise ImportFileError(
                            f"line {lines} is not UTF-8 text (byte {raw[exc.start]:#04x} at "
                            f"column {column}); save the file as UTF-8 (in a spreadsheet: CSV "
                            "UTF-8) and import again. Nothing was imported.",
                            code="invalid_encoding",
                            extra={"line": lines},
                        ) from None
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    return lines


def _local_time(data: dict[str, Any], tz_name: str) -> None:
    """A naive ``occurred_at`` is local time in the tenant's zone; make it explicit."""
    value = data.get("occurred_at")
    if not isinstance(value, str):
        return
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return  # left as is: validation reports it
    if moment.tzinfo is None:
        data["occurred_at"] = moment.replace(tzinfo=zone(tz_name)).isoformat()


def _csv_rows(fh: Any) -> Iterator[tuple[int, _Row]]:
    """(lines consumed, row) for each record of a CSV file with a header row."""
    first = fh.readline()
    if not first.strip():
        raise ImportFileError("the CSV file is empty; it needs a header row")
    # A spreadsheet set to Indonesian or Malay saves "CSV" with semicolons (the comma is
    # its decimal mark): the header says which.
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(itertools.chain([first], fh), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the CSV file is empty; it needs a header row") from None
    columns = [c.strip().lower() for c in header]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"unknown column(s) {', '.join(repr(c) for c in unknown)} in the header; "
            f"the columns are: {', '.join(COLUMNS)}",
            code="unknown_columns",
        )
    missing = [c for c in ("id", "type") if c not in columns]
    if missing:
        raise ImportFileError(
            f"the header has no {' or '.join(missing)} column; every row needs an id and a type",
            code="missing_columns",
        )
    if not any(
        c in columns for c in ("member_id", "member_external_id", "member_phone", "member_email")
    ):
        raise ImportFileError(
            "the header needs at least one member column: member_external_id, member_phone, "
            "member_email or member_id",
            code="missing_columns",
        )
    if len(set(columns)) != len(columns):
        raise ImportFileError("a column appears twice in the header", code="duplicate_columns")
    consumed = reader.line_num
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row = _Row(line=start, event_id=None)
            yield reader.line_num - consumed, _problem(row, f"unreadable CSV: {exc}", "invalid_csv")
            consumed = reader.line_num
            continue
        lines, consumed = reader.line_num - consumed, reader.line_num
        if not any(cell.strip() for cell in cells):
            yield lines, _Row(line=start, event_id=None, data=None)  # blank: skipped
            continue
        yield lines, _csv_row(start, columns, cells)


def _csv_row(line: int, columns: list[str], cells: list[str]) -> _Row:
    values = {c: v.strip() for c, v in zip(columns, cells, strict=False)}
    row = _Row(line=line, event_id=values.get("id") or None)
    if len(cells) != len(columns):
        return _problem(
            row,
            f"the row has {len(cells)} cells but the header has {len(columns)} columns "
            "(a comma inside a value must be quoted)",
            "invalid_csv",
        )
    data: dict[str, Any] = {}
    member: dict[str, Any] = {}
    for column, value in values.items():
        if value == "":
            continue
        if column in MEMBER_COLUMNS:
            member[MEMBER_COLUMNS[column]] = value
        elif column in JSON_COLUMNS:
            expected = JSON_COLUMNS[column]
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                return _problem(row, f"{column}: not valid JSON ({exc.msg})", "invalid_json")
            if not isinstance(parsed, expected):
                kind = "an array" if expected is list else "an object"
                return _problem(row, f"{column}: must be a JSON {kind}", "invalid_json")
            data[column] = parsed
        else:
            data[column] = value
    data["member"] = member
    row.data = data
    return row


def _jsonl_rows(fh: Any) -> Iterator[tuple[int, _Row]]:
    for number, text in enumerate(fh, start=1):
        if not text.strip():
            yield 1, _Row(line=number, event_id=None, data=None)
            continue
        row = _Row(line=number, event_id=None)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield (
                1,
                _problem(row, f"not valid JSON ({exc.msg}, column {exc.colno})", "invalid_json"),
            )
            continue
        if not isinstance(data, dict):
            yield 1, _problem(row, "each line must be one JSON object (an event)", "invalid_json")
            continue
        if isinstance(data.get("id"), str):
            row.event_id = data["id"]
        row.data = data
        yield 1, row


def run_import(
    db: Database,
    tenant_id: uuid.UUID,
    path: Path,
    *,
    batch_size: int = 500,
    progress: bool = False,
    report: ImportReport | None = None,
) -> ImportReport:
    """Record every event in ``path`` for the tenant; see the module docstring for formats.
    ``report``, when given, is filled as the import goes: after an interruption (an
    exception, Ctrl-C) it holds what was recorded and rejected up to then."""
    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1")
    kind = _file_format(path)
    with db.session() as session:
        try:
            tenant = tenants.get_tenant(session, tenant_id)
        except NotFound:
            raise NotFound(
                f"no tenant has id {tenant_id}; `setia tenant create` prints the id of a new one",
                code="tenant_not_found",
            ) from None
        tz_name = tenant.timezone

    report = report if report is not None else ImportReport()
    chunk: list[_Row] = []
    total_lines = _scan(path)

    def flush() -> None:
        if not chunk:
            return
        try:
            with db.session() as session:
                tenant = tenants.get_tenant(session, tenant_id)
                out = record_batch(session, tenant, [r.data or {} for r in chunk])
        except SQLAlchemyError as exc:
            first, last = chunk[0].line, chunk[-1].line
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ImportInterrupted(
                f"the import stopped at lines {first}-{last} ({reason}); nothing from those "
                f"lines was saved, {report.created} new events before them were. Fix the "
                "cause and run the same import again: events already recorded are skipped.",
                extra={"created": report.created, "duplicates": report.duplicates},
            ) from exc
        for row, item in zip(chunk, out.results, strict=True):
            if item.error is not None:
                report.errors.append(
                    {
                        "line": row.line,
                        "id": row.event_id,
                        "error": str(item.error.get("detail") or item.error.get("title")),
                        "code": str(item.error.get("code", "error")),
                    }
                )
        report.created += out.created
        report.duplicates += out.duplicates
        report.last_line = chunk[-1].line
        chunk.clear()

    with ExitStack() as stack:
        try:
            fh = stack.enter_context(path.open(encoding="utf-8-sig", newline=""))
        except OSError as exc:
            raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
        bar = None
        task = None
        if progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            bar = stack.enter_context(
                Progress(
                    TextColumn("importing {task.fields[name]}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("lines"),
                    TimeRemainingColumn(),
                    transient=True,
                )
            )
            task = bar.add_task("import", total=total_lines, name=path.name)
        rows = _csv_rows(fh) if kind == "csv" else _jsonl_rows(fh)
        try:
            for lines, row in rows:
                if bar is not None and task is not None:
                    bar.advance(task, lines)
                if row.data is None and row.error is None:
                    continue  # a blank line
                report.rows += 1
                if row.error is not None:
                    report.errors.append(
                        {"line": row.line, "id": row.event_id, "error": row.error, "code": row.code}
                    )
                    continue
                assert row.data is not None
                _local_time(row.data, tz_name)
                chunk.append(row)
                if len(chunk) >= batch_size:
                    flush()
            flush()
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"the file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                "save it as UTF-8 and import again",
                code="invalid_encoding",
            ) from None
    report.errors.sort(key=lambda e: int(e["line"]))
    return report
