"""The rewards catalog and redemptions. Every function runs inside the caller's transaction
and never commits.

A redemption is one transaction: check the reward and the member, take stock and the
member's limit (guarded counter updates, see ``models``), hold the points (a ledger hold,
code ``REDEEM``), issue the reward (a coupon, a wallet credit, a donation, a fulfilment
request) and capture the hold. Anything that fails raises before the commit, so nothing is
half-written.

Locks are always taken in the same order, so two operations never wait on each other in
a cycle: the redemption row (cancel, confirm, the job), then the reward's counters, then
the ledger accounts (the ledger locks those itself, in id order).
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from babel.numbers import format_decimal
from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.db import new_id
from setia.core.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from setia.core.i18n import babel_locale
from setia.core.money import MoneyError, parse_amount, to_str
from setia.core.time import as_utc, utcnow, zone
from setia.ledger import service as ledger
from setia.members import service as members
from setia.members.models import Member
from setia.outbox.service import publish
from setia.programs.models import Program
from setia.rewards.models import (
    COUPON_KINDS,
    WALLET_KINDS,
    Reward,
    RewardMemberUsage,
    RewardRedemption,
    RewardStockPeriod,
)
from setia.rewards.schemas import Eligibility, RedemptionIn, RewardIn, RewardPatch
from setia.tenants.models import Tenant
from setia.tiers.models import Tier, TierSet

SOURCE = "reward_redemption"
FINAL = ("cancelled", "expired")

# --------------------------------------------------------------------------- errors


class RewardNotFound(NotFound):
    code = "reward_not_found"
    title = "Reward not found"


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    title = "Redemption not found"


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    title = "The reward cannot be redeemed now"


class OutOfStock(Conflict):
    code = "out_of_stock"
    title = "Out of stock"


class MemberLimitReached(Conflict):
    code = "member_limit_reached"
    title = "The member's limit for this reward is reached"


class NotEligible(Conflict):
    code = "not_eligible"
    title = "The member is not eligible for this reward"


class NotCancellable(Conflict):
    code = "not_cancellable"
    title = "The redemption cannot be cancelled"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "The redemption cannot move to that status"


class RedemptionExpired(Conflict):
    code = "redemption_expired"
    title = "The redemption's hold timed out"


class InvalidReward(InvalidInput):
    code = "invalid_reward"
    title = "Invalid reward definition"


# --------------------------------------------------------------------------- periods


def period_key(period: str | None, at: datetime, tz_name: str) -> str | None:
    """The key of the period containing ``at``: its first local day in the tenant's zone
    (weeks start on Monday), ``lifetime`` for a lifetime limit, None for no period."""
    if period is None:
        return None
    if period == "lifetime":
        return "lifetime"
    local = as_utc(at).astimezone(zone(tz_name)).date()
    if period == "day":
        start = local
    elif period == "week":
        start = local - timedelta(days=local.weekday())
    elif period == "month":
        start = local.replace(day=1)
    elif period == "year":
        start = local.replace(month=1, day=1)
    else:  # pragma: no cover - validated by the schema
        raise ValueError(f"unknown period {period!r}")
    return start.isoformat()


# --------------------------------------------------------------------------- catalog


def _money(value: str | None, currency: str, field: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_amount(value, currency)
    except MoneyError as exc:
        raise InvalidReward(str(exc), code=exc.code, extra={"field": field}) from None


def _check_refs(
    session: Session, tenant_id: uuid.UUID, body: RewardIn, program: Program | None = None
) -> None:
    """Each kind's own fields: present when needed, and pointing at something that exists."""
    need: dict[str, str] = {
        "discount_coupon": "coupon_campaign_id",
        "free_product": "coupon_campaign_id",
        "free_shipping": "coupon_campaign_id",
        "cashback": "cashback_amount",
        "gift_card": "value",
        "donation": "cause_id",
    }
    field = need.get(body.kind)
    if field is not None and getattr(body, field) is None:
        raise InvalidReward(
            f"a {body.kind} reward needs {field}", extra={"field": field}, code="missing_field"
        )
    if body.kind in COUPON_KINDS and body.coupon_campaign_id is not None:
        from setia.coupons import service as coupons

        campaign = coupons.get_campaign(session, tenant_id, body.coupon_campaign_id)
        if program is not None and campaign.currency != program.currency:
            raise InvalidReward(
                f"the coupon campaign {campaign.code!r} counts {campaign.currency} and this "
                f"program {program.currency}: its codes would never apply to the program's "
                "orders; use a campaign in the program's currency",
                code="campaign_currency_mismatch",
                extra={"field": "coupon_campaign_id"},
            )
    if body.kind == "donation" and body.cause_id is not None:
        from setia.causes import service as causes

        cause = causes.get_cause(session, tenant_id, body.cause_id)
        if program is not None and cause.program_id != program.id:
            raise causes.CauseNotFound(
                f"cause {body.cause_id} belongs to another program; a donation reward gives "
                "to a cause of its own program",
                extra={"field": "cause_id"},
            )
    if body.kind == "donation" and body.cash_price is not None:
        raise InvalidReward("a donation cannot have a cash price", extra={"field": "cash_price"})
    if body.kind == "donation" and body.points < 1:
        raise InvalidReward("a donation gives at least 1 point", extra={"field": "points"})


