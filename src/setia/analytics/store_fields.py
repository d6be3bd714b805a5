"""Stored analytics as rule fields: ``member.rfm_segment``, ``member.loyalty_label``,
``member.loyalty_type``, ``member.p_alive`` and ``member.clv``.

Kept apart from ``store`` (which fits models) so the event path imports only this: the
values are read from ``member_scores`` with one query, and only when a rule mentions one
of the fields (:func:`reads_scores`), so events pay nothing otherwise. A member with no
stored row has none of the fields (comparisons are false, ``exists`` is false).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.analytics.tables import MemberScore

RULE_FIELDS = (
    "member.rfm_segment",
    "member.loyalty_label",
    "member.loyalty_type",
    "member.p_alive",
    "member.clv",
)


def reads_scores(specs: Iterable[Any]) -> bool:
    """Whether any rule's conditions mention a stored analytics field."""
    for spec in specs:
        text = repr(spec.body.get("conditions"))
        if any(name in text for name in RULE_FIELDS):
            return True
    return False


def rule_fields(
    session: Session, program_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The stored fields of each member that has a row (members without one are left out)."""
    ids = list(dict.fromkeys(member_ids))
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        q = select(
            MemberScore.member_id,
            MemberScore.rfm_segment,
            MemberScore.loyalty_label,
            MemberScore.loyalty_type,
            MemberScore.p_alive,
            MemberScore.clv,
        ).where(MemberScore.program_id == program_id, MemberScore.member_id.in_(chunk))
        for mid, seg, label, kind, alive, clv in session.execute(q):
            out[mid] = {
                "rfm_segment": seg,
                "loyalty_label": label,
                "loyalty_type": kind,
                "p_alive": alive,
                "clv": None if clv is None else Decimal(clv),
            }
    return out
