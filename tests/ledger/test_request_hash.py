"""request_hash's quick way (orjson, ``no_floats=True``) gives the digest of the general
way (``json.dumps``) for every document it is meant for, so digests stored before it stay
valid: a retry of an old event still matches."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from setia.ledger.service import request_hash


def _general(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_text = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12),
    st.text(max_size=8),  # any code point: non-ASCII, surrogates' neighbours, ...
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits too
    _text,
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=400)
@given(_documents)
def test_the_quick_way_gives_the_general_digest(document: Any) -> None:
    assert request_hash(document, no_floats=True) == request_hash(document) == _general(document)


def test_what_the_quick_way_writes_differently_goes_the_general_way() -> None:
    import uuid
    from datetime import UTC, datetime
    from enum import StrEnum

    class Kind(StrEnum):
        A = "a"

    cases = [
        {"name": "Kopi Susu \u00e9\u4e2d"},  # json.dumps escapes non-ASCII
        {"note": "a\x7fb"},  # and DEL
        {"big": 2**64},
        {"at": datetime(2026, 11, 25, 3, 0, tzinfo=UTC)},  # str(): a space, not "T"
        {"kind": Kind.A},
        {"id": uuid.UUID(int=5)},
        {"control": '\x00\x01\x1f\b\f\n\r\t"\\'},
    ]
    for payload in cases:
        assert request_hash(payload, no_floats=True) == _general(payload), payload


def test_floats_are_the_callers_to_rule_out() -> None:
    # Why the quick way is opt-in: orjson writes some floats differently, in plain ASCII.
    document = {"rating": 1e-05}
    assert request_hash(document) == _general(document)
    assert request_hash(document, no_floats=True) != _general(document)