def _apply(reward: Reward, body: RewardIn, currency: str) -> None:
    reward.kind = body.kind
    reward.names = body.names.model_dump(exclude_none=True)
    reward.descriptions = (
        body.descriptions.model_dump(exclude_none=True) if body.descriptions else {}
    )
    reward.terms = body.terms.model_dump(exclude_none=True) if body.terms else {}
    reward.image_url = body.image_url
    reward.points = body.points
    reward.cash_price = _money(body.cash_price, currency, "cash_price")
    coupon = body.kind in COUPON_KINDS
    reward.coupon_campaign_id = body.coupon_campaign_id if coupon else None
    reward.coupon_validity_days = body.coupon_validity_days if coupon else None
    reward.cashback_amount = (
        _money(body.cashback_amount, currency, "cashback_amount")
        if body.kind == "cashback"
        else None
    )
    reward.value = _money(body.value, currency, "value") if body.kind == "gift_card" else None
    reward.cause_id = body.cause_id if body.kind == "donation" else None
    reward.stock_total = body.stock_total
    reward.stock_per_period = body.stock_per_period
    reward.stock_period = body.stock_period
    reward.member_limit = body.member_limit
    reward.member_limit_period = body.member_limit_period if body.member_limit else None
    reward.available_from = body.available_from
    reward.available_until = body.available_until
    reward.visible = body.visible
    reward.eligible_tiers = list(body.eligibility.tiers)
    reward.tiers_or_above = body.eligibility.tiers_or_above
    reward.requires_membership = body.eligibility.requires_membership
    reward.eligible_tags = list(body.eligibility.tags)
    reward.status = body.status


def definition(reward: Reward, currency: str) -> dict[str, Any]:
    """The reward as a PUT body would give it (amounts as strings)."""

    def amount(v: Decimal | None) -> str | None:
        return None if v is None else to_str(v, currency)

    return {
        "kind": reward.kind,
        "names": reward.names,
        "descriptions": reward.descriptions or None,
        "terms": reward.terms or None,
        "image_url": reward.image_url,
        "points": reward.points,
        "cash_price": amount(reward.cash_price),
        "coupon_campaign_id": reward.coupon_campaign_id,
        "coupon_validity_days": reward.coupon_validity_days,
        "cashback_amount": amount(reward.cashback_amount),
        "value": amount(reward.value),
        "cause_id": reward.cause_id,
        "stock_total": reward.stock_total,
        "stock_per_period": reward.stock_per_period,
        "stock_period": reward.stock_period,
        "member_limit": reward.member_limit,
        "member_limit_period": reward.member_limit_period,
        "available_from": reward.available_from,
        "available_until": reward.available_until,
        "visible": reward.visible,
        "eligibility": {
            "tiers": list(reward.eligible_tiers),
            "tiers_or_above": reward.tiers_or_above,
            "requires_membership": reward.requires_membership,
            "tags": list(reward.eligible_tags),
        },
        "status": reward.status,
    }


def _check_tiers(session: Session, program_id: uuid.UUID, codes: list[str]) -> None:
    if not codes:
        return
    known = set(_tier_ranks(session, program_id))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidReward(
            f"unknown tier code(s) {', '.join(unknown)}; the program's tiers are "
            f"{', '.join(sorted(known)) or 'none'}",
            code="unknown_tier",
            extra={"field": "eligibility.tiers"},
        )


def put_reward(
    session: Session, tenant: Tenant, program: Program, code: str, body: RewardIn, *, actor: str
) -> tuple[Reward, bool]:
    """Create the reward ``code`` or replace its definition. Returns (reward, created)."""
    if not code or len(code) > 60 or not code.replace("-", "").replace("_", "").isalnum():
        raise InvalidReward(
            "a reward code is 1-60 letters, digits, '-' or '_'", extra={"field": "code"}
        )
    _check_refs(session, tenant.id, body, program)
    _check_tiers(session, program.id, body.eligibility.tiers)
    reward = session.execute(
        select(Reward).where(Reward.program_id == program.id, Reward.code == code)
    ).scalar_one_or_none()
    created = reward is None
    if reward is None:
        reward = Reward(
            tenant_id=tenant.id, program_id=program.id, code=code, stock_used=0, revision=1
        )
        _apply(reward, body, program.currency)
        session.add(reward)
    else:
        before = definition(reward, program.currency)
        _apply(reward, body, program.currency)
        if definition(reward, program.currency) == before:
            return reward, False
        reward.revision += 1
        reward.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="reward.created" if created else "reward.changed",
        subject_type="reward",
        subject_id=reward.id,
        details={"revision": reward.revision, **body.model_dump(mode="json")},
    )
    return reward, created


def patch_reward(
    session: Session, tenant: Tenant, program: Program, code: str, patch: RewardPatch, *, actor: str
) -> Reward:
    reward = get_reward(session, program.id, code)
    merged = definition(reward, program.currency)
    merged.update(patch.model_dump(exclude_unset=True))
    try:
        body = RewardIn.model_validate(merged)
    except ValueError as exc:
        raise InvalidReward(f"the changed reward is not valid: {exc}") from None
    reward, _ = put_reward(session, tenant, program, code, body, actor=actor)
    return reward


def archive_reward(session: Session, program: Program, code: str, *, actor: str) -> Reward:
    """Archive: no new redemptions; existing ones run on. Safe to repeat."""
    reward = get_reward(session, program.id, code)
    if reward.status != "archived":
        reward.status = "archived"
        reward.revision += 1
        reward.updated_at = utcnow()
        session.flush()
        audit.record(
            session,
            tenant_id=reward.tenant_id,
            actor=actor,
            action="reward.archived",
            subject_type="reward",
            subject_id=reward.id,
            details={"revision": reward.revision},
        )
    return reward


