"""badges and challenges: definitions, progress, completions

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "badge_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("names", _json(), nullable=False),
        sa.Column("descriptions", _json(), nullable=False),
        sa.Column("image_url", sa.String(length=500), nullable=True),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("conditions", _json(), nullable=True),
        sa.Column("items_where", _json(), nullable=True),
        sa.Column("measure", sa.String(length=10), nullable=False),
        sa.Column("field", sa.String(length=120), nullable=True),
        sa.Column("target", sa.Numeric(precision=24, scale=6), nullable=False),
        sa.Column("streak_unit", sa.String(length=8), nullable=True),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reward_points", sa.BigInteger(), nullable=False),
        sa.Column("reward_coupon_campaign_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_badge_definitions_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["reward_coupon_campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_badge_definitions_reward_coupon_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_badge_definitions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_definitions")),
        sa.UniqueConstraint(
            "program_id", "code", name=op.f("uq_badge_definitions_program_id_code")
        ),
    )
    op.create_index(
        "ix_badge_definitions_program", "badge_definitions", ["program_id", "status"], unique=False
    )
    op.create_index(
        op.f("ix_badge_definitions_tenant_id"), "badge_definitions", ["tenant_id"], unique=False
    )
    op.create_table(
        "badge_progress",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("definition_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period_key", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Numeric(precision=24, scale=6), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reward", _json(), nullable=True),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["badge_definitions.id"],
            name=op.f("fk_badge_progress_definition_id_badge_definitions"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_badge_progress_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_badge_progress_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_progress")),
        sa.UniqueConstraint(
            "member_id",
            "definition_id",
            "period_key",
            name=op.f("uq_badge_progress_member_id_definition_id_period_key"),
        ),
    )
    op.create_index(
        "ix_badge_progress_board", "badge_progress", ["definition_id", "period_key"], unique=False
    )
    op.create_table(
        "badge_leaderboard_consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("display_name", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_badge_leaderboard_consents_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_badge_leaderboard_consents_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_leaderboard_consents")),
    )
    op.create_index(
        "ix_badge_leaderboard_consents_member",
        "badge_leaderboard_consents",
        ["member_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_badge_leaderboard_consents_member", table_name="badge_leaderboard_consents")
    op.drop_table("badge_leaderboard_consents")
    op.drop_index("ix_badge_progress_board", table_name="badge_progress")
    op.drop_table("badge_progress")
    op.drop_index(op.f("ix_badge_definitions_tenant_id"), table_name="badge_definitions")
    op.drop_index("ix_badge_definitions_program", table_name="badge_definitions")
    op.drop_table("badge_definitions")
