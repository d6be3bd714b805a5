"""Every message of the console and portal is translated to Indonesian and Malay."""

from __future__ import annotations

import pytest

from setia.web import catalogs, i18n
from setia.web.templating import translate


def test_every_message_is_translated_in_id_and_ms() -> None:
    gaps = catalogs.missing()
    report = {
        lang: sorted(f"{sorted(files)[0]}: {msgid}" for msgid, files in msgs.items())
        for lang, msgs in gaps.items()
    }
    assert not gaps, f"untranslated (run `python -m setia.web.catalogs`): {report}"


def test_placeholders_match_between_english_and_translations() -> None:
    assert catalogs.placeholder_mismatches() == []


def test_translate_fills_placeholders_in_each_language() -> None:
    assert translate("en", "Enter %(minimum)s or more.", minimum=5) == "Enter 5 or more."
    assert translate("id", "Enter %(minimum)s or more.", minimum=5) == "Masukkan 5 atau lebih."
    assert translate("ms", "This field is required.") == "Medan ini wajib diisi."


def test_money_and_numbers_follow_the_language() -> None:
    assert i18n.money("25000", "IDR", "id") == "Rp\xa025.000"
    assert i18n.money("12.5", "MYR", "ms") == "RM12.50"
    assert i18n.number(1234567, "id") == "1.234.567"
    assert i18n.number(1234567, "en") == "1,234,567"


def test_rupiah_and_ringgit_keep_their_symbols_in_english() -> None:
    assert i18n.money("800", "IDR", "en") == "Rp\xa0800"
    assert i18n.money("12.5", "MYR", "en") == "RM12.50"
    assert i18n.money("-1500", "IDR", "id") == "-Rp\xa01.500"


def test_every_template_that_uses_the_form_macros_imports_them_with_context() -> None:
    # Without context, f.csrf() renders an empty token and every browser POST is refused.
    from setia.web.templating import TEMPLATES

    bad = [
        str(p.relative_to(TEMPLATES))
        for p in TEMPLATES.rglob("*.html")
        if 'import "macros/forms.html" as f %}' in p.read_text()
    ]
    assert bad == []


@pytest.mark.parametrize("country", ["ID", "MY", "SG", "TH", "US"])
def test_phone_examples_pass_the_shops_own_check(country: str) -> None:
    """The example a page gives is one the tenant's phone check accepts."""
    from setia.members.service import normalize_phone

    local, international = i18n.phone_example(country), i18n.phone_example(country, True)
    assert normalize_phone(local, country) == normalize_phone(international, country)


def test_system_reasons_in_the_statement_are_words_not_codes() -> None:
    from setia.web.templating import environment

    page = '{% import "console/members/_words.html" as w %}{{ w.ledger_reason(r) }}'
    assert environment("id").from_string(page).render(r="expiry") == "masa berlaku habis"
    assert environment("en").from_string(page).render(r="expiry") == "validity ended"
    # a reason a person typed stays theirs, quoted
    assert environment("ms").from_string(page).render(r="salah input") == "“salah input”"
