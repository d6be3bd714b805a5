"""What the batch path sends and how it matches: at most one ``challenge.progressed`` per
member, challenge and period in a batch, with the latest progress; none when the batch
completes the challenge; one by one, a message per visible change. The definitions'
yes/no matchers agree with the rules' compiled conditions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from setia.badges.service import matcher
from setia.core.db import Database
from setia.rules.conditions import (
    ANY,
    BOOL,
    DATE,
    NUMBER,
    OPS,
    STRING,
    STRINGS,
    ConditionError,
    compile_condition,
    validate,
)
from tests.badges.support import define, purchase, send, send_batch, topics
from tests.conftest import TenantFixture

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
    {"channel": "app", "amount": Decimal("70000"), "store": "dago"},
    {"channel": "pos", "amount": Decimal("200000")},
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


# Any condition the rules accept, against contexts whose values are of any JSON-ish type:
# the matcher's decided-once comparisons must agree with the rules everywhere.
_FIELDS = {
    "event.channel": STRING,
    "event.amount": NUMBER,
    "event.local_date": DATE,
    "event.local_day_of_week": STRING,
    "event.attributes.tier": ANY,
    "member.is_first_purchase": BOOL,
    "member.tags": STRINGS,
    "item.category": STRING,
    "item.quantity": NUMBER,
}
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200_000),
    st.decimals(-10, 200_000, allow_nan=False, places=2),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["app", "pos", "sat", "coffee", "2026-11-25", "150000", " 7 ", "x", ""]),
)
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3))


_TYPED = {
    STRING: st.sampled_from(["app", "pos", "sat", "coffee", "x", ""]),
    STRINGS: st.sampled_from(["vip", "staff"]),
    NUMBER: st.one_of(
        st.integers(-5, 200_000),
        st.decimals(-10, 200_000, allow_nan=False, places=2),
        st.sampled_from(["150000", " 7 ", "0.5"]),
    ),
    DATE: st.sampled_from(["2026-11-25", "2026-12-31", "2026-01-01"]),
    BOOL: st.booleans(),
    ANY: _SCALARS,
}


@st.composite
def _leaf(draw: st.DrawFn, item: bool = False) -> dict[str, Any]:
    names = [n for n in _FIELDS if n.startswith("item.") == item]
    name = draw(st.sampled_from(names))
    kind = _FIELDS[name]
    op = draw(st.sampled_from([op for op, kinds in OPS.items() if kind in kinds]))
    node: dict[str, Any] = {"field": name, "op": op}
    # mostly a value of the field's type (what the rules accept), sometimes anything
    typed = _TYPED[kind]
    if op in ("in", "not_in"):
        value = st.lists(typed, min_size=1, max_size=3)
    elif op == "between":
        value = st.lists(typed, min_size=2, max_size=2)
    else:
        value = typed
    if op != "exists" or draw(st.booleans()):
        node["value"] = draw(value if draw(st.integers(0, 5)) else _VALUES)
    return node


def _tree(item: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    leaves: st.SearchStrategy[dict[str, Any]] = _leaf(item)
    if not item:
        leaves = leaves | st.builds(
            lambda where, q: {"items": {**({"where": where} if where else {}), **q}},
            st.none() | _tree(item=True),
            st.sampled_from([{}, {"min_quantity": 3}, {"min_amount": "40000"}]),
        )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
            st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=4,
    )


_LINE = st.fixed_dictionaries(
    {},
    optional={"category": _SCALARS, "quantity": _SCALARS, "amount": _SCALARS, "sku": _SCALARS},
)
_CONTEXT = st.fixed_dictionaries(
    {
        "event": st.fixed_dictionaries(
            {},
            optional={
                "channel": _VALUES,
                "amount": _VALUES,
                "local_date": _VALUES,
                "local_day_of_week": _VALUES,
                "attributes": st.fixed_dictionaries({}, optional={"tier": _VALUES}) | _SCALARS,
            },
        ),
        "member": st.fixed_dictionaries(
            {}, optional={"is_first_purchase": _VALUES, "tags": _VALUES}
        ),
        "items": st.lists(_LINE, max_size=3),
    }
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(condition=_tree(), contexts=st.lists(_CONTEXT, min_size=1, max_size=4))
def test_matchers_agree_with_the_rules_on_any_values(
    condition: dict[str, Any], contexts: list[dict[str, Any]]
) -> None:
    try:
        validate(condition)
    except ConditionError:
        assume(False)
    yes_no, rule = matcher(condition), compile_condition(condition)
    for ctx in contexts:
        assert yes_no(ctx) is rule(ctx).ok, ctx


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(where=_tree(item=True), lines=st.lists(_LINE, min_size=1, max_size=4))
def test_line_matchers_agree_with_the_rules(
    where: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    try:
        validate(where, item=True)
    except ConditionError:
        assume(False)
    on_line, rule = matcher(where, line=True), compile_condition(where)
    for line in lines:
        assert on_line(line) is rule({"item": line}).ok, line
