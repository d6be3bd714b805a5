"""Rules and campaigns: list, edit with field errors, the simulator with its why-not answers, replay of a change with its cost."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
