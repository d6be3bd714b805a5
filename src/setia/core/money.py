"""Money: ``Decimal`` amounts with an ISO 4217 currency.

Display precision comes from Babel (CLDR). Rupiah is the exception: CLDR lists two
minor digits for IDR, but its cash digits are 0 and no till or shop in Indonesia uses
sen, so Setia accepts and shows IDR with no decimals.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    list_currencies,
)

_PRECISION_OVERRIDES = {"IDR": 0}
# Amounts are stored as NUMERIC(18, 4): fourteen digits before the point.
MAX_AMOUNT = Decimal(10) ** 14
_CURRENCIES = frozenset(list_currencies())
_PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
# Thousands grouped with dots, as Indonesians write amounts: "78.000", "1.250.000".
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(\.[0-9]{3})+", re.ASCII)


class MoneyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_currency(code: str) -> str:
    code = code.strip().upper()
    if code not in _CURRENCIES:
        raise MoneyError(
            "unknown_currency",
            f"unknown currency {code!r}; use an ISO 4217 code such as IDR or MYR",
        )
    return code


def precision(currency: str) -> int:
    return _PRECISION_OVERRIDES.get(currency, get_currency_precision(currency))


def parse_amount(value: object, currency: str, *, allow_zero: bool = False) -> Decimal:
    """Parse an amount sent as a string (or int); refuse floats, NaN, negatives and extra decimals."""
    if isinstance(value, bool | float):
        raise MoneyError("invalid_amount", 'send amounts as strings, e.g. "15000" or "12.50"')
    text = str(value).strip()
    # Plain ASCII digits with an optional decimal point: Decimal() alone would also take
    # "1_000", "+5", "5.", "1e3" and digits of other scripts.
    if not _PLAIN.fullmatch(text):
        grouped = _GROUPED.fullmatch(text) is not None and precision(currency) == 0
        raise MoneyError(
            "invalid_amount",
            f'{value!r} is not an amount: do not group thousands with a dot, write "{text.replace(".", "")}"'
            if grouped
            else f'{value!r} is not an amount: write digits with an optional decimal point, e.g. "15000" or "12.50"',
        )
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise MoneyError("invalid_amount", f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise MoneyError("invalid_amount", f"{value!r} is not a finite number")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise MoneyError(
            "invalid_amount",
            "the amount must not be negative"
            if allow_zero
            else "the amount must be greater than zero",
        )
    if amount >= MAX_AMOUNT:
        raise MoneyError("invalid_amount", f"the amount must be less than {MAX_AMOUNT:,}")
    digits = precision(currency)
    point = text.find(".")
    # In a currency without decimals (rupiah), trailing zeros up to two places are a
    # machine's way of writing a whole amount ("85000.00" from a shop exporting every price
    # with cents); three or more read as a dot grouping thousands, the Indonesian way
    # ("78.000" is Rp 78.000, not Rp 78): refused rather than taken a thousand times too
    # small. A currency with decimals keeps its trailing zeros ("12.500" ringgit is 12.50).
    if digits == 0 and point >= 0 and len(text) - point - 1 > 2:
        grouped = _GROUPED.fullmatch(text) is not None
        raise MoneyError(
            "too_many_decimals",
            f"{currency} amounts allow {digits} decimal place(s); got {value}"
            + (
                f'; do not group thousands with a dot: write "{text.replace(".", "")}"'
                if grouped
                else ""
            ),
        )
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > digits:
        raise MoneyError(
            "too_many_decimals",
            f"{currency} amounts allow {digits} decimal place(s); got {value}",
        )
    return amount.quantize(Decimal(1).scaleb(-digits))


def to_str(amount: Decimal, currency: str) -> str:
    return str(amount.quantize(Decimal(1).scaleb(-precision(currency))))


# Rupiah and ringgit in their own symbols whatever the reader's language (English CLDR
# writes "IDR800", "MYR12.50"): "Rp 25.000" (no sen), "RM12.50", as people there read them.
LOCAL_SYMBOL = {"IDR": ("Rp\u00a0", 0), "MYR": ("RM", 2)}


def display(amount: Decimal, currency: str, locale: str = "id_ID") -> str:
    """An amount for people: grouped and with the currency's symbol, in ``locale``'s way."""
    local = LOCAL_SYMBOL.get(currency)
    if local is not None:
        symbol, places = local
        fmt = "#,##0" if places == 0 else "#,##0." + "0" * places
        text = format_decimal(abs(amount), format=fmt, locale=locale)
        return ("-" if amount < 0 else "") + symbol + text
    digits = precision(currency)
    return (
        format_currency(
            amount,
            currency,
            locale=locale,
            currency_digits=False,
            format=None,
            decimal_quantization=True,
        )
        if digits == get_currency_precision(currency)
        else format_currency(
            amount, currency, locale=locale, format="¤#,##0", currency_digits=False
        )
    )
