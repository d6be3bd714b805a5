"""Importing event history from CSV and JSONL files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from setia.core.db import Database
from setia.core.errors import NotFound
from setia.events.importer import ImportFileError, ImportInterrupted, ImportReport, run_import
from setia.events.models import Event
from setia.members.models import Member
from tests.conftest import TenantFixture
from tests.events.helpers import row_counts

HEADER = (
    "id,type,occurred_at,member_external_id,member_phone,member_email,member_name,"
    "order_id,amount,currency,store,channel,items,attributes"
)
GOOD_AND_BAD = "\n".join(
    [
        HEADER,
        # line 2: a purchase with items (a quoted JSON cell with commas)
        "p1,purchase,2026-01-05T10:00:00+07:00,C-1,0812-3456-7890,siti@example.id,Siti,INV-1,85000,IDR,bdg,pos,"
        '"[{""sku"": ""KOPI"", ""quantity"": 2, ""unit_price"": ""25000""}, {""sku"": ""ROTI"", ""quantity"": 1, ""unit_price"": ""35000""}]",',
        # line 3: zero amount
        "p2,purchase,2026-01-05T11:00:00+07:00,C-2,,,,INV-2,0,IDR,,,,",
        # line 4: a good purchase by another member, phone only
        "p3,purchase,2026-01-06T09:00:00+07:00,,0813-1111-2222,,,INV-3,120000,IDR,,,,",
        # line 5: malformed phone
        "p4,purchase,2026-01-06T09:30:00+07:00,,12-AB,,,INV-4,5000,IDR,,,,",
        # line 6: bad JSON in items
        "p5,purchase,2026-01-06T10:00:00+07:00,C-1,,,,INV-5,5000,IDR,,,[{sku},",
        # line 7: refund of line 2, partial
        "r1,refund,2026-01-07T10:00:00+07:00,C-1,,,,INV-1,35000,,,,,",
        # line 8: refund of an order that does not exist
        "r2,refund,2026-01-07T10:00:00+07:00,C-1,,,,NOPE,1000,,,,,",
        # line 9: a custom event with attributes
        'v1,review.submitted,2026-01-08T10:00:00+07:00,C-1,,,,,,,,,,"{""rating"": 5}"',
        # line 10: no identity at all
        "x1,app.opened,,,,,,,,,,,,",
    ]
)
BAD_LINES = {
    3: "invalid_amount",
    5: "invalid_phone",
    6: "invalid_json",
    8: "order_not_found",
    10: "validation_error",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_by_line(report: Any) -> dict[int, str]:
    return {e["line"]: e["code"] for e in report.errors}


@pytest.mark.parametrize("batch_size", [500, 2])
def test_csv_keeps_good_rows_reports_bad_ones_and_reruns_change_nothing(
    db: Database, tenant: TenantFixture, tmp_path: Path, batch_size: int
) -> None:
    path = write(tmp_path, "history.csv", GOOD_AND_BAD + "\n")
    report = run_import(db, tenant.tenant_id, path, batch_size=batch_size)
    assert report.rows == 9
    assert (report.created, report.duplicates) == (4, 0)
    assert errors_by_line(report) == BAD_LINES
    for err in report.errors:
        assert set(err) == {"line", "id", "error", "code"}
        assert err["error"]
    assert {e["line"]: e["id"] for e in report.errors}[5] == "p4"
    assert "not valid JSON" in next(e["error"] for e in report.errors if e["line"] == 6)

    with db.session() as session:
        events = {e.client_event_id: e for e in session.execute(select(Event)).scalars()}
        assert set(events) == {"p1", "p3", "r1", "v1"}
        assert events["p1"].payload["items"][0]["sku"] == "KOPI"
        assert events["v1"].payload["attributes"] == {"rating": 5}
        assert events["p1"].occurred_at.isoformat() == "2026-01-05T03:00:00+00:00"
        assert events["r1"].result["refund"]["points_reversed"] == 35
        siti = session.execute(select(Member).where(Member.external_id == "C-1")).scalar_one()
        assert (siti.phone, siti.email, siti.name) == ("+6281234567890", "siti@example.id", "Siti")

    before = row_counts(db, ("events", "members", "orders", "ledger_transfers", "outbox"))
    again = run_import(db, tenant.tenant_id, path, batch_size=batch_size)
    assert (again.rows, again.created, again.duplicates) == (9, 0, 4)
    assert errors_by_line(again) == BAD_LINES
    assert row_counts(db, ("events", "members", "orders", "ledger_transfers", "outbox")) == before


def test_jsonl_lines_are_events(db: Database, tenant: TenantFixture, tmp_path: Path) -> None:
    events = [
        {
            "id": "j1",
            "type": "purchase",
            "occurred_at": "2026-02-01T08:00:00+08:00",
            "member": {"phone": "0812-3456-7890"},
            "order_id": "J-1",
            "amount": "50000",
            "currency": "IDR",
        },
        {"id": "j2", "type": "purchase", "member": {"phone": "0812-3456-7890"}},
        {"id": "j3", "type": "app.opened", "member": {"phone": "0812-3456-7890"}, "extra": 1},
    ]
    lines = [json.dumps(e) for e in events]
    lines.insert(1, "")  # blank lines are skipped (line 2)
    lines.insert(3, "{not json")  # line 4
    lines.append("[1, 2]")  # line 6
    path = write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    report = run_import(db, tenant.tenant_id, path)
    assert report.rows == 5
    assert report.created == 1
    assert errors_by_line(report) == {
        3: "validation_error",
        4: "invalid_json",
        5: "validation_error",
        6: "invalid_json",
    }
    assert [e["id"] for e in report.errors] == ["j2", None, "j3", None]
    assert "purchase needs" in report.errors[0]["error"]
    again = run_import(db, tenant.tenant_id, path.rename(tmp_path / "events.ndjson"))
    assert (again.created, again.duplicates, len(again.errors)) == (0, 1, 4)


def test_naive_times_are_read_in_the_tenant_zone(
    db: Database, tenant: TenantFixture, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "naive.csv",
        "id,type,occurred_at,member_external_id\nn1,app.opened,2026-03-01 09:00:00,C-9\n",
    )
    report = run_import(db, tenant.tenant_id, path)
    assert report.errors == []
    with db.session() as session:
        event = session.execute(select(Event)).scalar_one()
        assert event.occurred_at.isoformat() == "2026-03-01T02:00:00+00:00"  # Asia/Jakarta


def test_line_numbers_count_multiline_cells_and_bom(
    db: Database, tenant: TenantFixture, tmp_path: Path
) -> None:
    text = (
        "\ufeffid,type,member_external_id,attributes\n"
        'a1,note.added,C-1,"{\n  ""text"": ""hi""\n}"\n'  # lines 2-4: a pretty-printed cell
        "a2,Bad Type,C-1,\n"  # line 5
        "\n"  # line 6, blank
        "a3,note.added,C-1,\n"  # line 7
        "a4,note.added,C-1,,surplus\n"  # line 8
    )
    path = write(tmp_path, "notes.csv", text)
    report = run_import(db, tenant.tenant_id, path)
    assert report.created == 2
    assert errors_by_line(report) == {5: "validation_error", 8: "invalid_csv"}
    with db.session() as session:
        a1 = session.execute(select(Event).where(Event.client_event_id == "a1")).scalar_one()
        assert a1.payload["attributes"] == {"text": "hi"}


def test_same_id_twice_in_a_file(db: Database, tenant: TenantFixture, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dup.csv",
        "id,type,member_external_id,store\n"
        "d1,visit,C-1,bdg\n"
        "d1,visit,C-1,bdg\n"  # the same event again: already present
        "d1,visit,C-1,jkt\n",  # the same id, another event
    )
    report = run_import(db, tenant.tenant_id, path, batch_size=1)
    assert (report.created, report.duplicates) == (1, 1)
    assert errors_by_line(report) == {4: "event_id_reused"}


def test_unknown_tenant_is_a_clear_error(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "id,type,member_external_id\n")
    with pytest.raises(NotFound, match="no tenant has id") as exc:
        run_import(db, uuid.uuid4(), path)
    assert exc.value.code == "tenant_not_found"


@pytest.mark.parametrize(
    ("name", "text", "code", "message"),
    [
        ("events.xlsx", "id,type\n", "unsupported_file_type", ".csv"),
        ("events.txt", "", "unsupported_file_type", ".jsonl"),
        ("empty.csv", "", "import_file_invalid", "header row"),
        ("cols.csv", "id,type,member_phone,colour\n", "unknown_columns", "'colour'"),
        ("noid.csv", "type,member_phone\n", "missing_columns", "id"),
        ("nomember.csv", "id,type,amount\n", "missing_columns", "member_phone"),
        ("twice.csv", "id,type,member_phone,member_phone\n", "duplicate_columns", "twice"),
    ],
)
def test_files_that_cannot_be_imported(
    db: Database,
    tenant: TenantFixture,
    tmp_path: Path,
    name: str,
    text: str,
    code: str,
    message: str,
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ImportFileError, match=message) as exc:
        run_import(db, tenant.tenant_id, path)
    assert exc.value.code == code
    assert row_counts(db)["events"] == 0


def test_non_utf8_file_is_refused(db: Database, tenant: TenantFixture, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        "id,type,member_name,member_phone\nx,visit,Jos\xe9,0812-3456-7890\n".encode("latin-1")
    )
    with pytest.raises(ImportFileError, match="UTF-8") as exc:
        run_import(db, tenant.tenant_id, path)
    assert exc.value.code == "invalid_encoding"
    assert row_counts(db)["events"] == 0


def test_a_bad_byte_deep_in_a_file_refuses_all_of_it_and_names_its_line(
    db: Database, tenant: TenantFixture, tmp_path: Path
) -> None:
    """Checked before anything is recorded: no first chunks saved behind the error."""
    rows = [f"g{i},visit,C-{i % 7},Ani\n".encode() for i in range(3000)]
    rows[2499] = "g2499,visit,C-1,Jos\xe9\n".encode("latin-1")  # line 2501 (after the header)
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"id,type,member_external_id,member_name\n" + b"".join(rows))
    with pytest.raises(ImportFileError, match="line 2501 is not UTF-8") as exc:
        run_import(db, tenant.tenant_id, path, batch_size=500)
    assert "column 20" in exc.value.detail
    assert "Nothing was imported" in exc.value.detail
    assert row_counts(db)["events"] == 0


def test_a_file_with_carriage_returns_only(
    db: Database, tenant: TenantFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines ending in a lone CR ("CSV (Macintosh)"): read, counted and named like any."""
    from setia.events import importer

    body = "".join(f"m{i},visit,C-{i},Ani\r" for i in range(4))
    path = tmp_path / "mac.csv"
    path.write_bytes(f"id,type,member_external_id,member_name\r{body}".encode())
    totals: list[int] = []
    scan = importer._scan
    monkeypatch.setattr(importer, "_scan", lambda p: totals.append(scan(p)) or totals[-1])
    report = run_import(db, tenant.tenant_id, path)
    assert (report.rows, report.created, report.last_line, totals) == (4, 4, 5, [5])
    # a bad byte on the fourth line is named as line 4
    bad = path.read_bytes().replace(b"m2,visit", "m\xe92,visit".encode("latin-1"))
    path.write_bytes(bad)
    with pytest.raises(ImportFileError, match="line 4 is not UTF-8"):
        run_import(db, tenant.tenant_id, path)


