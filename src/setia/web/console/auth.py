"""Staff sign-in, sign-out, invite acceptance, password reset, language switch."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
