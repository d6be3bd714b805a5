"""Tables of the checkout domain."""

from __future__ import annotations
