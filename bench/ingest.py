"""Purchase-event ingestion through the HTTP API, against the raw-insert ceiling.

What it measures, per backend (SQLite file in WAL mode; a throwaway PostgreSQL cluster):

* **one-by-one**: ``POST /v1/events``, one request per event, sequential;
* **batched**: ``POST /v1/events/batch`` with ``--batch-size`` events per request;

both against a real uvicorn server (one worker, in a subprocess) from an ``httpx.Client``
with keep-alive in this process; request bodies are encoded before the clock starts.

The baseline (the ceiling) is measured in the same run, on a second database set up the same
way: the same rows each recorded purchase leaves behind (events, orders, ledger_transfers,
two ledger_entries, point_lots, two outbox rows, the two account-counter UPDATEs and the
member's last-activity UPDATE; for an auto-created member also its members row, three
ledger_accounts rows and a third outbox row), inserted with plain ``executemany`` SQL
through the driver, one transaction per batch (per event for the one-by-one baseline).
The rows are built before the clock starts (each event's stored result is the one the API
answered). After the run the row counts of every table in both databases are printed side
by side: they must be equal, or the baseline would not be honest.

Besides wall-clock rates it reports CPU milliseconds per event (the API server process, or
this process for the baseline, plus the PostgreSQL processes), which hold up better than
wall time when other work shares the machine. A census run (in-process, on a third
database) counts the statements the API issues per event.

    python bench/ingest.py                          # both backends, default sizes
    python bench/ingest.py --backend sqlite --events 20000 --single-events 2000
    python bench/ingest.py --profile batch          # cProfile of the batch path, in-process
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.pgcluster

import httpx  # noqa: E402
from sqlalchemy import create_engine, event, inspect, select, text  # noqa: E402

from setia.core.config import get_settings  # noqa: E402
from setia.core.db import Database, new_id  # noqa: E402
from setia.core.migrate import upgrade  # noqa: E402
from setia.core.runtime import tune_gc  # noqa: E402
from setia.ledger.models import Account  # noqa: E402
from setia.members import service as members_service  # noqa: E402
from setia.members.models import Member  # noqa: E402
from setia.tenants import service as tenants  # noqa: E402

WIB = timezone(timedelta(hours=7))
TABLES = (
    "members",
    "ledger_accounts",
    "events",
    "orders",
    "ledger_transfers",
    "ledger_entries",
    "point_lots",
    "outbox",
)
CATALOG = [
    (f"SKU-{n:03d}", name, category, price)
    for n, (name, category, price) in enumerate(
        [
            ("Es Kopi Susu", "coffee", 25000),
            ("Kopi Tubruk", "coffee", 15000),
            ("Americano", "coffee", 28000),
            ("Cafe Latte", "coffee", 32000),
            ("Teh Tarik", "tea", 18000),
            ("Matcha Latte", "tea", 35000),
            ("Croissant", "bakery", 22000),
            ("Roti Bakar", "bakery", 20000),
            ("Pisang Goreng", "snack", 12000),
            ("Nasi Goreng", "food", 38000),
            ("Mie Ayam", "food", 30000),
            ("Kaos Batik", "apparel", 149000),
            ("Kain Batik Tulis", "apparel", 450000),
            ("Tumbler", "merch", 95000),
            ("Biji Kopi 250g", "beans", 85000),
            ("Air Mineral", "drinks", 6000),
        ]
    )
]


# --------------------------------------------------------------------------- workload


@dataclass
class Ev:
    """One purchase event, with what the baseline needs to know about it."""

    body: dict[str, Any]
    identity: int  # index into Workload.identities
    creates: bool  # first sight of a new identity: the API auto-creates the member
    amount: Decimal
    points: int
    occurred_at: datetime
    result: dict[str, Any] | None = None  # what the API answered (the baseline stores it too)


@dataclass
class Phase:
    name: str
    events: list[Ev]
    batch: int  # 0: one request per event
    timed: bool = True


@dataclass
class Workload:
    identities: list[dict[str, str]]  # external_id, phone (E.164), name
    existing: int  # identities[:existing] are members before the run
    phases: list[Phase]


def local_phone(e164: str) -> str:
    """+6281200001234 -> 0812-0000-1234, as a cashier would type it."""
    national = "0" + e164.removeprefix("+62")
    return f"{national[:4]}-{national[4:8]}-{national[8:]}"


def make_workload(
    *, members: int, single: int, batched: int, batch: int, new_share: float, seed: int = 7
) -> Workload:
    rng = random.Random(seed)
    identities = [
        {"external_id": f"M{i:06d}", "phone": f"+62812{i:08d}", "name": f"Pelanggan {i}"}
        for i in range(members)
    ]
    known: list[int] = list(range(members))
    now = datetime.now(UTC)
    counter = 0

    def one() -> Ev:
        nonlocal counter
        counter += 1
        creates = rng.random() < new_share
        if creates:
            j = len(identities)
            identities.append(
                {"external_id": f"N{j:06d}", "phone": f"+62813{j:08d}", "name": f"Baru {j}"}
            )
            known.append(j)
            ident = identities[j]
            member: dict[str, str] = dict(ident)
        else:
            j = rng.choice(known)
            ident = identities[j]
            style = rng.random()
            if style < 0.45:
                member = {"phone": local_phone(ident["phone"])}
            elif style < 0.9:
                member = {"external_id": ident["external_id"]}
            else:
                member = {"external_id": ident["external_id"], "phone": ident["phone"]}
        items = []
        amount = 0
        for sku, name, category, price in rng.sample(CATALOG, rng.randint(1, 5)):
            qty = rng.choice((1, 1, 1, 2, 3))
            items.append(
                {
                    "sku": sku,
                    "name": name,
                    "category": category,
                    "quantity": qty,
                    "unit_price": str(price),
                }
            )
            amount += qty * price
        occurred = (now - timedelta(seconds=rng.randint(60, 30 * 86400))).replace(microsecond=0)
        body = {
            "id": f"bench-{seed}-{counter:07d}",
            "type": "purchase",
            "occurred_at": occurred.astimezone(WIB).isoformat(),
            "member": member,
            "order_id": f"INV-{seed}-{counter:07d}",
            "amount": str(amount),
            "currency": "IDR",
            "items": items,
            "store": rng.choice(("bandung-dago", "bandung-braga", "jakarta-kemang", "online")),
            "channel": rng.choice(("pos", "pos", "pos", "web", "app")),
        }
        return Ev(body, j, creates, Decimal(amount), amount // 1000, occurred)

    warm = min(100, max(batch, 20))
    phases = [
        Phase("warm-up", [one() for _ in range(warm)], batch=0, timed=False),
        Phase("one-by-one", [one() for _ in range(single)], batch=0),
        Phase("warm-up", [one() for _ in range(batch)], batch=batch, timed=False),
        Phase("batched", [one() for _ in range(batched)], batch=batch),
    ]
    return Workload(identities, members, phases)


# --------------------------------------------------------------------------- databases


@dataclass
class Seeded:
    url: str
    api_key: str
    tenant_id: uuid.UUID
    program_id: uuid.UUID
    issuance: uuid.UUID
    member_ids: dict[str, uuid.UUID]  # external_id -> member id
    points_accounts: dict[uuid.UUID, uuid.UUID]  # member id -> POINTS account


def seed(url: str, work: Workload) -> Seeded:
    """Migrate, create the tenant and the members that exist before the run."""
    upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            new = tenants.create_tenant(
                s, name="Kopi Bench", country="ID", currency="IDR", timezone="Asia/Jakarta"
            )
            tenant_id, program_id, secret = new.tenant.id, new.program.id, new.secret
            for ident in work.identities[: work.existing]:
                members_service.create_member(s, new.tenant, dict(ident), source="bench")
        with db.session() as s:
            ids = dict(
                s.execute(
                    select(Member.external_id, Member.id).where(Member.tenant_id == tenant_id)
                ).all()
            )
            points = dict(
                s.execute(
                    select(Account.member_id, Account.id).where(
                        Account.program_id == program_id, Account.code == "POINTS"
                    )
                ).all()
            )
            issuance = s.execute(
                select(Account.id).where(
                    Account.program_id == program_id,
                    Account.code == "ISSUANCE",
                    Account.member_id.is_(None),
                )
            ).scalar_one()
    finally:
        db.dispose()
    return Seeded(url, secret, tenant_id, program_id, issuance, ids, points)


def row_counts(url: str) -> dict[str, int]:
    """Rows in every table: the API and the baseline must leave the same behind."""
    engine = create_engine(url)
    try:
        # tier_activity (one upsert per batch, added by the tiers work) is written by the API
        # only: the baselines leave it out, so they are a little cheaper than the API's work.
        names = sorted(
            set(inspect(engine).get_table_names()) - {"alembic_version", "tier_activity"}
        )
        with engine.connect() as conn:
            return {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in names
            }
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the API


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (and their reaped children), from /proc."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / CLOCK_TICKS


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


@contextmanager
def api_server(url: str) -> Iterator[tuple[str, int]]:
    """A real uvicorn server (one worker) in a subprocess, on a free port."""
    port = free_port()
    env = {**os.environ, "SETIA_DATABASE_URL": url, "SETIA_ECHO_SQL": "false"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "setia.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=tempfile.gettempdir(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def encode(phase: Phase) -> list[bytes]:
    if phase.batch == 0:
        return [json.dumps(e.body).encode() for e in phase.events]
    return [
        json.dumps({"events": [e.body for e in phase.events[i : i + phase.batch]]}).encode()
        for i in range(0, len(phase.events), phase.batch)
    ]


def run_api(
    client: httpx.Client, phase: Phase, server: Callable[[], list[int]]
) -> tuple[float, float]:
    """Send the phase; return (wall seconds, server CPU seconds)."""
    bodies = encode(phase)
    path = "/v1/events" if phase.batch == 0 else "/v1/events/batch"
    cpu = cpu_seconds(server())
    started = time.perf_counter()
    responses = [client.post(path, content=b) for b in bodies]
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server()) - cpu
    results: list[dict[str, Any]] = []
    for r in responses:
        if phase.batch == 0:
            ok = r.status_code == 201
            results.append(r.json() if ok else {})
        else:
            ok = r.status_code == 200 and r.json()["failed"] == 0
            ok = ok and r.json()["created"] == len(r.json()["results"])
            results += [item["result"] for item in r.json()["results"]] if ok else []
        if not ok:
            raise RuntimeError(f"{phase.name}: {r.status_code} {r.text[:1000]}")
    for e, result in zip(phase.events, results, strict=True):
        e.result = {k: v for k, v in result.items() if v is not None}
    return elapsed, cpu


# --------------------------------------------------------------------------- the baseline


def _sha(obj: Any) -> str:
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


@dataclass
class Batch:
    """Rows for one transaction: {statement key: [parameter tuples]} in execution order."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, key: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(key, []).append(row)


