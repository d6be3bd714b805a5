"""Form handling for console and portal pages: field errors next to the field, in the
reader's language; nothing is written when a field is wrong.

Typical use::

    errors = FieldErrors(web)
    amount = errors.integer(form, "points", required=True, minimum=1)
    reason = errors.text(form, "reason", required=True, max_length=500)
    if errors:
        return render(request, "console/members/adjust.html", {"errors": errors, "form": form},
                      status_code=422)
    try:
        ...service call...
        web.session.commit()
    except SetiaError as exc:
        web.session.rollback()
        errors.from_error(exc, {"insufficient_points": "points"})
        ...re-render with 409/422...

Templates show ``errors.get("points")`` next to the field (``macros/forms.html``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from setia.core.errors import SetiaError
from setia.web.deps import WebContext
from setia.web.i18n import N_

# Generic messages (msgids in locales/*/core.po).
REQUIRED = N_("This field is required.")
NOT_A_NUMBER = N_("Enter a whole number.")
NOT_AN_AMOUNT = N_("Enter an amount, for example 25000 or 12.50.")
# "Rp." is how some write rupiah; in ringgit a dot after the symbol is the decimal point
# ("RM.50" is 50 sen), so it stays.
_CURRENCY_PREFIX = re.compile(r"^(?:(?:rp|idr)\.?|rm|myr)", re.IGNORECASE)
TOO_SMALL = N_("Enter %(minimum)s or more.")
TOO_LARGE = N_("Enter %(maximum)s or less.")
TOO_LONG = N_("Use at most %(max_length)s characters.")
NOT_A_CHOICE = N_("Choose one of the options.")
INVALID = N_("This value is not valid.")


class FieldErrors:
    """Errors by field name (``"__all__"`` for the form as a whole), already translated."""

    def __init__(self, web: WebContext | None = None, lang: str | None = None) -> None:
        self.lang = lang or (web.lang if web else "id")
        self._errors: dict[str, str] = {}

    def t(self, message: str, **values: Any) -> str:
        from setia.web.templating import translate

        return translate(self.lang, message, **values)

    def add(self, name: str, message: str, **values: Any) -> None:
        """Add an error (an English msgid, translated here); the first per field wins."""
        self._errors.setdefault(name, self.t(message, **values))

    def add_text(self, name: str, text: str) -> None:
        """Add an already-translated (or untranslatable, e.g. a service's detail) text."""
        self._errors.setdefault(name, text)

    def get(self, name: str) -> str | None:
        return self._errors.get(name)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def __contains__(self, name: object) -> bool:
        return name in self._errors

    def items(self) -> list[tuple[str, str]]:
        return list(self._errors.items())

    # -- readers: return the parsed value, or None and record an error -------------------

    def text(
        self,
        form: FormData | Mapping[str, Any],
        name: str,
        *,
        required: bool = False,
        max_length: int = 200,
    ) -> str | None:
        value = str(form.get(name) or "").strip()
        if not value:
            if required:
                self.add(name, REQUIRED)
            return None
        if len(value) > max_length:
            self.add(name, TOO_LONG, max_length=max_length)
            return None
        return value

    def integer(
        self,
        form: FormData | Mapping[str, Any],
        name: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        raw = str(form.get(name) or "").strip().replace(".", "").replace(",", "")
        if not raw:
            if required:
                self.add(name, REQUIRED)
            return None
        if not raw.lstrip("-").isdigit():
            self.add(name, NOT_A_NUMBER)
            return None
        value = int(raw)
        if minimum is not None and value < minimum:
            self.add(name, TOO_SMALL, minimum=minimum)
            return None
        if maximum is not None and value > maximum:
            self.add(name, TOO_LARGE, maximum=maximum)
            return None
        return value

    def amount(
        self, form: FormData | Mapping[str, Any], name: str, *, required: bool = False
    ) -> Decimal | None:
        """A money amount as typed by a person: "25000", "25.000" (id), "Rp 25.000", "RM12.50",
        "12.50"; returned as ``Decimal``. Currency precision is the service's to check."""
        raw = str(form.get(name) or "").strip().replace(" ", "").replace("\u00a0", "")
        raw = _CURRENCY_PREFIX.sub("", raw)  # the symbol people type with it
        if not raw:
            if required:
                self.add(name, REQUIRED)
            return None
        if raw.count(".") > 1 or ("." in raw and len(raw.rsplit(".", 1)[1]) == 3):
            raw = raw.replace(".", "")  # 25.000 written the Indonesian way
        raw = (
            raw.replace(",", ".")
            if raw.count(",") == 1 and "." not in raw
            else raw.replace(",", "")
        )
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.add(name, NOT_AN_AMOUNT)
            return None
        if not value.is_finite() or value < 0:
            self.add(name, NOT_AN_AMOUNT)
            return None
        return value

    def choice(
        self,
        form: FormData | Mapping[str, Any],
        name: str,
        options: list[str] | tuple[str, ...],
        *,
        required: bool = True,
    ) -> str | None:
        value = str(form.get(name) or "").strip()
        if not value:
            if required:
                self.add(name, REQUIRED)
            return None
        if value not in options:
            self.add(name, NOT_A_CHOICE)
            return None
        return value

    # -- from service errors -------------------------------------------------------------

    def from_validation(self, exc: ValidationError, prefix: str = "") -> None:
        """Pydantic errors onto fields (the last part of each error's location)."""
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            name = prefix + (loc[-1] if loc else "__all__")
            kind = err.get("type", "")
            ctx = err.get("ctx") or {}
            if kind == "missing":
                self.add(name, REQUIRED)
            elif kind in ("int_parsing", "int_type", "int_from_float"):
                self.add(name, NOT_A_NUMBER)
            elif kind in ("greater_than_equal", "greater_than") and ("ge" in ctx or "gt" in ctx):
                self.add(name, TOO_SMALL, minimum=ctx.get("ge", ctx.get("gt")))
            elif kind in ("less_than_equal", "less_than"):
                self.add(name, TOO_LARGE, maximum=ctx.get("le", ctx.get("lt")))
            elif kind == "string_too_long":
                self.add(name, TOO_LONG, max_length=ctx.get("max_length"))
            elif kind in ("literal_error", "enum"):
                self.add(name, NOT_A_CHOICE)
            else:
                self.add_text(
                    name, str(err.get("msg", self.t(INVALID))).removeprefix("Value error, ")
                )

    def from_error(
        self,
        exc: SetiaError,
        fields: Mapping[str, str] | None = None,
        messages: Mapping[str, str] | None = None,
        **values: Any,
    ) -> None:
        """A service error onto the field its ``code`` is about (``fields``: code -> field
        name, else ``"__all__"``), with the translated text from ``messages`` (code -> English
        msgid, its placeholders filled from ``values``) when given, else the service's own
        detail."""
        name = (fields or {}).get(exc.code, "__all__")
        if messages and exc.code in messages:
            self.add(name, messages[exc.code], **values)
        else:
            self.add_text(name, exc.detail)
