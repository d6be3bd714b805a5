"""Tables of the coupons domain."""

from __future__ import annotations
