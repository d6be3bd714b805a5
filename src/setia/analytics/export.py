"""CSV and Parquet downloads of the member-level analytics lists (``?format=csv|parquet``).

One row per member. Types in Parquet: ``member_id`` text (UUID), scores ``int8``, counts
``int32``, money ``decimal128`` with the currency's decimals (IDR: 0), P(alive) and expected
purchases ``float64``, segment/label/type text. CSV has the same columns (money as plain
decimal text, empty for a missing value).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pyarrow as pa

from setia.analytics import files
from setia.core.money import precision, to_str


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    parquet = "parquet"


MEDIA_TYPES = {
    ExportFormat.csv: files.CSV_MEDIA_TYPE,
    ExportFormat.parquet: files.PARQUET_MEDIA_TYPE,
}


def openapi_content(json_description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 response's extra media types, for ``responses=`` of a route."""
    return {
        200: {
            "description": json_description
            + " With `format=csv` or `format=parquet`, the same rows as a file "
            "(every matching member, no pagination).",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                files.PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


def money_type(currency: str) -> Any:
    return pa.decimal128(20, precision(currency))


def money(value: Decimal | float | None, currency: str) -> Decimal | None:
    """A money value rounded to the currency's decimals (as the JSON strings are)."""
    if value is None:
        return None
    return Decimal(to_str(Decimal(str(value)), currency))


def columns(currency: str, spec: Sequence[tuple[str, str]]) -> list[tuple[str, Any]]:
    types = {
        "uuid": pa.string(),
        "text": pa.string(),
        "score": pa.int8(),
        "count": pa.int32(),
        "float": pa.float64(),
        "money": money_type(currency),
    }
    return [(name, types[kind]) for name, kind in spec]


MEMBER_COLUMNS = (
    ("member_id", "uuid"),
    ("segment", "text"),
    ("r", "score"),
    ("f", "score"),
    ("m", "score"),
    ("recency_days", "count"),
    ("orders", "count"),
    ("spend", "money"),
    ("p_alive", "float"),
    ("expected_purchases", "float"),
    ("clv", "money"),
    ("label", "text"),
    ("loyalty_type", "text"),
)

RFM_COLUMNS = (
    ("member_id", "uuid"),
    ("segment", "text"),
    ("r", "score"),
    ("f", "score"),
    ("m", "score"),
    ("recency_days", "count"),
    ("orders", "count"),
    ("spend", "money"),
    ("refunds", "money"),
    ("x", "float"),
    ("t_x", "float"),
    ("T", "float"),
    ("monetary", "money"),
    ("p_alive", "float"),
    ("expected_purchases", "float"),
    ("clv", "money"),
)

LABEL_COLUMNS = (
    ("member_id", "uuid"),
    ("label", "text"),
    ("loyalty_type", "text"),
    ("habitual", "float"),
    ("transactional", "float"),
    ("emotional", "float"),
    ("purchase_days", "count"),
    ("recency_days", "count"),
    ("tenure_days", "count"),
    ("p_alive", "float"),
)


def render(
    fmt: ExportFormat, currency: str, spec: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]]
) -> bytes:
    """The rows as CSV or Parquet bytes."""
    table = files.table_from_rows(columns(currency, spec), rows)
    return files.table_bytes(table, fmt.value)
