"""How the cost of the everyday calls grows with the size of the business.

A till records purchases one by one (``POST /v1/events``) or in batches, and shows the
member's balance (``GET /v1/members/{id}/balance``); each should cost the same for a shop
with a thousand members as for a brand with a hundred thousand: every look-up on the way
(the member by phone, their ledger accounts, the balance's lifetime totals) must go through
an index, never walk the tenant's members or the program's ledger.

Two databases are built alike except for their size (SQLite, in a temporary directory):
``--small`` members (the baseline) and ``--large`` members, each member with one purchase
of history (recorded through the batch path, so the ledger holds one EARN transfer per
member). Then, on each, in-process (no HTTP; the endpoint's own functions and commits):

* ``one-by-one``: ``--events`` purchases by existing members, found by phone;
* ``batched``: the same number again, in batches of 500;
* ``balance``: the balance of ``--events`` members.

It prints milliseconds per call for each size and the ratio large/small: 1.0× means the
call does not grow with the business. Run with the interpreter of the tree to measure (the
tree is found from this file, or ``PYTHONPATH``):

    python bench/lookups.py                      # 1,000 vs 50,000 members
    python bench/lookups.py --large 100000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.append(str(ROOT / "src"))

from setia.core.api import write  # noqa: E402
from setia.core.db import Database  # noqa: E402
from setia.core.migrate import upgrade  # noqa: E402
from setia.core.runtime import tune_gc  # noqa: E402
from setia.core.time import utcnow  # noqa: E402
from setia.events import batch as events_batch  # noqa: E402
from setia.events import service as events_service  # noqa: E402
from setia.events.schemas import EventIn  # noqa: E402
from setia.ledger import queries  # noqa: E402
from setia.members import service as members  # noqa: E402
from setia.tenants import service as tenants  # noqa: E402
from setia.tenants.models import Tenant  # noqa: E402

BATCH = 500


def phone(i: int) -> str:
    return f"0812{i:08d}"


def purchase(n: int, member: int, tag: str) -> dict[str, Any]:
    return {
        "id": f"{tag}-{n}",
        "type": "purchase",
        "member": {"phone": phone(member)},
        "order_id": f"{tag}-O-{n}",
        "amount": str(25_000 + (n % 7) * 5_000),
        "currency": "IDR",
        "items": [{"sku": "KOPI-SUSU", "quantity": 1, "unit_price": "25000"}],
    }


@dataclass
class Built:
    db: Database
    tenant_id: Any
    program_id: Any
    member_ids: list[Any]
    seconds: float


def build(directory: Path, size: int) -> Built:
    """A tenant with ``size`` members, each with one purchase of history."""
    started = time.perf_counter()
    url = f"sqlite:///{directory / f'lookups-{size}.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        new = tenants.create_tenant(
            s, name="Kopi Lookups", country="ID", currency="IDR", timezone="Asia/Jakarta"
        )
        tenant_id, program_id = new.tenant.id, new.program.id
        s.commit()
    member_ids = []
    for start in range(0, size, 5_000):
        with db.session() as s:
            tenant = s.get(Tenant, tenant_id)
            assert tenant is not None
            made = [
                members.prepare_member(tenant, {"phone": phone(i), "name": f"Member {i}"})
                for i in range(start, min(size, start + 5_000))
            ]
            members.insert_members(s, tenant, made)
            member_ids.extend(m.id for m in made)
            s.commit()
    for start in range(0, size, BATCH):
        with db.session() as s:
            tenant = s.get(Tenant, tenant_id)
            assert tenant is not None
            events = [purchase(i, i, "history") for i in range(start, min(size, start + BATCH))]
            out = write(s, lambda: events_batch.record_batch(s, tenant, events))  # noqa: B023
            assert out.failed == 0, [r.error for r in out.results if r.error][:1]
    return Built(db, tenant_id, program_id, member_ids, time.perf_counter() - started)


def per_call(fn: Callable[[int], None], calls: int) -> float:
    """Milliseconds of wall time per call (a warm-up call first, not timed)."""
    fn(-1)
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls * 1e3


def measure(b: Built, size: int, calls: int) -> dict[str, float]:
    db = b.db
    step = max(1, size // calls)

    def one(i: int) -> None:
        with db.session() as s:
            tenant = s.get(Tenant, b.tenant_id)
            assert tenant is not None
            event = EventIn.model_validate(purchase(i + 1, (i * step) % size, "one"))
            write(s, lambda: events_service.record_event(s, tenant, event))

    def batched(i: int) -> None:
        # i counts batches here; each batch is BATCH purchases of members spread over all.
        with db.session() as s:
            tenant = s.get(Tenant, b.tenant_id)
            assert tenant is not None
            events = [
                purchase(i * BATCH + k + 1, ((i * BATCH + k) * step) % size, "many")
                for k in range(BATCH)
            ]
            out = write(s, lambda: events_batch.record_batch(s, tenant, events))
            assert out.failed == 0

    def balance(i: int) -> None:
        with db.session() as s:
            queries.balance(s, b.program_id, b.member_ids[(i * step) % size], now=utcnow())

    batches = max(1, calls // BATCH)
    return {
        "one-by-one": per_call(one, calls),
        "batched": per_call(batched, batches) / BATCH,
        "balance": per_call(balance, calls),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--small", type=int, default=1_000, help="members of the baseline")
    ap.add_argument("--large", type=int, default=50_000, help="members of the large tenant")
    ap.add_argument("--events", type=int, default=1_000, help="calls measured per kind")
    args = ap.parse_args(argv)
    tune_gc()
    tmp = Path(tempfile.mkdtemp(prefix="setia-lookups-"))
    try:
        figures: dict[int, dict[str, float]] = {}
        for size in (args.small, args.large):
            built = build(tmp, size)
            print(f"built {size:,} members with one purchase each in {built.seconds:.1f} s")
            figures[size] = measure(built, size, args.events)
            built.db.dispose()
        small, large = figures[args.small], figures[args.large]
        print()
        print("Setia lookups benchmark: cost per call against the size of the tenant")
        print(f"  SQLite, in-process, {args.events:,} calls per kind (batched: 500 per batch)")
        print()
        print(f"  {'call':<12} {args.small:>10,} members {args.large:>10,} members   ratio")
        for kind in small:
            print(
                f"  {kind:<12} {small[kind]:>13.3f} ms {large[kind]:>13.3f} ms"
                f"   {large[kind] / small[kind]:.2f}x"
            )
        print("  ratio = cost per call with the large tenant / with the small one (1.00x: flat)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
