"""Tables of the analytics domain (the statistical models live in ``models.py``)."""

from __future__ import annotations
