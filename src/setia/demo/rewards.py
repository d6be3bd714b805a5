"""The demo's rewards catalog, coupons, cause and paying with points, with live redemptions.

The year of history redeems points as plain ledger spends (see ``generate._redeem``); this
module sets up what a member sees today: a catalog (a free drink, Rp 10.000 off, a tumbler,
cashback, a tree planted), a public coupon, the "Tanam Pohon" cause with the business
matching donations, and a few dozen redemptions and donations made through the real
services, so the portal and the console have something to show.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.causes import service as causes
from setia.causes.schemas import CauseIn
from setia.core.errors import SetiaError
from setia.core.time import zone
from setia.coupons import service as coupons
from setia.coupons.schemas import CampaignIn
from setia.ledger.models import POINTS, Account
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rewards import service as rewards
from setia.rewards.schemas import RedemptionIn, RewardIn
from setia.tenants.models import Tenant

# Paying with points: 1 Poin = Rp 10 at the till (the program's cost per point), at most
# half of a bill.
CHECKOUT_SETTINGS: dict[str, Any] = {
    "points_payment_rate": Decimal(10),
    "points_payment_max_percent": 50,
}


def _campaigns(session: Session, tenant: Tenant, program: Program, today: date) -> dict[str, Any]:
    made = {}
    for body in (
        CampaignIn.model_validate(
            {
                "code": "hadiah-minuman",
                "program_id": str(program.id),
                "names": {
                    "id": "Gratis Es Kopi Susu Gula Aren",
                    "ms": "Percuma Ais Kopi Susu Gula Aren",
                    "en": "Free Iced Palm-Sugar Coffee",
                },
                "discount": {"type": "free_item", "skus": ["KOPI-SUSU-AREN"]},
                "member_bound": True,
                "code_pattern": "KN-GRATIS-####-????",
            }
        ),
        CampaignIn.model_validate(
            {
                "code": "hadiah-potongan-10rb",
                "program_id": str(program.id),
                "names": {
                    "id": "Potongan Rp 10.000",
                    "ms": "Potongan Rp 10,000",
                    "en": "Rp 10,000 off",
                },
                "discount": {"type": "fixed", "amount": "10000"},
                "conditions": {"min_spend": "30000"},
                "member_bound": True,
                "code_pattern": "KN-10RB-####-????",
            }
        ),
        CampaignIn.model_validate(
            {
                "code": "ngopi-pagi",
                "program_id": str(program.id),
                "names": {
                    "id": "Ngopi Pagi: 15% hingga Rp 15.000",
                    "ms": "Kopi Pagi: 15% hingga Rp 15,000",
                    "en": "Morning coffee: 15% off up to Rp 15,000",
                },
                "discount": {"type": "percent", "percent": "15", "max_amount": "15000"},
                "conditions": {
                    "valid_from": f"{today.isoformat()}T00:00:00",
                    "valid_until": f"{(today + timedelta(days=60)).isoformat()}T00:00:00",
                    "min_spend": "40000",
                    "categories": ["coffee", "non-coffee", "bakery"],
                    "max_uses": 5000,
                    "per_member_limit": 1,
                },
                "uses_per_code": None,
                "public_code": "NGOPIPAGI",
            }
        ),
    ):
        campaign, _ = coupons.create_campaign(session, tenant, body)
        made[body.code] = campaign
    return made


def _cause(session: Session, program: Program, today: date) -> Any:
    body = CauseIn.model_validate(
        {
            "names": {"id": "Tanam Pohon", "ms": "Tanam Pokok", "en": "Plant a Tree"},
            "descriptions": {
                "id": "Setiap 1.000 Poin menanam satu bibit kopi di lereng Gunung Puntang, "
                "bersama petani kopi Jawa Barat. Kopi Nusantara menggandakan donasi Anda.",
                "ms": "Setiap 1,000 Poin menanam satu anak pokok kopi di Gunung Puntang. "
                "Kopi Nusantara menggandakan sumbangan anda.",
                "en": "Every 1,000 Poin plants one coffee seedling on Mount Puntang with "
                "West Java coffee farmers. Kopi Nusantara matches your donation.",
            },
            "status": "active",
            "goal_points": 2_000_000,
            "starts_on": date(today.year, 1, 1).isoformat(),
            "ends_on": date(today.year + 1, 6, 30).isoformat(),
            "min_points": 100,
            "max_points": 100_000,
            "match_ratio": "1",
            "match_budget": 500_000,
            "match_cap_per_member": 10_000,
            "receipt_prefix": "TP",
        }
    )
    cause, _ = causes.put_cause(session, program, "tanam-pohon", body, actor="demo")
    return cause


def _rewards(
    session: Session, tenant: Tenant, program: Program, campaigns: dict[str, Any], cause: Any
) -> None:
    defs: dict[str, dict[str, Any]] = {
        "gratis-es-kopi-susu": {
            "kind": "free_product",
            "names": {
                "id": "Gratis Es Kopi Susu Gula Aren",
                "ms": "Percuma Ais Kopi Susu Gula Aren",
                "en": "Free Iced Palm-Sugar Coffee",
            },
            "descriptions": {
                "id": "Satu Es Kopi Susu Gula Aren ukuran reguler di semua gerai.",
                "ms": "Satu Ais Kopi Susu Gula Aren saiz biasa di semua cawangan.",
                "en": "One regular Iced Palm-Sugar Coffee at any store.",
            },
            "terms": {
                "id": "Berlaku 30 hari. Tidak dapat ditukar uang.",
                "ms": "Sah selama 30 hari. Tidak boleh ditukar dengan wang tunai.",
                "en": "Valid for 30 days. No cash value.",
            },
            "points": 2_500,
            "coupon_campaign_id": str(campaigns["hadiah-minuman"].id),
            "coupon_validity_days": 30,
        },
        "potongan-10rb": {
            "kind": "discount_coupon",
            "names": {
                "id": "Potongan Rp 10.000",
                "ms": "Potongan Rp 10,000",
                "en": "Rp 10,000 off",
            },
            "terms": {
                "id": "Minimal belanja Rp 30.000. Berlaku 30 hari.",
                "ms": "Belanja minimum Rp 30,000. Sah selama 30 hari.",
                "en": "Minimum spend Rp 30,000. Valid for 30 days.",
            },
            "points": 1_000,
            "coupon_campaign_id": str(campaigns["hadiah-potongan-10rb"].id),
            "coupon_validity_days": 30,
        },
        "tumbler-nusantara": {
            "kind": "physical",
            "names": {
                "id": "Tumbler Kopi Nusantara",
                "ms": "Tumbler Kopi Nusantara",
                "en": "Kopi Nusantara tumbler",
            },
            "descriptions": {
                "id": "Tumbler baja tahan karat 500 ml, dikirim ke alamat Anda.",
                "ms": "Tumbler keluli tahan karat 500 ml, dihantar ke alamat anda.",
                "en": "500 ml stainless-steel tumbler, shipped to your address.",
            },
            "points": 15_000,
            "stock_total": 40,
            "member_limit": 1,
            "member_limit_period": "year",
        },
        "cashback-5rb": {
            "kind": "cashback",
            "names": {
                "id": "Cashback Rp 5.000 ke Dompet",
                "ms": "Pulangan tunai Rp 5,000 ke Dompet",
                "en": "Rp 5,000 cashback to your wallet",
            },
            "points": 600,
            "cashback_amount": "5000",
            "stock_per_period": 200,
            "stock_period": "month",
            "member_limit": 2,
            "member_limit_period": "month",
            "eligibility": {"tiers": ["emas"], "tiers_or_above": True},
        },
        "donasi-tanam-pohon": {
            "kind": "donation",
            "names": {
                "id": "Donasi 1.000 Poin: Tanam Pohon",
                "ms": "Derma 1,000 Poin: Tanam Pokok",
                "en": "Give 1,000 Poin: Plant a Tree",
            },
            "points": 1_000,
            "cause_id": str(cause.id),
        },
    }
    for code, body in defs.items():
        rewards.put_reward(
            session, tenant, program, code, RewardIn.model_validate(body), actor="demo"
        )


def seed_catalog(
    session: Session,
    tenant: Tenant,
    program: Program,
    member_ids: list[uuid.UUID],
    rng: random.Random,
    now: datetime,
) -> dict[str, Any]:
    """Set up the catalog, then let some members redeem and donate today. Returns counts."""
    today = now.astimezone(zone(tenant.timezone)).date()
    programs.update_program(session, program, dict(CHECKOUT_SETTINGS), actor="demo")
    campaigns = _campaigns(session, tenant, program, today)
    cause = _cause(session, program, today)
    _rewards(session, tenant, program, campaigns, cause)
    session.flush()

    balances: dict[Any, Any] = dict(
        session.execute(
            select(
                Account.member_id,
                Account.credits_posted - Account.debits_posted - Account.debits_pending,
            ).where(
                Account.program_id == program.id,
                Account.code == POINTS,
                Account.member_id.in_(member_ids),
            )
        ).all()
    )
    rich = [m for m in member_ids if int(balances.get(m) or 0) >= 3_000]
    chosen = rng.sample(rich, k=min(len(rich), max(3, len(member_ids) // 40)))
    done: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    choices = (
        ("gratis-es-kopi-susu", 4),
        ("potongan-10rb", 5),
        ("cashback-5rb", 2),
        ("tumbler-nusantara", 1),
    )
    names = [c for c, _ in choices]
    weights = [w for _, w in choices]
    for i, member_id in enumerate(chosen):
        code = rng.choices(names, weights)[0]
        body = RedemptionIn(
            reward=code,
            channel="portal" if rng.random() < 0.6 else "pos",
            shipping_address=(
                {"name": "Penerima", "city": "Bandung", "postal_code": "40135"}
                if code == "tumbler-nusantara"
                else None
            ),
        )
        try:
            with session.begin_nested():
                red, _ = rewards.redeem(
                    session,
                    tenant,
                    program,
                    member_id,
                    body,
                    actor="demo",
                    idempotency_key=f"demo:reward:{i}",
                    now=now,
                )
        except SetiaError as exc:  # not eligible, limit reached: as in real life
            refused[exc.code] += 1
            continue
        done[code] += 1
        if code == "tumbler-nusantara" and rng.random() < 0.5:
            rewards.fulfil(
                session,
                tenant,
                red.id,
                status="shipped",
                tracking=f"JNE{rng.randrange(10**9):09d}",
                actor="demo",
            )
    donors = rng.sample(rich, k=min(len(rich), max(3, len(member_ids) // 50)))
    donated = 0
    for i, member_id in enumerate(donors):
        points = rng.choice((100, 250, 500, 1_000, 2_000))
        try:
            with session.begin_nested():
                causes.donate(
                    session,
                    tenant_id=tenant.id,
                    program=program,
                    cause_id=cause.id,
                    member_id=member_id,
                    points=points,
                    idempotency_key=f"demo:donation:{i}",
                    actor="demo",
                    now=now,
                )
        except SetiaError as exc:
            refused[exc.code] += 1
            continue
        done["donations"] += 1
        donated += points
    return {
        "rewards": 5,
        "redemptions": dict(done),
        "points_donated": donated,
        "refused": dict(refused),
    }