def get_reward(session: Session, program_id: uuid.UUID, ref: str) -> Reward:
    """A reward of the program by code, or by id."""
    query = select(Reward).where(Reward.program_id == program_id)
    try:
        rid = uuid.UUID(ref)
    except ValueError:
        rid = None
    cond = Reward.code == ref if rid is None else (Reward.id == rid) | (Reward.code == ref)
    reward = session.execute(query.where(cond)).scalars().first()
    if reward is None:
        raise RewardNotFound(f"reward {ref!r} not found in this program")
    return reward


def list_rewards(
    session: Session, program_id: uuid.UUID, *, status: str | None = None, kind: str | None = None
) -> list[Reward]:
    query = select(Reward).where(Reward.program_id == program_id)
    if status is not None:
        query = query.where(Reward.status == status)
    if kind is not None:
        query = query.where(Reward.kind == kind)
    return list(session.execute(query.order_by(Reward.code)).scalars())


def stock(session: Session, reward: Reward, tz_name: str, now: datetime) -> dict[str, Any]:
    """What is used and left of the reward's stock, now."""
    key = period_key(reward.stock_period, now, tz_name)
    used_period: int | None = None
    if key is not None:
        used_period = int(
            session.execute(
                select(RewardStockPeriod.used).where(
                    RewardStockPeriod.reward_id == reward.id, RewardStockPeriod.period == key
                )
            ).scalar_one_or_none()
            or 0
        )
    total_used = int(
        session.execute(select(Reward.stock_used).where(Reward.id == reward.id)).scalar_one()
    )
    return {
        "total": reward.stock_total,
        "used": total_used,
        "left": None if reward.stock_total is None else max(0, reward.stock_total - total_used),
        "per_period": reward.stock_per_period,
        "period": reward.stock_period,
        "current_period": key,
        "used_this_period": used_period,
        "left_this_period": (
            None
            if reward.stock_per_period is None or used_period is None
            else max(0, reward.stock_per_period - used_period)
        ),
    }


def _stock_left(info: dict[str, Any]) -> int | None:
    lefts = [v for v in (info["left"], info["left_this_period"]) if v is not None]
    return min(lefts) if lefts else None


# --------------------------------------------------------------------------- eligibility


def _tier_names(session: Session, program_id: uuid.UUID) -> dict[str, dict[str, str]]:
    """The program's tiers' names by code, read once per session (a catalog page asks for
    every reward a member cannot have)."""
    cache: dict[uuid.UUID, dict[str, dict[str, str]]] = session.info.setdefault(
        "reward_tier_names", {}
    )
    names = cache.get(program_id)
    if names is None:
        rows = session.execute(
            select(Tier.code, Tier.names)
            .join(TierSet, TierSet.id == Tier.tier_set_id)
            .where(TierSet.program_id == program_id)
        ).all()
        names = cache[program_id] = {code: dict(texts or {}) for code, texts in rows}
    return names


def _tier_ranks(session: Session, program_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(Tier.code, Tier.rank)
        .join(TierSet, TierSet.id == Tier.tier_set_id)
        .where(TierSet.program_id == program_id)
    ).all()
    return {code: int(rank) for code, rank in rows}


@dataclass
class Block:
    """Why a member cannot redeem a reward now: a stable code and the facts behind it."""

    code: str
    detail: str
    extra: dict[str, Any]
    # The tiers' names by code, for the member's text (not part of an API answer's facts).
    tier_names: dict[str, dict[str, str]] = field(default_factory=dict)


REASONS: dict[str, dict[str, str]] = {
    "insufficient_points": {
        "id": "{points_name} Anda kurang {missing} lagi",
        "ms": "Anda memerlukan {missing} {points_name} lagi",
        "en": "You need {missing} more {points_name}",
    },
    "below_minimum_redeem": {
        "id": "Penukaran bisa dilakukan mulai saldo {minimum} {points_name}",
        "ms": "Penebusan boleh dibuat dengan baki sekurang-kurangnya {minimum} {points_name}",
        "en": "Redeeming needs a balance of at least {minimum} {points_name}",
    },
    "out_of_stock": {"id": "Stok habis", "ms": "Stok habis", "en": "Out of stock"},
    "member_limit_reached": {
        "id": "Anda sudah mencapai batas penukaran hadiah ini",
        "ms": "Anda telah mencapai had penebusan ganjaran ini",
        "en": "You have reached the limit for this reward",
    },
    "not_eligible_tier": {
        "id": "Khusus anggota tier {tiers}",
        "ms": "Khas untuk ahli tahap {tiers}",
        "en": "Only for {tiers} members",
    },
    "not_eligible_plan": {
        "id": "Khusus anggota berbayar",
        "ms": "Khas untuk ahli berbayar",
        "en": "Only for paid members",
    },
    "not_eligible_tags": {
        "id": "Tidak tersedia untuk akun Anda",
        "ms": "Tidak tersedia untuk akaun anda",
        "en": "Not available for your account",
    },
    "not_yet_available": {
        "id": "Tersedia mulai {date}",
        "ms": "Tersedia mulai {date}",
        "en": "Available from {date}",
    },
    "no_longer_available": {
        "id": "Sudah tidak tersedia",
        "ms": "Tidak lagi tersedia",
        "en": "No longer available",
    },
    "paused": {
        "id": "Sementara tidak tersedia",
        "ms": "Tidak tersedia buat sementara",
        "en": "Temporarily unavailable",
    },
    "member_not_active": {
        "id": "Akun Anda tidak aktif",
        "ms": "Akaun anda tidak aktif",
        "en": "Your account is not active",
    },
}


