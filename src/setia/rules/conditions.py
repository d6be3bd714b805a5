"""Rule conditions: JSON data, checked on save, evaluated by a small safe evaluator.

A condition is a tree of nodes:

* ``{"all": [node, ...]}``, ``{"any": [node, ...]}``, ``{"not": node}``
* a comparison ``{"field": "event.amount", "op": "gte", "value": "100000"}``
* an items test ``{"items": {"where": node-over-item-fields, "min_quantity": 2,
  "min_amount": "50000"}}``: true when the order's lines that match ``where`` reach the
  thresholds (both optional; with neither, one matching line is enough).

Fields have declared types (see ``FIELDS`` and ``ITEM_FIELDS``); ``event.attributes.<name>``
and ``member.attributes.<name>`` are free-form. ``validate`` refuses a missing field, an
unknown field or operator, or a value of the wrong type, naming the path of the bad node
(``conditions.all[1].value``). ``evaluate`` never raises on a validated tree: a value that is
missing or of another type at run time makes the comparison false, and the explanation
says so. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

NUMBER, STRING, STRINGS, BOOL, DATE, TIME, ANY = (
    "number",
    "string",
    "strings",
    "bool",
    "date",
    "time",
    "any",
)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

FIELDS: dict[str, str] = {
    "event.type": STRING,
    "event.amount": NUMBER,
    "event.currency": STRING,
    "event.store": STRING,
    "event.channel": STRING,
    "event.payment_method": STRING,
    "event.item_count": NUMBER,
    "event.local_date": DATE,
    "event.local_time": TIME,
    "event.local_hour": NUMBER,
    "event.local_day_of_week": STRING,
    "event.local_month": NUMBER,
    "member.tags": STRINGS,
    "member.locale": STRING,
    "member.tenure_days": NUMBER,
    "member.order_count": NUMBER,
    "member.is_first_purchase": BOOL,
    "member.birthday_month": BOOL,
    "member.tier": STRING,
    "member.tier_multiplier": NUMBER,
    "member.plan": STRING,
    "member.plan_multiplier": NUMBER,
    "member.is_paid_member": BOOL,
    # stored analytics (setia.analytics.store_fields), as of the last recompute
    "member.rfm_segment": STRING,
    "member.loyalty_label": STRING,
    "member.loyalty_type": STRING,
    "member.p_alive": NUMBER,
    "member.clv": NUMBER,
    "member.referral_count": NUMBER,
    "member.badges": STRINGS,
}
# A multiplier effect's factor may name one of these instead of a number.
BENEFIT_FACTORS = ("member.tier_multiplier", "member.plan_multiplier")
ITEM_FIELDS: dict[str, str] = {
    "item.sku": STRING,
    "item.name": STRING,
    "item.category": STRING,
    "item.brand": STRING,
    "item.quantity": NUMBER,
    "item.unit_price": NUMBER,
    "item.amount": NUMBER,
}
FREE_PREFIXES = ("event.attributes.", "member.attributes.")

OPS: dict[str, set[str]] = {
    "eq": {NUMBER, STRING, BOOL, DATE, TIME, ANY},
    "ne": {NUMBER, STRING, BOOL, DATE, TIME, ANY},
    "gt": {NUMBER, DATE, TIME, ANY},
    "gte": {NUMBER, DATE, TIME, ANY},
    "lt": {NUMBER, DATE, TIME, ANY},
    "lte": {NUMBER, DATE, TIME, ANY},
    "between": {NUMBER, DATE, TIME, ANY},
    "in": {STRING, NUMBER, ANY},
    "not_in": {STRING, NUMBER, ANY},
    "contains": {STRINGS, ANY},
    "not_contains": {STRINGS, ANY},
    "exists": {NUMBER, STRING, STRINGS, BOOL, DATE, TIME, ANY},
}


class ConditionError(ValueError):
    """A condition tree that cannot be saved; ``path`` points at the bad node."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@lru_cache(maxsize=4096)  # a pure function of the registries, asked for every comparison
def field_type(name: str, *, item: bool = False) -> str | None:
    if item:
        return ITEM_FIELDS.get(name)
    if name in FIELDS:
        return FIELDS[name]
    if any(name.startswith(p) and len(name) > len(p) for p in FREE_PREFIXES):
        return ANY
    return None


