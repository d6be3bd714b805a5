"""Coupon code generation and coupon-validation latency.

What it measures, on a fresh SQLite file database (WAL) in a temporary directory, upgraded
to the current schema:

* **generation**: ``setia.coupons.service.generate_codes`` making ``--codes`` (default
  100,000) unique codes from ``KOPI-****-****`` for one campaign, in one transaction,
  commit included (target: under 5 s for 100,000). The codes are checked afterwards: as many
  rows as asked, all distinct, all matching the pattern.
* **baseline**: in the same run and the same database file, a plain ``executemany`` of as
  many pre-made strings into a one-column table through the driver (``sqlite3``), commit
  included. The ratio says what the service adds to the bare insert (drawing codes with
  ``secrets``, the uniqueness check against the tenant's codes, the other columns, the
  unique index on ``(tenant_id, code)``).
* **validation latency**: ``POST /v1/coupons/validate`` (a generated code, a 3-line cart,
  a member-less percent campaign with a cap and a minimum spend) through FastAPI's
  ``TestClient`` in-process, ``--requests`` times (default 2,000), against ``GET /healthz``
  (no key, no database: the app's own floor) and ``GET /v1/coupon-campaigns/{id}`` (API key
  check plus one read), interleaved so drift hits all three alike; p50 and p95 of each and
  the ratios of validation to the no-op.

    python bench/rewards.py
    python bench/rewards.py --codes 20000 --requests 500
    python bench/rewards.py --postgres      # generation on PostgreSQL too
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from setia.app import create_app
from setia.core.db import Database
from setia.core.migrate import upgrade
from setia.coupons import service
from setia.coupons.schemas import CampaignIn
from setia.tenants import service as tenants

PATTERN = "KOPI-****-****"


def generation(db: Database, path: Path | None, count: int) -> dict[str, Any]:
    with db.session() as s:
        new = tenants.create_tenant(
            s, name="Bench", country="ID", currency="IDR", timezone="Asia/Jakarta"
        )
        tenant_id = new.tenant.id
        campaign, _ = service.create_campaign(
            s,
            new.tenant,
            CampaignIn.model_validate(
                {
                    "code": "bench",
                    "names": {"en": "Bench"},
                    "discount": {"type": "fixed", "amount": "10000"},
                }
            ),
        )
        campaign_id = campaign.id
    start = time.perf_counter()
    with db.session() as s:
        tenant = tenants.get_tenant(s, tenant_id)
        service.generate_codes(s, tenant, campaign_id, count=count, pattern=PATTERN)
    took = time.perf_counter() - start
    with db.session() as s:
        made = [r["code"] for r in service.export_rows(s, campaign_id)]
    rx = re.compile(r"^KOPI-[A-HJKMNP-TV-Z2-9]{4}-[A-HJKMNP-TV-Z2-9]{4}$")
    if len(made) != count or len(set(made)) != count or not all(rx.fullmatch(c) for c in made):
        sys.exit("generation check failed: wrong count, duplicates or a code off the pattern")

    # Baseline: the same number of strings, made beforehand, into a one-column table.
    strings = [f"KOPI-{i:04d}-{i * 7919 % 10000:04d}" for i in range(count)]
    if path is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE bench_plain (code TEXT NOT NULL)")
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO bench_plain (code) VALUES (?)", ((c,) for c in strings))
        conn.execute("COMMIT")
        plain = time.perf_counter() - start
        conn.close()
    else:
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("CREATE TABLE bench_plain (code TEXT NOT NULL)")
            raw.commit()
            start = time.perf_counter()
            cur.executemany("INSERT INTO bench_plain (code) VALUES (%s)", [(c,) for c in strings])
            raw.commit()
            plain = time.perf_counter() - start
        finally:
            raw.close()
    return {"seconds": took, "per_second": count / took, "plain": plain, "ratio": took / plain}


def pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def latency(db: Database, n: int) -> dict[str, dict[str, float]]:
    with db.session() as s:
        new = tenants.create_tenant(
            s, name="Bench API", country="ID", currency="IDR", timezone="Asia/Jakarta"
        )
        campaign, _ = service.create_campaign(
            s,
            new.tenant,
            CampaignIn.model_validate(
                {
                    "code": "bench-api",
                    "names": {"id": "Diskon 20%", "en": "20% off"},
                    "discount": {"type": "percent", "percent": "20", "max_amount": "50000"},
                    "conditions": {"min_spend": "50000", "exclude_categories": ["gift-card"]},
                }
            ),
        )
        batch, _ = service.generate_codes(s, new.tenant, campaign.id, count=100, pattern=PATTERN)
        code = service.batch_codes(s, batch.id, 1)[0]
        headers = {"Authorization": f"Bearer {new.secret}"}
        campaign_url = f"/v1/coupon-campaigns/{campaign.id}"
    body = {
        "code": code.lower(),
        "order_id": "POS-1-000001",
        "cart": {
            "currency": "IDR",
            "items": [
                {"sku": "KOPI-SUSU", "category": "drinks", "quantity": 2, "unit_price": "28000"},
                {"sku": "CROISSANT", "category": "food", "quantity": 1, "unit_price": "32000"},
                {"sku": "GC-100", "category": "gift-card", "quantity": 1, "unit_price": "100000"},
            ],
        },
    }
    times: dict[str, list[float]] = {"validate": [], "healthz": [], "campaign": []}
    with TestClient(create_app(db)) as client:

        def call(kind: str) -> float:
            start = time.perf_counter()
            if kind == "validate":
                r = client.post("/v1/coupons/validate", json=body, headers=headers)
            elif kind == "healthz":
                r = client.get("/healthz")
            else:
                r = client.get(campaign_url, headers=headers)
            took = time.perf_counter() - start
            if r.status_code != 200:
                sys.exit(f"{kind} answered {r.status_code}: {r.text}")
            if kind == "validate" and r.json()["discount"] != "17600":
                sys.exit(f"validation gave {r.json()}")
            return took

        for _ in range(50):  # warm-up
            for kind in times:
                call(kind)
        for _ in range(n):
            for kind in times:
                times[kind].append(call(kind))
    return {
        k: {"p50": pct(v, 50) * 1000, "p95": pct(v, 95) * 1000, "mean": statistics.mean(v) * 1000}
        for k, v in times.items()
    }


def report_generation(label: str, count: int, g: dict[str, Any]) -> None:
    print(
        f"{label} generation: {count:,} codes in {g['seconds']:.2f} s "
        f"({g['per_second']:,.0f} codes/s; target < 5 s for 100,000)"
    )
    print(
        f"{label} baseline:   plain executemany of {count:,} strings into a one-column "
        f"table: {g['plain']:.3f} s; service / baseline = {g['ratio']:.1f}x"
    )


def postgres_generation(count: int) -> None:
    """The generation figures on a throwaway PostgreSQL cluster (``tests/pgcluster.py``)."""
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from sqlalchemy import create_engine, text
    from tests.pgcluster import Cluster

    cluster = Cluster()
    admin = cluster.start()
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE bench_rewards"))
        engine.dispose()
        url = admin.rsplit("/", 1)[0] + "/bench_rewards"
        upgrade(url)
        db = Database(url)
        try:
            report_generation("postgresql", count, generation(db, None, count))
        finally:
            db.dispose()
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also measure generation on a throwaway PostgreSQL cluster (needs its binaries)",
    )
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} cpus, {platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        db = Database(url)
        try:
            report_generation("sqlite", args.codes, generation(db, path, args.codes))
            lat = latency(db, args.requests)
        finally:
            db.dispose()
    v, h, c = lat["validate"], lat["healthz"], lat["campaign"]
    print(f"latency over {args.requests:,} requests each (TestClient, in-process, SQLite), ms:")
    for name, row in (
        ("POST /v1/coupons/validate", v),
        ("GET /healthz (no-op)", h),
        ("GET /v1/coupon-campaigns/{id}", c),
    ):
        print(f"  {name:32} p50 {row['p50']:7.2f}  p95 {row['p95']:7.2f}  mean {row['mean']:7.2f}")
    print(
        f"validate / no-op: p50 {v['p50'] / h['p50']:.1f}x, p95 {v['p95'] / h['p95']:.1f}x; "
        f"validate / authenticated read: p50 {v['p50'] / c['p50']:.1f}x, "
        f"p95 {v['p95'] / c['p95']:.1f}x"
    )
    if args.postgres:
        postgres_generation(args.codes)


if __name__ == "__main__":
    main()
