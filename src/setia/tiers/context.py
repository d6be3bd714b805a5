"""A member's current tier as the rules engine sees it (``member.tier``,
``member.tier_multiplier``). One query per event; ``tiers_of`` answers a whole batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Uuid, and_, bindparam, select
from sqlalchemy.orm import Session, aliased

from setia.tiers.models import MemberTier, Tier, TierSet

NO_TIER: dict[str, Any] = {"tier": None, "tier_multiplier": Decimal(1)}

_base = aliased(Tier)
_current = aliased(Tier)


# Built once, bound per call (building and caching a statement with two aliased joins cost
# more than running it; every event asks).
_QUERY = (
    select(
        MemberTier.member_id,
        _base.code,
        _base.earn_multiplier,
        _current.code,
        _current.earn_multiplier,
    )
    .select_from(TierSet)
    .join(_base, and_(_base.tier_set_id == TierSet.id, _base.rank == 0))
    .outerjoin(
        MemberTier,
        and_(
            MemberTier.tier_set_id == TierSet.id,
            MemberTier.member_id.in_(bindparam("member_ids", expanding=True, type_=Uuid())),
        ),
    )
    .outerjoin(_current, _current.id == MemberTier.tier_id)
    .where(TierSet.program_id == bindparam("program_id", type_=Uuid()))
)


def tier_of(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    return tiers_of(session, program_id, [member_id]).get(member_id, NO_TIER)


def tiers_of(
    session: Session, program_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Every given member's tier; members without a status row are in the base tier, and
    every member of a program without tiers has none."""
    ids = list(dict.fromkeys(member_ids))
    out: dict[uuid.UUID, dict[str, Any]] = {}
    base: dict[str, Any] | None = None
    for member_id, base_code, base_mult, code, mult in session.execute(
        _QUERY, {"program_id": program_id, "member_ids": ids}
    ):
        base = {"tier": base_code, "tier_multiplier": Decimal(base_mult)}
        if member_id is not None:
            out[member_id] = {"tier": code, "tier_multiplier": Decimal(mult)}
    if base is None:
        return dict.fromkeys(ids, NO_TIER)
    return {m: out.get(m, base) for m in ids}
