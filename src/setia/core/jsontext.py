"""JSON text for people and files (the CLI's output, data exports), written as the API
writes the same values: instants in ISO 8601 with ``Z`` for UTC, decimals and UUIDs as
text (pydantic's JSON mode), so a value reads the same wherever it is shown."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python


def jsonable(value: Any) -> Any:
    """A value ``json`` cannot write, as the API writes it; anything else as text."""
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        return str(value)


def dumps(data: Any) -> str:
    """Indented, non-ASCII kept as it is."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=jsonable)
