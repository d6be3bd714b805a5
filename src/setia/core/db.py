"""Engine, sessions and the declarative base.

Transactions on SQLite start with ``BEGIN IMMEDIATE``: SQLite ignores ``SELECT ... FOR
UPDATE``, so a read-then-write transaction must hold the write lock from its first
statement, or two of them can read the same balance. On PostgreSQL the ledger takes row
locks in id order instead (see ``setia.ledger.service``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
from sqlalchemy import JSON, DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from setia.core.config import get_settings
from setia.core.time import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = as_utc(value)
        # SQLite has no time zone type; store naive UTC so text comparisons stay correct.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    # On SQLite the two steps (to naive UTC, then SQLAlchemy's DATETIME text) are done in one
    # go with ``isoformat``: the same text (``tests/test_db_types.py``) for a fraction of the
    # cost, which the batch path pays about ten times per event. Reading back likewise.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            # "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00": the text before the offset (cheaper
            # than a naive copy of the value first).
            if value.microsecond:
                return value.isoformat(" ")[:26]
            return value.isoformat(" ")[:19] + ".000000"

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        fallback = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return fallback

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if value.__class__ is str:
                try:
                    return as_utc(datetime.fromisoformat(value))
                except ValueError:
                    pass
            return fallback(value) if fallback else as_utc(value)

        return process


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


_last_id = 0
_id_lock = threading.Lock()
# Random bits for ids, drawn from os.urandom 4 KiB at a time (one system call per ~400 ids
# instead of one per id; the batch path makes about ten ids per event).
_random = b""
_random_at = 0
_RANDOM_CHUNK = 4096


def _fresh_random() -> None:
    # A forked child must not reuse its parent's bits (the same tail in the same millisecond
    # would be the same id).
    global _random, _random_at
    _random, _random_at = b"", 0


os.register_at_fork(after_in_child=_fresh_random)


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7 layout), so ids sort by creation time.

    Within one process ids are strictly increasing (the random tail is bumped when two ids
    fall in the same millisecond), so ordering by id gives statements in write order.
    """
    global _last_id, _random, _random_at
    ms = time.time_ns() // 1_000_000
    with _id_lock:
        if _random_at + 10 > len(_random):
            _random, _random_at = os.urandom(_RANDOM_CHUNK), 0
        rand = int.from_bytes(_random[_random_at : _random_at + 10], "big")
        _random_at += 10
        value = (
            (ms & ((1 << 48) - 1)) << 80
            | 0x7 << 76
            | (rand >> 68 & 0xFFF) << 64
            | 0b10 << 62
            | rand & ((1 << 62) - 1)
        )
        if value <= _last_id:
            value = _last_id + 1
        _last_id = value
    # uuid.UUID(int=value) checks the range and the arguments again: the value is in range
    # by construction, and the batch path makes about ten ids per event.
    out = _new_object(uuid.UUID)
    _set_attribute(out, "int", value)
    _set_attribute(out, "is_safe", uuid.SafeUUID.unknown)
    return out


_new_object = object.__new__
_set_attribute = object.__setattr__


# How much write-ahead log (in pages: 40 MB at SQLite's 4 KiB) a commit lets pile up before it
# copies the log back into the database file itself. SQLite's default is 1,000 pages: a batch
# of 500 events then paid a checkpoint (its copying and two fsyncs) every few commits. With a
# ``WalCheckpointer`` running (the API server) commits practically never do; without one (a
# CLI import) they do it ten times less often, each copying a page changed many times once.
AUTOCHECKPOINT_PAGES = 10_000

_log = logging.getLogger("setia.db")


