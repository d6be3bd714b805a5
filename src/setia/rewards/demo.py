"""Demo data: a small catalog for the demo tenant (a free drink, Rp 10.000 off,
merchandise, a cause), through the same service call the API uses.

The coupon campaigns and the cause belong to their own domains; pass their ids (a reward
whose campaign or cause is not given is left out).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from setia.programs.models import Program
from setia.rewards import service
from setia.rewards.models import Reward
from setia.rewards.schemas import RewardIn
from setia.tenants.models import Tenant

ACTOR = "demo"


def catalog(
    *,
    free_drink_campaign_id: uuid.UUID | None = None,
    discount_campaign_id: uuid.UUID | None = None,
    cause_id: uuid.UUID | None = None,
) -> dict[str, dict[str, Any]]:
    """The demo catalog as PUT bodies, by reward code."""
    out: dict[str, dict[str, Any]] = {}
    if free_drink_campaign_id is not None:
        out["KOPI-GRATIS"] = {
            "kind": "free_product",
            "names": {"id": "Kopi susu gratis", "ms": "Kopi susu percuma", "en": "Free iced latte"},
            "descriptions": {
                "id": "Satu kopi susu ukuran reguler, di semua gerai",
                "en": "One regular iced latte, at any outlet",
            },
            "points": 250,
            "coupon_campaign_id": str(free_drink_campaign_id),
            "coupon_validity_days": 30,
            "member_limit": 2,
            "member_limit_period": "month",
        }
    if discount_campaign_id is not None:
        out["DISKON-10K"] = {
            "kind": "discount_coupon",
            "names": {"id": "Potongan Rp 10.000", "ms": "Diskaun Rp 10.000", "en": "Rp 10,000 off"},
            "terms": {
                "id": "Minimal belanja Rp 50.000",
                "en": "Minimum spend Rp 50,000",
            },
            "points": 400,
            "coupon_campaign_id": str(discount_campaign_id),
            "coupon_validity_days": 14,
        }
    out["TUMBLER"] = {
        "kind": "physical",
        "names": {"id": "Tumbler Setia", "ms": "Tumbler Setia", "en": "Setia tumbler"},
        "descriptions": {"id": "Tumbler stainless 500 ml", "en": "500 ml stainless tumbler"},
        "points": 1500,
        "stock_total": 200,
        "stock_per_period": 25,
        "stock_period": "week",
        "member_limit": 1,
        "member_limit_period": "lifetime",
    }
    out["TOTE-BAG"] = {
        "kind": "physical",
        "names": {"id": "Tas kanvas", "ms": "Beg kanvas", "en": "Canvas tote bag"},
        "points": 600,
        "cash_price": "15000",
        "stock_total": 500,
    }
    if cause_id is not None:
        out["TANAM-POHON"] = {
            "kind": "donation",
            "names": {"id": "Donasi 1 pohon", "ms": "Derma 1 pokok", "en": "Plant one tree"},
            "points": 500,
            "cause_id": str(cause_id),
        }
    return out


def seed_catalog(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    free_drink_campaign_id: uuid.UUID | None = None,
    discount_campaign_id: uuid.UUID | None = None,
    cause_id: uuid.UUID | None = None,
) -> list[Reward]:
    """Put the demo catalog in the program (idempotent: putting it again changes nothing)."""
    bodies = catalog(
        free_drink_campaign_id=free_drink_campaign_id,
        discount_campaign_id=discount_campaign_id,
        cause_id=cause_id,
    )
    out = []
    for code, body in bodies.items():
        reward, _ = service.put_reward(
            session, tenant, program, code, RewardIn.model_validate(body), actor=ACTOR
        )
        out.append(reward)
    return out
