"""The write-ahead log of a SQLite database is checkpointed by a background thread of the API
server, and commits let the log grow to ``AUTOCHECKPOINT_PAGES`` before they checkpoint
themselves (setia.core.db)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from setia.app import create_app
from setia.core.db import AUTOCHECKPOINT_PAGES, Database, WalCheckpointer, sqlite_file
from setia.core.migrate import upgrade


def _wait_for(condition: object, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def _threads(path: str) -> list[threading.Thread]:
    """The live checkpointer threads of one database (named after its file: other tests'
    servers, still stopping, do not count)."""
    name = f"setia-wal-checkpoint:{path}"
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    return database


def _log_frames(path: str) -> int:
    """Frames written to the log since it was created (a 32-byte header, then frames of a
    24-byte header and a page); the log is reused, never shrunk, after a checkpoint."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    wal = Path(path + "-wal")
    return max(0, (wal.stat().st_size - 32) // (24 + page)) if wal.exists() else 0


def test_connections_let_the_log_grow_before_checkpointing_inline(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == AUTOCHECKPOINT_PAGES
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_checkpoint_copies_the_log_into_the_database(sqlite_db: Database) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO t (body) VALUES (:b)"), [{"b": "x" * 500} for _ in range(2000)]
        )
    path = sqlite_file(sqlite_db.engine)
    assert path is not None
    assert _log_frames(path) > 100  # below the autocheckpoint threshold: nothing copied yet
    checkpointer = WalCheckpointer(path, interval=3600)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        result = checkpointer.checkpoint(conn)
    finally:
        conn.close()
    assert result is not None
    busy, frames, copied = result
    assert busy == 0
    assert frames > 100
    assert copied == frames
    assert checkpointer.checkpoints == 1
    # The rows are all there, read from the database file now.
    with sqlite_db.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 2000


def test_the_thread_checkpoints_on_its_own_and_stops(sqlite_db: Database) -> None:
    path = sqlite_file(sqlite_db.engine)
    assert path is not None
    assert _threads(path) == []
    checkpointer = sqlite_db.start_checkpointer(0.05)
    assert checkpointer is not None
    try:
        assert len(_threads(path)) == 1
        with sqlite_db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO t (body) VALUES (:b)"), [{"b": "y" * 500} for _ in range(500)]
            )
        assert _wait_for(lambda: checkpointer.checkpoints >= 2)
        # Writers go on while it runs, and what they write is checkpointed too.
        for _ in range(20):
            with sqlite_db.engine.begin() as conn:
                conn.execute(text("INSERT INTO t (body) VALUES ('z')"))
        done = checkpointer.checkpoints
        assert _wait_for(lambda: checkpointer.checkpoints >= done + 2)
    finally:
        checkpointer.stop()
    assert _threads(path) == []
    with sqlite_db.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 520


def test_no_checkpointer_without_a_sqlite_file(tmp_path: Path) -> None:
    memory = Database("sqlite://")
    try:
        assert sqlite_file(memory.engine) is None
        assert memory.start_checkpointer(1.0) is None
    finally:
        memory.dispose()
    file_db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        assert sqlite_file(file_db.engine) == str(tmp_path / "f.db")
        assert file_db.start_checkpointer(0) is None  # 0: turned off
    finally:
        file_db.dispose()


def test_the_thread_never_creates_a_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    checkpointer = WalCheckpointer(str(missing), interval=0.01)
    checkpointer.start()
    thread = checkpointer._thread
    assert thread is not None
    thread.join(timeout=20)  # it gives up at once: nothing to open
    assert not thread.is_alive()
    checkpointer.stop()
    assert not missing.exists()
    assert checkpointer.checkpoints == 0


def test_the_database_fixture_backend_decides(db: Database, backend: str) -> None:
    # On PostgreSQL there is no log of ours to checkpoint; on SQLite the server runs one.
    checkpointer = db.start_checkpointer(1.0)
    try:
        assert (checkpointer is not None) == (backend == "sqlite")
    finally:
        if checkpointer is not None:
            checkpointer.stop()


def test_the_api_server_runs_the_checkpointer_while_it_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    database = Database(url)
    path = str(tmp_path / "app.db")
    try:
        with TestClient(create_app(database)) as client:
            assert client.get("/healthz").status_code == 200
            assert len(_threads(path)) == 1
        assert _threads(path) == []
    finally:
        database.dispose()


def test_a_replaced_database_file_is_checkpointed_in_its_turn(tmp_path: Path) -> None:
    # A restore or ``demo --fresh`` replaces the file under a running server: the thread
    # opens the new file instead of checkpointing the old, deleted one forever.
    path = tmp_path / "swap.db"

    def make() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        finally:
            conn.close()

    make()
    checkpointer = WalCheckpointer(str(path), interval=0.05)
    checkpointer.start()
    try:
        assert _wait_for(lambda: checkpointer.checkpoints >= 1)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        make()
        # A writer kept open (closing the last connection would checkpoint by itself).
        writer = sqlite3.connect(path)
        try:
            writer.execute("PRAGMA wal_autocheckpoint=0")
            with writer:
                writer.executemany("INSERT INTO t (body) VALUES (?)", [("z" * 500,)] * 2000)
            # The new file's log (hundreds of frames) is copied by the thread: a connection
            # still on the deleted file would report that file's few frames instead.
            assert _wait_for(
                lambda: (
                    checkpointer.last is not None
                    and checkpointer.last[1] > 100
                    and checkpointer.last[2] == checkpointer.last[1]
                )
            ), checkpointer.last
        finally:
            writer.close()
    finally:
        checkpointer.stop()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2000
