"""Member portal sign-in by one-time code (email or WhatsApp, through the outbox), sign-out, language switch."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