COLUMNS: dict[str, tuple[str, ...]] = {
    "members": [
        "id",
        "tenant_id",
        "external_id",
        "name",
        "phone",
        "email",
        "locale",
        "birthday",
        "timezone",
        "tags",
        "attributes",
        "status",
        "merged_into_id",
        "last_activity_at",
        "created_at",
        "updated_at",
        "erased_at",
    ],
    "ledger_accounts": [
        "id",
        "program_id",
        "code",
        "member_id",
        "no_overdraft",
        "no_overcredit",
        "debits_posted",
        "credits_posted",
        "debits_pending",
        "credits_pending",
        "version",
        "created_at",
    ],
    "events": [
        "id",
        "tenant_id",
        "program_id",
        "member_id",
        "client_event_id",
        "type",
        "occurred_at",
        "received_at",
        "request_hash",
        "order_id",
        "amount",
        "currency",
        "payload",
        "result",
    ],
    "orders": [
        "id",
        "tenant_id",
        "program_id",
        "member_id",
        "order_id",
        "event_id",
        "amount",
        "currency",
        "lines",
        "points_earned",
        "refunded_amount",
        "points_reversed",
        "occurred_at",
        "created_at",
    ],
    "ledger_transfers": [
        "id",
        "program_id",
        "debit_account_id",
        "credit_account_id",
        "amount",
        "code",
        "kind",
        "pending_id",
        "idempotency_key",
        "request_hash",
        "source_type",
        "source_id",
        "program_revision",
        "actor",
        "reason",
        "details",
        "expires_at",
        "effective_at",
        "created_at",
    ],
    "ledger_entries": [
        "id",
        "account_id",
        "transfer_id",
        "amount",
        "balance_after",
        "account_version",
        "created_at",
    ],
    "point_lots": [
        "id",
        "program_id",
        "account_id",
        "member_id",
        "transfer_id",
        "source_type",
        "source_id",
        "amount",
        "remaining",
        "earned_at",
        "pending_until",
        "released_at",
        "expires_at",
    ],
    "outbox": ["id", "tenant_id", "topic", "payload", "created_at", "processed_at"],
}
UPDATES = {
    "credit": "UPDATE ledger_accounts SET credits_posted = credits_posted + {p}, "
    "version = version + 1 WHERE id = {p}",
    "debit": "UPDATE ledger_accounts SET debits_posted = debits_posted + {p}, "
    "version = version + 1 WHERE id = {p}",
    "activity": "UPDATE members SET last_activity_at = {p} WHERE id = {p}",
}
ORDER = (*TABLES, "debit", "credit", "activity")


