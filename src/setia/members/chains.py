"""Chains of merges: the member a merged record now stands for, and the records merged
into a member. Only the members' own table: the ledger reads these too."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.members.models import Member


def survivor_id(session: Session, member_id: uuid.UUID) -> uuid.UUID:
    """Follow ``merged_into_id`` to the member that holds the history now."""
    seen = {member_id}
    while True:
        nxt = session.execute(
            select(Member.merged_into_id).where(Member.id == member_id)
        ).scalar_one_or_none()
        if nxt is None or nxt in seen:
            return member_id
        seen.add(nxt)
        member_id = nxt


def merged_ids(session: Session, member_id: uuid.UUID) -> list[uuid.UUID]:
    """The records merged into this member, and those merged into them (level by level,
    each level in id order). Read through the index on ``merged_into_id``: sorted here, as
    an ORDER BY id would lead SQLite to walk the tenant's members instead."""
    found: list[uuid.UUID] = []
    wanted = [member_id]
    while wanted:
        wanted = sorted(
            session.execute(
                select(Member.id).where(
                    Member.merged_into_id.in_(wanted), Member.status == "merged"
                )
            ).scalars()
        )
        found += wanted
    return found
