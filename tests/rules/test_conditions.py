"""Conditions: every field of the registry, every operator, all/any/not, items tests and
free-form attributes, evaluated on a context built the way the events service builds it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from setia.rules.conditions import FIELDS, ITEM_FIELDS, OPS, ConditionError, evaluate, validate
from setia.rules.engine import build_context
from tests.rules.helpers import JKT

# Monday 2 March 2026, 09:30 in Jakarta (02:30 UTC).
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=JKT)
ITEMS = [
    {"sku": "KOPI-SUSU", "name": "Es Kopi Susu", "category": "coffee", "brand": "Kopi Kita",
     "quantity": 2, "unit_price": "25000"},
    {"sku": "CROISSANT", "name": "Croissant", "category": "bakery", "quantity": 1,
     "unit_price": "35000"},
    {"sku": "DELIVERY", "category": "fee", "quantity": 1, "unit_price": "15000"},
]  # fmt: skip
MEMBER = {
    "tags": ["vip", "mahasiswa"],
    "attributes": {"city": "Bandung", "kids": 2},
    "locale": "id",
    "created_at": datetime(2025, 3, 1, tzinfo=UTC),
    "birthday": date(1994, 3, 17),
    "order_count": 3,
    "tier": "gold",
    "tier_multiplier": "1.5",
    "plan": "plus",
    "plan_multiplier": "2",
    "badges": ["penjelajah-kopi"],
    "rfm_segment": "at_risk",
    "loyalty_label": "loyal",
    "loyalty_type": "habitual",
    "p_alive": 0.42,
    "clv": Decimal("350000"),
}


def ctx(**kw: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "event_type": "purchase",
        "occurred_at": WHEN,
        "tz_name": "Asia/Jakarta",
        "amount": Decimal(100_000),
        "currency": "IDR",
        "items": ITEMS,
        "store": "bandung-dago",
        "channel": "pos",
        "payment_method": "qris",
        "attributes": {"rating": 5, "source": "app", "nested": {"level": "gold"}},
        "member": MEMBER,
    }
    params.update(kw)
    return build_context(**params)


def holds(node: dict[str, Any], context: dict[str, Any] | None = None) -> bool:
    validate(node)  # every case is a well-formed, saveable condition
    return evaluate(node, context or ctx()).ok


def cmp(field: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def items(where: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = dict(kw)
    if where is not None:
        spec["where"] = where
    return {"items": spec}


# (field, op, value, expected) against ctx(): a true and a false case for every field.
FIELD_CASES: list[tuple[str, str, Any, bool]] = [
    ("event.type", "eq", "purchase", True),
    ("event.type", "eq", "review.submitted", False),
    ("event.amount", "gte", "100000", True),
    ("event.amount", "gt", "100000", False),
    ("event.amount", "between", ["50000", "150000"], True),
    ("event.amount", "lt", 100000, False),
    ("event.amount", "eq", "100000.00", True),
    ("event.currency", "eq", "IDR", True),
    ("event.currency", "in", ["MYR", "SGD"], False),
    ("event.store", "in", ["bandung-dago", "bandung-braga"], True),
    ("event.store", "not_in", ["bandung-dago", "bandung-braga"], False),
    ("event.store", "eq", "jakarta-kemang", False),
    ("event.channel", "ne", "web", True),
    ("event.channel", "eq", "web", False),
    ("event.payment_method", "eq", "qris", True),
    ("event.payment_method", "in", ["cash", "card"], False),
    ("event.item_count", "eq", 4, True),
    ("event.item_count", "gt", 4, False),
    ("event.local_date", "eq", "2026-03-02", True),
    ("event.local_date", "between", ["2026-03-01", "2026-03-31"], True),
    ("event.local_date", "lt", "2026-03-02", False),
    ("event.local_time", "between", ["06:00", "10:00"], True),
    ("event.local_time", "gte", "10:00", False),
    ("event.local_time", "eq", "09:30", True),
    ("event.local_hour", "eq", 9, True),  # 02:30 UTC: the hour is local
    ("event.local_hour", "lt", 9, False),
    ("event.local_day_of_week", "eq", "mon", True),
    ("event.local_day_of_week", "in", ["sat", "sun"], False),
    ("event.local_month", "eq", 3, True),
    ("event.local_month", "ne", 3, False),
    ("member.tags", "contains", "vip", True),
    ("member.tags", "contains", "karyawan", False),
    ("member.tags", "not_contains", "karyawan", True),
    ("member.tags", "not_contains", "vip", False),
    ("member.locale", "eq", "id", True),
    ("member.locale", "in", ["en", "ms"], False),
    ("member.tenure_days", "eq", 366, True),  # 1 Mar 2025 00:00 UTC → 2 Mar 2026 02:30 UTC
    ("member.tenure_days", "gte", 367, False),
    ("member.order_count", "eq", 3, True),
    ("member.order_count", "lte", 2, False),
    ("member.is_first_purchase", "eq", False, True),
    ("member.is_first_purchase", "eq", True, False),
    ("member.birthday_month", "eq", True, True),
    ("member.birthday_month", "ne", True, False),
    ("member.tier", "eq", "gold", True),
    ("member.tier", "in", ["silver", "bronze"], False),
    ("member.tier_multiplier", "gte", "1.5", True),
    ("member.tier_multiplier", "gt", "1.5", False),
    ("member.plan", "eq", "plus", True),
    ("member.plan", "ne", "plus", False),
    ("member.plan_multiplier", "eq", "2", True),
    ("member.plan_multiplier", "lt", "2", False),
    ("member.is_paid_member", "eq", True, True),
    ("member.is_paid_member", "eq", False, False),
    ("member.badges", "contains", "penjelajah-kopi", True),
    ("member.badges", "contains", "pelanggan-setia", False),
    ("member.rfm_segment", "in", ["at_risk", "cant_lose_them"], True),
    ("member.rfm_segment", "eq", "champions", False),
    ("member.loyalty_label", "eq", "loyal", True),
    ("member.loyalty_label", "ne", "loyal", False),
    ("member.loyalty_type", "eq", "habitual", True),
    ("member.loyalty_type", "eq", "transactional", False),
    ("member.p_alive", "lt", "0.5", True),
    ("member.p_alive", "gte", 0.5, False),
    ("member.clv", "gte", "350000", True),
    ("member.clv", "gt", "350000", False),
    ("member.referral_count", "eq", 0, True),  # not in MEMBER: none
    ("member.referral_count", "gt", 0, False),
    ("event.attributes.rating", "gte", 4, True),
    ("event.attributes.rating", "gte", "6", False),
    ("event.attributes.source", "in", ["app", "web"], True),
    ("event.attributes.nested.level", "eq", "gold", True),
    ("event.attributes.missing", "exists", False, True),
    ("event.attributes.rating", "exists", True, True),
    ("member.attributes.city", "eq", "Bandung", True),
    ("member.attributes.kids", "between", [1, 3], True),
    ("member.attributes.city", "exists", False, False),
    ("event.store", "exists", True, True),
]


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    FIELD_CASES,
    ids=[f"{f}-{o}-{e}" for f, o, _v, e in FIELD_CASES],
)
def test_every_field_compares_as_declared(field: str, op: str, value: Any, expected: bool) -> None:
    assert holds(cmp(field, op, value)) is expected


# (item field, op, value, expected): the order has 2 coffee, 1 bakery, 1 delivery line.
ITEM_CASES: list[tuple[str, str, Any, bool]] = [
    ("item.sku", "eq", "KOPI-SUSU", True),
    ("item.sku", "in", ["TEH-TARIK", "MATCHA"], False),
    ("item.name", "eq", "Croissant", True),
    ("item.name", "eq", "Roti Bakar", False),
    ("item.category", "eq", "coffee", True),
    ("item.category", "in", ["tea", "merch"], False),
    ("item.brand", "eq", "Kopi Kita", True),
    ("item.brand", "eq", "Other", False),
    ("item.quantity", "gte", 2, True),
    ("item.quantity", "gt", 2, False),
    ("item.unit_price", "gte", "35000", True),
    ("item.unit_price", "gt", "35000", False),
    ("item.amount", "eq", "50000", True),  # 2 × 25000
    ("item.amount", "gt", "50000", False),
]


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    ITEM_CASES,
    ids=[f"{f}-{o}-{e}" for f, o, _v, e in ITEM_CASES],
)
def test_every_item_field_matches_lines(field: str, op: str, value: Any, expected: bool) -> None:
    assert holds(items(cmp(field, op, value))) is expected


def test_the_cases_cover_the_whole_registry_and_every_operator() -> None:
    """A field or operator added to conditions.py without a test here fails this test."""
    assert {f for f, *_ in FIELD_CASES} >= set(FIELDS)
    assert {f for f, *_ in ITEM_CASES} == set(ITEM_FIELDS)
    used = {o for _f, o, *_ in FIELD_CASES} | {o for _f, o, *_ in ITEM_CASES}
    assert used == set(OPS)
    for field, _op, _v, expected in FIELD_CASES + ITEM_CASES:
        assert expected in (True, False), field
    # Every field has both a true and a false case.
    for field in FIELDS:
        outcomes = {e for f, _o, _v, e in FIELD_CASES if f == field}
        assert outcomes == {True, False}, field


def test_between_is_inclusive_at_both_ends() -> None:
    assert holds(cmp("event.amount", "between", ["100000", "200000"]))
    assert holds(cmp("event.amount", "between", ["50000", "100000"]))
    assert not holds(cmp("event.amount", "between", ["100001", "200000"]))
    assert holds(cmp("event.local_time", "between", ["09:30", "09:30"]))


def test_all_any_not() -> None:
    t = cmp("event.store", "eq", "bandung-dago")
    f = cmp("event.channel", "eq", "web")
    assert holds({"all": [t, t]})
    assert not holds({"all": [t, f]})
    assert holds({"any": [f, t]})
    assert not holds({"any": [f, f]})
    assert holds({"not": f})
    assert not holds({"not": t})
    assert holds({"all": [{"any": [f, {"not": f}]}, {"not": {"all": [t, f]}}]})


def test_all_reports_the_first_false_comparison_with_the_values_compared() -> None:
    node = {
        "all": [
            cmp("event.store", "eq", "bandung-dago"),
            cmp("event.amount", "gte", "150000"),
            cmp("event.channel", "eq", "web"),
        ]
    }
    out = evaluate(node, ctx())
    assert not out.ok
    assert out.reason == {
        "field": "event.amount",
        "op": "gte",
        "expected": "150000",
        "actual": "100000",
    }


def test_any_reports_every_branch_and_not_reports_what_held() -> None:
    out = evaluate(
        {"any": [cmp("event.channel", "eq", "web"), cmp("member.tags", "contains", "x")]}, ctx()
    )
    assert not out.ok
    assert out.reason is not None
    assert [r["field"] for r in out.reason["any_failed"]] == ["event.channel", "member.tags"]
    assert out.reason["any_failed"][1]["actual"] == ["vip", "mahasiswa"]
    inner = cmp("event.channel", "eq", "pos")
    out = evaluate({"not": inner}, ctx())
    assert not out.ok
    assert out.reason == {"not": inner, "was": True}


def test_items_thresholds_on_quantity_and_amount() -> None:
    coffee = cmp("item.category", "eq", "coffee")
    assert holds(items(coffee))  # one matching line is enough
    assert holds(items(coffee, min_quantity=2))
    assert not holds(items(coffee, min_quantity=3))
    assert holds(items(coffee, min_amount="50000"))
    assert not holds(items(coffee, min_amount="50001"))
    assert holds(items(coffee, min_quantity=2, min_amount="50000"))
    assert not holds(items(coffee, min_quantity=2, min_amount="60000"))
    # Without where, every line counts: 4 units for 100000.
    assert holds(items(min_quantity=4, min_amount="100000"))
    assert not holds(items(min_quantity=5))
    # Lines matching an any/not tree: everything but the delivery fee.
    not_fee = {"not": cmp("item.sku", "eq", "DELIVERY")}
    assert holds(items(not_fee, min_amount="85000"))
    assert not holds(items(not_fee, min_amount="85001"))
    out = evaluate(items(coffee, min_quantity=3), ctx())
    assert out.reason == {
        "items": {"where": coffee, "min_quantity": 3},
        "matching_lines": 1,
        "quantity": "2",
        "amount": "50000",
    }


def test_items_on_an_event_without_items_is_false() -> None:
    assert not holds(items(cmp("item.category", "eq", "coffee")), ctx(items=None))
    assert not holds(items(min_quantity=1), ctx(items=[]))
    assert holds(cmp("event.item_count", "eq", 0), ctx(items=None))


def test_missing_values_make_comparisons_false_and_negations_true() -> None:
    bare = ctx(store=None, channel=None, payment_method=None, attributes=None, amount=None)
    out = evaluate(cmp("event.store", "eq", "bandung-dago"), bare)
    assert not out.ok
    assert out.reason == {
        "field": "event.store",
        "op": "eq",
        "expected": "bandung-dago",
        "actual": None,
        "missing": True,
    }
    assert not holds(cmp("event.amount", "gte", 1), bare)
    assert holds(cmp("event.store", "ne", "bandung-dago"), bare)
    assert holds(cmp("event.channel", "not_in", ["web"]), bare)
    assert holds(cmp("event.attributes.rating", "exists", False), bare)
    assert not holds(cmp("event.attributes.rating", "exists", True), bare)
    assert holds(cmp("event.payment_method", "exists", False), bare)


def test_free_form_values_of_another_type_compare_false_without_raising() -> None:
    odd = ctx(attributes={"rating": "lima", "flags": ["a"], "obj": {"x": 1}, "yes": True})
    assert not holds(cmp("event.attributes.rating", "gte", 4), odd)
    assert holds(cmp("event.attributes.rating", "eq", "lima"), odd)
    assert not holds(cmp("event.attributes.obj", "gt", 1), odd)
    assert holds(cmp("event.attributes.obj", "ne", 1), odd)
    assert holds(cmp("event.attributes.flags", "contains", "a"), odd)
    assert not holds(cmp("event.attributes.rating", "contains", "a"), odd)
    assert holds(cmp("event.attributes.yes", "eq", True), odd)
    assert not holds(cmp("event.attributes.yes", "eq", 1), odd)  # a bool is not a number
    assert not holds(cmp("event.attributes.rating", "between", [1, 5]), odd)
    assert not holds(cmp("event.attributes.rating", "in", [1, 2]), odd)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity")]
)
def test_non_finite_numbers_are_not_numbers_and_never_raise(value: Any) -> None:
    """JSON parsers accept NaN and Infinity; a comparison with them is false, not an error."""
    odd = ctx(attributes={"rating": value, "list": [1, value]})
    for op, expected in (("gt", 1), ("gte", 1), ("lt", 1), ("eq", 1), ("between", [0, 9]),
                         ("in", [1, 2])):  # fmt: skip
        assert not holds(cmp("event.attributes.rating", op, expected), odd)
    assert holds(cmp("event.attributes.rating", "ne", 1), odd)
    assert holds(cmp("event.attributes.rating", "not_in", [1, 2]), odd)
    assert holds(cmp("event.attributes.list", "contains", 1), odd)


def test_line_prices_that_are_not_numbers_are_missing_and_worth_nothing() -> None:
    lines = [{"sku": "A", "quantity": 2, "unit_price": "gratis"}, {"sku": "B", "quantity": 1,
             "unit_price": "NaN"}, {"sku": "C", "quantity": 1, "unit_price": "1000"}]  # fmt: skip
    odd = ctx(items=lines)
    assert holds(items(min_quantity=4, min_amount="1000"), odd)
    assert not holds(items(min_amount="1001"), odd)
    assert not holds(items(cmp("item.unit_price", "gte", 0)), ctx(items=lines[:2]))
    assert holds(items(cmp("item.unit_price", "exists", False)), odd)


def test_numbers_compare_by_value_not_by_text() -> None:
    assert holds(cmp("event.amount", "gt", "99999.5"))
    assert holds(cmp("event.amount", "lt", "1e6"))
    assert holds(cmp("event.attributes.rating", "eq", "5.0"))
    assert holds(cmp("event.attributes.rating", "in", ["4", "5"]))
    assert holds(cmp("event.attributes.rating", "gt", 10), ctx(attributes={"rating": 11}))


def test_local_fields_follow_the_tenant_zone() -> None:
    late = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # Sunday in UTC, Monday 00:30 in Jakarta
    jakarta = ctx(occurred_at=late)
    assert holds(cmp("event.local_day_of_week", "eq", "mon"), jakarta)
    assert holds(cmp("event.local_date", "eq", "2026-03-02"), jakarta)
    assert holds(cmp("event.local_hour", "eq", 0), jakarta)
    utc = ctx(occurred_at=late, tz_name="UTC")
    assert holds(cmp("event.local_day_of_week", "eq", "sun"), utc)
    assert holds(cmp("event.local_time", "eq", "17:30"), utc)
    # February's last evening in UTC is already March in Jakarta.
    feb = ctx(occurred_at=datetime(2026, 2, 28, 18, 0, tzinfo=UTC))
    assert holds(cmp("event.local_month", "eq", 3), feb)
    assert holds(cmp("member.birthday_month", "eq", True), feb)


def test_member_facts_for_a_first_purchase() -> None:
    new = ctx(member={"created_at": WHEN, "order_count": 0})
    assert holds(cmp("member.is_first_purchase", "eq", True), new)
    assert holds(cmp("member.tenure_days", "eq", 0), new)
    assert holds(cmp("member.birthday_month", "eq", False), new)
    assert holds(cmp("member.tags", "not_contains", "vip"), new)
    # Only a purchase can be a first purchase.
    review = ctx(event_type="review.submitted", member={"order_count": 0})
    assert holds(cmp("member.is_first_purchase", "eq", False), review)


def test_evaluate_never_calls_eval_on_strange_strings() -> None:
    nasty = "__import__('os').system('false')"
    node = {"any": [cmp("event.store", "eq", nasty), cmp("event.attributes.x", "eq", nasty)]}
    assert not holds(node, ctx(store="x", attributes={"x": "y"}))
    assert holds(cmp("event.store", "eq", nasty), ctx(store=nasty))


# --------------------------------------------------------------------------- validation


BAD: list[tuple[Any, str, str]] = [
    # (tree, path of the bad node, words in the message)
    ("purchase", "conditions", "must be an object"),
    ({}, "conditions", "expected all, any, not, items"),
    ({"op": "eq", "value": 1}, "conditions", "comparison with field"),
    ({"field": "event.amont", "op": "eq", "value": "1"}, "conditions.field", "unknown field"),
    ({"field": 7, "op": "eq", "value": "1"}, "conditions.field", "unknown field"),
    ({"field": "event.amount", "op": "approx", "value": "1"}, "conditions.op", "unknown operator"),
    ({"field": "event.amount", "value": "1"}, "conditions.op", "unknown operator"),
    ({"field": "event.amount", "op": "contains", "value": "1"}, "conditions.op", "does not apply"),
    ({"field": "member.tags", "op": "gt", "value": "x"}, "conditions.op", "does not apply"),
    ({"field": "event.amount", "op": "gte"}, "conditions", "needs a value"),
    ({"field": "event.amount", "op": "gte", "value": "lots"}, "conditions.value", "a number"),
    ({"field": "event.amount", "op": "gte", "value": True}, "conditions.value", "a number"),
    ({"field": "event.amount", "op": "gte", "value": "NaN"}, "conditions.value", "a number"),
    ({"field": "event.store", "op": "eq", "value": 5}, "conditions.value", "a string"),
    ({"field": "member.is_first_purchase", "op": "eq", "value": "yes"}, "conditions.value", "true or false"),
    ({"field": "event.local_date", "op": "gte", "value": "2026-02-30"}, "conditions.value", "YYYY-MM-DD"),
    ({"field": "event.local_time", "op": "gte", "value": "25:00"}, "conditions.value", "HH:MM"),
    ({"field": "event.local_time", "op": "gte", "value": "9:00"}, "conditions.value", "HH:MM"),
    ({"field": "event.local_day_of_week", "op": "eq", "value": "monday"}, "conditions.value", "days are"),
    ({"field": "event.local_day_of_week", "op": "in", "value": ["sat", "minggu"]}, "conditions.value", "days are"),
    ({"field": "event.store", "op": "in", "value": []}, "conditions.value", "non-empty list"),
    ({"field": "event.store", "op": "in", "value": "a"}, "conditions.value", "non-empty list"),
    ({"field": "event.store", "op": "in", "value": ["a", 2]}, "conditions.value[1]", "a string"),
    ({"field": "event.amount", "op": "between", "value": ["1"]}, "conditions.value", "[low, high]"),
    ({"field": "event.amount", "op": "between", "value": ["1", "x"]}, "conditions.value[1]", "a number"),
    ({"field": "event.store", "op": "exists", "value": "yes"}, "conditions.value", "true or false"),
    ({"field": "event.store", "op": "eq", "value": "a", "note": 1}, "conditions", "unknown key"),
    ({"all": []}, "conditions.all", "non-empty list"),
    ({"all": {"field": "event.store"}}, "conditions.all", "non-empty list"),
    ({"all": [{"field": "event.store", "op": "eq", "value": "a"}], "any": []}, "conditions", "only key"),
    ({"not": {"field": "event.store", "op": "eq", "value": "a"}, "x": 1}, "conditions", "only key"),
    ({"any": [{"field": "event.store", "op": "eq", "value": "a"}, {"field": "event.amount", "op": "gte", "value": "x"}]}, "conditions.any[1].value", "a number"),
    ({"all": [{"not": {"any": [{"field": "event.stor", "op": "eq", "value": "a"}]}}]}, "conditions.all[0].not.any[0].field", "unknown field"),
    ({"items": {"where": {"field": "item.colour", "op": "eq", "value": "red"}}}, "conditions.items.where.field", "unknown field"),
    ({"items": {"where": {"field": "event.amount", "op": "gte", "value": "1"}}}, "conditions.items.where.field", "unknown field"),
    ({"items": {"where": {"items": {}}}}, "conditions.items.where", "cannot be nested"),
    ({"items": {"min_quantity": -1}}, "conditions.items.min_quantity", ">= 0"),
    ({"items": {"min_amount": "banyak"}}, "conditions.items.min_amount", ">= 0"),
    ({"items": {"sku": "X"}}, "conditions.items", "where, min_quantity, min_amount"),
    ({"items": []}, "conditions.items", "where, min_quantity, min_amount"),
    ({"field": "event.attributes.", "op": "eq", "value": 1}, "conditions.field", "unknown field"),
    ({"field": "event.attributes.x", "op": "eq", "value": float("nan")}, "conditions.value", "finite"),
    ({"field": "member.attributes.x", "op": "in", "value": [1, float("inf")]}, "conditions.value[1]", "finite"),
    ({"field": "event.attributes.x", "op": "eq", "value": {"a": [float("-inf")]}}, "conditions.value.a[0]", "finite"),
    ({"field": "event.amount", "op": "gt", "value": float("inf")}, "conditions.value", "a number"),
]  # fmt: skip


@pytest.mark.parametrize(("tree", "path", "words"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_validate_names_the_bad_node(tree: Any, path: str, words: str) -> None:
    with pytest.raises(ConditionError) as info:
        validate(tree)
    assert info.value.path == path
    assert words in info.value.message
    assert str(info.value).startswith(f"{path}: ")


def test_validate_refuses_trees_nested_too_deeply() -> None:
    node: dict[str, Any] = cmp("event.store", "eq", "a")
    for _ in range(25):
        node = {"not": node}
    with pytest.raises(ConditionError) as info:
        validate(node)
    assert "nested too deeply" in info.value.message
    assert info.value.path.startswith("conditions" + ".not" * 21)


def test_free_form_fields_accept_any_value() -> None:
    for value in (1, "x", [1, 2], {"a": 1}, True):
        validate(cmp("event.attributes.anything", "eq", value))
        validate(cmp("member.attributes.anything", "ne", value))
