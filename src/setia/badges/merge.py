"""Member merge: badge progress follows the member into the survivor.

Progress on a definition in a period is a completion row, or an entry of the member's tally
of the period. The source's progress with no survivor progress for the same definition and
period moves as it is. When both have progress, the further one wins (completed over not
completed, then the higher value, then the earlier completion): it ends up on the survivor
and the other stays on the merged-away member, untouched, as history. Counts are not added together, because a
distinct-values or streak measure cannot be combined from two totals, and a reward already
given for a completed row must not be given again. Rewards already paid were ledger
earnings of the source; the member merge moves those with its balance.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from setia.badges.models import BadgeProgress, BadgeTally
from setia.core.time import as_utc, utcnow

_SIX = Decimal("0.000001")
PARKED = "~merge"  # a period key no real period uses (they are "all" or "YYYY-MM")


def _rank(row: BadgeProgress) -> tuple[int, Decimal, float]:
    done = row.completed_at is not None
    completed = as_utc(row.completed_at).timestamp() if row.completed_at else 0.0
    return (1 if done else 0, Decimal(row.value), -completed)


def _entry_rank(entry: list[Any]) -> tuple[int, Decimal, float]:
    """``_rank`` of a tally entry ``[value, events, last, completed_at, state]``."""
    done = entry[3]
    completed = datetime.fromisoformat(done).timestamp() if done else 0.0
    # the completion row keeps 6 decimals (Numeric(24, 6)): compare what it compares
    return (1 if done else 0, Decimal(entry[0]).quantize(_SIX), -completed)


def _merge_tallies(session: Session, source_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
    """Per period and definition, the further entry goes to the survivor's tally and the
    other stays on the source's (the same choice as for completion rows)."""
    tallies = list(
        session.execute(
            select(BadgeTally)
            .where(BadgeTally.member_id.in_((source_id, survivor_id)))
            .order_by(BadgeTally.id)
            .with_for_update()
        ).scalars()
    )
    theirs = {(t.program_id, t.period_key): t for t in tallies if t.member_id == survivor_id}
    for tally in tallies:
        if tally.member_id != source_id:
            continue
        other = theirs.get((tally.program_id, tally.period_key))
        if other is None:
            tally.member_id = survivor_id
            tally.updated_at = utcnow()
            continue
        mine, kept = dict(tally.entries), dict(other.entries)
        for name, entry in list(mine.items()):
            rival = kept.get(name)
            if rival is None:
                kept[name] = mine.pop(name)
            elif _entry_rank(entry) > _entry_rank(rival):
                kept[name], mine[name] = entry, rival
        tally.entries, other.entries = mine, kept
        tally.updated_at = other.updated_at = utcnow()
    session.flush()


def on_merge(session: Session, source_id: uuid.UUID, survivor_id: uuid.UUID) -> dict[str, int]:
    """Move ``source_id``'s progress to ``survivor_id``; returns what completion rows moved
    and what stayed (both had one and the survivor's was further)."""
    session.flush()
    _merge_tallies(session, source_id, survivor_id)
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
