"""Stored analytics: how long ``setia analytics recompute`` takes, and what the bulk upsert
costs against a plain bulk insert of the same rows.

For each ``--members`` count (default 2,000 and 100,000) a fresh SQLite database (or the
PostgreSQL server of ``--postgres``, one new database per size) gets one tenant whose
members bought on random days over a year (each member 1-12 purchase days with a lapse
probability, amounts 10,000-200,000 IDR; events and orders written with bulk inserts, not
through the event pipeline). Then, timed:

* ``recompute`` (first run: every row inserted) and again (every row updated), split into
  the models (``members.predict``: the BG/NBD and Gamma-Gamma fits and every member's
  P(alive), expected purchases and CLV) and the rest (summary, RFM, labels, write);
* the write alone, three ways, on the same rows read back from ``member_scores``:
  the upsert into an empty table, the upsert over existing rows, and a plain
  ``INSERT`` executemany (no ``ON CONFLICT``) into an empty table; the ratio of each upsert
  to the plain insert.

``--demo-db URL`` also times the recompute of the "Kopi Nusantara" demo tenant in an
existing demo database (use a copy: it writes the scores).

    python bench/analytics_recompute.py
    python bench/analytics_recompute.py --members 2000 100000 --demo-db sqlite:////tmp/x/demo.db
    python bench/analytics_recompute.py --postgres postgresql+psycopg://u:p@localhost/postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, create_engine, delete, insert, select, text

from setia.analytics import store
from setia.analytics.tables import MemberScore
from setia.core.db import Database, new_id
from setia.core.migrate import upgrade
from setia.events.models import Event, Order
from setia.members.models import Member
from setia.programs.models import Program
from setia.tenants import service as tenants
from setia.tenants.models import Tenant

AS_OF = dt.datetime(2026, 3, 1, 5, 0, tzinfo=dt.UTC)


def populate(db: Database, members: int, seed: int = 7) -> tuple[uuid.UUID, uuid.UUID, int]:
    rng = random.Random(seed)
    with db.session() as s:
        made = tenants.create_tenant(
            s, name="Bench", country="ID", currency="IDR", timezone="Asia/Jakarta"
        )
        tenant_id, program_id = made.tenant.id, made.program.id
    start = AS_OF - dt.timedelta(days=365)
    member_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    order_rows: list[dict[str, Any]] = []
    for i in range(members):
        mid = new_id()
        member_rows.append(
            {
                "id": mid,
                "tenant_id": tenant_id,
                "external_id": f"b{i}",
                "locale": "id",
                "tags": [],
                "attributes": {},
                "status": "active",
                "created_at": start,
                "updated_at": start,
            }
        )
        first = start + dt.timedelta(minutes=rng.randrange(0, 330 * 24 * 60))
        at = first
        rate = rng.choice([3, 7, 14, 30, 60])
        for _ in range(rng.randint(1, 12)):
            if at > AS_OF:
                break
            eid = new_id()
            amount = Decimal(rng.randrange(10, 200) * 1000)
            event_rows.append(
                {
                    "id": eid,
                    "tenant_id": tenant_id,
                    "program_id": program_id,
                    "member_id": mid,
                    "client_event_id": f"e{len(event_rows)}",
                    "type": "purchase",
                    "occurred_at": at,
                    "received_at": at,
                    "request_hash": "0" * 64,
                    "order_id": f"O{len(event_rows)}",
                    "amount": amount,
                    "currency": "IDR",
                    "payload": {},
                    "result": {},
                }
            )
            order_rows.append(
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "program_id": program_id,
                    "member_id": mid,
                    "order_id": event_rows[-1]["order_id"],
                    "event_id": eid,
                    "amount": amount,
                    "currency": "IDR",
                    "lines": [],
                    "points_earned": 0,
                    "refunded_amount": Decimal(0),
                    "points_reversed": 0,
                    "occurred_at": at,
                    "created_at": at,
                }
            )
            if rng.random() < 0.15:
                break  # lapsed
            at += dt.timedelta(days=rng.expovariate(1 / rate), minutes=rng.randrange(0, 600))
    with db.session() as s:
        conn = s.connection()
        for table, rows in (
            (cast(Table, Member.__table__), member_rows),
            (cast(Table, Event.__table__), event_rows),
            (cast(Table, Order.__table__), order_rows),
        ):
            for k in range(0, len(rows), 10_000):
                conn.execute(insert(table), rows[k : k + 10_000])
    return tenant_id, program_id, len(order_rows)


def timed_recompute(db: Database, tenant_id: uuid.UUID, program_id: uuid.UUID) -> dict[str, Any]:
    with db.session() as s:
        tenant = s.get(Tenant, tenant_id)
        program = s.get(Program, program_id)
        assert tenant is not None
        assert program is not None
        started = time.perf_counter()
        res = store.recompute(s, tenant, program, as_of=AS_OF)
        out = res.as_dict()
    out["wall_seconds"] = time.perf_counter() - started  # with the commit
    return out


def write_ratios(db: Database, program_id: uuid.UUID) -> dict[str, float]:
    table = cast(Table, MemberScore.__table__)
    with db.session() as s:
        rows = [
            dict(r._mapping)
            for r in s.execute(select(table).where(table.c.program_id == program_id))
        ]

    def clear() -> None:
        with db.session() as s:
            s.execute(delete(table).where(table.c.program_id == program_id))

    def run(fn: Any) -> float:
        with db.session() as s:
            started = time.perf_counter()
            fn(s)
            s.commit()
            return time.perf_counter() - started

    def plain(s: Any) -> None:
        conn = s.connection()
        for k in range(0, len(rows), store.CHUNK):
            conn.execute(insert(table), rows[k : k + store.CHUNK])

    # best of three rounds, the three ways interleaved (the machine is shared); each round
    # ends with the rows in place, as the next round's update needs
    out: dict[str, float] = {"rows": float(len(rows))}
    for _ in range(3):
        for name, fn in (
            ("upsert_existing", lambda s: store.write_rows(s, rows)),
            ("upsert_fresh", lambda s: store.write_rows(s, rows)),
            ("plain_insert", plain),
        ):
            if name != "upsert_existing":
                clear()
            took = run(fn)
            out[name] = min(out.get(name, took), took)
    out["ratio_fresh"] = out["upsert_fresh"] / out["plain_insert"]
    out["ratio_existing"] = out["upsert_existing"] / out["plain_insert"]
    return out


def report(label: str, first: dict[str, Any], second: dict[str, Any], w: dict[str, float]) -> None:
    print(f"\n== {label}")
    print(
        f"members scored {first['members']:,}, purchasers {first['purchasers']:,}, "
        f"model {first['model']}"
    )
    for name, r in (("first recompute (inserts)", first), ("second recompute (updates)", second)):
        print(
            f"  {name:28s} wall {r['wall_seconds']:7.2f} s   in transaction "
            f"{r['total_seconds']:7.2f} s   of which models {r['fit_seconds']:6.2f} s"
        )
    n = int(w["rows"])
    print(f"  write of the {n:,} rows alone:")
    for k in ("plain_insert", "upsert_fresh", "upsert_existing"):
        print(f"    {k:16s} {w[k]:7.3f} s  ({n / w[k]:,.0f} rows/s)")
    print(
        f"    upsert / plain insert: {w['ratio_fresh']:.2f}x into an empty table, "
        f"{w['ratio_existing']:.2f}x over existing rows"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--members", type=int, nargs="+", default=[2000, 100_000])
    ap.add_argument("--postgres", help="an admin URL; one database per size is created there")
    ap.add_argument("--demo-db", help="URL of a migrated demo database (a copy)")
    args = ap.parse_args()
    for n in args.members:
        if args.postgres:
            name = f"bench_store_{n}_{uuid.uuid4().hex[:6]}"
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f"CREATE DATABASE {name}"))
            admin.dispose()
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
        else:
            url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        started = time.perf_counter()
        tenant_id, program_id, orders = populate(db, n)
        print(
            f"\n[{db.dialect}] {n:,} members, {orders:,} orders written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        first = timed_recompute(db, tenant_id, program_id)
        second = timed_recompute(db, tenant_id, program_id)
        report(
            f"{n:,} synthetic members ({db.dialect})", first, second, write_ratios(db, program_id)
        )
        db.dispose()
    if args.demo_db:
        db = Database(args.demo_db)
        with db.session() as s:
            tenant = s.execute(select(Tenant).where(Tenant.name == "Kopi Nusantara")).scalar_one()
            program_id = (
                s.execute(select(Program.id).where(Program.tenant_id == tenant.id))
                .scalars()
                .first()
            )
            tenant_id = tenant.id
        assert program_id is not None
        first = timed_recompute(db, tenant_id, program_id)
        second = timed_recompute(db, tenant_id, program_id)
        report(f"demo tenant ({db.dialect})", first, second, write_ratios(db, program_id))


if __name__ == "__main__":
    main()
