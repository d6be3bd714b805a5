"""badge tallies: a member's running progress on all of a program's definitions in one
period is one row (``badge_tallies``), so an event that counts toward a dozen definitions
writes one row instead of a dozen; ``badge_progress`` keeps only completions.

Existing progress rows are folded into tallies (complete ones stay in ``badge_progress`` and
get an entry too); the downgrade unfolds the incomplete entries back into rows.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _tables() -> tuple[sa.Table, sa.Table]:
    meta = sa.MetaData()
    progress = sa.Table(
        "badge_progress",
        meta,
        sa.Column("id", sa.Uuid()),
        sa.Column("program_id", sa.Uuid()),
        sa.Column("definition_id", sa.Uuid()),
        sa.Column("member_id", sa.Uuid()),
        sa.Column("period_key", sa.String(8)),
        sa.Column("value", sa.Numeric(24, 6)),
        sa.Column("state", _json()),
        sa.Column("events", sa.BigInteger()),
        sa.Column("last_event_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("reward", _json()),
    )
    tallies = sa.Table(
        "badge_tallies",
        meta,
        sa.Column("id", sa.Uuid()),
        sa.Column("program_id", sa.Uuid()),
        sa.Column("member_id", sa.Uuid()),
        sa.Column("period_key", sa.String(8)),
        sa.Column("entries", _json()),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    return progress, tallies


def _number(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def upgrade() -> None:
    op.create_table(
        "badge_tallies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period_key", sa.String(length=8), nullable=False),
        sa.Column("entries", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_badge_tallies_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_badge_tallies_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_tallies")),
        sa.UniqueConstraint(
            "member_id",
            "program_id",
            "period_key",
            name=op.f("uq_badge_tallies_member_id_program_id_period_key"),
        ),
    )
    op.create_index("ix_badge_tallies_program", "badge_tallies", ["program_id", "period_key"])
    progress, tallies = _tables()
    bind = op.get_bind()
    now = datetime.now(UTC)
    # Streamed in (program, member, period) order, one tally per group, inserted by the
    # thousand: memory stays flat however many rows there are.
    pending: list[dict[str, Any]] = []
    group: tuple[Any, Any, str] | None = None
    entries: dict[str, list[Any]] = {}

    def close() -> None:
        if group is not None and entries:
            program_id, member_id, period = group
            pending.append(
                {
                    "id": uuid.uuid4(),
                    "program_id": program_id,
                    "member_id": member_id,
                    "period_key": period,
                    "entries": entries,
                    "updated_at": now,
                }
            )
        if len(pending) >= 1000 or (group is None and pending):
            bind.execute(tallies.insert(), pending)
            pending.clear()

    rows = bind.execute(
        sa.select(progress)
        .order_by(progress.c.program_id, progress.c.member_id, progress.c.period_key)
        .execution_options(yield_per=2000)
    ).mappings()
    for r in rows:
        key = (r["program_id"], r["member_id"], r["period_key"])
        if key != group:
            close()
            group, entries = key, {}
        done = _iso(r["completed_at"])
        entries[str(r["definition_id"])] = [
            _number(r["value"]),
            int(r["events"]),
            _iso(r["last_event_at"]),
            done,
            (r["state"] or None) if done is None else None,
        ]
    close()
    group = None
    close()  # the last partial thousand
    bind.execute(progress.delete().where(progress.c.completed_at.is_(None)))


def downgrade() -> None:
    progress, tallies = _tables()
    bind = op.get_bind()
    rows = []
    for t in bind.execute(sa.select(tallies).execution_options(yield_per=500)).mappings():
        entries = t["entries"]
        if isinstance(entries, str):
            entries = json.loads(entries)
        for definition, (value, events, last, done, state) in entries.items():
            if done is not None:
                continue  # its badge_progress row is still there
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "program_id": t["program_id"],
                    "definition_id": uuid.UUID(definition),
                    "member_id": t["member_id"],
                    "period_key": t["period_key"],
                    "value": Decimal(value),
                    "state": state or {},
                    "events": events,
                    "last_event_at": datetime.fromisoformat(last) if last else None,
                    "completed_at": None,
                    "reward": None,
                }
            )
            if len(rows) >= 1000:
                bind.execute(progress.insert(), rows)
                rows.clear()
    if rows:
        bind.execute(progress.insert(), rows)
    op.drop_index("ix_badge_tallies_program", table_name="badge_tallies")
    op.drop_table("badge_tallies")
