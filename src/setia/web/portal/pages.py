"""Member portal pages: balance, history, tier, rewards and redemption, referral sharing, badges, causes, profile and consents, data download, account deletion."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
