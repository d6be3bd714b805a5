"""Checks the console's and portal's translations: every message in the templates and the
web code must be translated in ``id`` and ``ms`` (English is the source language).

    python -m setia.web.catalogs            # lists what is missing, by source file
    python -m setia.web.catalogs --stub AREA 'templates/console/members/*' console/members.py
        # adds the untranslated messages used in those files (glob patterns, relative to
        # src/setia/web) to locales/{id,ms,en}/AREA.po with an empty msgstr, to fill in

Messages are found with Babel's extractors: ``_()``, ``gettext``, ``ngettext`` in templates;
``_()``, ``N_()``, ``t()``, ``translate(lang, ...)``, ``add(name, ...)`` in Python.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from setia.web import i18n

WEB = Path(__file__).resolve().parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "t": None,
    "translate": (2,),
    "add": (2,),
}
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[str, set[str]]:
    """msgid -> the files that use it."""
    found: dict[str, set[str]] = defaultdict(set)
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    options_map = {
        "templates/**.html": {
            "extensions": "jinja2.ext.i18n",
            "trim_blocks": "true",
            "lstrip_blocks": "true",
        }
    }
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(WEB),
        method_map=method_map,
        options_map=options_map,
        keywords=KEYWORDS,
        callback=None,
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found[msgid].add(filename)
    return found


def translations(lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in i18n.po_files(lang):
        with path.open("rb") as fh:
            po = read_po(fh, locale=i18n.BABEL_LOCALE[lang])
        for msg in po:
            if not msg.id:
                continue
            key = str(msg.id[0] if isinstance(msg.id, tuple | list) else msg.id)
            text = msg.string[0] if isinstance(msg.string, tuple | list) else msg.string
            if text:
                out[key] = str(text)
    return out


def missing(langs: tuple[str, ...] = ("id", "ms")) -> dict[str, dict[str, set[str]]]:
    """lang -> msgid -> files, for messages with no translation."""
    used = extracted()
    out: dict[str, dict[str, set[str]]] = {}
    for lang in langs:
        have = translations(lang)
        gaps = {m: files for m, files in used.items() if m not in have}
        if gaps:
            out[lang] = gaps
    return out


def placeholder_mismatches(langs: tuple[str, ...] = ("id", "ms")) -> list[str]:
    problems = []
    for lang in langs:
        for msgid, text in translations(lang).items():
            if set(_PLACEHOLDER.findall(msgid)) != set(_PLACEHOLDER.findall(text)):
                problems.append(f"{lang}: {msgid!r} -> {text!r}")
    return problems


def stub(area: str, patterns: list[str]) -> int:
    """Append the untranslated messages used in files matching ``patterns`` to
    ``locales/<lang>/<area>.po`` (created when missing); returns how many were added."""
    from fnmatch import fnmatch

    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    used = extracted()
    wanted = {m for m, files in used.items() if any(fnmatch(f, p) for f in files for p in patterns)}
    added = 0
    for lang in i18n.LOCALES:
        have = set(translations(lang))
        path = i18n.DIR / lang / f"{area}.po"
        if path.exists():
            with path.open("rb") as fh:
                cat = read_po(fh, locale=i18n.BABEL_LOCALE[lang])
        else:
            cat = Catalog(locale=i18n.BABEL_LOCALE[lang], project="Setia", domain=area)
        present = {m.id for m in cat if m.id}
        for msgid in sorted(wanted):
            if msgid not in present and (lang == "en" or msgid not in have):
                cat.add(msgid, "")
                added += lang != "en"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, cat, width=100, no_location=True)
    i18n.reload()
    return added


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--stub":
        count = stub(sys.argv[2], sys.argv[3:] or ["*"])
        print(f"added {count} empty entries to locales/{{id,ms,en}}/{sys.argv[2]}.po; fill them in")
        return 0
    gaps = missing()
    bad = placeholder_mismatches()
    for lang, msgs in gaps.items():
        print(f"# {lang}: {len(msgs)} untranslated")
        for msgid, files in sorted(msgs.items(), key=lambda kv: sorted(kv[1])):
            print(f"{', '.join(sorted(files))}: {msgid!r}")
    for line in bad:
        print(f"placeholders differ: {line}")
    return 1 if gaps or bad else 0


if __name__ == "__main__":
    sys.exit(main())
