"""Referral settings, the funnel, top advocates and the review queue."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
