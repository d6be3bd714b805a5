"""The one-by-one and the batch event paths count the same progress, give the same rewards
and the same points (rules reading member.badges included); retried and replayed events
never count twice."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.core.db import Database
from setia.ledger.models import Transfer
from setia.members.models import Member
from tests.badges.support import custom, define, progress_rows, purchase, send, send_batch
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound

SKUS = [
    ("KOPI", "coffee"),
    ("LATTE", "coffee"),
    ("MOCHA", "coffee"),
    ("TEH", "tea"),
    ("ROTI", "bakery"),
]


def definitions(client: TestClient, t: TenantFixture) -> None:
    define(
        client,
        t,
        "penjelajah",
        {
            "event_type": "purchase",
            "measure": "distinct",
            "field": "item.sku",
            "items_where": {"field": "item.category", "op": "eq", "value": "coffee"},
            "target": 3,
        },
        rewards={"points": 300},
    )
    define(
        client,
        t,
        "setia",
        {"event_type": "purchase", "measure": "count", "target": 4},
        rewards={"points": 100},
    )
    define(
        client,
        t,
        "bulanan",
        {"event_type": "purchase", "measure": "count", "target": 3},
        kind="challenge",
        period={"type": "month", "recurring": True},
        rewards={"points": 50},
    )
    define(
        client,
        t,
        "mingguan",
        {"event_type": "purchase", "measure": "streak", "streak_unit": "week", "target": 2},
        kind="challenge",
        period={"type": "month", "recurring": True},
    )
    define(
        client,
        t,
        "belanja",
        {"event_type": "purchase", "measure": "sum", "field": "event.amount", "target": "300000"},
        kind="challenge",
    )
    define(
        client,
        t,
        "ulasan",
        {"event_type": "review.submitted", "measure": "first", "target": 1},
        rewards={"points": 20},
    )
    # Members with the explorer badge earn 1.5x: a badge completed by an earlier event of
    # the same batch must count for the later ones.
    r = client.post(
        "/v1/rules",
        json={
            "name": "Explorer bonus",
            "triggers": ["purchase"],
            "effect": {"type": "multiplier", "factor": "1.5"},
            "conditions": {"field": "member.badges", "op": "contains", "value": "penjelajah"},
        },
        headers=t.headers,
    )
    assert r.status_code == 201, r.text


def history(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    at = datetime(2026, 8, 25, 1, 0, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for i in range(n):
        at += timedelta(minutes=rng.randint(30, 1200))
        member = f"M{rng.randint(1, 6)}"
        if rng.random() < 0.15:
            out.append(custom(member, at, "review.submitted", attributes={"rating": 5}))
            continue
        items = [
            {"sku": sku, "category": cat, "quantity": rng.randint(1, 2), "unit_price": "20000"}
            for sku, cat in rng.sample(SKUS, rng.randint(1, 2))
        ]
        out.append(
            purchase(
                member,
                at,
                amount=str(rng.randint(2, 12) * 10000),
                items=items,
                event_id=f"s{seed}-{i}",
            )
        )
    return out


def _fresh(ev: dict[str, Any], tag: str) -> dict[str, Any]:
    e = {**ev, "id": f"{tag}-{ev['id']}"}
    if "order_id" in e:
        e["order_id"] = f"{tag}-{ev['order_id']}"
    return e


def _state(db: Database, t: TenantFixture) -> dict[str, Any]:
    with db.session() as s:
        members = {
            m.id: m.external_id
            for m in s.execute(select(Member).where(Member.tenant_id == t.tenant_id)).scalars()
        }
        rewards = sorted(
            (members[uuid_from(key)], key.rsplit(":", 1)[1], amount)
            for key, amount in s.execute(
                select(Transfer.idempotency_key, Transfer.amount).where(
                    Transfer.program_id == t.program_id, Transfer.source_type == "badge"
                )
            )
        )
    return {
        "progress": [dict(r.items()) for r in progress_rows(db, t)],
        "rewards": rewards,
    }


def uuid_from(key: str) -> Any:
    import uuid

    return uuid.UUID(key.split(":")[2])


def _balances(client: TestClient, t: TenantFixture, member_ids: dict[str, str]) -> dict[str, Any]:
    out = {}
    for ext, mid in sorted(member_ids.items()):
        r = client.get(f"/v1/members/{mid}/balance", headers=t.headers)
        assert r.status_code == 200, r.text
        b = r.json()
        out[ext] = (b.get("available"), b.get("pending"))
    return out


def test_one_by_one_and_batches_count_the_same(client: TestClient, db: Database) -> None:
    one, many = make_tenant(db), make_tenant(db)
    for t in (one, many):
        definitions(client, t)
    events = history(7, 120)
    answers_one = send(client, one, *events)
    rng = random.Random(3)
    answers_many: list[dict[str, Any]] = []
    i = 0
    while i < len(events):
        size = rng.randint(1, 40)
        body = send_batch(client, many, events[i : i + size])
        answers_many += [r["result"] for r in body["results"]]
        i += size
    # Same points per event (the 1.5x rule reads member.badges on both paths).
    assert [a.get("points", {}).get("earned") for a in answers_one] == [
        a.get("points", {}).get("earned") for a in answers_many
    ]
    assert any(
        aw["rule_name"] == "Explorer bonus"
        for a in answers_one
        for aw in a.get("points", {}).get("awards", [])
    )
    a, b = _state(db, one), _state(db, many)
    assert a == b
    assert len(a["rewards"]) >= 6
    ids_one = {
        e["member"]["external_id"]: ans["member_id"]
        for e, ans in zip(events, answers_one, strict=True)
    }
    ids_many = {
        e["member"]["external_id"]: ans["member_id"]
        for e, ans in zip(events, answers_many, strict=True)
    }
    assert _balances(client, one, ids_one) == _balances(client, many, ids_many)
    assert_db_sound(db)


def test_retried_and_replayed_events_never_count_twice(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    definitions(client, t)
    events = history(11, 40)
    send_batch(client, t, events[:25])
    for e in events[25:]:
        send(client, t, e)
    before = _state(db, t)
    # A retried single event, a replayed batch (all duplicates), and a batch mixing both.
    again = send(client, t, events[3])
    assert again[0]["id"] == events[3]["id"]
    replay = send_batch(client, t, events)
    assert replay["duplicates"] == len(events)
    mixed = send_batch(client, t, [*events[:10], _fresh(events[0], "new")])
    assert mixed["created"] == 1
    after = _state(db, t)
    fresh_member = events[0]["member"]["external_id"]
    changed = [r for r in after["progress"] if r not in before["progress"]]
    assert all(r["member"] == fresh_member for r in changed)
    assert set(before["rewards"]) <= set(after["rewards"])
    # Without the fresh event, replays change nothing at all.
    send_batch(client, t, events)
    assert _state(db, t) == after
    assert_db_sound(db)


def test_completion_rewards_once_even_when_counted_again(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """The reward's ledger key is per (definition, member, period): a second completion of
    the same period (e.g. a demo replay) gives nothing more."""
    from setia.badges import service
    from setia.badges.models import BadgeProgress
    from setia.programs import service as programs
    from setia.tenants.models import Tenant

    t = tenant
    define(
        client,
        t,
        "satu",
        {"event_type": "purchase", "measure": "count", "target": 1},
        rewards={"points": 70},
    )
    send(client, t, purchase("M1", "2026-10-01T10:00:00+07:00"))
    with db.session() as s:
        tenant_row = s.get(Tenant, t.tenant_id)
        assert tenant_row is not None
        program = programs.get_program(s, t.tenant_id, None)
        row = s.execute(select(BadgeProgress)).scalar_one()
        spec = service.specs_by_type(s, program.id)["purchase"][0]
        copy = service.Row(
            id=row.id,
            program_id=row.program_id,
            definition_id=row.definition_id,
            member_id=row.member_id,
            period_key=row.period_key,
            completed_at=row.completed_at,
        )
        service._reward(s, tenant_row, program, service.Completion(spec, copy, t.tenant_id))
        s.commit()
    with db.session() as s:
        n = (
            s.execute(select(Transfer.amount).where(Transfer.source_type == "badge"))
            .scalars()
            .all()
        )
    assert n == [70]
    assert_db_sound(db)
