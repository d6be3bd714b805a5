"""Earning rules: evaluation throughput, and what 50 rules cost end to end.

Two measurements, in one run:

* **evaluation**: ``engine.evaluate_rules`` alone (contexts built before the clock starts,
  usage tallied in memory as replay does) with the base rate plus 1, 10 and 100 active
  realistic rules, over realistic purchases;
* **end to end**: purchases recorded through ``setia.events.api.record_batch`` in
  ``db.session()`` transactions of ``--batch-size`` events, on SQLite (WAL), into two
  databases seeded the same way: one with only the program's base rate, one with 50 active
  rules besides it. Batches alternate between the two databases so that drift (disk cache,
  CPU boost) hits both alike. The ratio is time with 50 rules / time with the base rate.

The rules are a realistic mix for a coffee chain: weekend and happy-hour multipliers,
category and SKU bonuses (some only on matching lines, excluding delivery), store openings,
app and QRIS promos, big-basket and first-purchase bonuses, birthday month, tiers by tag, a
staff rate that replaces the base rate, seasonal campaigns with their own schedules and
budgets, and rules for other triggers (reviews, signup, birthday) that a purchase skips.
Most carry limits (per day/week/month/lifetime, per order) and some a budget, so the
limit and budget checks against the database are part of what is measured.

    python bench/rules.py                          # default sizes
    python bench/rules.py --events 10000 --eval-events 2000
    python bench/rules.py --profile                # cProfile of the 50-rule ingestion
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
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from setia.core.db import Database
from setia.core.migrate import upgrade
from setia.events.api import record_batch
from setia.ledger.verify import verify
from setia.members import service as members_service
from setia.members.models import Member
from setia.programs.models import Program
from setia.rules import engine
from setia.rules import service as rules_service
from setia.rules.models import RuleAward
from setia.rules.schemas import CampaignBody, RuleBody
from setia.tenants import service as tenants
from setia.tenants.models import Tenant

WIB = timezone(timedelta(hours=7))
CATALOG = [
    ("KOPI-SUSU", "Es Kopi Susu", "coffee", "Kopi Kita", 25000),
    ("TUBRUK", "Kopi Tubruk", "coffee", "Kopi Kita", 15000),
    ("AMERICANO", "Americano", "coffee", "Kopi Kita", 28000),
    ("LATTE", "Cafe Latte", "coffee", "Kopi Kita", 32000),
    ("TEH-TARIK", "Teh Tarik", "tea", "Teh Nusantara", 18000),
    ("MATCHA", "Matcha Latte", "tea", "Teh Nusantara", 35000),
    ("CROISSANT", "Croissant", "bakery", "Roti Pagi", 22000),
    ("ROTI-BAKAR", "Roti Bakar", "bakery", "Roti Pagi", 20000),
    ("PISANG", "Pisang Goreng", "snack", "Dapur", 12000),
    ("NASGOR", "Nasi Goreng", "food", "Dapur", 38000),
    ("MIE-AYAM", "Mie Ayam", "food", "Dapur", 30000),
    ("KAOS", "Kaos Batik", "apparel", "Batik Kita", 149000),
    ("KAIN", "Kain Batik Tulis", "apparel", "Batik Kita", 450000),
    ("TUMBLER", "Tumbler", "merch", "Kopi Kita", 95000),
    ("BIJI-250", "Biji Kopi 250g", "beans", "Kopi Kita", 85000),
    ("AIR", "Air Mineral", "drinks", "Aqua", 6000),
]
# How often each line turns up in a basket: mostly drinks and snacks, rarely batik.
WEIGHTS = [30, 14, 14, 12, 12, 6, 14, 10, 12, 10, 8, 1, 0.3, 2, 3, 10]
STORES = ["bandung-dago", "bandung-braga", "jakarta-kemang", "surabaya-tunjungan", "online"]
CHANNELS = ["pos", "pos", "pos", "app", "web"]
PAYMENTS = ["qris", "qris", "cash", "card", "gopay", "ovo"]
CATEGORIES = sorted({c for _s, _n, c, _b, _p in CATALOG})


# --------------------------------------------------------------------------- rules


def _cmp(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def _window(now: datetime, start_days: int, length_days: int) -> dict[str, str]:
    start = (
        (now + timedelta(days=start_days))
        .astimezone(WIB)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    return {
        "active_from": start.isoformat(),
        "active_to": (start + timedelta(days=length_days)).isoformat(),
    }


def never_firing(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rules, each made to fail on a last comparison after its own conditions: all
    of the evaluation and the explanations, none of the awards."""
    closed = _cmp("event.store", "eq", "tutup-permanen")
    out = []
    for body in bodies:
        cond = body.get("conditions")
        out.append({**body, "conditions": {"all": [cond, closed]} if cond else closed})
    return out


