"""Hypothesis strategies for rules and events, generated from the condition field registry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from setia.rules.conditions import (
    ANY,
    BOOL,
    DATE,
    DAYS,
    FIELDS,
    ITEM_FIELDS,
    NUMBER,
    OPS,
    STRING,
    STRINGS,
    TIME,
)

WORDS = ["coffee", "tea", "bakery", "fee", "gold", "vip", "bandung-dago", "pos", "web", "qris"]
ZONES = ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "UTC", "Europe/Berlin"]
FREE_FIELDS = ["event.attributes.rating", "event.attributes.source", "member.attributes.city"]
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)

# No NUL: PostgreSQL cannot store it in JSON text (a separate, input-validation matter).
words = st.sampled_from(WORDS) | st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=6
)
numbers = st.one_of(
    st.integers(-10, 1_000_000),
    st.decimals(min_value=-1000, max_value=10**7, places=2, allow_nan=False).map(str),
)


def _json(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), floats, words)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
        max_leaves=6,
    )


# What a rule may compare a free-form field with (what JSON can store) ...
json_values = _json(st.floats(allow_nan=False, allow_infinity=False))
# ... and what an event may carry (a JSON parser also accepts NaN and Infinity).
event_json = _json(st.floats(allow_nan=True, allow_infinity=True))


def scalar_for(kind: str, field: str) -> st.SearchStrategy[Any]:
    if field == "event.local_day_of_week":
        return st.sampled_from(DAYS)
    if kind == NUMBER:
        return numbers
    if kind in (STRING, STRINGS):
        return words
    if kind == BOOL:
        return st.booleans()
    if kind == DATE:
        return st.dates(date(2025, 1, 1), date(2027, 12, 31)).map(date.isoformat)
    if kind == TIME:
        return st.tuples(st.integers(0, 23), st.integers(0, 59)).map(
            lambda t: f"{t[0]:02d}:{t[1]:02d}"
        )
    return json_values  # ANY


@st.composite
def comparison(draw: st.DrawFn, *, item: bool = False) -> dict[str, Any]:
    registry = ITEM_FIELDS if item else {**FIELDS, **dict.fromkeys(FREE_FIELDS, ANY)}
    field = draw(st.sampled_from(sorted(registry)))
    kind = registry[field]
    op = draw(st.sampled_from(sorted(o for o, kinds in OPS.items() if kind in kinds)))
    node: dict[str, Any] = {"field": field, "op": op}
    scalar = scalar_for(kind, field)
    if op == "exists":
        if draw(st.booleans()):
            node["value"] = draw(st.booleans())
    elif op in ("in", "not_in"):
        node["value"] = draw(st.lists(scalar, min_size=1, max_size=3))
    elif op == "between":
        node["value"] = [draw(scalar), draw(scalar)]
    else:
        node["value"] = draw(scalar)
    return node


def tree(leaf: st.SearchStrategy[dict[str, Any]], max_leaves: int = 6) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c}),
            st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}),
            children.map(lambda c: {"not": c}),
        ),
        max_leaves=max_leaves,
    )


item_trees = tree(comparison(item=True), max_leaves=3)


@st.composite
def items_test(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["where"] = draw(item_trees)
    if draw(st.booleans()):
        spec["min_quantity"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        spec["min_amount"] = str(draw(st.integers(0, 200_000)))
    return {"items": spec}


condition_trees = tree(st.one_of(comparison(), comparison(), items_test()))


@st.composite
def effects(draw: st.DrawFn, *, purchase: bool = True) -> dict[str, Any]:
    kinds = (
        ["per_amount", "fixed", "multiplier", "per_item", "add_tag"]
        if purchase
        else ["fixed", "add_tag"]
    )
    kind = draw(st.sampled_from(kinds))
    effect: dict[str, Any] = {"type": kind}
    if kind == "per_amount":
        effect["points"] = draw(st.integers(0, 20))
        effect["per"] = draw(st.sampled_from(["1", "1000", "2500", "10000.5"]))
        if draw(st.booleans()):
            effect["scope"] = "items"
            effect["items_where"] = draw(item_trees)
    elif kind in ("fixed", "per_item"):
        effect["points"] = draw(st.integers(0, 5000))
        if kind == "per_item" and draw(st.booleans()):
            effect["items_where"] = draw(item_trees)
    elif kind == "multiplier":
        effect["factor"] = draw(st.sampled_from(["1", "1.5", "2", "3", "1.25"]))
    else:
        effect["tag"] = draw(st.sampled_from(["vip", "gold", "promo"]))
    if kind != "add_tag" and draw(st.booleans()):
        effect["rounding"] = draw(st.sampled_from(["floor", "ceil", "round"]))
    if draw(st.integers(0, 4)) == 0:
        effect["pending_days"] = draw(st.integers(0, 30))
    if draw(st.integers(0, 4)) == 0:
        effect["expiry_months"] = draw(st.integers(1, 24))
    return effect


@st.composite
def limits(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 2))):
        period = draw(st.sampled_from(["order", "day", "week", "month", "year", "lifetime"]))
        if period == "order" or draw(st.booleans()):
            out.append({"period": period, "max_points": draw(st.integers(0, 3000))})
        else:
            out.append({"period": period, "max_count": draw(st.integers(0, 3))})
    return out


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 2)) != 0:
        return None
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["days"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    if draw(st.booleans()):
        a, b = draw(st.integers(0, 1439)), draw(st.integers(0, 1439))
        out["hours"] = {
            "start": f"{a // 60:02d}:{a % 60:02d}",
            "end": f"{b // 60:02d}:{b % 60:02d}",
        }
    if draw(st.booleans()):
        start = START + timedelta(days=draw(st.integers(0, 200)))
        out["active_from"] = start.isoformat()
        out["active_to"] = (start + timedelta(days=draw(st.integers(1, 200)))).isoformat()
    return out


@st.composite
def rule_bodies(draw: st.DrawFn, *, name: str = "rule") -> dict[str, Any]:
    purchase = draw(st.integers(0, 3)) != 0
    body: dict[str, Any] = {
        "name": name,
        "triggers": ["purchase"] if purchase else ["review.submitted"],
        "effect": draw(effects(purchase=purchase)),
        "limits": draw(limits()),
        "mode": draw(st.sampled_from(["stackable", "stackable", "exclusive", "universal"])),
        "priority": draw(st.sampled_from([10, 100, 150, 200, 200, 300])),
        "enabled": draw(st.integers(0, 5)) != 0,
    }
    if draw(st.booleans()):
        body["conditions"] = draw(condition_trees)
    schedule = draw(schedules())
    if schedule is not None:
        body["schedule"] = schedule
    if draw(st.integers(0, 3)) == 0:
        body["budget_points"] = draw(st.integers(0, 5000))
    return body


line_items = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(["KOPI", "TEH", "ROTI", "DELIVERY", "TUMBLER"]),
        "quantity": st.integers(1, 20),
        "unit_price": st.integers(1, 200_000).map(str),
    },
    optional={
        "name": words,
        "category": st.sampled_from(["coffee", "tea", "bakery", "fee", "merch"]),
        "brand": words,
    },
)
moments = st.datetimes(
    min_value=START.replace(tzinfo=None), max_value=END.replace(tzinfo=None), timezones=st.just(UTC)
)


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ``engine.build_context`` (an event as recording would see it)."""
    event_type = draw(
        st.sampled_from(["purchase", "purchase", "review.submitted", "schedule.birthday"])
    )
    purchase = event_type == "purchase"
    items = draw(st.lists(line_items, max_size=4))
    amount = sum(int(i["quantity"]) * int(i["unit_price"]) for i in items) or draw(
        st.integers(1, 10**6)
    )
    return {
        "event_type": event_type,
        "occurred_at": draw(moments),
        "tz_name": draw(st.sampled_from(ZONES)),
        "amount": Decimal(amount) if purchase else None,
        "currency": "IDR" if purchase else None,
        "items": items if purchase or draw(st.booleans()) else None,
        "store": draw(st.none() | st.sampled_from(["bandung-dago", "online"])),
        "channel": draw(st.none() | st.sampled_from(["pos", "web"])),
        "payment_method": draw(st.none() | st.sampled_from(["qris", "cash"])),
        "attributes": draw(
            st.none()
            | st.dictionaries(st.sampled_from(["rating", "source", "x"]), event_json, max_size=3)
        ),
        "member": {
            "tags": draw(
                st.lists(st.sampled_from(["vip", "gold", "mahasiswa"]), max_size=2, unique=True)
            ),
            "attributes": draw(
                st.dictionaries(st.sampled_from(["city", "kids"]), event_json, max_size=2)
            ),
            "locale": draw(st.sampled_from(["id", "en", None])),
            "created_at": draw(st.none() | moments),
            "birthday": draw(st.none() | st.dates(date(1950, 1, 1), date(2010, 12, 31))),
            "order_count": draw(st.integers(0, 50)),
        },
    }
