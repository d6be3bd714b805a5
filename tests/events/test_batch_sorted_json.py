"""The batch path's answers read the points part back as a replay would: through JSON, keys
sorted at every depth, whatever the encoder accepts."""

from __future__ import annotations

import json

from setia.events.batch import _sorted_json


def test_keys_sorted_at_every_depth_like_a_replay() -> None:
    value = {"b": 1, "a": {"d": [{"z": 1, "y": None}], "c": "x"}}
    got = _sorted_json(value)
    assert got == json.loads(json.dumps(value))
    assert list(got) == ["a", "b"]
    assert list(got["a"]) == ["c", "d"]
    assert list(got["a"]["d"][0]) == ["y", "z"]


def test_what_orjson_refuses_still_answers() -> None:
    got = _sorted_json({"z": 2**70, "a": 1})  # beyond 64 bits: orjson refuses it
    assert got == {"a": 1, "z": 2**70}
    assert list(got) == ["a", "z"]