def realistic_rules(n: int, now: datetime, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` distinct, realistic rules (as rule bodies), the most common kinds first."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []

    def add(name: str, effect: dict[str, Any], **kw: Any) -> None:
        out.append(
            {"name": name, "triggers": kw.pop("triggers", ["purchase"]), "effect": effect, **kw}
        )

    not_delivery = _cmp("item.sku", "ne", "ONGKIR")
    add(
        "Akhir pekan 2x",
        {"type": "multiplier", "factor": "2"},
        schedule={"days": ["sat", "sun"]},
        limits=[{"period": "month", "max_points": 500}],
    )
    add(
        "Happy hour 1.5x",
        {"type": "multiplier", "factor": "1.5"},
        schedule={
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "hours": {"start": "14:00", "end": "17:00"},
        },
        limits=[{"period": "day", "max_points": 100}],
    )
    add(
        "Pembelian pertama",
        {"type": "fixed", "points": 500},
        conditions={
            "all": [
                _cmp("member.is_first_purchase", "eq", True),
                _cmp("member.tenure_days", "lte", 30),  # a welcome offer, not a win-back
            ]
        },
        limits=[{"period": "lifetime", "max_count": 1}],
    )
    add(
        "Bulan ulang tahun 2x",
        {"type": "multiplier", "factor": "2"},
        conditions=_cmp("member.birthday_month", "eq", True),
        limits=[{"period": "year", "max_points": 1000}],
    )
    add(
        "Gold 1.5x",
        {"type": "multiplier", "factor": "1.5"},
        conditions=_cmp("member.tags", "contains", "gold"),
    )
    add(
        "Belanja besar",
        {"type": "fixed", "points": 150},
        conditions=_cmp("event.amount", "gte", "200000"),
        limits=[{"period": "week", "max_count": 1}],
    )
    add(
        "Pesan lewat app",
        {"type": "fixed", "points": 20},
        conditions=_cmp("event.channel", "eq", "app"),
        limits=[{"period": "day", "max_count": 1}],
    )
    add(
        "QRIS cashback poin",
        {"type": "per_amount", "points": 1, "per": "10000"},
        conditions=_cmp("event.payment_method", "eq", "qris"),
        limits=[{"period": "month", "max_points": 200}],
    )
    add(
        "Biji kopi",
        {"type": "per_item", "points": 25, "items_where": _cmp("item.sku", "eq", "BIJI-250")},
        conditions={"items": {"where": _cmp("item.sku", "eq", "BIJI-250")}},
        limits=[{"period": "order", "max_points": 100}],
    )
    add(
        "Batik 2 per 1000",
        {
            "type": "per_amount",
            "points": 2,
            "per": "1000",
            "scope": "items",
            "items_where": {"all": [_cmp("item.category", "eq", "apparel"), not_delivery]},
        },
        conditions={
            "items": {"where": _cmp("item.category", "eq", "apparel"), "min_amount": "100000"}
        },
        limits=[{"period": "order", "max_points": 2000}],
        budget_points=5_000_000,
    )
    add(
        "Tarif karyawan",
        {"type": "per_amount", "points": 3, "per": "1000"},
        priority=50,
        mode="exclusive",
        conditions=_cmp("member.tags", "contains", "karyawan"),
    )
    add(
        "Tag big spender",
        {"type": "add_tag", "tag": "big-spender"},
        mode="universal",
        priority=900,
        conditions=_cmp("event.amount", "gte", "1000000"),
    )
    add(
        "Ulasan",
        {"type": "fixed", "points": 50},
        triggers=["review.submitted"],
        limits=[{"period": "month", "max_count": 2}],
    )
    add(
        "Profil lengkap",
        {"type": "fixed", "points": 100},
        triggers=["profile.completed"],
        limits=[{"period": "lifetime", "max_count": 1}],
    )
    add("Selamat datang", {"type": "fixed", "points": 200}, triggers=["member.signup"])
    add("Ulang tahun", {"type": "fixed", "points": 1000}, triggers=["schedule.birthday"])
    add(
        "Paket sarapan",
        {"type": "fixed", "points": 30},
        schedule={"hours": {"start": "06:00", "end": "10:00"}},
        conditions={
            "all": [
                {"items": {"where": _cmp("item.category", "eq", "coffee")}},
                {"items": {"where": _cmp("item.category", "eq", "bakery")}},
            ]
        },
        limits=[{"period": "day", "max_count": 1}],
    )
    add(
        "Kopi malam",
        {"type": "fixed", "points": 15},
        schedule={"hours": {"start": "20:00", "end": "02:00"}},
        conditions={"items": {"where": _cmp("item.category", "eq", "coffee"), "min_quantity": 2}},
    )
    add(
        "Gajian",
        {"type": "multiplier", "factor": "1.5"},
        conditions={
            "any": [
                _cmp("event.local_date", "gte", "2026-11-25"),
                _cmp("event.local_day_of_week", "eq", "fri"),
            ]
        },
        limits=[{"period": "month", "max_points": 300}],
    )
    add(
        "Mahasiswa",
        {"type": "fixed", "points": 10},
        conditions={
            "all": [
                _cmp("member.tags", "contains", "mahasiswa"),
                _cmp("event.local_hour", "between", [13, 18]),
            ]
        },
        limits=[{"period": "day", "max_count": 1}],
    )
    # Store openings, seasonal campaigns, category weeks and SKU launches fill the rest.
    kinds = ["store", "category", "sku", "campaign", "payment", "tier"]
    i = 0
    while len(out) < n:
        kind = kinds[i % len(kinds)]
        i += 1
        if kind == "store":
            store = STORES[i % len(STORES)]
            add(
                f"Pembukaan {store} #{i}",
                {"type": "fixed", "points": rng.choice([50, 100, 200])},
                conditions=_cmp("event.store", "eq", store),
                schedule=_window(now, rng.randint(-60, 30), 14),
                limits=[{"period": "lifetime", "max_count": 1}],
            )
        elif kind == "category":
            cat = CATEGORIES[i % len(CATEGORIES)]
            add(
                f"Pekan {cat} #{i}",
                {
                    "type": "per_item",
                    "points": rng.choice([2, 5, 10]),
                    "items_where": _cmp("item.category", "eq", cat),
                },
                conditions={"items": {"where": _cmp("item.category", "eq", cat)}},
                schedule=_window(now, rng.randint(-90, 10), 7),
                limits=[{"period": "week", "max_points": 100}],
            )
        elif kind == "sku":
            sku = CATALOG[i % len(CATALOG)][0]
            add(
                f"Produk baru {sku} #{i}",
                {"type": "per_item", "points": 3, "items_where": _cmp("item.sku", "eq", sku)},
                conditions={
                    "all": [
                        {"items": {"where": _cmp("item.sku", "eq", sku), "min_quantity": 2}},
                        _cmp("event.store", "in", STORES[:3]),
                    ]
                },
                limits=[{"period": "day", "max_points": 30}],
            )
        elif kind == "campaign":
            add(
                f"Promo musiman #{i}",
                {"type": "multiplier", "factor": rng.choice(["2", "3"])},
                schedule=_window(now, rng.randint(-200, 60), rng.choice([3, 7, 30])),
                conditions=_cmp("event.amount", "gte", str(rng.choice([50000, 100000]))),
                limits=[{"period": "lifetime", "max_points": 1000}],
                budget_points=2_000_000,
                priority=300,
            )
        elif kind == "payment":
            method = PAYMENTS[i % len(PAYMENTS)]
            add(
                f"Promo {method} #{i}",
                {"type": "fixed", "points": 25},
                conditions={
                    "all": [
                        _cmp("event.payment_method", "eq", method),
                        _cmp("event.amount", "gte", "75000"),
                    ]
                },
                schedule=_window(now, rng.randint(-120, 20), 30),
                limits=[{"period": "month", "max_count": 3}],
            )
        else:
            tag = rng.choice(["vip", "platinum", "komunitas"])
            add(
                f"Tier {tag} #{i}",
                {
                    "type": "per_amount",
                    "points": 1,
                    "per": "5000",
                    "scope": "items",
                    "items_where": {"not": _cmp("item.sku", "eq", "ONGKIR")},
                },
                conditions={
                    "all": [
                        _cmp("member.tags", "contains", tag),
                        _cmp("event.channel", "ne", "web"),
                    ]
                },
                limits=[{"period": "month", "max_points": 400}],
            )
    for body in out[:n]:
        RuleBody.model_validate(body)  # every one is a rule the API would save
    return out[:n]


# --------------------------------------------------------------------------- workload


@dataclass
class Identity:
    external_id: str
    phone: str
    tags: list[str]
    birthday: str | None


def identities(n: int, rng: random.Random, prefix: str = "M") -> list[Identity]:
    out = []
    for i in range(n):
        roll = rng.random()
        tags = (
            ["gold"]
            if roll < 0.1
            else ["mahasiswa"]
            if roll < 0.25
            else ["vip"]
            if roll < 0.3
            else []
        )
        if rng.random() < 0.01:
            tags.append("karyawan")
        birthday = f"19{rng.randint(70, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        out.append(
            Identity(
                f"{prefix}{i:06d}", f"+62812{i:08d}", tags, birthday if rng.random() < 0.6 else None
            )
        )
    return out


def purchases(
    count: int,
    known: list[Identity],
    rng: random.Random,
    now: datetime,
    *,
    new_share: float,
    tag: str,
) -> list[dict[str, Any]]:
    """Purchases over the last 30 days, as a POS or app sends them (1-5 lines, sometimes
    delivery), 45% by phone, the rest by external id; ``new_share`` from new customers."""
    events = []
    fresh = 0
    for n in range(count):
        if rng.random() < new_share:
            fresh += 1
            member: dict[str, Any] = {"external_id": f"N{tag}{fresh:06d}", "name": f"Baru {fresh}"}
        else:
            who = rng.choice(known)
            if rng.random() < 0.45:
                national = "0" + who.phone.removeprefix("+62")
                member = {"phone": f"{national[:4]}-{national[4:8]}-{national[8:]}"}
            else:
                member = {"external_id": who.external_id}
        items = []
        amount = 0
        lines = {rng.choices(range(len(CATALOG)), WEIGHTS)[0] for _ in range(rng.randint(1, 4))}
        for sku, name, category, brand, price in (CATALOG[i] for i in sorted(lines)):
            qty = rng.choice((1, 1, 1, 2, 3))
            items.append({"sku": sku, "name": name, "category": category, "brand": brand,
                          "quantity": qty, "unit_price": str(price)})  # fmt: skip
            amount += qty * price
        channel = rng.choice(CHANNELS)
        if channel != "pos" and rng.random() < 0.7:
            items.append({"sku": "ONGKIR", "name": "Ongkos kirim", "category": "fee", "quantity": 1,
                          "unit_price": "12000"})  # fmt: skip
            amount += 12000
        occurred = now - timedelta(seconds=rng.randint(120, 30 * 86400))
        events.append(
            {
                "id": f"bench-{tag}-{n:07d}",
                "type": "purchase",
                "occurred_at": occurred.astimezone(WIB).replace(microsecond=0).isoformat(),
                "member": member,
                "order_id": f"INV-{tag}-{n:07d}",
                "amount": str(amount),
                "currency": "IDR",
                "items": items,
                "store": "online" if channel == "web" else rng.choice(STORES[:4]),
                "channel": channel,
                "payment_method": rng.choice(PAYMENTS),
            }
        )
    return events


# --------------------------------------------------------------------------- evaluation


def eval_contexts(
    events: list[dict[str, Any]], people: list[Identity], rng: random.Random
) -> list[tuple[Any, dict[str, Any]]]:
    """(member key, context) per event, built as the events service builds them."""
    out = []
    for e in events:
        who = rng.choice(people)
        ctx = engine.build_context(
            event_type="purchase",
            occurred_at=datetime.fromisoformat(e["occurred_at"]),
            tz_name="Asia/Jakarta",
            amount=Decimal(e["amount"]),
            currency="IDR",
            items=e["items"],
            store=e["store"],
            channel=e["channel"],
            payment_method=e["payment_method"],
            attributes=None,
            member={
                "tags": who.tags,
                "attributes": {},
                "locale": "id",
                "created_at": datetime(2025, 1, 1, tzinfo=UTC),
                "birthday": datetime.fromisoformat(who.birthday).date() if who.birthday else None,
                "order_count": rng.randint(0, 40),
            },
        )
        out.append((who.external_id, ctx))
    return out


def specs_for(bodies: list[dict[str, Any]]) -> list[engine.RuleSpec]:
    specs = [engine.base_rule(1, 1, Decimal(1000), "floor")]
    for i, body in enumerate(bodies):
        saved = RuleBody.model_validate(body).model_dump(mode="json", exclude_none=True)
        specs.append(
            engine.RuleSpec(id=uuid.UUID(int=i + 1), revision=1, name=saved["name"], body=saved)
        )
    return specs


@dataclass
class EvalFigure:
    rules: int
    evaluations: int
    seconds: float
    awards: int

    @property
    def rate(self) -> float:
        return self.evaluations / self.seconds


def bench_evaluation(
    n_rules: int, contexts: list[tuple[Any, dict[str, Any]]], now: datetime, repeats: int
) -> EvalFigure:
    specs = specs_for(realistic_rules(n_rules, now)) if n_rules else specs_for([])
    times = []
    awards = 0
    for _ in range(repeats):
        usage = engine.MemoryUsage()
        awards = 0
        started = time.perf_counter()
        for key, ctx in contexts:
            usage.member_key = key
            evaluation = engine.evaluate_rules(specs, ctx, usage)
            usage.record(key, ctx["_local"], evaluation)
            awards += len(evaluation.awards)
        times.append(time.perf_counter() - started)
    return EvalFigure(n_rules, len(contexts), statistics.median(times), awards)


# --------------------------------------------------------------------------- end to end


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


def seed(path: Path, people: list[Identity], bodies: list[dict[str, Any]], now: datetime) -> Side:
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        new = tenants.create_tenant(
            s, name="Kopi Bench", country="ID", currency="IDR", timezone="Asia/Jakarta"
        )
        for who in people:
            data: dict[str, Any] = {
                "external_id": who.external_id,
                "phone": who.phone,
                "tags": who.tags,
            }
            if who.birthday:
                data["birthday"] = datetime.fromisoformat(who.birthday).date()
            members_service.create_member(s, new.tenant, data, source="bench")
        # The members are long-standing customers (their first purchases are history).
        s.execute(
            update(Member)
            .where(Member.tenant_id == new.tenant.id)
            .values(created_at=now - timedelta(days=400))
        )
        program = s.get(Program, new.program.id)
        assert program is not None
        if bodies:
            campaign = rules_service.create_campaign(
                s, program, CampaignBody(name="Harbolnas 11.11", budget_points=3_000_000,
                                         schedule=_window(now, -40, 60)), actor="bench")  # fmt: skip
            for i, body in enumerate(bodies):
                if i % 10 == 9:  # a few rules belong to a campaign with its own budget
                    body = {**body, "campaign_id": str(campaign.id)}
                rules_service.create_rule(s, program, RuleBody.model_validate(body), actor="bench")
        side = Side(path.stem, db, new.tenant.id, new.program.id)

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
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    side.counting = False
    if out.failed or out.created != len(batch):
        bad = next(r for r in out.results if r.error)
        raise RuntimeError(f"{side.name}: {bad.error}")
    if timed:
        side.seconds += elapsed
        side.cpu += cpu
        side.events += len(batch)


def census(side: Side) -> dict[str, float]:
    with side.db.session() as s:
        awards = s.execute(select(func.count()).select_from(RuleAward)).scalar_one()
        from setia.ledger.models import Transfer

        transfers = s.execute(
            select(func.count()).select_from(Transfer).where(Transfer.program_id == side.program_id)
        ).scalar_one()
        report = verify(s)
        if not report.ok:
            raise SystemExit(f"{side.name}: ledger verify failed: {report.checks}")
    return {"rule_awards": awards, "transfers": transfers}


@contextmanager
def workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="setia-rules-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_end_to_end(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    rng = random.Random(5)
    people = identities(args.members, rng)
    bodies = realistic_rules(args.rules, now)
    events = purchases(args.warm + args.events, people, rng, now, new_share=args.new_share, tag="e")
    warm, timed = events[: args.warm], events[args.warm :]
    size = args.batch_size
    with workdir() as tmp:
        print(f"seeding two SQLite databases with {args.members:,} members ...", flush=True)
        base = seed(tmp / "base.db", people, [], now)
        ruled = seed(tmp / "rules.db", people, bodies, now)
        quiet = seed(tmp / "quiet.db", people, never_firing(bodies), now)
        sides = (base, ruled, quiet)
        try:
            # Warm-up (not timed): caches, and the statements per event.
            for side in sides:
                for i in range(0, len(warm), size):
                    ingest(side, warm[i : i + size], timed=False, count=True)
            stmts = {side.name: side.statements / max(1, len(warm)) for side in sides}
            print(
                f"recording {len(timed):,} purchases in batches of {size} into each, alternating ...",
                flush=True,
            )
            for n, i in enumerate(range(0, len(timed), size)):
                chunk = timed[i : i + size]
                k = n % len(sides)  # rotate who goes first
                for side in sides[k:] + sides[:k]:
                    ingest(side, chunk, timed=True)
            counted = {side.name: census(side) for side in sides}
        finally:
            for side in sides:
                side.db.dispose()
    total = len(events)
    return {
        "base": base,
        "rules": ruled,
        "quiet": quiet,
        "ratio": ruled.seconds / base.seconds,
        "cpu_ratio": ruled.cpu / base.cpu,
        "statements": stmts,
        "transfers_per_event": {k: v["transfers"] / total for k, v in counted.items()},
        "rule_awards_per_event": {k: v["rule_awards"] / total for k, v in counted.items()},
    }


def profile(args: argparse.Namespace, now: datetime) -> None:
    rng = random.Random(5)
    people = identities(args.members, rng)
    events = purchases(args.warm + args.events, people, rng, now, new_share=args.new_share, tag="p")
    with workdir() as tmp:
        side = seed(tmp / "rules.db", people, realistic_rules(args.rules, now), now)
        size = args.batch_size
        for i in range(0, args.warm, size):
            ingest(side, events[i : i + size], timed=False)
        prof = cProfile.Profile()
        prof.enable()
        for i in range(args.warm, len(events), size):
            ingest(side, events[i : i + size], timed=True)
        prof.disable()
        side.db.dispose()
    print(f"{args.rules} rules, under cProfile: {side.events / side.seconds:,.0f} events/s")
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(stream.getvalue())


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--events", type=int, default=10_000, help="timed purchases per database (end to end)"
    )
    ap.add_argument("--warm", type=int, default=1_000, help="untimed purchases first (end to end)")
    ap.add_argument("--members", type=int, default=2_000, help="members before the run")
    ap.add_argument("--batch-size", type=int, default=500, help="events per transaction")
    ap.add_argument(
        "--new-share", type=float, default=0.05, help="share of purchases by new members"
    )
    ap.add_argument(
        "--rules", type=int, default=50, help="rules besides the base rate (end to end)"
    )
    ap.add_argument("--eval-events", type=int, default=5_000, help="contexts per evaluation run")
    ap.add_argument("--repeats", type=int, default=3, help="evaluation runs per size (median)")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the ingestion with --rules rules"
    )
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    now = datetime.now(UTC)
    if args.profile:
        profile(args, now)
        return 0

    print(
        f"Setia rules benchmark: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    if not args.skip_eval:
        rng = random.Random(3)
        people = identities(2_000, rng, prefix="E")
        contexts = eval_contexts(
            purchases(args.eval_events, people, rng, now, new_share=0, tag="x"), people, rng
        )
        print()
        print(
            f"  evaluation: engine.evaluate_rules over {len(contexts):,} purchases (median of {args.repeats})"
        )
        print(f"  {'rules':>7} {'evaluations/s':>14} {'us/evaluation':>14} {'awards/event':>13}")
        for n in (0, 1, 10, 100):
            f = bench_evaluation(n, contexts, now, args.repeats)
            label = "base" if n == 0 else f"base+{n}"
            print(
                f"  {label:>9} {f.rate:>12,.0f} {1e6 / f.rate:>14.1f} {f.awards / f.evaluations:>13.2f}"
            )
    if not args.skip_e2e:
        print()
        out = bench_end_to_end(args, now)
        base, ruled = out["base"], out["rules"]
        print()
        print(f"  end to end: record_batch, {args.batch_size} events per transaction, SQLite (WAL); "
              f"{args.members:,} members, {args.new_share:.0%} new")  # fmt: skip
        print(f"  {'rule set':<32} {'events':>7} {'wall s':>7} {'events/s':>9} {'ratio':>6} "
              f"{'CPU ms/ev':>10} {'ratio':>6} {'stmts/ev':>9} {'transfers/ev':>13} "
              f"{'rule awards/ev':>15}")  # fmt: skip
        labels = (
            (base, "base rate only"),
            (ruled, f"base + {args.rules} rules"),
            (out["quiet"], f"base + {args.rules} rules, none fire"),
        )
        for side, label in labels:
            print(
                f"  {label:<32} {side.events:>7,} {side.seconds:>7.2f} "
                f"{side.events / side.seconds:>9,.0f} {side.seconds / base.seconds:>5.2f}x "
                f"{1000 * side.cpu / side.events:>10.2f} {side.cpu / base.cpu:>5.2f}x "
                f"{out['statements'][side.name]:>9.1f} {out['transfers_per_event'][side.name]:>13.2f} "
                f"{out['rule_awards_per_event'][side.name]:>15.2f}"
            )
        verdict = "meets" if out["ratio"] < 2 else "MISSES"
        print(
            f"  {args.rules} rules / base rate: {out['ratio']:.2f}x wall, {out['cpu_ratio']:.2f}x CPU"
            f"  -> {verdict} the < 2x target"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
