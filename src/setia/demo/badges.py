"""The demo's badges and challenges: a few badges, a monthly challenge, progress computed from
the demo's history, some members on the leaderboards, and a rule that recognises a badge.

The demo calls ``seed_badges`` before it replays its year of events, so progress and
rewards happen as the events do (``replay`` inside it then finds nothing to count; on a
tenant with history it counts it). It runs in the caller's transaction and does not
commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.badges import service as badges
from setia.badges.models import BadgeProgress
from setia.badges.schemas import DefinitionIn
from setia.members.models import Member
from setia.programs.models import Program
from setia.tenants.models import Tenant

COFFEE = {"field": "item.category", "op": "eq", "value": "coffee"}

DEFINITIONS: list[dict[str, Any]] = [
    {
        "code": "penjelajah-kopi",
        "kind": "badge",
        "names": {"id": "Penjelajah Kopi", "ms": "Penjelajah Kopi", "en": "Coffee Explorer"},
        "descriptions": {
            "id": "Cicipi 5 racikan kopi yang berbeda",
            "ms": "Rasai 5 minuman kopi yang berbeza",
            "en": "Try 5 different coffee drinks",
        },
        "image_url": "https://demo.setia.dev/badges/penjelajah-kopi.png",
        "criteria": {
            "event_type": "purchase",
            "measure": "distinct",
            "field": "item.sku",
            "items_where": COFFEE,
            "target": 5,
        },
        "rewards": {"points": 500},
    },
    {
        "code": "pelanggan-setia",
        "kind": "badge",
        "names": {"id": "Pelanggan Setia", "ms": "Pelanggan Setia", "en": "Loyal Regular"},
        "descriptions": {
            "id": "10 kali belanja di Kopi Nusantara",
            "en": "10 purchases at Kopi Nusantara",
        },
        "image_url": "https://demo.setia.dev/badges/pelanggan-setia.png",
        "criteria": {"event_type": "purchase", "measure": "count", "target": 10},
        "rewards": {"points": 1000},
    },
    {
        "code": "ulasan-pertama",
        "kind": "badge",
        "names": {"id": "Ulasan Pertama", "ms": "Ulasan Pertama", "en": "First Review"},
        "descriptions": {"id": "Tulis ulasan pertamamu", "en": "Write your first review"},
        "image_url": "https://demo.setia.dev/badges/ulasan-pertama.png",
        "criteria": {"event_type": "review.submitted", "measure": "first", "target": 1},
        "rewards": {"points": 100},
    },
    {
        "code": "sultan-kopi",
        "kind": "badge",
        "names": {"id": "Sultan Kopi", "en": "Coffee Royalty"},
        "descriptions": {"id": "Belanja total Rp 1.000.000", "en": "Rp 1,000,000 spent in total"},
        "image_url": "https://demo.setia.dev/badges/sultan-kopi.png",
        "criteria": {
            "event_type": "purchase",
            "measure": "sum",
            "field": "event.amount",
            "target": "1000000",
        },
    },
    {
        "code": "ngopi-tiap-minggu",
        "kind": "challenge",
        "names": {
            "id": "Ngopi Tiap Minggu",
            "ms": "Ngopi Setiap Minggu",
            "en": "Coffee Every Week",
        },
        "descriptions": {
            "id": "Belanja setiap minggu, 4 minggu berturut-turut dalam satu bulan",
            "en": "A purchase in each of 4 consecutive weeks within the month",
        },
        "image_url": "https://demo.setia.dev/badges/ngopi-tiap-minggu.png",
        "criteria": {
            "event_type": "purchase",
            "measure": "streak",
            "streak_unit": "week",
            "target": 4,
        },
        "period": {"type": "month", "recurring": True},
        "rewards": {"points": 300},
    },
]

RECOGNITION_RULE: dict[str, Any] = {
    "name": "Penjelajah Kopi 1,5× poin kopi",
    "description": "Pemegang lencana Penjelajah Kopi mendapat 1,5× poin",
    "triggers": ["purchase"],
    "conditions": {"field": "member.badges", "op": "contains", "value": "penjelajah-kopi"},
    "effect": {"type": "multiplier", "factor": "1.5"},
    "limits": [{"period": "month", "max_points": 2000}],
}


def seed_badges(
    session: Session, tenant: Tenant, program: Program, *, recognition_rule: bool = True
) -> dict[str, Any]:
    """Define the demo's badges and challenge, count the recorded history toward them (the
    completions earn their rewards, once), put every third named member on the leaderboards
    and (unless ``recognition_rule`` is false: the demo adds it once its history is in) add
    the recognition rule. Running it again adds nothing."""
    created = 0
    for body in DEFINITIONS:
        _d, made = badges.create_definition(
            session, tenant, program, DefinitionIn.model_validate(body)
        )
        created += made
    counted = badges.replay(session, tenant, program)
    named = list(
        session.execute(
            select(Member)
            .where(
                Member.tenant_id == tenant.id, Member.name.is_not(None), Member.status == "active"
            )
            .order_by(Member.id)
        ).scalars()
    )
    opted = 0
    for i, member in enumerate(named):
        if i % 3 == 0 and badges.consent_of(session, member.id) is None:
            badges.set_consent(session, member, opted_in=True, display_name=None, source="demo")
            opted += 1
    if created and recognition_rule:
        add_recognition_rule(session, program)
    return {
        "definitions": len(DEFINITIONS),
        "events_counted": counted,
        "completions": completions(session, program.id),
        "leaderboard_opt_ins": opted,
    }


def add_recognition_rule(session: Session, program: Program) -> bool:
    """The rule "Penjelajah Kopi 1,5× poin" (members with the badge earn 1.5×), once. The demo
    adds it after its history: had it applied all year, regulars who earned the badge would
    show promotion-driven ("transactional") buying, which their personas are not."""
    from setia.rules import service as rules
    from setia.rules.models import Rule
    from setia.rules.schemas import RuleBody

    exists = session.execute(
        select(Rule.id).where(Rule.program_id == program.id, Rule.name == RECOGNITION_RULE["name"])
    ).first()
    if exists is not None:
        return False
    rules.create_rule(session, program, RuleBody.model_validate(RECOGNITION_RULE), actor="demo")
    return True


def completions(session: Session, program_id: uuid.UUID) -> int:
    """Badges earned and challenges completed so far in the program (every period)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(BadgeProgress)
            .where(BadgeProgress.program_id == program_id, BadgeProgress.completed_at.is_not(None))
        ).scalar_one()
    )