class Raw:
    """Build the rows the API writes, then insert them with plain executemany SQL."""

    def __init__(self, seeded: Seeded, work: Workload, dialect: str) -> None:
        self.s = seeded
        self.work = work
        self.pg = dialect == "postgresql"
        p = "%s" if self.pg else "?"
        self.sql = {
            t: f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join([p] * len(cols))})"
            for t, cols in COLUMNS.items()
        } | {k: v.format(p=p) for k, v in UPDATES.items()}
        self.member_ids = {
            i: seeded.member_ids[ident["external_id"]]
            for i, ident in enumerate(work.identities[: work.existing])
        }
        self.points = {i: seeded.points_accounts[m] for i, m in self.member_ids.items()}
        self.balance: Counter[uuid.UUID] = Counter()
        self.version: Counter[uuid.UUID] = Counter()
        self.activity: dict[int, datetime] = {}
        if self.pg:
            from psycopg.types.json import Jsonb

            self._json: Callable[[Any], Any] = Jsonb
        else:
            self._json = lambda v: json.dumps(v)

    # Values as SQLAlchemy binds them: UUID hex, naive-UTC text and JSON text on SQLite.
    def u(self, v: uuid.UUID | None) -> Any:
        return v if self.pg or v is None else v.hex

    def t(self, v: datetime | None) -> Any:
        if v is None or self.pg:
            return v
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def j(self, v: Any) -> Any:
        return self._json(v)

    def build(self, phase: Phase) -> list[Batch]:
        size = phase.batch or 1
        return [self._batch(phase.events[i : i + size]) for i in range(0, len(phase.events), size)]

    def _batch(self, events: list[Ev]) -> Batch:
        b = Batch()
        s, u, t, j = self.s, self.u, self.t, self.j
        for e in events:
            now = datetime.now(UTC)
            if e.creates:
                mid, acc = new_id(), {c: new_id() for c in ("POINTS", "PENDING", "DEBT")}
                ident = self.work.identities[e.identity]
                b.add(
                    "members",
                    (u(mid), u(s.tenant_id), ident["external_id"], ident["name"], ident["phone"],
                     None, "id", None, None, j([]), j({}), "active", None, None, t(now), t(now),
                     None),
                )  # fmt: skip
                for code, aid in acc.items():
                    b.add(
                        "ledger_accounts",
                        (u(aid), u(s.program_id), code, u(mid), code != "DEBT", code == "DEBT",
                         0, 0, 0, 0, 0, t(now)),
                    )  # fmt: skip
                b.add(
                    "outbox",
                    (u(new_id()), u(s.tenant_id), "member.created", j({"member_id": str(mid)}),
                     t(now), None),
                )  # fmt: skip
                self.member_ids[e.identity] = mid
                self.points[e.identity] = acc["POINTS"]
            mid = self.member_ids[e.identity]
            points_acc = self.points[e.identity]
            eid, xid = new_id(), new_id()
            order_id = e.body["order_id"]
            award = {
                "rule": "base",
                "program_revision": 1,
                "points": e.points,
                "transfer_id": str(xid),
                "pending_until": None,
                "expires_at": None,
            }
            result = e.result or {
                "id": e.body["id"],
                "event_id": str(eid),
                "type": "purchase",
                "member_id": str(mid),
                "program_id": str(s.program_id),
                "occurred_at": e.occurred_at.isoformat(),
                "member_created": e.creates,
                "points": {"earned": e.points, "awards": [award]},
            }
            lines = [{**item, "returned": 0} for item in e.body["items"]]
            b.add(
                "events",
                (u(eid), u(s.tenant_id), u(s.program_id), u(mid), e.body["id"], "purchase",
                 t(e.occurred_at), t(now), _sha(e.body), order_id, str(e.amount), "IDR",
                 j(e.body), j(result)),
            )  # fmt: skip
            b.add(
                "orders",
                (u(new_id()), u(s.tenant_id), u(s.program_id), u(mid), order_id, u(eid),
                 str(e.amount), "IDR", j(lines), e.points, "0", 0, t(e.occurred_at), t(now)),
            )  # fmt: skip
            b.add(
                "ledger_transfers",
                (u(xid), u(s.program_id), u(s.issuance), u(points_acc), e.points, "EARN",
                 "POSTED", None, f"event:{eid}:award:0", _sha({"event": str(eid), "award": 0}),
                 "order", order_id, 1, "event", None,
                 j({"rule": "base", "event_id": str(eid)}), None, t(e.occurred_at), t(now)),
            )  # fmt: skip
            for acc, amount in ((s.issuance, -e.points), (points_acc, e.points)):
                self.balance[acc] += amount
                self.version[acc] += 1
                b.add(
                    "ledger_entries",
                    (u(new_id()), u(acc), u(xid), amount, self.balance[acc], self.version[acc],
                     t(now)),
                )  # fmt: skip
            b.add(
                "point_lots",
                (u(new_id()), u(s.program_id), u(points_acc), u(mid), u(xid), "order", order_id,
                 e.points, e.points, t(e.occurred_at), None, t(now), None),
            )  # fmt: skip
            b.add(
                "outbox",
                (u(new_id()), u(s.tenant_id), "points.earned",
                 j({"member_id": str(mid), "program_id": str(s.program_id), "points": e.points,
                    "order_id": order_id, "pending_until": None}),
                 t(now), None),
            )  # fmt: skip
            b.add(
                "outbox",
                (u(new_id()), u(s.tenant_id), "event.recorded",
                 j({"event_id": str(eid), "type": "purchase", "member_id": str(mid)}), t(now),
                 None),
            )  # fmt: skip
            b.add("debit", (e.points, u(s.issuance)))
            b.add("credit", (e.points, u(points_acc)))
            last = self.activity.get(e.identity)
            if last is None or e.occurred_at > last:
                self.activity[e.identity] = e.occurred_at
                b.add("activity", (t(e.occurred_at), u(mid)))
        return b

    def run(self, batches: list[Batch], db_pids: Callable[[], list[int]]) -> tuple[float, float]:
        """Insert the batches; return (wall seconds, CPU seconds of this process + database)."""
        db = Database(self.s.url)
        engine = db.engine
        raw = engine.raw_connection()
        # The same background WAL checkpoints as the API server (its lifespan starts them).
        checkpointer = db.start_checkpointer(get_settings().sqlite_checkpoint_seconds)
        try:
            cur = raw.cursor()
            cpu = cpu_seconds([os.getpid(), *db_pids()])
            started = time.perf_counter()
            for b in batches:
                if not self.pg:
                    cur.execute("BEGIN IMMEDIATE")
                for key in ORDER:
                    if key in b.rows:
                        cur.executemany(self.sql[key], b.rows[key])
                if self.pg:
                    raw.commit()
                else:
                    cur.execute("COMMIT")
            elapsed = time.perf_counter() - started
            return elapsed, cpu_seconds([os.getpid(), *db_pids()]) - cpu
        finally:
            raw.close()
            if checkpointer is not None:
                checkpointer.stop()
            engine.dispose()


