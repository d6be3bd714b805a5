"""Badges and challenges: what 20 active definitions cost event ingestion.

Purchases are recorded through ``setia.events.api.record_batch`` (the set-based batch path
the API's ``POST /v1/events/batch`` runs) in ``db.session()`` transactions of
``--batch-size`` events, into two databases seeded the same way: one with no badge
definition, one with 20 active badges and challenges. Batches alternate between the two
(who goes first alternates too), so drift (disk cache, CPU boost, other work on the
machine) hits both alike. The ratio is time with 20 definitions / time with none.

The 20 definitions are a realistic mix for a coffee chain, all on purchases but one: counts
(some filtered by item category, channel, weekend, basket size), sums (spend, coffee
quantity), distinct values (coffee SKUs, stores, payment methods), streaks (days, weeks,
months), first-time actions, three monthly recurring challenges and two campaign
challenges, most with a points reward on completion. A warm-up (untimed) also counts the
SQL statements per event.

    python bench/badges.py                       # SQLite, default sizes
    python bench/badges.py --events 10000 --postgres
    python bench/badges.py --profile             # cProfile of ingestion with the badges
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.pgcluster

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy import event as sa_event  # noqa: E402

from setia.badges import service as badges  # noqa: E402
from setia.badges.models import BadgeProgress, BadgeTally  # noqa: E402
from setia.badges.schemas import DefinitionIn  # noqa: E402
from setia.core.db import Database  # noqa: E402
from setia.core.migrate import upgrade  # noqa: E402
from setia.core.runtime import tune_gc  # noqa: E402
from setia.events.api import record_batch  # noqa: E402
from setia.ledger.verify import verify  # noqa: E402
from setia.members import service as members_service  # noqa: E402
from setia.outbox.models import OutboxMessage  # noqa: E402
from setia.programs.models import Program  # noqa: E402
from setia.tenants import service as tenants  # noqa: E402
from setia.tenants.models import Tenant  # noqa: E402

WIB = timezone(timedelta(hours=7))
CATALOG = [
    ("KOPI-SUSU-AREN", "coffee", 25_000, 10),
    ("AMERICANO", "coffee", 28_000, 5),
    ("KOPI-TUBRUK", "coffee", 15_000, 3),
    ("CAFFE-LATTE", "coffee", 32_000, 4),
    ("CAPPUCCINO", "coffee", 32_000, 3),
    ("ES-KOPI-PANDAN", "coffee", 27_000, 3),
    ("V60-GAYO", "coffee", 35_000, 1.5),
    ("MATCHA-LATTE", "non-coffee", 32_000, 2.5),
    ("TEH-TARIK", "non-coffee", 20_000, 2),
    ("CROISSANT", "bakery", 28_000, 4),
    ("ROTI-BAKAR", "bakery", 22_000, 4),
    ("BANANA-BREAD", "bakery", 25_000, 2),
    ("NASI-GORENG", "food", 38_000, 4),
    ("PISANG-GORENG", "snack", 20_000, 4),
    ("BEANS-GAYO-200", "beans", 95_000, 1),
]
WEIGHTS = [w for *_x, w in CATALOG]
STORES = ("bandung-dago", "bandung-braga", "jakarta-kemang", "jakarta-sudirman", "online")
CHANNELS = ("pos", "pos", "pos", "app", "gofood", "grabfood")
PAYMENTS = ("qris", "cash", "debit", "gopay", "ovo", "shopeepay")
COFFEE = {"field": "item.category", "op": "eq", "value": "coffee"}


def definitions(now: datetime) -> list[dict[str, Any]]:
    """Twenty active definitions: badges and challenges a coffee chain would run."""
    campaign = {
        "type": "campaign",
        "starts_at": (now - timedelta(days=20)).isoformat(),
        "ends_at": (now + timedelta(days=20)).isoformat(),
    }
    monthly = {"type": "month", "recurring": True}

    def d(code: str, criteria: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return {"code": code, "names": {"id": code, "en": code}, "criteria": criteria, **kw}

    purchase = {"event_type": "purchase"}
    return [
        d("setia-10", {**purchase, "measure": "count", "target": 10}, rewards={"points": 500}),
        d(
            "kopi-20",
            {
                **purchase,
                "measure": "count",
                "target": 20,
                "conditions": {"items": {"where": COFFEE}},
            },
            rewards={"points": 300},
        ),
        d(
            "penjelajah-kopi",
            {
                **purchase,
                "measure": "distinct",
                "field": "item.sku",
                "items_where": COFFEE,
                "target": 5,
            },
            rewards={"points": 500},
        ),
        d("keliling", {**purchase, "measure": "distinct", "field": "event.store", "target": 3}),
        d(
            "dompet",
            {**purchase, "measure": "distinct", "field": "event.payment_method", "target": 3},
        ),
        d(
            "sejuta",
            {**purchase, "measure": "sum", "field": "event.amount", "target": "1000000"},
            rewards={"points": 1000},
        ),
        d(
            "lima-juta",
            {**purchase, "measure": "sum", "field": "event.amount", "target": "5000000"},
        ),
        d(
            "cangkir-30",
            {
                **purchase,
                "measure": "sum",
                "field": "items.quantity",
                "items_where": COFFEE,
                "target": 30,
            },
        ),
        d(
            "mingguan-4",
            {**purchase, "measure": "streak", "streak_unit": "week", "target": 4},
            rewards={"points": 200},
        ),
        d("harian-3", {**purchase, "measure": "streak", "streak_unit": "day", "target": 3}),
        d("bulanan-3", {**purchase, "measure": "streak", "streak_unit": "month", "target": 3}),
        d(
            "tantangan-8",
            {**purchase, "measure": "count", "target": 8},
            kind="challenge",
            period=monthly,
            rewards={"points": 250},
        ),
        d(
            "tantangan-500rb",
            {**purchase, "measure": "sum", "field": "event.amount", "target": "500000"},
            kind="challenge",
            period=monthly,
        ),
        d(
            "tiap-minggu",
            {**purchase, "measure": "streak", "streak_unit": "week", "target": 4},
            kind="challenge",
            period=monthly,
            rewards={"points": 300},
        ),
        d(
            "kampanye-5",
            {**purchase, "measure": "count", "target": 5},
            kind="challenge",
            period=campaign,
            rewards={"points": 150},
        ),
        d(
            "kampanye-roti",
            {
                **purchase,
                "measure": "distinct",
                "field": "item.sku",
                "items_where": {"field": "item.category", "op": "eq", "value": "bakery"},
                "target": 3,
            },
            kind="challenge",
            period=campaign,
        ),
        d(
            "pertama-app",
            {
                **purchase,
                "measure": "first",
                "target": 1,
                "conditions": {"field": "event.channel", "op": "eq", "value": "app"},
            },
            rewards={"points": 100},
        ),
        d("ulasan-pertama", {"event_type": "review.submitted", "measure": "first", "target": 1}),
        d(
            "akhir-pekan",
            {
                **purchase,
                "measure": "count",
                "target": 10,
                "conditions": {
                    "field": "event.local_day_of_week",
                    "op": "in",
                    "value": ["sat", "sun"],
                },
            },
        ),
        d(
            "keranjang-besar",
            {
                **purchase,
                "measure": "count",
                "target": 5,
                "conditions": {"field": "event.amount", "op": "gte", "value": "150000"},
            },
        ),
    ]


def purchases(
    count: int, members: int, rng: random.Random, now: datetime, *, tag: str, new_share: float
) -> list[dict[str, Any]]:
    """Purchases over the last 30 days: 1-4 lines, by external id, some by new customers."""
    out = []
    fresh = 0
    for n in range(count):
        if rng.random() < new_share:
            fresh += 1
            member = {"external_id": f"N{tag}{fresh:06d}"}
        else:
            member = {"external_id": f"M{rng.randrange(members):06d}"}
        lines = {rng.choices(range(len(CATALOG)), WEIGHTS)[0] for _ in range(rng.randint(1, 4))}
        items, amount = [], 0
        for sku, category, price, _w in (CATALOG[i] for i in sorted(lines)):
            qty = rng.choice((1, 1, 1, 2, 3))
            items.append({"sku": sku, "category": category, "quantity": qty,
                          "unit_price": str(price)})  # fmt: skip
            amount += qty * price
        occurred = now - timedelta(seconds=rng.randint(120, 30 * 86400))
        channel = rng.choice(CHANNELS)
        out.append(
            {
                "id": f"bench-{tag}-{n:07d}",
                "type": "purchase",
                "occurred_at": occurred.astimezone(WIB).replace(microsecond=0).isoformat(),
                "member": member,
                "order_id": f"INV-{tag}-{n:07d}",
                "amount": str(amount),
                "currency": "IDR",
                "items": items,
                "store": "online" if channel != "pos" else rng.choice(STORES[:4]),
                "channel": channel,
                "payment_method": rng.choice(PAYMENTS),
            }
        )
    return out


@dataclass
class Side:
    name: str
    db: Database
    tenant_id: uuid.UUID
    program_id: uuid.UUID
    seconds: float = 0.0
    cpu: float = 0.0
    events: int = 0
    statements: int = 0
    counting: bool = False


def seed(url: str, name: str, members: int, bodies: list[dict[str, Any]]) -> Side:
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        new = tenants.create_tenant(
            s, name="Kopi Bench", country="ID", currency="IDR", timezone="Asia/Jakarta"
        )
        for i in range(members):
            members_service.create_member(
                s, new.tenant, {"external_id": f"M{i:06d}"}, source="bench"
            )
        program = s.get(Program, new.program.id)
        assert program is not None
        for body in bodies:
            badges.create_definition(s, new.tenant, program, DefinitionIn.model_validate(body))
        s.commit()
        side = Side(name, db, new.tenant.id, new.program.id)

    @sa_event.listens_for(db.engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        if side.counting:
            side.statements += 1

    return side


def ingest(side: Side, batch: list[dict[str, Any]], *, timed: bool, count: bool = False) -> None:
    side.counting = count
    started, cpu = time.perf_counter(), time.process_time()
    with side.db.session() as s:
        tenant = s.get(Tenant, side.tenant_id)
        assert tenant is not None
        out = record_batch(s, tenant, batch)
        s.commit()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    side.counting = False
    if out.failed or out.created != len(batch):
        bad = next(r for r in out.results if r.error)
        raise RuntimeError(f"{side.name}: {bad.error}")
    if timed:
        side.seconds += elapsed
        side.cpu += cpu
        side.events += len(batch)


def census(side: Side) -> dict[str, int]:
    with side.db.session() as s:
        # rows stored: tallies (one per member and period) and completion rows
        rows = s.execute(select(func.count()).select_from(BadgeTally)).scalar_one()
        rows += s.execute(select(func.count()).select_from(BadgeProgress)).scalar_one()
        done = s.execute(
            select(func.count())
            .select_from(BadgeProgress)
            .where(BadgeProgress.completed_at.is_not(None))
        ).scalar_one()
        messages = s.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic.in_(("badge.earned", "challenge.progressed",
                                             "challenge.completed")))
        ).scalar_one()  # fmt: skip
        report = verify(s)
        if not report.ok:
            raise SystemExit(f"{side.name}: ledger verify failed: {report.checks}")
    return {"progress_rows": rows, "completions": done, "messages": messages}


@contextmanager
def backend(name: str) -> Iterator[Callable[[str], str]]:
    """URLs of fresh databases on SQLite (a temporary directory) or PostgreSQL (a throwaway
    cluster, as the test suite starts)."""
    if name == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="setia-badges-bench-"))
        try:
            yield lambda db: f"sqlite:///{tmp / db}.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    from tests.pgcluster import Cluster

    cluster = Cluster()
    admin = cluster.start()
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        base = admin.rsplit("/", 1)[0]

        def make(db: str) -> str:
            with engine.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {db}"))
            return f"{base}/{db}"

        yield make
        engine.dispose()
    finally:
        cluster.stop()


def run(args: argparse.Namespace, name: str, now: datetime) -> dict[str, Any]:
    rng = random.Random(5)
    events = purchases(
        args.warm + args.events, args.members, rng, now, tag="e", new_share=args.new_share
    )
    warm, timed = events[: args.warm], events[args.warm :]
    size = args.batch_size
    bodies = definitions(now)[: args.definitions]
    with backend(name) as url:
        print(f"[{name}] seeding two databases with {args.members:,} members ...", flush=True)
        none = seed(url("bench_none"), "none", args.members, [])
        some = seed(url("bench_badges"), "badges", args.members, bodies)
        sides = (none, some)
        try:
            for side in sides:
                for i in range(0, len(warm), size):
                    ingest(side, warm[i : i + size], timed=False, count=True)
            stmts = {side.name: side.statements / max(1, len(warm)) for side in sides}
            print(
                f"[{name}] recording {len(timed):,} purchases in batches of {size}, alternating",
                flush=True,
            )
            for n, i in enumerate(range(0, len(timed), size)):
                chunk = timed[i : i + size]
                order = sides if n % 2 == 0 else sides[::-1]
                for side in order:
                    ingest(side, chunk, timed=True)
            counted = {side.name: census(side) for side in sides}
        finally:
            for side in sides:
                side.db.dispose()
    return {"none": none, "badges": some, "statements": stmts, "census": counted}


def report(name: str, args: argparse.Namespace, out: dict[str, Any]) -> float:
    none, some = out["none"], out["badges"]
    total = args.warm + args.events
    print()
    print(
        f"  {name}: record_batch, {args.batch_size} events per transaction; {args.members:,} "
        f"members, {args.new_share:.0%} new"
    )
    print(
        f"  {'definitions':<16} {'events':>7} {'wall s':>7} {'events/s':>9} {'ratio':>6} "
        f"{'CPU ms/ev':>10} {'ratio':>6} {'stmts/ev':>9} {'rows/ev':>8} {'done':>6} {'msgs/ev':>8}"
    )
    for side, label in ((none, "none"), (some, f"{args.definitions} active")):
        c = out["census"][side.name]
        print(
            f"  {label:<16} {side.events:>7,} {side.seconds:>7.2f} "
            f"{side.events / side.seconds:>9,.0f} {side.seconds / none.seconds:>5.2f}x "
            f"{1000 * side.cpu / side.events:>10.2f} {side.cpu / none.cpu:>5.2f}x "
            f"{out['statements'][side.name]:>9.1f} {c['progress_rows'] / total:>8.2f} "
            f"{c['completions']:>6,} {c['messages'] / total:>8.2f}"
        )
    ratio = float(some.seconds / none.seconds)
    verdict = "meets" if ratio < 1.5 else "MISSES"
    print(
        f"  {args.definitions} definitions / none: {ratio:.2f}x wall, "
        f"{some.cpu / none.cpu:.2f}x CPU  -> {verdict} the < 1.5x target"
    )
    return ratio


def profile(args: argparse.Namespace, now: datetime) -> None:
    rng = random.Random(5)
    events = purchases(
        args.warm + args.events, args.members, rng, now, tag="p", new_share=args.new_share
    )
    with backend("sqlite") as url:
        side = seed(url("bench_profile"), "badges", args.members, definitions(now))
        size = args.batch_size
        for i in range(0, args.warm, size):
            ingest(side, events[i : min(i + size, args.warm)], timed=False)
        prof = cProfile.Profile()
        prof.enable()
        for i in range(args.warm, len(events), size):
            ingest(side, events[i : i + size], timed=True)
        prof.disable()
        side.db.dispose()
    print(f"20 definitions, under cProfile: {side.events / side.seconds:,.0f} events/s")
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats(args.sort).print_stats(args.top)
    print(stream.getvalue())


def main(argv: list[str] | None = None) -> int:
    tune_gc()  # as the server and the CLI do (setia.core.runtime)
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=5_000, help="timed purchases per database")
    ap.add_argument("--warm", type=int, default=500, help="untimed purchases first")
    ap.add_argument("--members", type=int, default=2_000, help="members before the run")
    ap.add_argument("--batch-size", type=int, default=500, help="events per transaction")
    ap.add_argument("--new-share", type=float, default=0.05, help="share of new members")
    ap.add_argument("--definitions", type=int, default=20, choices=range(1, 21), metavar="1-20")
    ap.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL")
    ap.add_argument("--profile", action="store_true", help="cProfile ingestion with the badges")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime...")
    args = ap.parse_args(argv)
    now = datetime.now(UTC)
    if args.profile:
        profile(args, now)
        return 0
    print(
        f"Setia badges benchmark: Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}"
    )
    results = {"sqlite": run(args, "sqlite", now)}
    if args.postgres:
        results["postgres"] = run(args, "postgres", now)
    worst = max(report(name, args, out) for name, out in results.items())
    return 0 if worst < 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