class WalCheckpointer:
    """Checkpoints a SQLite database's write-ahead log from a thread of its own, every
    ``interval`` seconds (``PRAGMA wal_checkpoint(PASSIVE)``: it never waits for, nor blocks,
    readers and writers; what it cannot copy yet it copies next time).

    The copying and its fsyncs then happen beside the requests (SQLite releases the GIL while
    it works) instead of inside whichever commit crossed the autocheckpoint threshold. If the
    file is replaced (a restore, ``demo --fresh``), the thread opens the new one; while there
    is no file it waits. It never creates one: with no file at its start it does not start."""

    def __init__(self, path: str, interval: float) -> None:
        self.path = os.path.abspath(path)
        self.interval = interval
        self.checkpoints = 0  # completed runs (for tests and diagnostics)
        self.last: tuple[int, int, int] | None = None  # the last run's result
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def thread_name(self) -> str:
        return f"setia-wal-checkpoint:{self.path}"

    def start(self) -> None:
        if self._thread is None:
            # A fresh event per thread: a thread that outlived a timed-out stop() keeps its
            # own (set) event and ends, instead of running on beside the new one.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name=self.thread_name, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                _log.warning("WAL checkpointer of %s did not stop within 10 s", self.path)
            self._thread = None

    def _open(self) -> tuple[sqlite3.Connection, tuple[int, int]]:
        """A connection to the file as it is now, and the file's identity (device, inode)."""
        # mode=rw: never create a database that is not there.
        conn = sqlite3.connect(
            Path(self.path).as_uri() + "?mode=rw", uri=True, isolation_level=None
        )
        st = os.stat(self.path)
        return conn, (st.st_dev, st.st_ino)

    def _run(self, stop: threading.Event) -> None:
        try:
            conn: sqlite3.Connection | None
            conn, opened = self._open()
        except (sqlite3.Error, OSError, ValueError) as exc:
            _log.warning("WAL checkpointer not started for %s: %s", self.path, exc)
            return
        try:
            while not stop.wait(self.interval):
                try:
                    st = os.stat(self.path)
                except OSError:
                    continue  # no file for now (being replaced): nothing to checkpoint
                if conn is None or (st.st_dev, st.st_ino) != opened:
                    if conn is not None:
                        conn.close()
                        conn = None
                    try:
                        conn, opened = self._open()
                    except (sqlite3.Error, OSError, ValueError):
                        continue  # not ready yet: next time
                self.checkpoint(conn)
        finally:
            if conn is not None:
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int] | None:
        """One passive checkpoint: (busy, frames in the log, frames copied), or None."""
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            _log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
            return None
        self.checkpoints += 1
        self.last = (int(busy), int(frames), int(copied))
        return self.last


def sqlite_file(engine: Engine) -> str | None:
    """The file of a SQLite engine's database; None for PostgreSQL and in-memory databases."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    path = url.database
    if not path or path == ":memory:":
        return None
    return os.path.abspath(path)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def dump_json(value: Any) -> str:
    """JSON columns' encoder: orjson (in C; the batch path writes about eight documents
    per event), compact and UTF-8, keys of any scalar type as text like ``json.dumps``; what
    orjson refuses (an integer beyond 64 bits, ...) goes through ``json.dumps``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def load_json(text: str | bytes) -> Any:
    """JSON columns' decoder: ``json.loads`` (orjson would read an integer beyond 64 bits as
    a float)."""
    return json.loads(text)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    settings = get_settings()
    kwargs.setdefault("json_serializer", dump_json)
    kwargs.setdefault("json_deserializer", load_json)
    url = url or settings.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=settings.echo_sql, **kwargs)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, echo=settings.echo_sql, pool_pre_ping=True, **kwargs)


class Database:
    """An engine and its session factory; one per process (or per test)."""

    def __init__(self, url: str | None = None, **engine_kwargs: Any) -> None:
        import setia.models  # noqa: F401  - every table must be known before the first query

        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits if the block succeeds, rolls back otherwise."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def start_checkpointer(self, interval: float) -> WalCheckpointer | None:
        """Checkpoint the write-ahead log from a background thread (a SQLite file only; None
        otherwise, or when ``interval`` is 0). The caller stops it."""
        path = sqlite_file(self.engine)
        if path is None or interval <= 0:
            return None
        checkpointer = WalCheckpointer(path, interval)
        checkpointer.start()
        return checkpointer

    def dispose(self) -> None:
        self.engine.dispose()


_default: Database | None = None


def get_database() -> Database:
    global _default
    if _default is None:
        _default = Database()
    return _default


def set_database(db: Database | None) -> None:
    global _default
    _default = db