class CoreRaw(Raw):
    """The same rows through SQLAlchemy Core ``executemany`` (its type processing on): what
    a set-based batch path written with SQLAlchemy could reach at best."""

    def u(self, v: uuid.UUID | None) -> Any:
        return v

    def t(self, v: datetime | None) -> Any:
        return v

    def j(self, v: Any) -> Any:
        return v

    def run(self, batches: list[Batch], db_pids: Callable[[], list[int]]) -> tuple[float, float]:
        from sqlalchemy import BigInteger, Uuid, bindparam, insert, update

        from setia.core.db import Base

        tables = Base.metadata.tables
        acc, mem = tables["ledger_accounts"], tables["members"]
        n, aid = bindparam("n", type_=BigInteger), bindparam("aid", type_=Uuid())
        stmts: dict[str, Any] = {t: insert(tables[t]) for t in COLUMNS}
        stmts["debit"] = (
            update(acc)
            .where(acc.c.id == aid)
            .values(debits_posted=acc.c.debits_posted + n, version=acc.c.version + 1)
        )
        stmts["credit"] = (
            update(acc)
            .where(acc.c.id == aid)
            .values(credits_posted=acc.c.credits_posted + n, version=acc.c.version + 1)
        )
        stmts["activity"] = (
            update(mem)
            .where(mem.c.id == bindparam("mid", type_=Uuid()))
            .values(last_activity_at=bindparam("at", type_=mem.c.last_activity_at.type))
        )

        def params(key: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
            if key in COLUMNS:
                return [dict(zip(COLUMNS[key], row, strict=True)) for row in rows]
            if key == "activity":
                return [{"at": at, "mid": mid} for at, mid in rows]
            return [{"n": amount, "aid": account} for amount, account in rows]

        prepared = [[(k, params(k, b.rows[k])) for k in ORDER if k in b.rows] for b in batches]
        db = Database(self.s.url)
        checkpointer = db.start_checkpointer(get_settings().sqlite_checkpoint_seconds)
        try:
            cpu = cpu_seconds([os.getpid(), *db_pids()])
            started = time.perf_counter()
            for batch in prepared:
                with db.engine.begin() as conn:
                    for key, rows in batch:
                        conn.execute(stmts[key], rows)
            elapsed = time.perf_counter() - started
            return elapsed, cpu_seconds([os.getpid(), *db_pids()]) - cpu
        finally:
            if checkpointer is not None:
                checkpointer.stop()
            db.dispose()


# --------------------------------------------------------------------------- census


def census(url: str) -> dict[str, dict[str, float]]:
    """Statements the API runs per purchase (existing member), counted in-process."""
    from fastapi.testclient import TestClient

    from setia.app import create_app

    work = make_workload(members=50, single=40, batched=200, batch=100, new_share=0.0, seed=3)
    seeded = seed(url, work)
    db = Database(url)
    counts: Counter[str] = Counter()
    rows_before = row_counts(url)

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        counts[statement.split(None, 1)[0].upper()] += 1

    out: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Bearer {seeded.api_key}", "Content-Type": "application/json"}
    try:
        with TestClient(create_app(db)) as client:
            for phase in (p for p in work.phases if p.events):
                counts.clear()
                for body in encode(phase):
                    path = "/v1/events" if phase.batch == 0 else "/v1/events/batch"
                    r = client.post(path, content=body, headers=headers)
                    assert r.status_code in (200, 201), r.text
                if phase.timed:
                    n = len(phase.events)
                    out[phase.name] = {k: v / n for k, v in counts.items()}
    finally:
        db.dispose()
    after = row_counts(url)
    total = sum(len(p.events) for p in work.phases)
    out["rows"] = {t: (after[t] - rows_before.get(t, 0)) / total for t in after}
    return out


# --------------------------------------------------------------------------- profile


def profile(mode: str, events: int, batch: int, members: int, top: int) -> None:
    """cProfile of the server side of one path, in-process on SQLite, without HTTP: what the
    endpoint does (authenticate, validate, record, commit, build the response model)."""
    from setia.core.api import _caller, write
    from setia.events import service
    from setia.events.api import record_batch
    from setia.events.schemas import BatchIn, EventIn, EventResult

    tmp = Path(tempfile.mkdtemp(prefix="setia-prof-"))
    try:
        url = f"sqlite:///{tmp / 'prof.db'}"
        single = events if mode == "single" else 0
        work = make_workload(
            members=members, single=single, batched=events - single, batch=batch, new_share=0.05
        )
        seeded = seed(url, work)
        db = Database(url)
        auth = f"Bearer {seeded.api_key}"

        def one(body: bytes) -> None:
            session = db.sessionmaker()
            try:
                tenant = _caller(session, auth).tenant
                event = EventIn.model_validate_json(body)
                out = write(session, lambda: service.record_event(session, tenant, event))
                EventResult.model_validate(out.result).model_dump_json()
            finally:
                session.close()

        def many(body: bytes) -> None:
            session = db.sessionmaker()
            try:
                tenant = _caller(session, auth).tenant
                parsed = BatchIn.model_validate_json(body)
                out = write(session, lambda: record_batch(session, tenant, parsed.events))
                out.model_dump_json()
                bad = [r for r in out.results if r.error]
                assert not bad, bad[0]
            finally:
                session.close()

        # Warm up with the events generated before the measured ones (identities first seen
        # there are created there).
        warm = work.phases[0].events + (work.phases[2].events if mode == "batch" else [])
        for body in encode(Phase("warm", warm, batch)):
            many(body)
        phase = work.phases[1] if mode == "single" else work.phases[3]
        fn = one if mode == "single" else many
        bodies = encode(phase)
        half = len(bodies) // 2
        started = time.perf_counter()
        for body in bodies[:half]:
            fn(body)
        plain = time.perf_counter() - started
        done = sum(len(json.loads(b).get("events", [1])) for b in bodies[:half])
        prof = cProfile.Profile()
        prof.enable()
        for body in bodies[half:]:
            fn(body)
        prof.disable()
        print(
            f"{mode} path in-process on SQLite (no HTTP): {done / plain:,.0f} events/s "
            f"without the profiler; profile of the other {len(phase.events) - done:,} events:"
        )
        stream = io.StringIO()
        stats = pstats.Stats(prof, stream=stream).sort_stats("tottime")
        stats.print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(stream.getvalue())
        db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- main


@dataclass
class Figure:
    backend: str
    mode: str
    events: int
    api_s: float
    api_cpu: float
    raw_s: float = 0.0
    raw_cpu: float = 0.0
    core_s: float = 0.0
    core_cpu: float = 0.0

    @property
    def api_rate(self) -> float:
        return self.events / self.api_s

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_s


def run_backend(
    name: str,
    make_url: Callable[[str], str],
    work: Workload,
    db_pids: Callable[[], list[int]],
) -> tuple[list[Figure], dict[str, dict[str, float]]]:
    api_url, raw_url, core_url, census_url = (
        make_url("bench_api"),
        make_url("bench_raw"),
        make_url("bench_core"),
        make_url("bench_census"),
    )
    print(f"[{name}] seeding {work.existing:,} members in two databases ...", flush=True)
    api_seed = seed(api_url, work)
    raw_seed = seed(raw_url, work)
    core_seed = seed(core_url, work)
    print(f"[{name}] counting statements per event ...", flush=True)
    stmts = census(census_url)
    figures: dict[str, Figure] = {}
    with (
        api_server(api_url) as (base, pid),
        httpx.Client(
            base_url=base,
            headers={
                "Authorization": f"Bearer {api_seed.api_key}",
                "Content-Type": "application/json",
            },
            timeout=600,
        ) as client,
    ):
        for phase in (p for p in work.phases if p.events):
            label = phase.name if phase.batch == 0 else f"{phase.name} ({phase.batch}/request)"
            print(f"[{name}] API {label}: {len(phase.events):,} events ...", flush=True)
            elapsed, cpu = run_api(client, phase, lambda p=pid: [p, *db_pids()])
            if phase.timed:
                figures[phase.name] = Figure(name, label, len(phase.events), elapsed, cpu)
    raw = Raw(raw_seed, work, "postgresql" if name == "postgres" else "sqlite")
    for phase in (p for p in work.phases if p.events):
        print(f"[{name}] raw SQL {phase.name}: {len(phase.events):,} events ...", flush=True)
        elapsed, cpu = raw.run(raw.build(phase), db_pids)
        if phase.timed:
            figures[phase.name].raw_s, figures[phase.name].raw_cpu = elapsed, cpu
    core = CoreRaw(core_seed, work, "postgresql" if name == "postgres" else "sqlite")
    for phase in (p for p in work.phases if p.events):
        print(
            f"[{name}] SQLAlchemy Core {phase.name}: {len(phase.events):,} events ...", flush=True
        )
        elapsed, cpu = core.run(core.build(phase), db_pids)
        if phase.timed:
            figures[phase.name].core_s, figures[phase.name].core_cpu = elapsed, cpu
    api_rows, raw_rows, core_rows = row_counts(api_url), row_counts(raw_url), row_counts(core_url)
    print(f"[{name}] rows after the run (API, raw SQL and SQLAlchemy Core databases):")
    for t in sorted(set(api_rows) | set(raw_rows) | set(core_rows)):
        a, b, c = api_rows.get(t, 0), raw_rows.get(t, 0), core_rows.get(t, 0)
        if a or b or c:
            same = a == b == c
            print(f"    {t:<22} {a:>9,} {b:>9,} {c:>9,}{'' if same else '   <-- MISMATCH'}")
    if not api_rows == raw_rows == core_rows:
        raise SystemExit("the baseline did not write the same rows as the API; fix the bench")
    return list(figures.values()), stmts


def print_census(name: str, stmts: dict[str, dict[str, float]]) -> None:
    rows = stmts["rows"]
    print(
        f"  {name}: rows written per event (all census events, existing members): "
        + ", ".join(f"{t} {v:.2f}" for t, v in rows.items() if v)
        + f"  = {sum(rows.values()):.2f}"
    )
    for mode in ("one-by-one", "batched"):
        per = stmts.get(mode, {})
        if not per:
            continue
        detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        print(f"  {name} {mode}: {sum(per.values()):.2f} statements per event ({detail})")


def versions() -> dict[str, str]:
    from tests.pgcluster import find_bindir

    out = {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        pg = subprocess.run(
            [str(find_bindir() / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        found = re.search(r"\d+\.\d+", pg)
        out["postgres"] = found.group(0) if found else "?"
    except RuntimeError:
        out["postgres"] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    tune_gc()  # as the server and the CLI do (setia.core.runtime)
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--events", type=int, default=5_000, help="batched purchase events")
    ap.add_argument("--single-events", type=int, default=500, help="one-by-one purchase events")
    ap.add_argument("--members", type=int, default=2_000, help="members before the run")
    ap.add_argument("--batch-size", type=int, default=500, help="events per batch request")
    ap.add_argument(
        "--new-share", type=float, default=0.05, help="share of events from new members"
    )
    ap.add_argument(
        "--profile",
        choices=("batch", "single"),
        help="instead of the benchmark: cProfile one path in-process (SQLite, no HTTP)",
    )
    ap.add_argument("--top", type=int, default=35, help="rows of profile output")
    args = ap.parse_args(argv)
    # Stopped with SIGTERM: still stop the API server and the PostgreSQL cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.profile:
        profile(args.profile, args.events, args.batch_size, args.members, args.top)
        return 0

    work = make_workload(
        members=args.members,
        single=args.single_events,
        batched=args.events,
        batch=args.batch_size,
        new_share=args.new_share,
    )
    v = versions()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    figures: list[Figure] = []
    census_out: dict[str, dict[str, dict[str, float]]] = {}
    for name in backends:
        if name == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="setia-bench-"))
            try:
                figs, stmts = run_backend(
                    name, lambda db, d=tmp: f"sqlite:///{d / db}.db", work, list
                )
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            from tests.pgcluster import Cluster

            cluster = Cluster()
            admin = cluster.start()
            try:
                engine = create_engine(admin, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    for db in ("bench_api", "bench_raw", "bench_core", "bench_census"):
                        conn.execute(text(f"CREATE DATABASE {db}"))
                engine.dispose()
                base = admin.rsplit("/", 1)[0]
                postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
                figs, stmts = run_backend(
                    name,
                    lambda db, b=base: f"{b}/{db}",
                    work,
                    lambda pm=postmaster: [pm, *children(pm)],
                )
            finally:
                cluster.stop()
        figures += figs
        census_out[name] = stmts

    new = sum(e.creates for p in work.phases if p.timed for e in p.events)
    total = sum(len(p.events) for p in work.phases if p.timed)
    print()
    print("Setia ingest benchmark: purchase events through the HTTP API")
    print(
        "  server: uvicorn, 1 worker, in a subprocess; client: httpx.Client with keep-alive, "
        "sequential requests, bodies pre-encoded"
    )
    print(
        f"  machine: {v['cpus']} CPUs; Python {v['python']}; SQLite {v['sqlite']} (WAL, "
        f"synchronous=NORMAL); PostgreSQL {v['postgres']} (throwaway cluster, fsync=off)"
    )
    print(
        f"  workload: {args.members:,} members; purchases with 1-5 items, by phone (local "
        f"format) or external id; {new / total:.1%} from new members (auto-created)"
    )
    print(
        "  baseline: the same rows, plain executemany SQL via the driver, one transaction "
        "per batch (per event for one-by-one)"
    )
    print()
    header = (
        f"  {'backend':<9} {'mode':<24} {'events':>7} {'API ev/s':>9} {'raw ev/s':>9} "
        f"{'ratio':>6}  {'API CPU':>8} {'raw CPU':>8} {'ratio':>6}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for f in figures:
        print(
            f"  {f.backend:<9} {f.mode:<24} {f.events:>7,} {f.api_rate:>9,.0f} "
            f"{f.raw_rate:>9,.0f} {f.api_rate / f.raw_rate:>6.1%}  "
            f"{1000 * f.api_cpu / f.events:>6.2f}ms {1000 * f.raw_cpu / f.events:>6.2f}ms "
            f"{f.raw_cpu / f.api_cpu:>6.1%}"
        )
    print(
        "  ratio = API rate / raw rate. CPU = milliseconds of CPU per event: API server process "
        "(+ PostgreSQL)\n  vs. bench process doing the raw inserts (+ PostgreSQL); the CPU "
        "ratio holds up better than wall time on a busy machine."
    )
    print()
    print(
        "  The same rows through SQLAlchemy Core executemany (the ceiling of a set-based batch path):"
    )
    for f in figures:
        print(
            f"  {f.backend:<9} {f.mode:<24} {f.events:>7,} {f.events / f.core_s:>9,.0f} ev/s "
            f"{1000 * f.core_cpu / f.events:>6.2f}ms CPU/event   "
            f"(raw driver {f.raw_rate:,.0f} ev/s, {1000 * f.raw_cpu / f.events:.2f}ms)"
        )
    print()
    for name, stmts in census_out.items():
        print_census(name, stmts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
