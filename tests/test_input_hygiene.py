"""Values that pass validation but cannot be stored, and amounts written in odd ways."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.money import MoneyError, parse_amount
from setia.members.models import Member
from tests.conftest import TenantFixture


@pytest.mark.parametrize("value", ["1_000", "+5", "5.", ".5", "1e3", "١٢٣", "NaN", "", "12,50"])
def test_amounts_are_plain_ascii_digits(value: str) -> None:
    with pytest.raises(MoneyError) as exc:
        parse_amount(value, "IDR")
    assert exc.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("value", "currency", "want"),
    [(" 15000 ", "IDR", "15000"), ("12.50", "MYR", "12.50"), (7, "IDR", "7")],
)
def test_plain_amounts_still_parse(value: object, currency: str, want: str) -> None:
    assert str(parse_amount(value, currency)) == want


@pytest.mark.parametrize(
    ("value", "currency", "want"),
    [
        ("85000.0", "IDR", "85000"),
        ("85000.00", "IDR", "85000"),
        ("12.5", "MYR", "12.50"),
        # a currency with decimals keeps its trailing zeros (a 4-place export, say)
        ("12.500", "MYR", "12.50"),
        ("12.5000", "MYR", "12.50"),
    ],
)
def test_a_whole_amount_written_with_cents_is_whole(value: str, currency: str, want: str) -> None:
    assert str(parse_amount(value, currency)) == want


@pytest.mark.parametrize(
    ("value", "currency", "hint"),
    [
        # Rp 78.000 written the Indonesian way would otherwise be Rp 78
        ("78.000", "IDR", 'write "78000"'),
        ("1.500", "IDR", 'write "1500"'),
        ("85000.000", "IDR", None),
        ("12.505", "MYR", None),
        ("85000.50", "IDR", None),
    ],
)
def test_a_fraction_finer_than_the_currency_is_refused(
    value: str, currency: str, hint: str | None
) -> None:
    with pytest.raises(MoneyError) as exc:
        parse_amount(value, currency)
    assert exc.value.code == "too_many_decimals"
    assert (hint in str(exc.value)) if hint else ("group thousands" not in str(exc.value))


def test_thousands_grouped_with_dots_are_refused_with_a_hint() -> None:
    with pytest.raises(MoneyError) as exc:
        parse_amount("1.250.000", "IDR")
    assert exc.value.code == "invalid_amount"
    assert 'write "1250000"' in str(exc.value)


def test_a_nul_character_is_a_clear_422_with_nothing_written(
    client: TestClient, db: Database, tenant: TenantFixture, backend: str
) -> None:
    r = client.post("/v1/members", json={"name": "Sari\u0000"}, headers=tenant.headers)
    # SQLite stores it as it is; PostgreSQL cannot store NUL in text and must say so clearly.
    assert r.status_code == (201 if backend == "sqlite" else 422), r.text
    if r.status_code == 422:
        assert r.json()["code"] == "invalid_input"
        with db.session() as s:
            assert s.execute(select(func.count()).select_from(Member)).scalar_one() == 0
