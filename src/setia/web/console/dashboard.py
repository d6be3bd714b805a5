"""The dashboard (/console) and the JSON its charts are drawn from (/console/api/...)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
