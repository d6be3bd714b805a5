"""Coupon code patterns: parsing, the size of a pattern's space, random codes.

A pattern is a template: ``#`` a digit, ``?`` a letter, ``*`` a letter or digit; any other
character (letters, digits, ``-``, ``_``) is copied as it is. ``KOPI-####-????`` gives codes
like ``KOPI-4827-HXRT``.

Random characters come from an alphabet without the characters people misread or mistype:
no ``0``/``O``, ``1``/``I``/``L`` and no ``U`` (read as ``V``), as in Crockford's base 32.
Every code is one uniform draw (from ``secrets``) over the whole pattern space, so codes are
unguessable; a pattern must be sparse (see ``SPARSENESS``) so that guessing a
valid code is hopeless.
"""

from __future__ import annotations

import re
import secrets

DIGITS = "23456789"
LETTERS = "ABCDEFGHJKMNPQRSTVWXYZ"
ALPHANUMERIC = LETTERS + DIGITS
SLOTS = {"#": DIGITS, "?": LETTERS, "*": ALPHANUMERIC}
# The pattern's space must hold at least this many times the codes the campaign will have.
SPARSENESS = 1000
DEFAULT_PATTERN = "****-****-****"
MAX_LENGTH = 64
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,63}$")
_PATTERN_RE = re.compile(r"^[A-Z0-9_#?*-]{1,64}$")


class PatternError(ValueError):
    pass


def normalize(code: str) -> str:
    """Codes are case-insensitive: stored and compared in upper case, without outer spaces."""
    return code.strip().upper()


def valid_code(code: str) -> bool:
    return CODE_RE.fullmatch(code) is not None


def check_pattern(pattern: str) -> str:
    """The pattern in upper case, or ``PatternError`` saying what is wrong."""
    pattern = pattern.strip().upper()
    if not _PATTERN_RE.fullmatch(pattern):
        raise PatternError(
            "a pattern is 1-64 characters of A-Z, 0-9, '-', '_' and the placeholders "
            "'#' (digit), '?' (letter), '*' (letter or digit)"
        )
    if not any(c in SLOTS for c in pattern):
        raise PatternError("the pattern has no '#', '?' or '*': every code would be the same")
    if pattern[0] in "-_":
        raise PatternError("a pattern must start with a letter, a digit or a placeholder")
    return pattern


def space(pattern: str) -> int:
    """How many different codes the pattern can make."""
    total = 1
    for c in pattern:
        if c in SLOTS:
            total *= len(SLOTS[c])
    return total


def check_room(pattern: str, codes_in_campaign: int) -> None:
    """Refuse a pattern too small for the campaign's codes (space < SPARSENESS x codes)."""
    size = space(pattern)
    if size < SPARSENESS * codes_in_campaign:
        raise PatternError(
            f"the pattern {pattern!r} makes {size:,} different codes; a campaign of "
            f"{codes_in_campaign:,} codes needs at least {SPARSENESS:,} times as many "
            f"({SPARSENESS * codes_in_campaign:,}) so that codes cannot be guessed; "
            "add placeholders (each '*' multiplies the space by 30)"
        )


class Generator:
    """Makes codes for one pattern: a uniform random number below the pattern's space per
    code, read in mixed radix (one digit per placeholder)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.space = space(pattern)
        # Slots from the last to the first: the number's least significant digit is the
        # last placeholder.
        self._slots = [(i, SLOTS[c]) for i, c in enumerate(pattern) if c in SLOTS][::-1]
        # Bytes per number: the space's own plus 8 more, so reducing modulo the space is
        # uniform to within 2**-64.
        self._width = (self.space.bit_length() + 7) // 8 + 8

    def code(self, n: int) -> str:
        chars = list(self.pattern)
        for i, alphabet in self._slots:
            n, r = divmod(n, len(alphabet))
            chars[i] = alphabet[r]
        return "".join(chars)

    def one(self) -> str:
        return self.code(secrets.randbelow(self.space))

    def _numbers(self, count: int) -> list[int]:
        """``count`` independent uniform numbers below the space, from one ``secrets`` read."""
        width, size = self._width, self.space
        buf = secrets.token_bytes(width * count)
        return [int.from_bytes(buf[i : i + width], "big") % size for i in range(0, len(buf), width)]

    def many(self, count: int, avoid: set[str] | None = None) -> set[str]:
        """``count`` distinct codes, none of them in ``avoid``."""
        out: set[str] = set()
        avoid = avoid or set()
        code = self.code
        while len(out) < count:
            for n in self._numbers(count - len(out)):
                c = code(n)
                if c not in avoid:
                    out.add(c)
        return out
