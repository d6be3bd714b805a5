"""Translations of the console and portal, and locale-aware formatting.

Catalogs are gettext ``.po`` files read with Babel: ``web/locales/<lang>/<area>.po``, one file
per console area and language (so areas never edit the same file), merged per language at
start. Message ids are the English texts; ``en`` files may leave ``msgstr`` empty (English is
the source), ``id`` and ``ms`` must translate every message (``tests/web/test_catalogs.py``).

Money goes through Babel (Rp 25.000, RM 12.50), dates through Babel in the tenant's or the
member's time zone.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import phonenumbers
from babel import Locale as BabelLocale
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from setia.core.i18n import BABEL_LOCALES
from setia.core.money import display
from setia.core.time import zone

LOCALES: tuple[str, ...] = ("id", "ms", "en")


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; translate it where it is shown."""
    return message


LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "ms": "Bahasa Melayu", "en": "English"}
BABEL_LOCALE = BABEL_LOCALES
DIR = Path(__file__).resolve().parent / "locales"


class Catalog(gettext.NullTranslations):
    """All ``.po`` files of one language, merged. Missing messages fall back to the msgid
    (English)."""

    def __init__(
        self, messages: Mapping[str, str], plurals: Mapping[tuple[str, int], str], plural_expr: Any
    ) -> None:
        super().__init__()
        self._messages = dict(messages)
        self._plurals = dict(plurals)
        self._plural = plural_expr

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        index = int(self._plural(n)) if self._plural else (0 if n == 1 else 1)
        found = self._plurals.get((msgid1, index)) or self._plurals.get((msgid1, 0))
        if found:
            return found
        # A catalog that holds the message as a plain (non-plural) entry: Indonesian and Malay
        # nouns do not change with the number ("1 poin", "5 poin").
        single = self._messages.get(msgid1)
        if single:
            return single
        return msgid1 if n == 1 else msgid2

    def pgettext(self, context: str, message: str) -> str:
        return self.gettext(message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return self.ngettext(msgid1, msgid2, n)


def po_files(lang: str) -> list[Path]:
    return sorted((DIR / lang).glob("*.po"))


@cache
def catalog(lang: str) -> Catalog:
    if lang not in LOCALES:
        lang = "en"
    messages: dict[str, str] = {}
    plurals: dict[tuple[str, int], str] = {}
    plural_expr: Any = None
    for path in po_files(lang):
        with path.open("rb") as fh:
            po = read_po(fh, locale=BABEL_LOCALE[lang])
        plural_expr = po.plural_expr and _plural_func(po.plural_expr)
        for msg in po:
            if not msg.id:
                continue
            if isinstance(msg.id, tuple | list):
                strings = msg.string if isinstance(msg.string, tuple | list) else (msg.string,)
                for i, text in enumerate(strings):
                    if text:
                        plurals[(str(msg.id[0]), i)] = str(text)
            elif msg.string:
                messages[str(msg.id)] = str(msg.string)
    return Catalog(messages, plurals, plural_expr)


def _plural_func(expr: str) -> Any:
    return gettext.c2py(expr)


def reload() -> None:
    """Forget loaded catalogs (tests that write .po files)."""
    catalog.cache_clear()
    from setia.web.templating import environment

    environment.cache_clear()


def gettext_for(lang: str) -> Any:
    return catalog(lang).gettext


def choose_locale(*candidates: str | None, accept_language: str | None = None) -> str:
    """The first supported language among the candidates (session choice, member or staff
    locale, tenant locale), then the browser's Accept-Language, then Indonesian."""
    for value in candidates:
        if value and value[:2].lower() in LOCALES:
            return value[:2].lower()
    if accept_language:
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip()[:2].lower()
            if tag in LOCALES:
                return tag
    return "id"


# --- formatting ---------------------------------------------------------------------------


def money(amount: Decimal | str | int | None, currency: str, lang: str) -> str:
    if amount is None:
        return "—"
    return display(Decimal(str(amount)), currency, BABEL_LOCALE.get(lang, "id_ID"))


def number(value: int | float | Decimal | None, lang: str, digits: int = 0) -> str:
    if value is None:
        return "—"
    fmt = "#,##0" if digits == 0 else "#,##0." + "0" * digits
    return format_decimal(value, format=fmt, locale=BABEL_LOCALE.get(lang, "id_ID"))


def percent(value: float | None, lang: str, digits: int = 1) -> str:
    if value is None:
        return "—"
    return number(value * 100, lang, digits) + " %"


def when(value: datetime | None, lang: str, tz: str, fmt: str = "medium") -> str:
    """A timestamp in the reader's time zone (the tenant's for staff, the member's or the
    tenant's in the portal)."""
    if value is None:
        return "—"
    return format_datetime(
        value, format=fmt, tzinfo=zone(tz), locale=BABEL_LOCALE.get(lang, "id_ID")
    )


def day(
    value: date | datetime | None, lang: str, tz: str | None = None, fmt: str = "medium"
) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(zone(tz or "UTC")).date()
    return format_date(value, format=fmt, locale=BABEL_LOCALE.get(lang, "id_ID"))


def language_name(lang: str) -> str:
    return LANGUAGE_NAMES.get(lang) or BabelLocale.parse(lang).display_name or lang


# How people write a mobile number in the shop's country: the examples the pages give.
_PHONE_EXAMPLES = {
    "ID": ("0812-3456-7890", "+62 812 3456 7890"),
    "MY": ("012-345 6789", "+60 12-345 6789"),
}


@cache
def phone_example(country: str | None, international: bool = False) -> str:
    """A mobile number as typed in ``country`` (the tenant's), or in the international
    form: an example the shop's own phone check accepts, whatever the page's language."""
    code = (country or "ID").upper()
    known = _PHONE_EXAMPLES.get(code)
    if known is not None:
        return known[1 if international else 0]
    number = phonenumbers.example_number_for_type(code, phonenumbers.PhoneNumberType.MOBILE)
    if number is None:
        return _PHONE_EXAMPLES["ID"][1]
    style = (
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
        if international
        else phonenumbers.PhoneNumberFormat.NATIONAL
    )
    return str(phonenumbers.format_number(number, style))
