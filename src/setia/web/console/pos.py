"""The cashier page (/console/pos): find a member by phone or QR, record a purchase, apply a reward or coupon, pay with points."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
