"""Tables of the badges domain."""

from __future__ import annotations
