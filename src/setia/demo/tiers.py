"""The demo's tiers: Perunggu → Perak → Emas on spend over a rolling 12 months, plus the
invitation-only Duta (brand ambassadors), and a rule that gives each tier its multiplier."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.members.models import Member
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.tiers import service as tiers
from setia.tiers.schemas import TierSetIn

TIER_SET: dict[str, Any] = {
    "name": "Tingkat Kopi Nusantara",
    "metrics": [{"metric": "spend"}, {"metric": "visits"}],
    "combine": "any",
    "window": {"kind": "rolling", "months": 12},
    "retention": {"kind": "months", "months": 6},
    "downgrade": "one_level",
    "grace_days": 14,
    "at_risk_days": 30,
    "tiers": [
        {
            "code": "perunggu",
            "names": {"id": "Perunggu", "ms": "Gangsa", "en": "Bronze"},
            "thresholds": ["0", "0"],
            "perks": [
                {
                    "id": "1 poin untuk setiap Rp 1.000",
                    "ms": "1 mata bagi setiap Rp 1.000",
                    "en": "1 point for every Rp 1,000",
                }
            ],
            "color": "#b08d57",
        },
        {
            "code": "perak",
            "names": {"id": "Perak", "ms": "Perak", "en": "Silver"},
            "thresholds": ["1000000", "24"],
            "earn_multiplier": "1.25",
            "perks": [
                {
                    "id": "Poin 1,25×",
                    "ms": "Mata 1.25×",
                    "en": "1.25× points",
                },
                {
                    "id": "Gratis upsize setiap Senin",
                    "ms": "Naik saiz percuma setiap Isnin",
                    "en": "Free upsize every Monday",
                },
            ],
            "support_priority": 1,
            "color": "#a8a9ad",
        },
        {
            "code": "emas",
            "names": {"id": "Emas", "ms": "Emas", "en": "Gold"},
            "thresholds": ["3000000", "60"],
            "earn_multiplier": "1.5",
            "perks": [
                {"id": "Poin 1,5×", "ms": "Mata 1.5×", "en": "1.5× points"},
                {
                    "id": "Kopi gratis di hari ulang tahun",
                    "ms": "Kopi percuma pada hari jadi",
                    "en": "Free coffee on your birthday",
                },
                {
                    "id": "Antrean prioritas di aplikasi",
                    "ms": "Barisan keutamaan dalam aplikasi",
                    "en": "Priority queue in the app",
                },
            ],
            "support_priority": 2,
            "color": "#d4af37",
        },
        {
            "code": "duta",
            "names": {"id": "Duta Kopi", "ms": "Duta Kopi", "en": "Coffee Ambassador"},
            "thresholds": ["0", "0"],
            "invitation_only": True,
            "earn_multiplier": "2",
            "perks": [
                {
                    "id": "Undangan cupping bulanan",
                    "ms": "Jemputan cupping bulanan",
                    "en": "Monthly cupping invitation",
                }
            ],
            "support_priority": 3,
            "color": "#3e2723",
        },
    ],
}

TIER_RULE: dict[str, Any] = {
    "name": "Pengali tingkat",
    "description": "Perak 1,25×, Emas 1,5×, Duta 2× dari poin dasar",
    "triggers": ["purchase"],
    "conditions": {"field": "member.tier_multiplier", "op": "gt", "value": "1"},
    "effect": {"type": "multiplier", "factor": "member.tier_multiplier"},
}


def create_tiers(session: Session, tenant: Tenant, program: Program) -> None:
    tiers.put_tier_set(session, tenant, program, TierSetIn.model_validate(TIER_SET), actor="demo")


def appoint_ambassadors(
    session: Session, tenant: Tenant, program: Program, today: date, count: int = 2
) -> list[uuid.UUID]:
    """Two long-standing regulars are made Duta Kopi by hand, for a year."""
    ids = list(
        session.execute(
            select(Member.id)
            .where(Member.tenant_id == tenant.id, Member.status == "active")
            .order_by(Member.last_activity_at.desc().nulls_last(), Member.id)
            .limit(count)
        ).scalars()
    )
    for member_id in ids:
        tiers.set_override(
            session,
            tenant,
            program.id,
            member_id,
            tier_code="duta",
            until=today + timedelta(days=365),
            reason="Duta Kopi 2026: pelanggan setia sejak pembukaan gerai",
            actor="demo",
        )
    return ids


def counts(session: Session, tenant: Tenant, program_id: uuid.UUID) -> dict[str, int]:
    from setia.tiers import view

    s = tiers.require_structure(session, program_id)
    return {row["tier"]: row["members"] for row in view.summary(session, tenant, s)}
