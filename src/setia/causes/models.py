"""Tables of the causes domain."""

from __future__ import annotations