def _number(value: Any) -> Decimal | None:
    """A finite Decimal, or None: NaN and infinities (a JSON float can be either) are not
    numbers to a condition, so comparing them is false instead of raising."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(str(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return d if d.is_finite() else None


def _check_scalar(kind: str, value: Any, path: str) -> None:
    ok = True
    if kind == NUMBER:
        ok = _number(value) is not None
    elif kind in (STRING, STRINGS):
        ok = isinstance(value, str)
    elif kind == BOOL:
        ok = isinstance(value, bool)
    elif kind == DATE:
        try:
            date.fromisoformat(value) if isinstance(value, str) else None
            ok = isinstance(value, str)
        except ValueError:
            ok = False
    elif kind == TIME:
        ok = (
            isinstance(value, str)
            and len(value) == 5
            and value[2] == ":"
            and value[:2].isdigit()
            and value[3:].isdigit()
            and int(value[:2]) < 24
            and int(value[3:]) < 60
        )
    if not ok:
        expected = {
            NUMBER: 'a number (e.g. "100000")',
            STRING: "a string",
            STRINGS: "a string",
            BOOL: "true or false",
            DATE: "a date YYYY-MM-DD",
            TIME: "a time HH:MM",
        }.get(kind, kind)
        raise ConditionError(path, f"expected {expected}, got {value!r}")


def _check_json(value: Any, path: str) -> None:
    """A free-form value may be anything JSON holds, but not NaN or an infinity: JSON has
    no such numbers (PostgreSQL refuses to store them), and no attribute could equal them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConditionError(path, f"expected a finite number, got {value!r}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_json(v, f"{path}.{k}")


def validate(node: Any, path: str = "conditions", *, item: bool = False, depth: int = 0) -> None:
    """Raise ``ConditionError`` naming the first bad node; return quietly when all is well."""
    if depth > 20:
        raise ConditionError(path, "conditions are nested too deeply (20 levels at most)")
    if not isinstance(node, dict):
        raise ConditionError(path, "a condition must be an object")
    keys = set(node)
    for combinator in ("all", "any"):
        if combinator in node:
            if keys != {combinator}:
                raise ConditionError(path, f"'{combinator}' must be the only key of its node")
            children = node[combinator]
            if not isinstance(children, list) or not children:
                raise ConditionError(
                    f"{path}.{combinator}", "must be a non-empty list of conditions"
                )
            for i, child in enumerate(children):
                validate(child, f"{path}.{combinator}[{i}]", item=item, depth=depth + 1)
            return
    if "not" in node:
        if keys != {"not"}:
            raise ConditionError(path, "'not' must be the only key of its node")
        validate(node["not"], f"{path}.not", item=item, depth=depth + 1)
        return
    if "items" in node:
        if item:
            raise ConditionError(path, "'items' cannot be nested inside an items test")
        if keys != {"items"}:
            raise ConditionError(path, "'items' must be the only key of its node")
        spec = node["items"]
        if not isinstance(spec, dict) or not set(spec) <= {"where", "min_quantity", "min_amount"}:
            raise ConditionError(
                f"{path}.items", "expected an object with where, min_quantity, min_amount"
            )
        if "where" in spec:
            validate(spec["where"], f"{path}.items.where", item=True, depth=depth + 1)
        for key in ("min_quantity", "min_amount"):
            if key in spec:
                n = _number(spec[key])
                if n is None or n < 0:
                    raise ConditionError(
                        f"{path}.items.{key}", f"expected a number >= 0, got {spec[key]!r}"
                    )
        return
    if "field" not in node:
        raise ConditionError(
            path, "expected all, any, not, items, or a comparison with field/op/value"
        )
    if not keys <= {"field", "op", "value"}:
        extra = ", ".join(sorted(keys - {"field", "op", "value"}))
        raise ConditionError(path, f"unknown key(s) {extra}")
    name = node["field"]
    kind = field_type(name, item=item) if isinstance(name, str) else None
    if kind is None:
        known = ", ".join(sorted(ITEM_FIELDS if item else FIELDS))
        raise ConditionError(
            f"{path}.field",
            f"unknown field {name!r}; known fields: {known}"
            + ("" if item else ", event.attributes.<name>, member.attributes.<name>"),
        )
    op = node.get("op")
    if op not in OPS:
        raise ConditionError(f"{path}.op", f"unknown operator {op!r}; use one of {', '.join(OPS)}")
    if kind not in OPS[op]:
        raise ConditionError(f"{path}.op", f"operator {op!r} does not apply to {name} ({kind})")
    if op == "exists":
        if "value" in node and not isinstance(node["value"], bool):
            raise ConditionError(f"{path}.value", "exists takes true or false")
        return
    if "value" not in node:
        raise ConditionError(path, f"operator {op!r} needs a value")
    value = node["value"]
    vpath = f"{path}.value"
    if kind == ANY:
        _check_json(value, vpath)
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ConditionError(vpath, f"{op} needs a non-empty list")
        for i, v in enumerate(value):
            _check_scalar(kind, v, f"{vpath}[{i}]")
        if name == "event.local_day_of_week":
            bad = [v for v in value if v not in DAYS]
            if bad:
                raise ConditionError(vpath, f"days are {', '.join(DAYS)}; got {bad}")
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError(vpath, "between needs [low, high]")
        _check_scalar(kind, value[0], f"{vpath}[0]")
        _check_scalar(kind, value[1], f"{vpath}[1]")
    else:
        _check_scalar(kind, value, vpath)
        if name == "event.local_day_of_week" and value not in DAYS:
            raise ConditionError(vpath, f"days are {', '.join(DAYS)}")


@dataclass
class Outcome:
    """Whether a node held, and for a false one the first comparison that failed."""

    ok: bool
    reason: dict[str, Any] | None = None


@lru_cache(maxsize=4096)
def _parts(name: str) -> tuple[str, ...]:
    return tuple(name.split("."))


def lookup(ctx: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Resolve a dotted name in the evaluation context; (found, value)."""
    cur: Any = ctx
    for part in _parts(name):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return False, None
    return cur is not None, cur


def _pair(kind: str, actual: Any, expected: Any) -> tuple[Any, Any] | None:
    """The two sides in a comparable form, or None when they cannot be compared."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return (
            (actual, expected) if isinstance(actual, bool) and isinstance(expected, bool) else None
        )
    if kind in (NUMBER, ANY):
        a, e = _number(actual), _number(expected)
        if a is not None and e is not None:
            return a, e
        if kind == NUMBER:
            return None
    if isinstance(actual, str) and isinstance(expected, str):
        return actual, expected
    return None


def _compare(kind: str, op: str, actual: Any, expected: Any) -> bool:
    if op == "contains":
        return isinstance(actual, list) and expected in actual
    if op == "not_contains":
        return not (isinstance(actual, list) and expected in actual)
    if op in ("in", "not_in"):
        options = expected if isinstance(expected, list) else [expected]
        hit = False
        for option in options:
            pair = _pair(kind, actual, option)
            if pair is not None and pair[0] == pair[1]:
                hit = True
                break
        return hit if op == "in" else not hit
    if op == "between":
        if not isinstance(expected, list) or len(expected) != 2:
            return False
        return _compare(kind, "gte", actual, expected[0]) and _compare(
            kind, "lte", actual, expected[1]
        )
    pair = _pair(kind, actual, expected)
    if pair is None:
        return op == "ne"
    left, right = pair
    try:
        return bool(_ORDER_OPS[op](left, right))
    except (TypeError, KeyError):
        return False


_ORDER_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def evaluate(
    node: dict[str, Any], ctx: dict[str, Any], items: list[dict[str, Any]] | None = None
) -> Outcome:
    """Evaluate a validated node against ``ctx`` (``{"event": {...}, "member": {...}}``)."""
    if "all" in node:
        for child in node["all"]:
            out = evaluate(child, ctx, items)
            if not out.ok:
                return out
        return Outcome(True)
    if "any" in node:
        reasons = []
        for child in node["any"]:
            out = evaluate(child, ctx, items)
            if out.ok:
                return out
            reasons.append(out.reason)
        return Outcome(False, {"any_failed": reasons})
    if "not" in node:
        out = evaluate(node["not"], ctx, items)
        return Outcome(not out.ok, None if not out.ok else {"not": node["not"], "was": True})
    if "items" in node:
        spec = node["items"]
        lines = ctx.get("items") or []
        matching = [
            line
            for line in lines
            if "where" not in spec or evaluate(spec["where"], {"item": line}).ok
        ]
        qty = sum((_number(line.get("quantity")) or Decimal(0)) for line in matching)
        amount = sum((_number(line.get("amount")) or Decimal(0)) for line in matching)
        need_q = _number(spec.get("min_quantity")) if "min_quantity" in spec else None
        need_a = _number(spec.get("min_amount")) if "min_amount" in spec else None
        if need_q is None and need_a is None:
            ok = bool(matching)
        else:
            ok = (need_q is None or qty >= need_q) and (need_a is None or amount >= need_a)
        if ok:
            return Outcome(True)
        return Outcome(
            False,
            {
                "items": spec,
                "matching_lines": len(matching),
                "quantity": str(qty),
                "amount": str(amount),
            },
        )
    name, op = node["field"], node["op"]
    found, actual = lookup(ctx, name)
    if op == "exists":
        want = node.get("value", True)
        ok = found == want
        return Outcome(
            ok, None if ok else {"field": name, "op": op, "expected": want, "actual": actual}
        )
    expected = node.get("value")
    kind = field_type(name, item=name.startswith("item.")) or ANY
    ok = found and _compare(kind, op, actual, expected)
    if not found and op in ("ne", "not_in", "not_contains"):
        ok = True
    if ok:
        return Outcome(True)
    return Outcome(
        False,
        {
            "field": name,
            "op": op,
            "expected": expected,
            "actual": _plain(actual) if found else None,
            **({} if found else {"missing": True}),
        },
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


# --------------------------------------------------------------------------- compiled form

Check = Callable[[dict[str, Any]], Outcome]
_TRUE = Outcome(True)  # shared: nobody changes an outcome


def compile_condition(node: dict[str, Any]) -> Check:
    """``evaluate`` turned into a function of the context, for a tree that is evaluated for
    every event (the engine keeps one per rule): the same outcomes and reasons, without
    re-reading the tree's shape each time."""
    if "all" in node:
        children = [compile_condition(child) for child in node["all"]]

        def all_of(ctx: dict[str, Any]) -> Outcome:
            for child in children:
                out = child(ctx)
                if not out.ok:
                    return out
            return _TRUE

        return all_of
    if "any" in node:
        options = [compile_condition(child) for child in node["any"]]

        def any_of(ctx: dict[str, Any]) -> Outcome:
            reasons = []
            for option in options:
                out = option(ctx)
                if out.ok:
                    return out
                reasons.append(out.reason)
            return Outcome(False, {"any_failed": reasons})

        return any_of
    if "not" in node:
        inner, negated = compile_condition(node["not"]), node["not"]

        def not_(ctx: dict[str, Any]) -> Outcome:
            return _TRUE if not inner(ctx).ok else Outcome(False, {"not": negated, "was": True})

        return not_
    if "items" in node:
        return _compile_items(node["items"])
    return _compile_comparison(node)


def _compile_items(spec: dict[str, Any]) -> Check:
    where = compile_condition(spec["where"]) if "where" in spec else None
    need_q = _number(spec.get("min_quantity")) if "min_quantity" in spec else None
    need_a = _number(spec.get("min_amount")) if "min_amount" in spec else None

    def items(ctx: dict[str, Any]) -> Outcome:
        lines = ctx.get("items") or []
        matching = [line for line in lines if where is None or where({"item": line}).ok]
        qty = sum((_number(line.get("quantity")) or Decimal(0)) for line in matching)
        amount = sum((_number(line.get("amount")) or Decimal(0)) for line in matching)
        if need_q is None and need_a is None:
            ok = bool(matching)
        else:
            ok = (need_q is None or qty >= need_q) and (need_a is None or amount >= need_a)
        if ok:
            return _TRUE
        return Outcome(
            False,
            {
                "items": spec,
                "matching_lines": len(matching),
                "quantity": str(qty),
                "amount": str(amount),
            },
        )

    return items


def _compile_comparison(node: dict[str, Any]) -> Check:
    name, op = node["field"], node["op"]
    parts = _parts(name)

    def find(ctx: dict[str, Any]) -> tuple[bool, Any]:
        cur: Any = ctx
        for part in parts:
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                return False, None
        return cur is not None, cur

    if op == "exists":
        want = node.get("value", True)

        def exists(ctx: dict[str, Any]) -> Outcome:
            found, actual = find(ctx)
            if found == want:
                return _TRUE
            return Outcome(False, {"field": name, "op": op, "expected": want, "actual": actual})

        return exists
    expected = node.get("value")
    kind = field_type(name, item=name.startswith("item.")) or ANY
    negative = op in ("ne", "not_in", "not_contains")

    def compare(ctx: dict[str, Any]) -> Outcome:
        found, actual = find(ctx)
        if (found and _compare(kind, op, actual, expected)) or (not found and negative):
            return _TRUE
        return Outcome(
            False,
            {
                "field": name,
                "op": op,
                "expected": expected,
                "actual": _plain(actual) if found else None,
                **({} if found else {"missing": True}),
            },
        )

    return compare