def test_semicolon_separated_csv_from_a_spreadsheet(
    db: Database, tenant: TenantFixture, tmp_path: Path
) -> None:
    """Spreadsheets set to Indonesian or Malay save CSV with semicolons."""
    path = write(
        tmp_path,
        "excel.csv",
        "\ufeffid;type;member_external_id;member_name;order_id;amount;currency\r\n"
        'p1;purchase;C-1;"Siti; Rahayu";INV-1;85000;IDR\r\n'
        "p2;purchase;C-2;Budi;INV-2;78.000;IDR\r\n",
    )
    report = run_import(db, tenant.tenant_id, path)
    assert (report.rows, report.created) == (2, 1)
    assert [(e["line"], e["code"]) for e in report.errors] == [(3, "too_many_decimals")]
    with db.session() as s:
        assert s.scalars(select(Member.name)).all() == ["Siti; Rahayu"]


def test_progress_bar_runs(db: Database, tenant: TenantFixture, tmp_path: Path) -> None:
    rows = "".join(f"g{i},visit,C-{i % 7}\n" for i in range(30))
    path = write(tmp_path, "many.csv", "id,type,member_external_id\n" + rows)
    report = run_import(db, tenant.tenant_id, path, batch_size=8, progress=True)
    assert (report.rows, report.created, report.errors) == (30, 30, [])
    assert row_counts(db)["members"] == 7


