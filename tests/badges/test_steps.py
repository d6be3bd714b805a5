"""The counting shortcuts against the reference arithmetic: each definition's compiled step
(``Spec.step``) changes a tally's entry exactly as ``_apply`` changes a progress row, event
after event."""

from __future__ import annotations

import copy
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from setia.badges.models import BadgeDefinition
from setia.badges.service import Row, _apply, _message, _message_head, _message_text, _spec


def definition(measure: str, target: str, **extra: Any) -> BadgeDefinition:
    return BadgeDefinition(
        id=uuid.uuid4(),
        code=f"{measure}-{target}",
        kind="challenge",
        event_type="purchase",
        measure=measure,
        target=Decimal(target),
        reward_points=0,
        recurring=False,
        **extra,
    )


def contributions(measure: str, rng: random.Random) -> Any:
    if measure in ("count", "first"):
        return Decimal(1)
    if measure == "sum":
        return Decimal(rng.choice(["0.5", "1", "2500", "12000.25", "30000"]))
    if measure == "distinct":
        return sorted(rng.sample(["a", "b", "c", "d", "e", "f", "g"], rng.randint(1, 3)))
    return rng.randint(700_000, 700_012)  # local day/week/month numbers, some repeated


IDS = (uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4())


def blank() -> Row:
    return Row(*IDS, "all")


def as_entry(row: Row) -> list[Any]:
    """A row as a tally stores it (what ``_apply`` leaves, in the entry's form)."""
    return [
        str(row.value),
        row.events,
        row.last_event_at.isoformat() if row.last_event_at else None,
        row.completed_at.isoformat() if row.completed_at else None,
        row.state or None,
    ]


def as_row(entry: list[Any]) -> tuple[Any, ...]:
    """What an entry means: value, events, instants; state while it is still open."""
    value, events, last, done, state = entry
    return (
        Decimal(value),
        events,
        datetime.fromisoformat(last) if last else None,
        datetime.fromisoformat(done) if done else None,
        (state or None) if done is None else None,
    )


@pytest.mark.parametrize(
    ("measure", "target", "extra"),
    [
        ("count", "5", {}),
        ("first", "1", {}),
        ("sum", "100000", {"field": "event.amount"}),
        ("sum", "3", {"field": "event.amount"}),
        ("distinct", "4", {"field": "item.sku"}),
        ("streak", "3", {"streak_unit": "day"}),
        ("streak", "5", {"streak_unit": "week"}),
    ],
)
def test_each_step_changes_a_row_as_the_reference_does(
    measure: str, target: str, extra: dict[str, Any]
) -> None:
    spec = _spec(definition(measure, target, **extra))
    rng = random.Random(f"{measure}-{target}")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for _ in range(200):
        entry: list[Any] = ["0", 0, None, None, None]
        slow = blank()
        for _ in range(rng.randint(1, 12)):
            c = contributions(measure, rng)
            at = start + timedelta(hours=rng.randint(0, 2000))  # late events too
            assert spec.step(entry, copy.deepcopy(c), at.isoformat()) == _apply(spec, slow, c, at)
            assert as_row(entry) == as_row(as_entry(slow)), (entry, slow)


@pytest.mark.parametrize(
    ("measure", "target", "value", "done"),
    [
        ("count", "5", "3", None),
        ("count", "5", "5", "2026-03-01T10:00:00+00:00"),
        ("sum", "100000", "12000.50", None),
        ("sum", "100000", "100000.00", "2026-03-31T16:59:59.250000+00:00"),
        ("distinct", "4", "2", None),
    ],
)
def test_message_text_is_the_message(
    measure: str, target: str, value: str, done: str | None
) -> None:
    """The payload written as text is the payload ``_message`` describes."""
    extra = {"field": "event.amount"} if measure == "sum" else {}
    if measure == "distinct":
        extra = {"field": "item.sku"}
    spec = _spec(definition(measure, target, **extra))
    member, event = uuid.uuid4(), uuid.uuid4()
    program = str(uuid.uuid4())
    text = _message_text(
        _message_head(spec, program), spec, "2026-03", value, done, str(member), str(event)
    ).text
    at = datetime.fromisoformat(done) if done else None
    assert json.loads(text) == _message(spec, member, "2026-03", program, Decimal(value), at, event)
