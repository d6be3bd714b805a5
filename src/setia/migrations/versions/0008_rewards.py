"""rewards

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column(
            "names",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "descriptions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "terms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("image_url", sa.String(length=500), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("cash_price", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("coupon_campaign_id", sa.Uuid(), nullable=True),
        sa.Column("coupon_validity_days", sa.Integer(), nullable=True),
        sa.Column("cashback_amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("cause_id", sa.Uuid(), nullable=True),
        sa.Column("stock_total", sa.BigInteger(), nullable=True),
        sa.Column("stock_used", sa.BigInteger(), nullable=False),
        sa.Column("stock_per_period", sa.BigInteger(), nullable=True),
        sa.Column("stock_period", sa.String(length=8), nullable=True),
        sa.Column("member_limit", sa.Integer(), nullable=True),
        sa.Column("member_limit_period", sa.String(length=10), nullable=True),
        sa.Column("available_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column(
            "eligible_tiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("tiers_or_above", sa.Boolean(), nullable=False),
        sa.Column("requires_membership", sa.Boolean(), nullable=False),
        sa.Column(
            "eligible_tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_rewards_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_rewards_tenant_id_tenants")
        ),
        sa.CheckConstraint("stock_used >= 0", name=op.f("ck_rewards_stock_used_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_rewards_program_id_code")),
    )
    op.create_index(op.f("ix_rewards_program_id"), "rewards", ["program_id"], unique=False)
    op.create_table(
        "reward_member_usage",
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_reward_member_usage_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_member_usage_reward_id_rewards")
        ),
        sa.CheckConstraint("used >= 0", name=op.f("ck_reward_member_usage_used_not_negative")),
        sa.PrimaryKeyConstraint(
            "reward_id", "member_id", "period", name=op.f("pk_reward_member_usage")
        ),
    )
    op.create_table(
        "reward_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("reward_code", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("cash_price", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("coupon_id", sa.Uuid(), nullable=True),
        sa.Column("coupon_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wallet_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("donation_id", sa.Uuid(), nullable=True),
        sa.Column("hold_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("capture_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("return_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fulfilment_status", sa.String(length=10), nullable=True),
        sa.Column("tracking", sa.String(length=200), nullable=True),
        sa.Column(
            "shipping_address",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("stock_period", sa.String(length=10), nullable=True),
        sa.Column("member_period", sa.String(length=10), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("cancel_reason", sa.String(length=200), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_reward_redemptions_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_reward_redemptions_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_redemptions_reward_id_rewards")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_reward_redemptions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_redemptions")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_reward_redemptions_tenant_id_idempotency_key"),
        ),
    )
    op.create_index("ix_reward_redemptions_due", "reward_redemptions", ["due_at"], unique=False)
    op.create_index(
        "ix_reward_redemptions_member", "reward_redemptions", ["member_id", "id"], unique=False
    )
    op.create_index(
        "ix_reward_redemptions_program",
        "reward_redemptions",
        ["program_id", "status", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_reward_redemptions_reward_id"), "reward_redemptions", ["reward_id"], unique=False
    )
    op.create_table(
        "reward_stock_periods",
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_stock_periods_reward_id_rewards")
        ),
        sa.CheckConstraint("used >= 0", name=op.f("ck_reward_stock_periods_used_not_negative")),
        sa.PrimaryKeyConstraint("reward_id", "period", name=op.f("pk_reward_stock_periods")),
    )


def downgrade() -> None:
    op.drop_table("reward_stock_periods")
    op.drop_index(op.f("ix_reward_redemptions_reward_id"), table_name="reward_redemptions")
    op.drop_index("ix_reward_redemptions_program", table_name="reward_redemptions")
    op.drop_index("ix_reward_redemptions_member", table_name="reward_redemptions")
    op.drop_index("ix_reward_redemptions_due", table_name="reward_redemptions")
    op.drop_table("reward_redemptions")
    op.drop_table("reward_member_usage")
    op.drop_index(op.f("ix_rewards_program_id"), table_name="rewards")
    op.drop_table("rewards")
