"""Member merge: badge progress follows the member into the survivor.

A source row with no survivor row for the same definition and period moves as it is. When
both have a row, the further one wins (a completed row over an incomplete one, then the
higher value, then the earlier completion): it ends up on the survivor and the other stays
on the merged-away member, untouched, as history. Counts are not added together, because a
distinct-values or streak measure cannot be combined from two totals, and a reward already
given for a completed row must not be given again. Rewards already paid were ledger
earnings of the source; the member merge moves those with its balance.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from setia.badges.models import BadgeProgress
from setia.core.time import as_utc

PARKED = "~merge"  # a period key no real period uses (they are "all" or "YYYY-MM")


def _rank(row: BadgeProgress) -> tuple[int, Decimal, float]:
    done = row.completed_at is not None
    completed = as_utc(row.completed_at).timestamp() if row.completed_at else 0.0
    return (1 if done else 0, Decimal(row.value), -completed)


def on_merge(session: Session, source_id: uuid.UUID, survivor_id: uuid.UUID) -> dict[str, int]:
    """Move ``source_id``'s progress rows to ``survivor_id``; returns what moved and what
    stayed (both had a row and the survivor's was further)."""
    session.flush()
    rows = list(
        session.execute(
            select(BadgeProgress).where(BadgeProgress.member_id.in_((source_id, survivor_id)))
        ).scalars()
    )
    theirs = {(r.definition_id, r.period_key): r for r in rows if r.member_id == survivor_id}
    moved = kept = swapped = 0
    for row in rows:
        if row.member_id != source_id:
            continue
        other = theirs.get((row.definition_id, row.period_key))
        if other is None:
            _set(session, row.id, member_id=survivor_id)
            moved += 1
        elif _rank(row) > _rank(other):
            # The unique key (member, definition, period) allows one row per period on the
            # survivor: park the survivor's row under another period key, hand the source's
            # row over, then give the parked row to the source under the real key.
            _set(session, other.id, period_key=PARKED)
            _set(session, row.id, member_id=survivor_id)
            _set(session, other.id, member_id=source_id, period_key=row.period_key)
            swapped += 1
        else:
            kept += 1
    for row in rows:
        session.expire(row)
    return {"moved": moved, "replaced": swapped, "kept_on_source": kept}


def _set(session: Session, row_id: uuid.UUID, **values: object) -> None:
    session.execute(update(BadgeProgress).where(BadgeProgress.id == row_id).values(**values))