def test_a_database_failure_stops_the_import_with_advice(
    db: Database, tenant: TenantFixture, tmp_path: Path
) -> None:
    # A real trigger, standing in for a database that refuses writes mid-import.
    if db.dialect == "postgresql":
        create = [
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
            "IF NEW.client_event_id = 'boom' THEN RAISE EXCEPTION 'disk says no'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom()",
        ]
        drop = ["DROP TRIGGER boom ON events"]
    else:
        create = [
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.client_event_id = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        ]
        drop = ["DROP TRIGGER boom"]
    with db.engine.begin() as conn:
        for statement in create:
            conn.execute(text(statement))
    path = write(
        tmp_path,
        "boom.csv",
        "id,type,member_external_id\n"
        + "".join(f"{i},visit,C-1\n" for i in ("ok1", "ok2", "ok3", "boom", "ok5")),
    )
    report = ImportReport()
    with pytest.raises(ImportInterrupted, match="lines 4-5") as exc:
        run_import(db, tenant.tenant_id, path, batch_size=2, report=report)
    # what was saved before the stop, for the operator's summary
    assert (report.created, report.last_line) == (2, 3)
    assert "disk says no" in exc.value.detail
    assert "run the same import again" in exc.value.detail
    assert exc.value.extra["created"] == 2
    assert row_counts(db)["events"] == 2  # the first chunk is kept, the failed one is not

    with db.engine.begin() as conn:
        for statement in drop:
            conn.execute(text(statement))
    report = run_import(db, tenant.tenant_id, path, batch_size=2)
    assert (report.created, report.duplicates, report.errors) == (3, 2, [])
