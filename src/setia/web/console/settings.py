"""Settings: tenant, programs, API keys (create, show once, revoke), staff users (invite, role, disable)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