def reason_text(block: Block, locale: str, points_name: str = "Poin") -> str:
    """The reason in the member's language, with the program's name for points and numbers
    written the local way ("5.279" in Indonesian, "5,279" in Malay and English)."""
    texts = REASONS.get(block.code, {})
    template = texts.get(locale) or texts.get("en") or block.detail
    facts: dict[str, Any] = {"points_name": points_name}
    for k, v in block.extra.items():
        if isinstance(v, int) and not isinstance(v, bool):
            facts[k] = format_decimal(v, locale=babel_locale(locale))
        elif isinstance(v, str):
            facts[k] = v
    if "tiers" in block.extra:
        # each tier by its name in the member's language ("Emas", "Gold"), not its code
        facts["tiers"] = "/".join(
            block.tier_names.get(code, {}).get(locale)
            or block.tier_names.get(code, {}).get("en")
            or code
            for code in block.extra["tiers"]
        )
    try:
        return template.format(**facts)
    except (KeyError, IndexError):
        return block.detail


def availability_block(reward: Reward, now: datetime, tz_name: str = "UTC") -> Block | None:
    """Why the reward cannot be redeemed at ``now`` (None: it can); ``date`` is the first
    day in the tenant's zone ``tz_name``."""
    if reward.status == "archived":
        return Block("no_longer_available", f"reward {reward.code} is archived", {})
    if reward.status == "paused":
        return Block("paused", f"reward {reward.code} is paused", {})
    if reward.available_from is not None and now < reward.available_from:
        when = reward.available_from.isoformat()
        return Block(
            "not_yet_available",
            f"reward {reward.code} is available from {when}",
            {
                "available_from": when,
                "date": as_utc(reward.available_from).astimezone(zone(tz_name)).date().isoformat(),
            },
        )
    if reward.available_until is not None and now >= reward.available_until:
        when = reward.available_until.isoformat()
        return Block(
            "no_longer_available",
            f"reward {reward.code} was available until {when}",
            {"available_until": when},
        )
    return None


def eligibility_block(
    session: Session, reward: Reward, member: Member, benefits: dict[str, Any] | None = None
) -> Block | None:
    if member.status != "active":
        return Block("member_not_active", f"member {member.id} is {member.status}", {})
    if not (reward.eligible_tiers or reward.requires_membership or reward.eligible_tags):
        return None
    if benefits is None:
        from setia.events.benefits import member_benefits

        benefits = member_benefits(session, reward.program_id, member.id)
    tier = benefits.get("tier")
    if reward.eligible_tiers:
        allowed = tier in reward.eligible_tiers
        if not allowed and reward.tiers_or_above and tier is not None:
            ranks = _tier_ranks(session, reward.program_id)
            floor = min((ranks[c] for c in reward.eligible_tiers if c in ranks), default=None)
            allowed = floor is not None and ranks.get(tier, -1) >= floor
        if not allowed:
            tiers = list(reward.eligible_tiers)
            wording = f"{'/'.join(tiers)}{' or above' if reward.tiers_or_above else ''}"
            return Block(
                "not_eligible_tier",
                f"this reward is for {wording} members; the member is {tier or 'in no tier'}",
                {"reason": "tier", "tiers": tiers, "member_tier": tier},
                tier_names=_tier_names(session, reward.program_id),
            )
    if reward.requires_membership and benefits.get("plan") is None:
        return Block(
            "not_eligible_plan",
            "this reward is for members with a paid membership",
            {"reason": "plan"},
        )
    if reward.eligible_tags and not set(member.tags or []) & set(reward.eligible_tags):
        return Block(
            "not_eligible_tags",
            f"this reward is for members tagged {', '.join(reward.eligible_tags)}",
            {"reason": "tags", "tags": list(reward.eligible_tags)},
        )
    return None


def _raise(block: Block) -> None:
    if block.code in ("no_longer_available", "paused", "not_yet_available"):
        raise RewardUnavailable(block.detail, extra={"reason": block.code, **block.extra})
    if block.code == "member_not_active":
        raise members.MemberNotActive(block.detail)
    raise NotEligible(block.detail, extra=block.extra)


def member_usage(
    session: Session, reward: Reward, member_id: uuid.UUID, tz_name: str, now: datetime
) -> int:
    key = period_key(reward.member_limit_period, now, tz_name)
    if reward.member_limit is None or key is None:
        return 0
    used = session.execute(
        select(RewardMemberUsage.used).where(
            RewardMemberUsage.reward_id == reward.id,
            RewardMemberUsage.member_id == member_id,
            RewardMemberUsage.period == key,
        )
    ).scalar_one_or_none()
    return int(used or 0)


def member_catalog(
    session: Session, tenant: Tenant, program: Program, member: Member, *, now: datetime
) -> tuple[int, list[tuple[Reward, dict[str, Any], Block | None]]]:
    """The rewards a member can see (visible, not archived, not past their window), each
    with its stock and the first reason it cannot be redeemed now (None: redeemable)."""
    from setia.events.benefits import member_benefits

    points = _points_available(session, program.id, member.id)
    benefits = member_benefits(session, program.id, member.id)
    out: list[tuple[Reward, dict[str, Any], Block | None]] = []
    for reward in list_rewards(session, program.id):
        if not reward.visible or reward.status == "archived":
            continue
        if reward.available_until is not None and now >= reward.available_until:
            continue
        info = stock(session, reward, tenant.timezone, now)
        block = availability_block(reward, now, tenant.timezone) or eligibility_block(
            session, reward, member, benefits
        )
        left = _stock_left(info)
        if block is None and left is not None and left < 1:
            block = Block("out_of_stock", f"reward {reward.code} is out of stock", {})
        if (
            block is None
            and reward.member_limit is not None
            and member_usage(session, reward, member.id, tenant.timezone, now) + 1
            > reward.member_limit
        ):
            block = Block(
                "member_limit_reached",
                f"the member reached the limit of {reward.member_limit}",
                {"limit": reward.member_limit},
            )
        if block is None and program.min_redeem_points and points < program.min_redeem_points:
            block = Block(
                "below_minimum_redeem",
                f"a balance of {program.min_redeem_points} points is needed to redeem",
                {"minimum": program.min_redeem_points, "available": points},
            )
        if block is None and points < reward.points:
            block = Block(
                "insufficient_points",
                f"{reward.points - points} more points needed",
                {"missing": reward.points - points, "available": points},
            )
        out.append((reward, info, block))
    return points, out


