"""UTCDateTime's one-step SQLite conversions give what SQLAlchemy's two steps give, and the
JSON columns' encoder reads back what it wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from setia.core.db import UTCDateTime, dump_json, load_json

_DIALECT = sqlite.dialect()
_TYPE = UTCDateTime().dialect_impl(_DIALECT)  # what SQLAlchemy calls on SQLite


def _reference_bind(value: datetime) -> str:
    """SQLAlchemy's own path: process_bind_param, then SQLite DATETIME's processor."""
    naive = _TYPE.process_bind_param(value, _DIALECT)
    impl = _TYPE.impl_instance.dialect_impl(_DIALECT).bind_processor(_DIALECT)
    assert impl is not None
    return impl(naive)


def _reference_result(text: str) -> datetime:
    parent = TypeDecorator.result_processor(_TYPE, _DIALECT, None)
    assert parent is not None
    return parent(text)


instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@given(instants, offsets)
def test_bind_matches_sqlalchemy(instant: datetime, tz: timezone) -> None:
    bind = _TYPE.bind_processor(_DIALECT)
    assert bind is not None
    local = instant.astimezone(tz)
    assert bind(local) == _reference_bind(local)
    assert bind(instant) == _reference_bind(instant)


@given(instants)
def test_result_matches_sqlalchemy(instant: datetime) -> None:
    result = _TYPE.result_processor(_DIALECT, None)
    assert result is not None
    text = _reference_bind(instant)
    assert result(text) == _reference_result(text) == instant
    # Written by SQLite itself (CURRENT_TIMESTAMP): no fraction.
    short = text[:19]
    assert result(short) == _reference_result(short)


def test_naive_and_none() -> None:
    bind = _TYPE.bind_processor(_DIALECT)
    result = _TYPE.result_processor(_DIALECT, None)
    assert bind is not None
    assert result is not None
    assert bind(None) is None
    assert result(None) is None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 1, 1))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(-5, 5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_json_round_trip_like_json_module(value: object) -> None:
    # What json.dumps/json.loads would store and give back, whatever the text looks like.
    assert load_json(dump_json(value)) == json.loads(json.dumps(value))


def test_non_finite_numbers_are_stored_as_null() -> None:
    # json.dumps would write NaN/Infinity, which is not JSON (PostgreSQL refuses it).
    assert dump_json({"x": float("inf"), "y": float("nan")}) == '{"x":null,"y":null}'
    assert load_json("NaN") != load_json("NaN")  # old rows written by json.dumps still read


def test_ids_increase_and_a_forked_child_draws_its_own_bits() -> None:
    import os
    import pickle
    import uuid

    from setia.core.db import new_id

    ids = [new_id() for _ in range(2000)]  # crosses a refill of the random buffer
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    # Built without UUID.__init__: equal, hashed and pickled like one built the usual way.
    again = [uuid.UUID(str(i)) for i in ids[:50]]
    assert again == ids[:50]
    assert {hash(i) for i in again} == {hash(i) for i in ids[:50]}
    assert pickle.loads(pickle.dumps(ids[0])) == ids[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id's random tail, as text
        os.write(write, new_id().hex[13:].encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_tail = os.read(read, 64).decode()
    os.close(read)
    # The parent's next id would have used the same buffered bits without the fork hook.
    assert child_tail != new_id().hex[13:]
