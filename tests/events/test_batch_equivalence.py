"""The batch path answers and writes exactly what the one-by-one path does.

A seeded random history (purchases, custom events, refunds, duplicates, reused ids, invalid
events, unknown and ambiguous members, the same member many times, rules with limits,
budgets, tags and order counts, redemptions that turn refunds into debt) is sent twice, into
two fresh tenants of one database: event by event to ``POST /v1/events``, and in batches of
random sizes to ``POST /v1/events/batch``. Every answer must be the same (generated ids
compared by the order they first appear in), and so must every balance, ledger entry, lot,
order, usage row, tier-activity row, outbox message and member; ``setia ledger verify``
must find the books sound.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import pprint
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from setia.core.db import Database
from setia.ledger.verify import verify
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import configure

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

RULES: list[dict[str, Any]] = [
    {
        "name": "Daily visit",
        "triggers": ["purchase"],
        "effect": {"type": "fixed", "points": 50},
        "limits": [{"period": "day", "max_count": 1}],
    },
    {
        "name": "Budgeted",
        "triggers": ["purchase"],
        "effect": {"type": "fixed", "points": 40},
        "budget_points": 300,
    },
    {
        "name": "Weekend double",
        "triggers": ["purchase"],
        "effect": {"type": "multiplier", "factor": "2"},
        "conditions": {"field": "event.local_day_of_week", "op": "in", "value": ["sat", "sun"]},
        "limits": [{"period": "month", "max_points": 120}],
    },
    {
        "name": "Regular",
        "triggers": ["purchase"],
        "effect": {"type": "add_tag", "tag": "regular"},
        "conditions": {"field": "member.order_count", "op": "gte", "value": 2},
    },
    {
        "name": "Regulars bonus",
        "triggers": ["purchase", "review.submitted"],
        "effect": {"type": "fixed", "points": 7},
        "conditions": {"field": "member.tags", "op": "contains", "value": "regular"},
    },
    {
        "name": "First review",
        "triggers": ["review.submitted"],
        "effect": {"type": "fixed", "points": 25, "pending_days": 0},
        "limits": [{"period": "lifetime", "max_count": 1}],
    },
    {
        "name": "Profile",
        "triggers": ["profile.completed"],
        "effect": {"type": "fixed", "points": 15},
        "limits": [{"period": "week", "max_points": 20}],
    },
]

PEOPLE = [(f"C-{n}", f"0812-5555-{1000 + n}") for n in range(1, 9)]
KNOWN = 5  # the first five exist before the history starts; the others appear on the way


def member_ref(rng: random.Random) -> dict[str, Any]:
    ext, phone = rng.choice(PEOPLE)
    roll = rng.random()
    if roll < 0.04:  # identities of two different members
        other = rng.choice([p for p in PEOPLE if p[0] != ext])
        return {"external_id": ext, "phone": other[1]}
    if roll < 0.35:
        return {"phone": phone, "external_id": ext}
    if roll < 0.5:
        return {"phone": phone}
    return {"external_id": ext}


def history(seed: int, n: int) -> list[list[dict[str, Any]]]:
    """Rounds of events (redemptions happen between rounds)."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    events: list[dict[str, Any]] = []
    orders: list[tuple[str, dict[str, Any], int]] = []
    for i in range(n):
        at = start + timedelta(days=40 * i / n, minutes=rng.randint(0, 600))
        roll = rng.random()
        eid = f"ev-{i}"
        ev: dict[str, Any]
        if roll < 0.55 or not events:
            amount = rng.choice([8000, 25000, 50000, 120000, 300000])
            items = [
                {"sku": f"SKU-{k}", "quantity": 1 + k, "unit_price": str(amount // 10)}
                for k in range(rng.randint(0, 2))
            ]
            ev = {
                "id": eid,
                "type": "purchase",
                "member": member_ref(rng),
                "order_id": f"O-{i}",
                "amount": str(amount),
                "currency": "IDR",
                "occurred_at": at.isoformat(),
                **({"items": items} if items else {}),
            }
            orders.append((f"O-{i}", ev["member"], amount))
        elif roll < 0.65:
            ev = {
                "id": eid,
                "type": rng.choice(["review.submitted", "profile.completed", "app.opened"]),
                "member": member_ref(rng),
                "occurred_at": at.isoformat(),
            }
        elif roll < 0.75 and orders:
            order_id, ref, amount = rng.choice(orders)
            ev = {
                "id": eid,
                "type": "refund",
                "member": ref,
                "order_id": order_id,
                "amount": str(rng.choice([amount, amount // 2, amount // 3])),
                "currency": "IDR",
                "occurred_at": at.isoformat(),
            }
        elif roll < 0.82:
            ev = dict(rng.choice(events))  # the same event again
        elif roll < 0.85:
            ev = {**rng.choice(events), "occurred_at": at.isoformat()}  # id reused
        else:
            ev = {
                "id": eid,
                "type": "purchase",
                "member": member_ref(rng),
                "order_id": f"O-{i}",
                "amount": "50000",
                "currency": "IDR",
                "occurred_at": at.isoformat(),
            }
            bad = rng.randrange(7)
            if bad == 0:
                ev["currency"] = "USD"  # not the program's
            elif bad == 1:
                ev["amount"] = "12.5"  # rupiah have no decimals
            elif bad == 2:
                ev["occurred_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
            elif bad == 3:
                ev["member"] = {}  # 422
            elif bad == 4 and orders:
                ev["order_id"] = rng.choice(orders)[0]  # order already recorded
            elif bad == 5:
                ev["member"] = {"id": "00000000-0000-7000-8000-000000000000"}
            else:
                ev["currency"] = "XXXX"
        events.append(ev)
    rounds: list[list[dict[str, Any]]] = []
    i = 0
    while i < len(events):
        size = rng.randint(20, 90)
        rounds.append(events[i : i + size])
        i += size
    return rounds


class Labels:
    """Generated ids replaced by their order of first appearance."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(value[k]) for k in sorted(value)}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, str) and UUID_RE.match(value):
            return self.seen.setdefault(value, f"<id{len(self.seen)}>")
        return value


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    if isinstance(value, str) and UUID_RE.match(value):
        return "<id>"
    return value


def answer(status: int, body: dict[str, Any]) -> Any:
    if status >= 400:
        return (status, body.get("code"))
    return (status, body)


def send_one_by_one(
    client: TestClient, t: TenantFixture, events: list[dict[str, Any]]
) -> list[Any]:
    out = []
    for ev in events:
        r = client.post("/v1/events", json=ev, headers=t.headers)
        out.append(answer(r.status_code, r.json()))
    return out


def send_batches(
    client: TestClient, t: TenantFixture, events: list[dict[str, Any]], rng: random.Random
) -> list[Any]:
    out: list[Any] = []
    i = 0
    while i < len(events):
        chunk = events[i : i + rng.choice([1, 3, 10, 40, 90])]
        i += len(chunk)
        r = client.post("/v1/events/batch", json={"events": chunk}, headers=t.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        for item in body["results"]:
            if item["status"] >= 400:
                out.append((item["status"], item["error"]["code"]))
            else:
                out.append((item["status"], item["result"]))
        assert body["created"] + body["duplicates"] + body["failed"] == len(chunk)
    return out


def redeem_round(client: TestClient, tenants: list[TenantFixture], rng: random.Random) -> None:
    """Spend some points of every member the same way in both tenants (so refunds make debt)."""
    for ext, _phone in PEOPLE:
        share = rng.choice([0, 2, 1])
        balances = []
        ids = []
        for t in tenants:
            r = client.get("/v1/members/lookup", params={"external_id": ext}, headers=t.headers)
            if r.status_code == 404:
                ids.append(None)
                balances.append(None)
                continue
            mid = r.json()["id"]
            ids.append(mid)
            balances.append(
                client.get(f"/v1/members/{mid}/balance", headers=t.headers).json()["available"]
            )
        assert balances[0] == balances[1], (ext, balances)
        available = balances[0]
        if not share or not available:
            continue
        for t, mid in zip(tenants, ids, strict=True):
            r = client.post(
                f"/v1/members/{mid}/points/redeem",
                json={"points": max(1, available // share)},
                headers=t.headers,
            )
            assert r.status_code == 201, r.text


def snapshot(db: Database, t: TenantFixture) -> dict[str, Any]:
    """Everything the events wrote for one tenant, ids replaced by what they stand for."""
    params = {"tenant": str(t.tenant_id), "program": str(t.program_id)}
    if db.engine.dialect.name == "sqlite":
        params = {k: v.replace("-", "") for k, v in params.items()}
    member_name = "(SELECT COALESCE(m.external_id, m.phone) FROM members m WHERE m.id = {col})"
    queries = {
        "members": "SELECT external_id, phone, status, tags, last_activity_at FROM members "
        "WHERE tenant_id = :tenant",
        "accounts": f"SELECT a.code, {member_name.format(col='a.member_id')}, a.debits_posted,"
        " a.credits_posted, a.debits_pending, a.credits_pending, a.version"
        " FROM ledger_accounts a WHERE a.program_id = :program",
        "entries": f"SELECT a.code, {member_name.format(col='a.member_id')}, e.account_version,"
        " e.amount, e.balance_after, tr.code, tr.amount, tr.source_type,"
        # redemptions are made by the test at its own time, with each tenant's key
        " CASE WHEN tr.actor = 'event' THEN tr.effective_at END,"
        " tr.program_revision, CASE WHEN tr.actor = 'event' THEN tr.actor END"
        " FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id"
        " JOIN ledger_transfers tr ON tr.id = e.transfer_id WHERE a.program_id = :program",
        "lots": f"SELECT {member_name.format(col='l.member_id')}, a.code, l.source_type,"
        " CASE WHEN l.source_type = 'order' THEN l.source_id END, l.amount, l.remaining,"
        " l.earned_at, l.pending_until, l.expires_at, l.released_at IS NULL"
        " FROM point_lots l JOIN ledger_accounts a ON a.id = l.account_id"
        " WHERE l.program_id = :program",
        "movements": "SELECT mv.amount, l.amount, l.earned_at FROM point_lot_movements mv"
        " JOIN point_lots l ON l.id = mv.lot_id WHERE l.program_id = :program",
        "events": "SELECT client_event_id, type, occurred_at, request_hash, order_id, amount,"
        f" currency, payload, result, {member_name.format(col='events.member_id')}"
        " FROM events WHERE tenant_id = :tenant",
        "orders": "SELECT order_id, amount, currency, lines, points_earned, refunded_amount,"
        f" points_reversed, occurred_at, {member_name.format(col='orders.member_id')}"
        " FROM orders WHERE tenant_id = :tenant",
        "rule_awards": "SELECT r.name, ra.rule_revision, ra.points, ra.occurred_at,"
        f" {member_name.format(col='ra.member_id')},"
        " (SELECT e.client_event_id FROM events e WHERE e.id = ra.event_id)"
        " FROM rule_awards ra JOIN rules r ON r.id = ra.rule_id WHERE ra.program_id = :program",
        "tier_activity": f"SELECT {member_name.format(col='ta.member_id')}, ta.day, ta.kind,"
        " ta.spend, ta.points, ta.orders, ta.count FROM tier_activity ta"
        " WHERE ta.program_id = :program",
        "outbox": "SELECT topic, payload FROM outbox WHERE tenant_id = :tenant",
    }
    out: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for name, sql in queries.items():
            rows = [mask(_plain(tuple(r))) for r in conn.execute(text(sql), params)]
            out[name] = sorted(rows, key=repr)
    return out


def _diff(left: Any, right: Any) -> str:
    return "\n".join(
        difflib.unified_diff(
            pprint.pformat(left, width=100).splitlines(),
            pprint.pformat(right, width=100).splitlines(),
            lineterm="",
        )
    )


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as comparable text (JSON text on SQLite, objects on PostgreSQL)."""
    out: list[Any] = []
    for v in row:
        if isinstance(v, str) and v[:1] in "[{":
            with contextlib.suppress(ValueError):
                v = json.loads(v)
        if isinstance(v, datetime) and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        if isinstance(v, (dict, list)):
            v = json.loads(json.dumps(v, sort_keys=True, default=str))
        elif not isinstance(v, (int, str, type(None), bool)):
            v = str(v)
        out.append(v)
    return tuple(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_answer_and_write_what_one_by_one_does(
    db: Database, client: TestClient, seed: int
) -> None:
    single, batched = make_tenant(db, name="One by one"), make_tenant(db, name="Batched")
    pending = [0, 7, 3][seed - 1]
    for t in (single, batched):
        configure(db, t, refund_shortfall="debt", pending_days=pending)
        for rule in RULES:
            r = client.post("/v1/rules", json=rule, headers=t.headers)
            assert r.status_code == 201, r.text
        for ext, phone in PEOPLE[:KNOWN]:
            r = client.post(
                "/v1/members", json={"external_id": ext, "phone": phone}, headers=t.headers
            )
            assert r.status_code == 201, r.text

    rounds = history(seed, 260)
    rng_batches, rng_redeem = random.Random(seed * 7), random.Random(seed * 11)
    one: list[Any] = []
    many: list[Any] = []
    for events in rounds:
        one += send_one_by_one(client, single, events)
        many += send_batches(client, batched, events, rng_batches)
        redeem_round(client, [single, batched], rng_redeem)

    assert len(one) == len(many) == sum(len(r) for r in rounds)
    labels_one, labels_many = Labels(), Labels()
    for n, (a, b) in enumerate(zip(one, many, strict=True)):
        left, right = labels_one(a), labels_many(b)
        assert left == right, f"answer {n} differs:\n{_diff(left, right)}"
    statuses = {a[0] for a in one}
    assert {200, 201, 404, 409, 422} <= statuses, statuses  # the history covers every outcome

    snap_one, snap_many = snapshot(db, single), snapshot(db, batched)
    for table in snap_one:
        assert snap_one[table] == snap_many[table], (
            f"{table} differs:\n{_diff(snap_one[table], snap_many[table])}"
        )
    codes = {row[5] for row in snap_one["entries"]}
    assert {"EARN", "REVERSAL", "REDEEM"} <= codes, codes
    with db.session() as session:
        report = verify(session)
    assert report.ok, report.checks
