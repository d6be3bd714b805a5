"""Saved segments: named filters over stored analytics and member data.

A filter is a tree like a rule's conditions::

    {"all": [{"field": "rfm_segment", "op": "in", "value": ["at_risk", "cant_lose_them"]},
             {"field": "clv", "op": "gte", "value": "500000"},
             {"not": {"field": "tags", "op": "contains", "value": "staff"}},
             {"field": "consent.whatsapp", "op": "eq", "value": true}]}

Nodes: ``all`` / ``any`` (non-empty lists), ``not``, and comparisons ``field``/``op``/
``value``. :data:`FIELDS` lists the fields and their types; ``attributes.<name>`` is
free-form. :func:`validate` names the first bad node (``filter.all[1].value``).

Stored fields (``rfm_segment``, ``clv``, ``p_alive``, …) are the program's last recompute
(``member_scores``): results are as of its ``computed_at``. A member with no stored row
has none of them: comparisons on them are false (``ne``/``not_in`` true), ``exists`` false.
Member fields (tags, locale, attributes, tier, consent) are read live.

The members of a segment are the tenant's **active** members (not merged or erased) for
which the filter holds. :func:`segment_member_ids` is the seam later features call.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from setia.analytics import labels, rfm
from setia.analytics.tables import AnalyticsSegment, MemberScore
from setia.core.errors import Conflict, InvalidInput, NotFound
from setia.core.time import utcnow
from setia.members.models import ConsentChange, Member
from setia.members.service import CHANNELS
from setia.tiers.context import tiers_of

NUMBER, STRING, STRINGS, BOOL, DATE, ANY = "number", "string", "strings", "bool", "date", "any"
STORED: dict[str, str] = {
    "rfm_segment": STRING,
    "rfm_r": NUMBER,
    "rfm_f": NUMBER,
    "rfm_m": NUMBER,
    "loyalty_label": STRING,
    "loyalty_type": STRING,
    "habitual": NUMBER,
    "transactional": NUMBER,
    "emotional": NUMBER,
    "p_alive": NUMBER,
    "expected_purchases": NUMBER,
    "expected_spend": NUMBER,
    "clv": NUMBER,
    "orders": NUMBER,
    "spend": NUMBER,
    "refunds": NUMBER,
    "redemptions": NUMBER,
    "purchase_days": NUMBER,
    "recency_days": NUMBER,
    "frequency": NUMBER,
    "monetary": NUMBER,
    "first_purchase_day": DATE,
    "last_purchase_day": DATE,
}
MEMBER: dict[str, str] = {
    "tags": STRINGS,
    "locale": STRING,
    "tier": STRING,
    **{f"consent.{c}": BOOL for c in CHANNELS},
}
FIELDS: dict[str, str] = {**STORED, **MEMBER}
FREE_PREFIX = "attributes."
CHOICES: dict[str, tuple[str, ...]] = {
    "rfm_segment": tuple(rfm.SEGMENTS),
    "loyalty_label": labels.LABELS,
    "loyalty_type": labels.PRIMARY,
    "locale": ("id", "ms", "en"),
}
OPS: dict[str, set[str]] = {
    "eq": {NUMBER, STRING, BOOL, DATE, ANY},
    "ne": {NUMBER, STRING, BOOL, DATE, ANY},
    "gt": {NUMBER, DATE, ANY},
    "gte": {NUMBER, DATE, ANY},
    "lt": {NUMBER, DATE, ANY},
    "lte": {NUMBER, DATE, ANY},
    "between": {NUMBER, DATE, ANY},
    "in": {STRING, NUMBER, ANY},
    "not_in": {STRING, NUMBER, ANY},
    "contains": {STRINGS, ANY},
    "not_contains": {STRINGS, ANY},
    "exists": {NUMBER, STRING, STRINGS, BOOL, DATE, ANY},
}
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CHUNK = 2000


class FilterError(InvalidInput):
    code = "invalid_filter"


def _bad(path: str, message: str) -> FilterError:
    return FilterError(f"{path}: {message}", extra={"field": path})


def field_type(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    if name in FIELDS:
        return FIELDS[name]
    if name.startswith(FREE_PREFIX) and len(name) > len(FREE_PREFIX):
        return ANY
    return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | Decimal):
            d = Decimal(value)
        elif isinstance(value, float):
            d = Decimal(str(value))
        elif isinstance(value, str):
            d = Decimal(value.strip())
        else:
            return None
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _scalar(name: str, kind: str, value: Any, path: str) -> None:
    if kind == NUMBER:
        ok = _number(value) is not None
        expected = 'a number (e.g. 0.5 or "500000")'
    elif kind in (STRING, STRINGS):
        ok = isinstance(value, str)
        expected = "a string"
    elif kind == BOOL:
        ok = isinstance(value, bool)
        expected = "true or false"
    elif kind == DATE:
        try:
            ok = isinstance(value, str) and bool(dt.date.fromisoformat(value))
        except ValueError:
            ok = False
        expected = "a date YYYY-MM-DD"
    else:
        ok = not (isinstance(value, float) and not math.isfinite(value))
        expected = "a finite value"
    if not ok:
        raise _bad(path, f"{name} expects {expected}, got {value!r}")
    choices = CHOICES.get(name)
    if choices is not None and value not in choices:
        raise _bad(path, f"unknown {name} {value!r}; use one of {', '.join(choices)}")


def validate(node: Any, path: str = "filter", depth: int = 0) -> None:
    """Raise :class:`FilterError` (422 ``invalid_filter``, ``field`` = the node's path)
    naming the first bad node."""
    if depth > 20:
        raise _bad(path, "nested too deeply (20 levels at most)")
    if not isinstance(node, dict):
        raise _bad(path, "a filter node must be an object")
    keys = set(node)
    for combinator in ("all", "any"):
        if combinator in node:
            if keys != {combinator}:
                raise _bad(path, f"'{combinator}' must be the only key of its node")
            children = node[combinator]
            if not isinstance(children, list) or not children:
                raise _bad(f"{path}.{combinator}", "must be a non-empty list of filters")
            for i, child in enumerate(children):
                validate(child, f"{path}.{combinator}[{i}]", depth + 1)
            return
    if "not" in node:
        if keys != {"not"}:
            raise _bad(path, "'not' must be the only key of its node")
        validate(node["not"], f"{path}.not", depth + 1)
        return
    if "field" not in node:
        raise _bad(path, "expected all, any, not, or a comparison with field/op/value")
    if not keys <= {"field", "op", "value"}:
        raise _bad(path, f"unknown key(s) {', '.join(sorted(keys - {'field', 'op', 'value'}))}")
    name = node["field"]
    kind = field_type(name)
    if kind is None:
        raise _bad(
            f"{path}.field",
            f"unknown field {name!r}; known fields: {', '.join(FIELDS)}, attributes.<name>",
        )
    op = node.get("op")
    if op not in OPS:
        raise _bad(f"{path}.op", f"unknown operator {op!r}; use one of {', '.join(OPS)}")
    if kind not in OPS[op]:
        raise _bad(f"{path}.op", f"operator {op!r} does not apply to {name} ({kind})")
    if op == "exists":
        if "value" in node and not isinstance(node["value"], bool):
            raise _bad(f"{path}.value", "exists takes true or false")
        return
    if "value" not in node:
        raise _bad(path, f"operator {op!r} needs a value")
    value, vpath = node["value"], f"{path}.value"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise _bad(vpath, f"{op} needs a non-empty list")
        for i, v in enumerate(value):
            _scalar(name, kind, v, f"{vpath}[{i}]")
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _bad(vpath, "between needs [low, high]")
        _scalar(name, kind, value[0], f"{vpath}[0]")
        _scalar(name, kind, value[1], f"{vpath}[1]")
    else:
        _scalar(name, kind, value, vpath)


def fields_used(node: Any) -> set[str]:
    if not isinstance(node, dict):
        return set()
    if "all" in node or "any" in node:
        return set().union(*(fields_used(c) for c in node.get("all") or node.get("any") or []))
    if "not" in node:
        return fields_used(node["not"])
    return {str(node.get("field"))}


# --- evaluation ------------------------------------------------------------------------------


def _comparable(kind: str, actual: Any, expected: Any) -> tuple[Any, Any] | None:
    if isinstance(actual, bool) or isinstance(expected, bool):
        ok = isinstance(actual, bool) and isinstance(expected, bool)
        return (actual, expected) if ok else None
    if kind in (NUMBER, ANY):
        a, e = _number(actual), _number(expected)
        if a is not None and e is not None:
            return a, e
        if kind == NUMBER:
            return None
    if isinstance(actual, dt.date):
        actual = actual.isoformat()
    if isinstance(actual, str) and isinstance(expected, str):
        return actual, expected
    return None


def _compare(kind: str, op: str, actual: Any, expected: Any) -> bool:
    if op == "contains":
        return isinstance(actual, list) and expected in actual
    if op == "not_contains":
        return not (isinstance(actual, list) and expected in actual)
    if op in ("in", "not_in"):
        hit = any(
            (p := _comparable(kind, actual, option)) is not None and p[0] == p[1]
            for option in expected
        )
        return hit if op == "in" else not hit
    if op == "between":
        return _compare(kind, "gte", actual, expected[0]) and _compare(
            kind, "lte", actual, expected[1]
        )
    pair = _comparable(kind, actual, expected)
    if pair is None:
        return op == "ne"
    a, e = pair
    try:
        return bool(
            {
                "eq": a == e,
                "ne": a != e,
                "gt": a > e,
                "gte": a >= e,
                "lt": a < e,
                "lte": a <= e,
            }[op]
        )
    except TypeError:
        return False


def _lookup(row: Mapping[str, Any], name: str) -> Any:
    if name.startswith(FREE_PREFIX):
        cur: Any = row.get("attributes") or {}
        for part in name[len(FREE_PREFIX) :].split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    return row.get(name)


def matches(node: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a validated filter holds for one member's values."""
    if "all" in node:
        return all(matches(c, row) for c in node["all"])
    if "any" in node:
        return any(matches(c, row) for c in node["any"])
    if "not" in node:
        return not matches(node["not"], row)
    name, op = node["field"], node["op"]
    actual = _lookup(row, name)
    found = actual is not None
    if op == "exists":
        return found == bool(node.get("value", True))
    if not found:
        return op in ("ne", "not_in", "not_contains")
    return _compare(field_type(name) or ANY, op, actual, node["value"])


_STORED_COLS = [getattr(MemberScore, name) for name in STORED]


def _leaf_sql(node: Mapping[str, Any]) -> ColumnElement[bool] | None:
    """A SQL condition every member the comparison holds for satisfies, or None. Only
    comparisons on stored fields that are false for a missing value (so ``ne``/``not_in``
    are left to Python); numbers are widened by a hair so rounding never drops a member
    Python would keep (Python re-checks every candidate)."""
    name, op = node.get("field"), node.get("op")
    if name not in STORED:
        return None
    col: ColumnElement[Any] = getattr(MemberScore, name)
    kind = STORED[name]
    if op == "exists":
        return col.is_not(None) if node.get("value", True) else col.is_(None)

    def conv(v: Any) -> Any:
        if kind == NUMBER:
            return float(_number(v) or 0)
        if kind == DATE:
            return dt.date.fromisoformat(v)
        return v

    def eps(v: float) -> float:
        return 1e-9 * max(1.0, abs(v))

    v: Any = node.get("value")
    if op == "in" and kind == STRING:
        return col.in_(list(v))
    if kind not in (NUMBER, DATE, STRING) or op not in ("eq", "gt", "gte", "lt", "lte", "between"):
        return None
    if kind == STRING:
        return col == v if op == "eq" else None
    if op == "between":
        lo, hi = conv(v[0]), conv(v[1])
        if kind == NUMBER:
            return col.between(lo - eps(lo), hi + eps(hi))
        return col.between(lo, hi)
    x = conv(v)
    if kind == NUMBER:
        e = eps(x)
        num: dict[str, ColumnElement[bool]] = {
            "eq": col.between(x - e, x + e),
            "gt": col >= x - e,
            "gte": col >= x - e,
            "lt": col <= x + e,
            "lte": col <= x + e,
        }
        return num[op]
    other: dict[str, ColumnElement[bool]] = {
        "eq": col == x,
        "gt": col > x,
        "gte": col >= x,
        "lt": col < x,
        "lte": col <= x,
    }
    return other[op]


def prefilter(node: Mapping[str, Any]) -> ColumnElement[bool] | None:
    """A SQL condition implied by the filter (None when nothing can be pushed down)."""
    if "all" in node:
        parts = [c for c in (prefilter(child) for child in node["all"]) if c is not None]
        return and_(*parts) if parts else None
    if "any" in node:
        options = [prefilter(child) for child in node["any"]]
        pushed = [p for p in options if p is not None]
        return or_(*pushed) if len(pushed) == len(options) else None
    if "not" in node:
        return None
    return _leaf_sql(node)


def _candidates(
    session: Session,
    tenant_id: uuid.UUID,
    program_id: uuid.UUID,
    used: set[str],
    after: uuid.UUID | None,
    where: ColumnElement[bool] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The tenant's active members with their values, by member id, in chunks (only those
    satisfying ``where``, a condition on the stored row, when given)."""
    last = after
    need_tier = "tier" in used
    consent_channels = [c for c in CHANNELS if f"consent.{c}" in used]
    while True:
        q = (
            select(Member.id, Member.tags, Member.locale, Member.attributes, *_STORED_COLS)
            .outerjoin(
                MemberScore,
                and_(MemberScore.member_id == Member.id, MemberScore.program_id == program_id),
            )
            .where(Member.tenant_id == tenant_id, Member.status == "active")
            .order_by(Member.id)
            .limit(CHUNK)
        )
        if last is not None:
            q = q.where(Member.id > last)
        if where is not None:
            q = q.where(where)
        chunk: list[dict[str, Any]] = []
        for row in session.execute(q):
            values = dict(zip(STORED, row[4:], strict=True))
            values.update(
                member_id=row[0], tags=list(row[1] or []), locale=row[2], attributes=row[3] or {}
            )
            chunk.append(values)
        if not chunk:
            return
        ids = [r["member_id"] for r in chunk]
        if need_tier:
            tiers = tiers_of(session, program_id, ids)
            for r in chunk:
                r["tier"] = tiers.get(r["member_id"], {}).get("tier")
        if consent_channels:
            state: dict[tuple[uuid.UUID, str], bool] = {}
            for mid, channel, granted in session.execute(
                select(ConsentChange.member_id, ConsentChange.channel, ConsentChange.granted)
                .where(
                    ConsentChange.member_id.in_(ids),
                    ConsentChange.channel.in_(consent_channels),
                )
                .order_by(ConsentChange.id)
            ):
                state[(mid, channel)] = bool(granted)
            for r in chunk:
                for c in consent_channels:
                    r[f"consent.{c}"] = state.get((r["member_id"], c), False)
        yield chunk
        last = chunk[-1]["member_id"]
        if len(chunk) < CHUNK:
            return


def matching(
    session: Session,
    tenant_id: uuid.UUID,
    program_id: uuid.UUID,
    flt: Mapping[str, Any],
    *,
    after: uuid.UUID | None = None,
    limit: int | None = None,
    pushdown: bool = True,
) -> Iterator[dict[str, Any]]:
    """The values of each member the filter holds for, by member id (after ``after``).
    Comparisons on stored fields that must hold are also sent to SQL (:func:`prefilter`),
    so the database skips members that cannot match; Python decides."""
    used = fields_used(flt)
    where = prefilter(flt) if pushdown else None
    n = 0
    for chunk in _candidates(session, tenant_id, program_id, used, after, where):
        for row in chunk:
            if matches(flt, row):
                yield row
                n += 1
                if limit is not None and n >= limit:
                    return


# --- saved segments --------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentDoc:
    key: str
    names: dict[str, Any]
    descriptions: dict[str, Any]
    filter: dict[str, Any]
    program_id: uuid.UUID


def _same(seg: AnalyticsSegment, doc: SegmentDoc) -> bool:
    return (
        seg.names == doc.names
        and (seg.descriptions or {}) == doc.descriptions
        and seg.filter == doc.filter
        and seg.program_id == doc.program_id
    )


def _check(doc: SegmentDoc) -> None:
    if not KEY.match(doc.key):
        raise InvalidInput(
            "key must be 1-64 lower-case letters, digits, '_' or '-', starting with a letter "
            "or digit",
            code="invalid_key",
            extra={"field": "key"},
        )
    validate(doc.filter)


def create(
    session: Session, tenant_id: uuid.UUID, doc: SegmentDoc, *, actor: str
) -> tuple[AnalyticsSegment, bool]:
    """Save a segment; (segment, created). The same key with the same body returns the
    existing segment (a retry); with another body it is 409 ``segment_key_taken``."""
    _check(doc)
    found = session.execute(
        select(AnalyticsSegment).where(
            AnalyticsSegment.tenant_id == tenant_id, AnalyticsSegment.key == doc.key
        )
    ).scalar_one_or_none()
    if found is not None:
        if _same(found, doc):
            return found, False
        raise Conflict(
            f"a segment with key {doc.key!r} already exists with another definition; "
            "update it with PUT or choose another key",
            code="segment_key_taken",
            extra={"segment_id": str(found.id)},
        )
    now = utcnow()
    seg = AnalyticsSegment(
        tenant_id=tenant_id,
        program_id=doc.program_id,
        key=doc.key,
        names=doc.names,
        descriptions=doc.descriptions,
        filter=doc.filter,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(seg)
    session.flush()
    return seg, True


def get(session: Session, tenant_id: uuid.UUID, segment_id: uuid.UUID) -> AnalyticsSegment:
    seg = session.get(AnalyticsSegment, segment_id)
    if seg is None or seg.tenant_id != tenant_id:
        raise NotFound(f"segment {segment_id} not found")
    return seg


def update(
    session: Session, tenant_id: uuid.UUID, segment_id: uuid.UUID, doc: SegmentDoc
) -> AnalyticsSegment:
    """Replace a segment's definition (its key may change if the new one is free)."""
    seg = get(session, tenant_id, segment_id)
    _check(doc)
    if _same(seg, doc) and seg.key == doc.key:
        return seg
    if doc.key != seg.key:
        taken = session.execute(
            select(AnalyticsSegment.id).where(
                AnalyticsSegment.tenant_id == tenant_id, AnalyticsSegment.key == doc.key
            )
        ).scalar_one_or_none()
        if taken is not None:
            raise Conflict(
                f"another segment has key {doc.key!r}",
                code="segment_key_taken",
                extra={"segment_id": str(taken)},
            )
    seg.key = doc.key
    seg.names = doc.names
    seg.descriptions = doc.descriptions
    seg.filter = doc.filter
    seg.program_id = doc.program_id
    seg.version += 1
    seg.updated_at = utcnow()
    session.flush()
    return seg


def remove(session: Session, tenant_id: uuid.UUID, segment_id: uuid.UUID) -> None:
    session.delete(get(session, tenant_id, segment_id))
    session.flush()


def list_segments(
    session: Session, tenant_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> list[AnalyticsSegment]:
    q = (
        select(AnalyticsSegment)
        .where(AnalyticsSegment.tenant_id == tenant_id)
        .order_by(AnalyticsSegment.id)
        .limit(limit)
    )
    if after is not None:
        q = q.where(AnalyticsSegment.id > after)
    return list(session.execute(q).scalars().all())


def segment_member_ids(
    session: Session, tenant_id: uuid.UUID, segment_id: uuid.UUID
) -> list[uuid.UUID]:
    """The ids of the members in a saved segment now (stored fields as of the program's
    last recompute), ordered by id. Raises NotFound for another tenant's segment. The seam
    for later features (journeys, campaigns, screens); runs in the caller's transaction."""
    seg = get(session, tenant_id, segment_id)
    return [r["member_id"] for r in matching(session, tenant_id, seg.program_id, seg.filter)]


def count(session: Session, tenant_id: uuid.UUID, segment_id: uuid.UUID) -> int:
    seg = get(session, tenant_id, segment_id)
    return sum(1 for _ in matching(session, tenant_id, seg.program_id, seg.filter))
