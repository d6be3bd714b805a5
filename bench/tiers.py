"""The nightly tier evaluation over many members, against a plain SQL scan of the same data.

What it measures, at one or more sizes (``--members``, default 250,000 and 1,000,000):

* **evaluation**: ``setia.tiers.service.evaluate(db, tenant_id, program_id, on, chunk=...)``
  over every member of one program, on a SQLite file database (WAL) in a temporary
  directory: wall time, CPU time, and peak memory, both the peak of Python allocations
  (``tracemalloc``, in a separate run because tracing slows allocation down) and the growth
  of the process's peak resident set (``ru_maxrss``) during the run;
* **re-run**: the same evaluation again on the same day: it must move nobody;
* **baseline**: a plain SQL scan of the same qualification data through the driver
  (``sqlite3``), in the same chunks of members and the same member-id order the
  evaluation reads them in, fetched to Python, no decisions::

      SELECT member_id, SUM(CASE WHEN kind = 'purchase' THEN spend ELSE 0 END)
      FROM tier_activity WHERE program_id = ? AND member_id > ? AND day BETWEEN ? AND ?
      GROUP BY member_id ORDER BY member_id LIMIT <chunk>

  run before and after the evaluation (the ratio uses their mean, so drift hits both).

Each measurement runs in a fresh child process (``--worker``), so ``ru_maxrss`` is the
measured run's own and the setup's memory does not hide it. The timed evaluation and the
traced one each start from an identical copy of the database.

The data (written straight to the tables, not through the API; its time is printed on its
own): one tenant, the house tier set (Perunggu, Perak at Rp 1.000.000, Emas at
Rp 5.000.000 of spend in the calendar year, kept until the end of the next year, one level
down at a time; ``--window rolling``: the last 12 months, kept 12 months), and per member a
``members`` row, 3-5 purchase days in the last year in ``tier_activity`` (annual spend from
a mixture: most light, about 15% regular, 4% heavy customers) and a ``member_tiers`` row. The
tier rows are what the event hooks would have left, plus a backlog for the evaluation: about
10% of the members who now qualify higher were missed (upgrades), about 10% of those holding
a tier they no longer qualify for are past their retention (downgrades), and a few expired
admin overrides. An independent reference computes, while the data is generated, how many
members the evaluation must upgrade, downgrade, requalify, warn and release from overrides;
the bench stops if the evaluation's report differs.

    python bench/tiers.py                                  # 250,000 and 1,000,000 members
    python bench/tiers.py --members 100000 --chunk 2000
    python bench/tiers.py --members 200000 --profile       # cProfile, top 25
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from dateutil.relativedelta import relativedelta

from setia.core.db import Database, new_id
from setia.core.migrate import upgrade
from setia.core.time import zone
from setia.programs.models import Program
from setia.tenants import service as tenants
from setia.tiers import service as tiers
from setia.tiers.schemas import TierSetIn

ZONE = "Asia/Jakarta"
SILVER, GOLD = 1_000_000, 5_000_000
BLOCK = 20_000  # members generated and inserted per step of the setup


def names(id_: str, ms: str, en: str) -> dict[str, str]:
    return {"id": id_, "ms": ms, "en": en}


def tier_set_body(window: str) -> dict[str, Any]:
    """The house tier set (as tests/tiers/helpers.py), on the calendar year or 12 months."""
    rolling = window == "rolling"
    return {
        "name": "Kopi tiers",
        "metrics": [{"metric": "spend"}],
        "window": {"kind": "rolling", "months": 12} if rolling else {"kind": "calendar_year"},
        "retention": {"kind": "months", "months": 12}
        if rolling
        else {"kind": "end_of_next_window"},
        "downgrade": "one_level",
        "tiers": [
            {"code": "bronze", "names": names("Perunggu", "Gangsa", "Bronze"), "thresholds": ["0"]},
            {"code": "silver", "names": names("Perak", "Perak", "Silver"),
             "thresholds": [str(SILVER)], "earn_multiplier": "1.25"},
            {"code": "gold", "names": names("Emas", "Emas", "Gold"), "thresholds": [str(GOLD)],
             "earn_multiplier": "1.5",
             "perks": [{"id": "Kopi gratis di hari ulang tahun", "ms": "Kopi percuma",
                        "en": "Free coffee"}]},
        ],
    }  # fmt: skip


# --------------------------------------------------------------------------- setup


@dataclass
class Expected:
    """What the evaluation must do, computed while the data is generated."""

    upgraded: int = 0
    downgraded: int = 0
    requalified: int = 0
    at_risk: int = 0
    overrides_ended: int = 0
    earned_before: Counter[int] = field(default_factory=Counter)
    earned_after: Counter[int] = field(default_factory=Counter)
    activity_rows: int = 0
    active: int = 0  # members with activity in the window (the rows the scan returns)

    @property
    def moved(self) -> int:
        return self.upgraded + self.downgraded + self.overrides_ended


@dataclass
class Setup:
    path: Path
    members: int
    tenant_id: uuid.UUID
    program_id: uuid.UUID
    tier_set_id: uuid.UUID
    window: tuple[date, date]
    seconds: float
    expected: Expected


def rank_of(spend: int) -> int:
    return 2 if spend >= GOLD else 1 if spend >= SILVER else 0


def annual_spend(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.80:  # light: a coffee now and then
        return rng.lognormvariate(12.6, 0.6)  # median ~ Rp 300.000
    if r < 0.96:  # regular
        return rng.lognormvariate(14.5, 0.5)  # median ~ Rp 2.000.000
    return rng.lognormvariate(15.8, 0.4)  # heavy: median ~ Rp 7.300.000


def build(path: Path, n: int, on: date, window: str, seed: int = 7) -> Setup:
    started = time.perf_counter()
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        new = tenants.create_tenant(
            s, name="Kopi Bench", country="ID", currency="IDR", timezone=ZONE
        )
        program = s.get(Program, new.program.id)
        assert program is not None
        tiers.put_tier_set(
            s, new.tenant, program, TierSetIn.model_validate(tier_set_body(window)), actor="bench"
        )
        s.commit()
        st = tiers.require_structure(s, program.id)
        tenant_id, program_id = new.tenant.id, program.id
    db.dispose()
    ids = [t.id.hex for t in st.tiers]
    start, _end = st.window_for(on, on)
    assert start is not None
    rolling = window == "rolling"
    # The reference (independent of setia.tiers.rules): when a tier reached or requalified
    # on ``day`` is kept until.
    if rolling:
        keep = lambda day: day + relativedelta(months=12)  # noqa: E731
    else:
        keep = lambda day: date(day.year + 1, 12, 31)  # noqa: E731
    renewed = keep(on)
    first_day = on - timedelta(days=364)
    exp = Expected()
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    tenant_hex, program_hex, set_hex = tenant_id.hex, program_id.hex, st.id.hex
    stamp = lambda d: f"{d.isoformat()} 03:00:00.000000"  # noqa: E731

    def day_in(lo: date, hi: date) -> date:
        return lo + timedelta(days=rng.randint(0, max(0, (hi - lo).days)))

    for base in range(0, n, BLOCK):
        members, activity, standing = [], [], []
        for _ in range(min(BLOCK, n - base)):
            mid = new_id().hex
            created = on - timedelta(days=rng.randint(400, 2000))
            members.append((mid, tenant_hex, stamp(created), stamp(created)))
            total = annual_spend(rng)
            visits = rng.randint(3, 5)
            cuts = sorted(rng.random() for _ in range(visits - 1))
            shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
            in_window = 0
            for offset, share in zip(rng.sample(range(365), visits), shares, strict=True):
                day = first_day + timedelta(days=offset)
                spend = max(500, round(total * share / 500) * 500)
                activity.append((program_hex, mid, day.isoformat(), spend, spend // 1000))
                if start <= day <= on:
                    in_window += spend
            q = rank_of(in_window)
            exp.active += in_window > 0
            prev = rank_of(int(total * rng.lognormvariate(0, 0.3)))  # last year's standing
            override = None
            if q > prev and rng.random() < 0.10:
                earned, held = prev, True  # the hooks missed it: the evaluation upgrades
            elif prev > q:
                earned, held = prev, True  # kept from before (retention), or past it
            else:
                earned, held = q, False
            if earned == 0:
                qualified = secure = None
            elif not held:  # reached or requalified in this window, by the hooks
                qualified = day_in(max(start, first_day), on)
                secure = keep(qualified)
            else:
                expired = rng.random() < 0.10
                if rolling:
                    qualified = on - timedelta(days=rng.randint(366, 700) if expired
                                               else rng.randint(1, 364))  # fmt: skip
                else:
                    year = on.year - (2 if expired else 1)
                    qualified = day_in(date(year, 1, 1), date(year, 12, 31))
                secure = keep(qualified)
            if earned == 0 and q == 0 and rng.random() < 0.002:
                override = on - timedelta(days=rng.randint(1, 30))  # an admin's, now over
            effective = 2 if override else earned
            since = stamp(qualified or created)
            standing.append(
                (set_hex, mid, ids[effective], since, ids[earned], since,
                 qualified.isoformat() if qualified else None,
                 secure.isoformat() if secure else None,
                 ids[2] if override else None, override.isoformat() if override else None,
                 "launch guest" if override else None, created.isoformat())
            )  # fmt: skip
            # The reference: what the evaluation on ``on`` must do to this member.
            exp.earned_before[earned] += 1
            after = earned
            if override:
                exp.overrides_ended += 1
            if q > earned:
                exp.upgraded += 1
                after = q
            elif q == earned > 0 and secure is not None and renewed > secure:
                exp.requalified += 1
            elif q < earned:
                assert secure is not None
                target = max(q, earned - 1)
                downgrade_on = secure + timedelta(days=1)
                if on >= downgrade_on:
                    exp.downgraded += 1
                    after = target
                elif on >= downgrade_on - timedelta(days=30):
                    exp.at_risk += 1
            exp.earned_after[after] += 1
        conn.executemany(
            "INSERT INTO members (id, tenant_id, locale, tags, attributes, status, created_at,"
            " updated_at) VALUES (?, ?, 'id', '[]', '{}', 'active', ?, ?)",
            members,
        )
        conn.executemany(
            "INSERT INTO tier_activity (program_id, member_id, day, kind, spend, points, orders,"
            " count) VALUES (?, ?, ?, 'purchase', ?, ?, 1, 0)",
            activity,
        )
        conn.executemany(
            "INSERT INTO member_tiers (tier_set_id, member_id, tier_id, since, earned_tier_id,"
            " earned_since, qualified_on, secure_until, override_tier_id, override_until,"
            " override_reason, anchor_day, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            standing,
        )
        conn.commit()
        exp.activity_rows += len(activity)
    # A nightly run, not the first one after the tier set was created (which first gives
    # members with activity and no standing a row: every member here has one).
    conn.execute("UPDATE tier_sets SET evaluated_on = ?", ((on - timedelta(days=1)).isoformat(),))
    conn.commit()
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return Setup(
        path,
        n,
        tenant_id,
        program_id,
        st.id,
        (start, on),
        time.perf_counter() - started,
        exp,
    )


# --------------------------------------------------------------------------- measured runs


def maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement, in this (fresh) process; the caller reads the JSON it prints."""
    on = date.fromisoformat(args.on)
    out: dict[str, Any] = {}
    if args.worker == "scan":
        start = date.fromisoformat(args.start)
        conn = sqlite3.connect(args.path)
        sql = (
            "SELECT member_id, SUM(CASE WHEN kind = 'purchase' THEN spend ELSE 0 END)"
            " FROM tier_activity WHERE program_id = ? AND member_id > ? AND day BETWEEN ? AND ?"
            " GROUP BY member_id ORDER BY member_id LIMIT ?"
        )
        program = uuid.UUID(args.program).hex
        rss0 = maxrss_kib()
        if args.trace:
            tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        after, members, qualifying = "", 0, 0
        while True:
            rows = conn.execute(
                sql, (program, after, start.isoformat(), on.isoformat(), args.chunk)
            ).fetchall()
            if not rows:
                break
            members += len(rows)
            qualifying += sum(1 for _m, v in rows if v >= SILVER)
            after = rows[-1][0]
            if len(rows) < args.chunk:
                break
        out |= {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
        out |= {"members": members, "qualifying": qualifying}
        conn.close()
    else:
        db = Database(f"sqlite:///{args.path}")
        with db.session() as s:  # connect and load the schema before the clock starts
            s.execute(sqlalchemy.text("SELECT 1"))
        rss0 = maxrss_kib()
        if args.trace:
            tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        report = tiers.evaluate(
            db, uuid.UUID(args.tenant), uuid.UUID(args.program), on, chunk=args.chunk
        )
        out |= {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
        out["report"] = {k: v for k, v in vars(report).items() if isinstance(v, int)}
        db.dispose()
    if args.trace:
        out["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    out["rss_growth_kib"] = maxrss_kib() - rss0
    out["rss_start_kib"] = rss0
    return out


def child(
    kind: str, setup: Setup, path: Path, chunk: int, *, trace: bool = False
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--path",
        str(path),
        "--on",
        setup.window[1].isoformat(),
        "--start",
        setup.window[0].isoformat(),
        "--tenant",
        str(setup.tenant_id),
        "--program",
        str(setup.program_id),
        "--chunk",
        str(chunk),
    ]
    if trace:
        cmd.append("--trace")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def db_counts(setup: Setup, path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    ranks = {
        row[0]: row[1]
        for row in conn.execute(
            "SELECT t.rank, COUNT(*) FROM member_tiers m JOIN tiers t ON t.id = m.earned_tier_id"
            " GROUP BY t.rank"
        )
    }
    changes = conn.execute("SELECT COUNT(*) FROM tier_changes").fetchone()[0]
    outbox = dict(conn.execute("SELECT topic, COUNT(*) FROM outbox GROUP BY topic").fetchall())
    conn.close()
    return {"ranks": ranks, "changes": changes, "outbox": outbox}


@dataclass
class SizeResult:
    setup: Setup
    scans: list[dict[str, Any]]
    evaluation: dict[str, Any]
    rerun: dict[str, Any]
    traced_eval: dict[str, Any]
    traced_scan: dict[str, Any]
    counts: dict[str, Any]

    @property
    def scan_wall(self) -> float:
        return sum(s["wall"] for s in self.scans) / len(self.scans)

    @property
    def scan_cpu(self) -> float:
        return sum(s["cpu"] for s in self.scans) / len(self.scans)


def check(setup: Setup, result: dict[str, Any], counts: dict[str, Any]) -> list[str]:
    exp, rep = setup.expected, result["report"]
    problems = []
    for key in ("upgraded", "downgraded", "requalified", "at_risk", "overrides_ended"):
        if rep[key] != getattr(exp, key):
            problems.append(f"{key}: evaluation {rep[key]:,}, reference {getattr(exp, key):,}")
    if rep["members_seen"] != setup.members:
        problems.append(f"members seen {rep['members_seen']:,} of {setup.members:,}")
    if counts["ranks"] != dict(exp.earned_after):
        problems.append(
            f"earned tiers after {counts['ranks']} != reference {dict(exp.earned_after)}"
        )
    return problems


def bench_size(n: int, args: argparse.Namespace, on: date, tmp: Path) -> SizeResult:
    pristine = tmp / f"tiers-{n}.db"
    print(f"\n[{n:,} members] building the database ...", flush=True)
    setup = build(pristine, n, on, args.window)
    exp = setup.expected
    size_mb = pristine.stat().st_size / 2**20
    print(
        f"  setup: {setup.seconds:.1f} s (not measured); {n:,} members, "
        f"{exp.activity_rows:,} tier_activity rows, {size_mb:,.0f} MB; window "
        f"{setup.window[0]} .. {setup.window[1]}"
    )
    print(
        f"  earned tiers before: {dict(sorted(exp.earned_before.items()))} (0 bronze, 1 silver,"
        f" 2 gold); reference moves: {exp.upgraded:,} up, {exp.downgraded:,} down, "
        f"{exp.overrides_ended:,} overrides ended, {exp.requalified:,} requalified, "
        f"{exp.at_risk:,} at risk",
        flush=True,
    )
    work = tmp / f"tiers-{n}-work.db"
    shutil.copyfile(pristine, work)
    print("  measuring: scan, evaluation, re-run, scan; then traced runs ...", flush=True)
    scans = [child("scan", setup, work, args.chunk)]
    evaluation = child("evaluate", setup, work, args.chunk)
    counts = db_counts(setup, work)
    rerun = child("evaluate", setup, work, args.chunk)
    scans.append(child("scan", setup, work, args.chunk))
    work.unlink()
    traced_eval = child("evaluate", setup, pristine, args.chunk, trace=True)
    traced_scan = child("scan", setup, pristine, args.chunk, trace=True)
    pristine.unlink()
    problems = check(setup, evaluation, counts)
    if problems:
        raise SystemExit("the evaluation disagrees with the reference:\n  " + "\n  ".join(problems))
    moved = rerun["report"]
    if moved["upgraded"] or moved["downgraded"] or moved["requalified"] or moved["at_risk"]:
        raise SystemExit(f"the re-run moved members: {moved}")
    if scans[0]["members"] != exp.active:
        raise SystemExit(f"the scan saw {scans[0]['members']:,} members, not {exp.active:,}")
    return SizeResult(setup, scans, evaluation, rerun, traced_eval, traced_scan, counts)


def mib(kib: float) -> str:
    return f"{kib / 1024:,.1f}"


def print_results(results: list[SizeResult], args: argparse.Namespace) -> None:
    print()
    print(f"  evaluate(chunk={args.chunk}) vs. the plain scan, same run; ratio = evaluation / scan")
    head = (
        f"  {'members':>9} {'run':<10} {'wall s':>7} {'CPU s':>7} {'µs/member':>10} "
        f"{'tracemalloc peak MiB':>21} {'maxrss growth MiB':>18}"
    )
    print(head)
    for r in results:
        n = r.setup.members
        rows = (
            ("scan", r.scan_wall, r.scan_cpu, r.traced_scan, max(s["rss_growth_kib"] for s in r.scans)),
            ("evaluate", r.evaluation["wall"], r.evaluation["cpu"], r.traced_eval,
             r.evaluation["rss_growth_kib"]),
            ("re-run", r.rerun["wall"], r.rerun["cpu"], None, r.rerun["rss_growth_kib"]),
        )  # fmt: skip
        for name, wall, cpu, traced, growth in rows:
            peak = f"{traced['traced_peak'] / 2**20:,.1f}" if traced else "-"
            print(
                f"  {n:>9,} {name:<10} {wall:>7.2f} {cpu:>7.2f} {1e6 * wall / n:>10.2f} "
                f"{peak:>21} {mib(growth):>18}"
            )
        print(
            f"  {n:>9,} {'ratio':<10} {r.evaluation['wall'] / r.scan_wall:>6.1f}x "
            f"{r.evaluation['cpu'] / r.scan_cpu:>6.1f}x   (scans: "
            + ", ".join(f"{s['wall']:.2f} s" for s in r.scans)
            + ")"
        )
    print()
    for r in results:
        rep = r.evaluation["report"]
        print(
            f"  {r.setup.members:,} members: {rep['upgraded']:,} upgraded, {rep['downgraded']:,} "
            f"downgraded, {rep['overrides_ended']:,} overrides ended, {rep['requalified']:,} "
            f"requalified, {rep['at_risk']:,} at risk (= reference); {r.counts['changes']:,} "
            f"history rows, outbox {r.counts['outbox']}; earned tiers after "
            f"{dict(sorted(r.counts['ranks'].items()))}; re-run moved nobody "
            f"({r.rerun['report']['members_seen']:,} seen)"
        )
    big = max(results, key=lambda r: r.setup.members)
    verdict = "meets" if big.evaluation["wall"] < 60 else "MISSES"
    print(
        f"\n  {big.setup.members:,} members: {big.evaluation['wall']:.1f} s -> {verdict} "
        "the < 60 s target"
    )
    if len(results) > 1:
        small = min(results, key=lambda r: r.setup.members)
        ratio_n = big.setup.members / small.setup.members
        print(
            f"  memory, {small.setup.members:,} -> {big.setup.members:,} members ({ratio_n:.0f}x): "
            f"tracemalloc peak {small.traced_eval['traced_peak'] / 2**20:.1f} -> "
            f"{big.traced_eval['traced_peak'] / 2**20:.1f} MiB, maxrss growth "
            f"{mib(small.evaluation['rss_growth_kib'])} -> {mib(big.evaluation['rss_growth_kib'])} MiB"
        )
    for r in results:
        e = r.evaluation
        print(
            f"  {r.setup.members:,} members: evaluation process peak RSS "
            f"{mib(e['rss_start_kib'] + e['rss_growth_kib'])} MiB "
            f"({mib(e['rss_start_kib'])} MiB before the run: interpreter, imports, engine)"
        )


def profile(args: argparse.Namespace, on: date, tmp: Path) -> None:
    n = args.members[0]
    print(f"building {n:,} members ...", flush=True)
    setup = build(tmp / "profile.db", n, on, args.window)
    db = Database(f"sqlite:///{setup.path}")
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    report = tiers.evaluate(db, setup.tenant_id, setup.program_id, on, chunk=args.chunk)
    prof.disable()
    elapsed = time.perf_counter() - started
    db.dispose()
    print(f"evaluate under cProfile: {elapsed:.1f} s for {report.members_seen:,} members")
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(stream.getvalue())


@contextmanager
def workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="setia-tiers-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--members", type=int, nargs="+", default=[250_000, 1_000_000], help="sizes to run"
    )
    ap.add_argument("--chunk", type=int, default=tiers.CHUNK, help="members per transaction")
    ap.add_argument("--db", choices=["sqlite"], default="sqlite", help="backend (SQLite only)")
    ap.add_argument("--window", choices=["calendar_year", "rolling"], default="calendar_year")
    ap.add_argument("--on", help="evaluation day (default: today in Asia/Jakarta)")
    ap.add_argument("--profile", action="store_true", help="cProfile the evaluation instead")
    ap.add_argument("--top", type=int, default=25)
    # A measured run in a child process (internal).
    ap.add_argument("--worker", choices=["scan", "evaluate"], help=argparse.SUPPRESS)
    for name in ("--path", "--start", "--tenant", "--program"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    on = date.fromisoformat(args.on) if args.on else datetime.now(UTC).astimezone(zone(ZONE)).date()
    print(
        f"Setia tier evaluation benchmark: Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}; {os.cpu_count()} CPUs; "
        f"evaluation day {on}; window {args.window}; chunk {args.chunk}"
    )
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with workdir() as tmp:
        if args.profile:
            profile(args, on, tmp)
            return 0
        results = [bench_size(n, args, on, tmp) for n in args.members]
    print_results(results, args)
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
