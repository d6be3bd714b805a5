"""Texts in the three languages Setia speaks: Bahasa Indonesia (``id``), Malay (``ms``) and
English (``en``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Locale = Literal["id", "ms", "en"]
LOCALES: tuple[str, ...] = ("id", "ms", "en")
# Babel's locale for each language: how numbers, dates and money are written. English is
# Malaysia's ("26 Nov 2026", "1,200"), the English our English-speaking readers use.
BABEL_LOCALES: dict[str, str] = {"id": "id_ID", "ms": "ms_MY", "en": "en_MY"}


def babel_locale(lang: str) -> str:
    """Babel's locale for one of our languages (Indonesian's for any other)."""
    return BABEL_LOCALES.get(lang, "id_ID")


# Malay and Indonesian readers understand each other's language better than English.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "id": ("id", "ms", "en"),
    "ms": ("ms", "id", "en"),
    "en": ("en", "id", "ms"),
}


class Localized(BaseModel):
    """A text in Bahasa Indonesia, Malay and English; ``id`` or ``en`` at least (``ms`` is
    optional: a Malay reader falls back to Indonesian, then English)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=2000)
    ms: str | None = Field(default=None, max_length=2000)
    en: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> Localized:
        if not (self.id or self.en):
            raise ValueError("give the text in id or en at least (ms is optional)")
        return self


def pick(texts: Mapping[str, Any] | None, locale: str) -> str | None:
    """The text in ``locale``, else the nearest language that has one; None if none has."""
    if not texts:
        return None
    for lang in (*FALLBACKS.get(locale, (locale,)), *LOCALES):
        value = texts.get(lang)
        if value:
            return str(value)
    return None
