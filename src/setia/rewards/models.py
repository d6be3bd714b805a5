"""Tables of the rewards domain."""

from __future__ import annotations
