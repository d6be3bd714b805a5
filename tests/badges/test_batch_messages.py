"""What the batch path sends and how it matches: at most one ``challenge.progressed`` per
member, challenge and period in a batch, with the latest progress; none when the batch
completes the challenge; one by one, a message per visible change. The definitions'
yes/no matchers agree with the rules' compiled conditions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from setia.badges.service import matcher
from setia.core.db import Database
from setia.rules import engine
from setia.rules.conditions import (
    compile_condition,
)
from tests.badges.support import define, purchase, send, send_batch, topics
from tests.conftest import TenantFixture
from tests.rules import strategies as gen

MONTHLY = {"type": "month", "recurring": True}


def _challenge(client: TestClient, t: TenantFixture) -> None:
    define(
        client,
        t,
        "lima-kali",
        {"event_type": "purchase", "measure": "count", "target": 5},
        kind="challenge",
        period=MONTHLY,
    )


def _progressed(db: Database) -> list[tuple[str, str, str]]:
    return [
        (p["member_id"], p["value"], p["period"]) for _t, p in topics(db, "challenge.progressed")
    ]


def test_a_batch_sends_one_progress_message_per_member_with_the_latest(
    client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _challenge(client, tenant)
    events = [
        purchase("M1", "2026-10-02T10:00:00+07:00"),
        purchase("M2", "2026-10-02T11:00:00+07:00"),
        purchase("M1", "2026-10-03T10:00:00+07:00"),
        purchase("M1", "2026-10-04T10:00:00+07:00"),
        purchase("M1", "2026-11-01T10:00:00+07:00"),  # another period: its own message
    ]
    send_batch(client, tenant, events)
    sent = sorted((value, period) for _m, value, period in _progressed(db))
    assert sent == [("1", "2026-10"), ("1", "2026-11"), ("3", "2026-10")]
    assert len({m for m, _v, _p in _progressed(db)}) == 2
    # the next batch starts again: one more message with the running total
    send_batch(client, tenant, [purchase("M1", "2026-10-05T10:00:00+07:00")])
    assert sorted(v for _m, v, p in _progressed(db) if p == "2026-10") == ["1", "3", "4"]


def test_a_batch_that_completes_sends_only_the_completion(
    client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _challenge(client, tenant)
    send_batch(
        client,
        tenant,
        [purchase("M1", f"2026-10-0{d}T10:00:00+07:00") for d in range(1, 7)],
    )
    assert _progressed(db) == []
    done = topics(db, "challenge.completed")
    assert [(p["value"], p["period"]) for _t, p in done] == [("5", "2026-10")]


def test_one_by_one_sends_a_message_per_change(
    client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _challenge(client, tenant)
    send(
        client,
        tenant,
        purchase("M1", "2026-10-02T10:00:00+07:00"),
        purchase("M1", "2026-10-03T10:00:00+07:00"),
    )
    assert [v for _m, v, _p in _progressed(db)] == ["1", "2"]


LINES = [
    {"sku": "KOPI", "category": "coffee", "quantity": 2, "unit_price": "25000"},
    {"sku": "ROTI", "category": "bakery", "quantity": 1, "unit_price": "20000"},
]
CONDITIONS: list[dict[str, Any]] = [
    {"field": "event.channel", "op": "eq", "value": "app"},
    {"field": "event.channel", "op": "ne", "value": "app"},
    {"field": "event.amount", "op": "gte", "value": "150000"},
    {"field": "event.amount", "op": "between", "value": ["10000", "80000"]},
    {"field": "event.store", "op": "in", "value": ["dago", "braga"]},
    {"field": "event.store", "op": "not_in", "value": ["dago"]},
    {"field": "event.store", "op": "exists"},
    {"field": "event.local_date", "op": "gt", "value": "2026-06-01"},
    {"field": "event.local_time", "op": "between", "value": ["08:00", "11:00"]},
    {"items": {"where": {"field": "item.category", "op": "eq", "value": "coffee"}}},
    {"items": {"where": {"field": "item.category", "op": "eq", "value": "tea"}}},
    {"items": {"min_quantity": 3}},
    {
        "all": [
            {"field": "event.channel", "op": "eq", "value": "pos"},
            {"not": {"field": "event.amount", "op": "lt", "value": "50000"}},
        ]
    },
    {
        "any": [
            {"field": "event.channel", "op": "eq", "value": "app"},
            {"items": {"where": {"field": "item.sku", "op": "eq", "value": "ROTI"}}},
        ]
    },
]
EVENTS: list[dict[str, Any]] = [
    {
        "channel": "app",
        "amount": Decimal("70000"),
        "store": "dago",
        "local_date": "2026-11-25",
        "local_time": "09:30",
    },
    {"channel": "pos", "amount": Decimal("200000"), "local_date": "2026-01-31"},
    {"channel": "pos", "amount": Decimal("30000"), "store": "braga"},
    {},
]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_matchers_agree_with_the_rules(condition: dict[str, Any]) -> None:
    yes_no, rule = matcher(condition), compile_condition(condition)
    for event in EVENTS:
        for items in (LINES, LINES[1:], []):
            ctx = {"event": event, "items": items}
            assert yes_no(ctx) is rule(ctx).ok, (event, items)


# Any condition the rules accept (the rules' own strategies), on any event as recording
# builds its context: the matchers' decided-once comparisons must agree with the rules.
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tree=gen.condition_trees, event=gen.contexts(), where=gen.item_trees)
def test_matchers_agree_with_the_rules_on_any_values(
    tree: dict[str, Any], event: dict[str, Any], where: dict[str, Any]
) -> None:
    ctx = engine.build_context(**event)
    assert matcher(tree)(ctx) is compile_condition(tree)(ctx).ok, ctx
    # a definition's items_where: asked of each line, as the rules ask {"item": line}
    on_line, rule = matcher(where, line=True), compile_condition(where)
    for line in ctx["items"]:
        assert on_line(line) is rule({"item": line}).ok, line
