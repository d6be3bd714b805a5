"""Errors with stable codes, rendered as RFC 9457 problem details.

A service raises a ``SetiaError`` subclass; the API turns it into
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and ``code``;
the CLI prints ``detail`` and exits non-zero. 422 is only for malformed payloads; business
conflicts are 409; another tenant's objects are 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class SetiaError(Exception):
    status: ClassVar[int] = 400
    code: str = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self, detail: str, *, extra: dict[str, Any] | None = None, code: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        if code is not None:
            self.code = code

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://setia.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        # Extra members never replace the standard ones (an HTTP status is a number).
        body.update({k: v for k, v in self.extra.items() if k not in _STANDARD})
        return body


_STANDARD = frozenset({"type", "title", "status", "detail", "code", "instance"})


class NotFound(SetiaError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(SetiaError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidInput(SetiaError):
    """Well-formed input that a field's rules reject (an unknown currency, a bad phone)."""

    status = 422
    code = "invalid_input"
    title = "Invalid input"


class Unauthorized(SetiaError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(SetiaError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class SchemaMissing(SetiaError):
    status = 503
    code = "schema_missing"
    title = "Database schema missing"


# Pydantic's own words for a few mistakes people make often, replaced by what to write.
_ISO_TIME = "give a date and time in ISO 8601 with its UTC offset, e.g. 2026-01-31T23:30:00+07:00"
_VALIDATION_WORDS = {
    "datetime_from_date_parsing": _ISO_TIME,
    "datetime_parsing": _ISO_TIME,
    "datetime_type": _ISO_TIME,
    "timezone_aware": "give the time with its UTC offset, e.g. 2026-01-31T23:30:00+07:00",
}
# The event type's pattern (``setia.events.schemas.EVENT_TYPE_PATTERN``): said in words.
_EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
_EVENT_TYPE_WORDS = (
    "use lower-case letters, digits and '_', in parts joined by '.', each starting with a "
    "letter: purchase, refund, review.submitted"
)


def validation_message(error: Mapping[str, Any]) -> str:
    """A request validation error's message, in words that say what to write instead where
    pydantic's own would not (a date in another format, a type in capitals)."""
    kind = str(error.get("type", ""))
    if kind == "string_pattern_mismatch":
        ctx = error.get("ctx") or {}
        if ctx.get("pattern") == _EVENT_TYPE_PATTERN:
            return _EVENT_TYPE_WORDS
    return _VALIDATION_WORDS.get(kind) or str(error.get("msg", ""))
