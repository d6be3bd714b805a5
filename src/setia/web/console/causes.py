"""Causes (giving points to good causes) and their donations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