def _points_available(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> int:
    from setia.ledger.queries import spendable
    from setia.ledger.service import clock

    return spendable(session, program_id, member_id, now=clock(session))


# --------------------------------------------------------------------------- counters

_rewards = cast(Table, Reward.__table__)
_periods = cast(Table, RewardStockPeriod.__table__)
_usage = cast(Table, RewardMemberUsage.__table__)


def _insert_missing(session: Session, table: Table, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    session.execute(stmt)


def _take(
    session: Session, reward: Reward, member_id: uuid.UUID, qty: int, now: datetime, tz_name: str
) -> dict[str, Any]:
    """Take ``qty`` units of stock and of the member's limit, or raise with nothing taken
    (the caller's transaction rolls back). Returns what was counted, for a later release."""
    counted: dict[str, Any] = {"counted": False, "stock_period": None, "member_period": None}
    if reward.stock_total is not None:
        row = session.execute(
            update(_rewards)
            .where(
                _rewards.c.id == reward.id,
                _rewards.c.stock_total.is_not(None),
                _rewards.c.stock_used + qty <= _rewards.c.stock_total,
            )
            .values(stock_used=_rewards.c.stock_used + qty)
            .returning(_rewards.c.stock_used)
        ).first()
        if row is None:
            raise OutOfStock(
                f"reward {reward.code} is out of stock",
                extra={"stock_total": reward.stock_total},
            )
        counted["counted"] = True
    key = period_key(reward.stock_period, now, tz_name)
    if key is not None and reward.stock_per_period is not None:
        _insert_missing(session, _periods, {"reward_id": reward.id, "period": key, "used": 0})
        row = session.execute(
            update(_periods)
            .where(
                _periods.c.reward_id == reward.id,
                _periods.c.period == key,
                _periods.c.used + qty <= reward.stock_per_period,
            )
            .values(used=_periods.c.used + qty)
            .returning(_periods.c.used)
        ).first()
        if row is None:
            raise OutOfStock(
                f"reward {reward.code} is out of stock for this {reward.stock_period} "
                f"(period starting {key})",
                extra={"stock_per_period": reward.stock_per_period, "period": key},
            )
        counted["stock_period"] = key
    mkey = period_key(reward.member_limit_period, now, tz_name)
    if mkey is not None and reward.member_limit is not None:
        values = {"reward_id": reward.id, "member_id": member_id, "period": mkey, "used": 0}
        _insert_missing(session, _usage, values)
        row = session.execute(
            update(_usage)
            .where(
                _usage.c.reward_id == reward.id,
                _usage.c.member_id == member_id,
                _usage.c.period == mkey,
                _usage.c.used + qty <= reward.member_limit,
            )
            .values(used=_usage.c.used + qty)
            .returning(_usage.c.used)
        ).first()
        if row is None:
            raise MemberLimitReached(
                f"the member may redeem {reward.code} {reward.member_limit} time(s) per "
                f"{reward.member_limit_period}",
                extra={"limit": reward.member_limit, "period": reward.member_limit_period},
            )
        counted["member_period"] = mkey
    return counted


def _release(session: Session, red: RewardRedemption) -> None:
    """Give back the stock and limit a redemption took, once (its flags are cleared)."""
    qty = red.quantity
    if red.counted:
        session.execute(
            update(_rewards)
            .where(_rewards.c.id == red.reward_id, _rewards.c.stock_used >= qty)
            .values(stock_used=_rewards.c.stock_used - qty)
        )
    if red.stock_period is not None:
        session.execute(
            update(_periods)
            .where(
                _periods.c.reward_id == red.reward_id,
                _periods.c.period == red.stock_period,
                _periods.c.used >= qty,
            )
            .values(used=_periods.c.used - qty)
        )
    if red.member_period is not None:
        session.execute(
            update(_usage)
            .where(
                _usage.c.reward_id == red.reward_id,
                _usage.c.member_id == red.member_id,
                _usage.c.period == red.member_period,
                _usage.c.used >= qty,
            )
            .values(used=_usage.c.used - qty)
        )
    red.counted = False
    red.stock_period = None
    red.member_period = None


# --------------------------------------------------------------------------- redemption


def _ctx(red: RewardRedemption, op: str, actor: str, reason: str | None = None) -> ledger.Context:
    return ledger.Context(
        program_id=red.program_id,
        idempotency_key=f"reward:{red.id}:{op}",
        request_hash=ledger.request_hash({"redemption": str(red.id), "op": op}),
        source_type=SOURCE,
        source_id=str(red.id),
        actor=actor,
        reason=reason,
    )


def _event(red: RewardRedemption, **more: Any) -> dict[str, Any]:
    return {
        "redemption_id": str(red.id),
        "reward_id": str(red.reward_id),
        "reward_code": red.reward_code,
        "kind": red.kind,
        "member_id": str(red.member_id),
        "points": red.points,
        "quantity": red.quantity,
        "status": red.status,
        "channel": red.channel,
        **more,
    }


def _lock(session: Session, redemption_id: uuid.UUID) -> RewardRedemption | None:
    return session.execute(
        select(RewardRedemption)
        .where(RewardRedemption.id == redemption_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def get_redemption(
    session: Session, tenant_id: uuid.UUID, redemption_id: uuid.UUID, *, lock: bool = False
) -> RewardRedemption:
    red = _lock(session, redemption_id) if lock else session.get(RewardRedemption, redemption_id)
    if red is None or red.tenant_id != tenant_id:
        raise RedemptionNotFound(f"redemption {redemption_id} not found")
    return red


def redeem(
    session: Session,
    tenant: Tenant,
    program: Program,
    member_id: uuid.UUID,
    body: RedemptionIn,
    *,
    actor: str,
    idempotency_key: str | None,
    now: datetime | None = None,
) -> tuple[RewardRedemption, bool]:
    """Redeem a reward for a member. Returns (redemption, created); a retry with the same
    ``idempotency_key`` and body returns the first redemption (created False)."""
    now = now or utcnow()
    digest = ledger.request_hash({"member": str(member_id), **body.model_dump(mode="json")})
    if idempotency_key is not None:
        prior = session.execute(
            select(RewardRedemption).where(
                RewardRedemption.tenant_id == tenant.id,
                RewardRedemption.idempotency_key == idempotency_key,
            )
        ).scalar_one_or_none()
        if prior is not None:
            if prior.request_hash != digest:
                raise IdempotencyKeyReused(
                    f"idempotency key {idempotency_key!r} was already used for another request"
                )
            return prior, False
    member = members.get_member(session, tenant.id, member_id)
    reward = get_reward(session, program.id, body.reward)
    if block := availability_block(reward, now, tenant.timezone):
        _raise(block)
    if block := eligibility_block(session, reward, member):
        _raise(block)
    if reward.kind in COUPON_KINDS and body.quantity != 1:
        raise InvalidInput(
            "coupon rewards are redeemed one at a time (quantity 1)",
            code="quantity_not_supported",
            extra={"field": "quantity"},
        )
    qty = body.quantity
    counted = _take(session, reward, member.id, qty, now, tenant.timezone)
    red = RewardRedemption(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=program.id,
        reward_id=reward.id,
        reward_code=reward.code,
        kind=reward.kind,
        member_id=member.id,
        status="held",
        quantity=qty,
        points=reward.points * qty,
        cash_price=None if reward.cash_price is None else reward.cash_price * qty,
        currency=program.currency,
        channel=body.channel,
        shipping_address=body.shipping_address,
        actor=actor,
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=now,
        updated_at=now,
        **counted,
    )
    session.add(red)
    session.flush()
    hold_for = timedelta(minutes=program.hold_timeout_minutes)
    if not body.confirm:
        red.hold_expires_at = now + hold_for  # the deadline, also when no points are held
    if red.points > 0 and (reward.kind != "donation" or not body.confirm):
        try:
            res = ledger.spend(
                session,
                _ctx(red, "hold", actor),
                member_id=member.id,
                amount=red.points,
                min_balance=program.min_redeem_points,
                hold_for=hold_for,
            )
        except ledger.InsufficientPoints as exc:
            available = int(exc.extra.get("available", 0))
            raise ledger.InsufficientPoints(
                f"not enough points: {red.points} needed, {available} available",
                extra={
                    "available": available,
                    "needed": red.points,
                    "missing": red.points - available,
                },
            ) from None
        red.hold_transfer_id = res.transfer_id
        hold = ledger.get_transfer(session, program.id, res.transfer_id)
        red.hold_expires_at = hold.expires_at
    elif red.points > 0:
        _check_balance(session, program, member.id, red.points)
    if body.confirm:
        _issue(session, tenant, program, reward, red, actor=actor, now=now)
    else:
        red.due_at = red.hold_expires_at
        session.flush()
    return red, True


def _check_balance(session: Session, program: Program, member_id: uuid.UUID, points: int) -> None:
    available = _points_available(session, program.id, member_id)
    if program.min_redeem_points and available < program.min_redeem_points:
        raise ledger.BelowMinimumRedeem(
            f"a balance of at least {program.min_redeem_points} points is needed to redeem; "
            f"the member has {available}",
            extra={"available": available, "minimum": program.min_redeem_points},
        )
    if available < points:
        raise ledger.InsufficientPoints(
            f"not enough points: {points} needed, {available} available",
            extra={"available": available, "needed": points, "missing": points - available},
        )


def _issue(
    session: Session,
    tenant: Tenant,
    program: Program,
    reward: Reward,
    red: RewardRedemption,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Issue the reward and post the points (capture the hold). The redemption is held."""
    if red.kind in COUPON_KINDS:
        from setia.coupons import service as coupons

        expires = (
            now + timedelta(days=reward.coupon_validity_days)
            if reward.coupon_validity_days
            else None
        )
        assert reward.coupon_campaign_id is not None
        coupon = coupons.issue_code(
            session,
            tenant_id=tenant.id,
            campaign_id=reward.coupon_campaign_id,
            member_id=red.member_id,
            source_type=SOURCE,
            source_id=str(red.id),
            expires_at=expires,
        )
        red.coupon_id = coupon.id
        red.coupon_expires_at = coupon.expires_at
        red.status = "issued"
    elif red.kind in WALLET_KINDS:
        from setia.wallet import service as wallet

        amount = reward.cashback_amount if red.kind == "cashback" else reward.value
        assert amount is not None
        res = wallet.credit(
            session,
            program=program,
            member_id=red.member_id,
            amount=amount * red.quantity,
            code="CASHBACK" if red.kind == "cashback" else "GIFT_CARD",
            idempotency_key=f"reward:{red.id}:wallet",
            actor=actor,
            source_type=SOURCE,
            source_id=str(red.id),
        )
        red.wallet_transfer_id = res.transfer_id
        red.status = "issued"
    elif red.kind == "donation":
        from setia.causes import service as causes

        if red.hold_transfer_id is not None:
            # Held for a later confirmation: the points go back and the donation spends them,
            # in this same transaction.
            hold = ledger.get_transfer(session, red.program_id, red.hold_transfer_id)
            _resolve(session, red, hold, "void", actor)
        assert reward.cause_id is not None
        donation = causes.donate(
            session,
            tenant_id=tenant.id,
            program=program,
            cause_id=reward.cause_id,
            member_id=red.member_id,
            points=red.points,
            idempotency_key=f"reward:{red.id}:donate",
            actor=actor,
            source_type=SOURCE,
            source_id=str(red.id),
        )
        red.donation_id = donation.id
        red.status = "issued"
    else:
        red.status = "requested"
        red.fulfilment_status = "requested"
    if red.hold_transfer_id is not None and red.kind != "donation":
        hold = ledger.get_transfer(session, red.program_id, red.hold_transfer_id)
        res = _resolve(session, red, hold, "capture", actor)
        red.capture_transfer_id = res.transfer_id
    red.issued_at = now
    red.updated_at = now
    red.due_at = red.coupon_expires_at if red.kind in COUPON_KINDS else None
    session.flush()
    publish(session, tenant.id, "reward.redeemed", _event(red))


def _resolve(
    session: Session, red: RewardRedemption, hold: Any, action: str, actor: str
) -> ledger.Result:
    try:
        return ledger.resolve_hold(session, _ctx(red, action, actor), hold, action=action)
    except ledger.HoldNotOpen as exc:
        raise RedemptionExpired(
            f"redemption {red.id}: the points are no longer held ({exc.detail}); redeem again",
            extra={
                "hold_expires_at": red.hold_expires_at.isoformat() if red.hold_expires_at else None
            },
        ) from None


def confirm(
    session: Session, tenant: Tenant, redemption_id: uuid.UUID, *, actor: str
) -> RewardRedemption:
    """Issue a held redemption. Confirming one already issued returns it unchanged."""
    now = utcnow()
    red = get_redemption(session, tenant.id, redemption_id, lock=True)
    if red.status != "held":
        if red.status in FINAL:
            raise InvalidTransition(
                f"redemption {red.id} is {red.status}; redeem again",
                extra={"redemption_status": red.status},
            )
        return red
    if red.hold_expires_at is not None and red.hold_expires_at <= now:
        raise RedemptionExpired(
            f"redemption {red.id} was held until {red.hold_expires_at.isoformat()}; redeem again",
            extra={"hold_expires_at": red.hold_expires_at.isoformat()},
        )
    program = session.get(Program, red.program_id)
    reward = session.get(Reward, red.reward_id)
    assert program is not None
    assert reward is not None
    _issue(session, tenant, program, reward, red, actor=actor, now=now)
    return red


def cancel(
    session: Session,
    tenant: Tenant,
    redemption_id: uuid.UUID,
    *,
    actor: str,
    reason: str | None = None,
) -> tuple[RewardRedemption, bool]:
    """Cancel a redemption and give back what can be given back, exactly once.

    Returns (redemption, changed); cancelling a cancelled redemption changes nothing.
    """
    now = utcnow()
    red = get_redemption(session, tenant.id, redemption_id, lock=True)
    if red.status == "cancelled":
        return red, False
    if red.status == "expired":
        raise NotCancellable(
            f"redemption {red.id} expired; its points were already settled",
            extra={"redemption_status": red.status},
        )
    if red.status in ("shipped", "delivered"):
        raise NotCancellable(
            f"redemption {red.id} was already {red.status}",
            extra={"redemption_status": red.status},
        )
    if red.status == "issued" and red.kind in (*WALLET_KINDS, "donation"):
        raise NotCancellable(
            f"a {red.kind} reward cannot be cancelled: the "
            + (
                "money is already in the member's wallet"
                if red.kind != "donation"
                else "points were given to the cause"
            ),
            extra={"redemption_status": red.status, "kind": red.kind},
        )
    program = session.get(Program, red.program_id)
    assert program is not None
    returns_points = True
    if red.status == "issued" and red.kind in COUPON_KINDS:
        from setia.coupons import service as coupons

        assert red.coupon_id is not None
        coupons.cancel_code(
            session, tenant_id=tenant.id, coupon_id=red.coupon_id, reason=reason or "cancelled"
        )
        returns_points = program.coupon_cancel_returns_points
    _release(session, red)
    if red.status == "held" and red.hold_transfer_id is not None:
        hold = ledger.get_transfer(session, red.program_id, red.hold_transfer_id)
        if ledger.hold_resolution(session, hold.id) is None:
            # If the hold-expiry job got there first, the points are back already.
            with suppress(ledger.HoldNotOpen):
                ledger.resolve_hold(session, _ctx(red, "void", actor), hold, action="void")
    elif returns_points and red.capture_transfer_id is not None:
        capture = ledger.get_transfer(session, red.program_id, red.capture_transfer_id)
        res = ledger.return_spent(
            session, _ctx(red, "return", actor, reason), original=capture, amount=capture.amount
        )
        red.return_transfer_id = res.transfer_id
    if red.fulfilment_status is not None:
        red.fulfilment_status = "cancelled"
    red.status = "cancelled"
    red.cancel_reason = reason
    red.ended_at = now
    red.updated_at = now
    red.due_at = None
    session.flush()
    publish(
        session,
        tenant.id,
        "reward.cancelled",
        _event(red, points_returned=red.return_transfer_id is not None or red.issued_at is None),
    )
    return red, True


ORDER = {"requested": 0, "shipped": 1, "delivered": 2}


def fulfil(
    session: Session,
    tenant: Tenant,
    redemption_id: uuid.UUID,
    *,
    status: str,
    tracking: str | None,
    actor: str,
) -> RewardRedemption:
    """Move a physical reward forward: requested → shipped → delivered. Repeating the
    current status is harmless; anything else is ``invalid_transition``."""
    red = get_redemption(session, tenant.id, redemption_id, lock=True)
    if red.kind != "physical":
        raise InvalidTransition(
            f"redemption {red.id} is a {red.kind} reward; only physical rewards are fulfilled",
            extra={"redemption_status": red.status},
        )
    if red.status == status and (tracking is None or tracking == red.tracking):
        return red
    if red.status not in ORDER or ORDER[status] <= ORDER[red.status]:
        raise InvalidTransition(
            f"redemption {red.id} is {red.status}; it cannot move to {status}",
            extra={"redemption_status": red.status, "requested": status},
        )
    before = red.status
    now = utcnow()
    red.status = status
    red.fulfilment_status = status
    if tracking is not None:
        red.tracking = tracking
    red.updated_at = now
    if status == "delivered":
        red.ended_at = now
    session.flush()
    publish(
        session,
        tenant.id,
        "reward.fulfilment_changed",
        _event(red, previous=before, tracking=red.tracking),
    )
    return red


def list_redemptions(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    program_id: uuid.UUID | None = None,
    member_id: uuid.UUID | None = None,
    status: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[RewardRedemption]:
    """Newest first."""
    query = select(RewardRedemption).where(RewardRedemption.tenant_id == tenant_id)
    if program_id is not None:
        query = query.where(RewardRedemption.program_id == program_id)
    if member_id is not None:
        query = query.where(RewardRedemption.member_id == member_id)
    if status is not None:
        query = query.where(RewardRedemption.status == status)
    if after is not None:
        query = query.where(RewardRedemption.id < after)
    return list(session.execute(query.order_by(RewardRedemption.id.desc()).limit(limit)).scalars())


def coupon_code(session: Session, red: RewardRedemption) -> str | None:
    if red.coupon_id is None:
        return None
    from setia.coupons import service as coupons

    coupon = coupons.get_coupon(session, red.tenant_id, red.coupon_id)
    code: str = coupon.code
    return code


# --------------------------------------------------------------------------- due work


def expire_held(session: Session, red: RewardRedemption, now: datetime) -> bool:
    """A held redemption past its hold deadline: stock back, hold expired, ``expired``."""
    if red.status != "held" or red.hold_expires_at is None or red.hold_expires_at > now:
        return False
    _release(session, red)
    if red.hold_transfer_id is not None:
        hold = ledger.get_transfer(session, red.program_id, red.hold_transfer_id)
        # The same key and request as the ledger's own hold-expiry job: whichever runs
        # first writes it, the other finds it.
        ctx = ledger.Context(
            program_id=hold.program_id,
            idempotency_key=f"hold-expire:{hold.id}",
            request_hash=ledger.request_hash({"expire_hold": str(hold.id)}),
            actor="job",
            source_type=hold.source_type,
            source_id=hold.source_id,
        )
        if ledger.hold_resolution(session, hold.id) is None:
            # Resolved meanwhile (the ledger's job): nothing left to give back.
            with suppress(ledger.HoldNotOpen):
                ledger.resolve_hold(session, ctx, hold, action="expire")
    red.status = "expired"
    red.ended_at = now
    red.updated_at = now
    red.due_at = None
    session.flush()
    publish(session, red.tenant_id, "reward.expired", _event(red, reason="hold_timeout"))
    return True


def expire_coupon(session: Session, red: RewardRedemption, now: datetime) -> int | None:
    """An issued coupon redemption whose coupon expired unused: ``expired``, stock back, and
    the points back if the program says so. Returns the points returned (None: nothing
    done)."""
    if red.status != "issued" or red.kind not in COUPON_KINDS or red.coupon_id is None:
        red.due_at = None
        return None
    from setia.coupons import service as coupons

    coupon = coupons.get_coupon(session, red.tenant_id, red.coupon_id)
    if int(getattr(coupon, "uses", 0) or 0) > 0:
        red.due_at = None  # used: nothing left to do
        return None
    if coupon.expires_at is None or as_utc(coupon.expires_at) > now:
        red.coupon_expires_at = coupon.expires_at
        red.due_at = coupon.expires_at
        return None
    program = session.get(Program, red.program_id)
    assert program is not None
    _release(session, red)
    returned = 0
    if program.coupon_cancel_returns_points and red.capture_transfer_id is not None:
        capture = ledger.get_transfer(session, red.program_id, red.capture_transfer_id)
        res = ledger.return_spent(
            session,
            _ctx(red, "return", "job", "coupon expired unused"),
            original=capture,
            amount=capture.amount,
        )
        red.return_transfer_id = res.transfer_id
        returned = capture.amount
    red.status = "expired"
    red.ended_at = now
    red.updated_at = now
    red.due_at = None
    session.flush()
    publish(
        session,
        red.tenant_id,
        "reward.expired",
        _event(red, reason="coupon_expired", points_returned=returned),
    )
    return returned


def eligibility_of(reward: Reward) -> Eligibility:
    return Eligibility(
        tiers=list(reward.eligible_tiers),
        tiers_or_above=reward.tiers_or_above,
        requires_membership=reward.requires_membership,
        tags=list(reward.eligible_tags),
    )
