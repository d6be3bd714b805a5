"""Analytics pages: KPIs, segments, loyalty labels, CSV export."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
