"""referrals: settings, codes, shares, referrals, rewards, review decisions (append-only)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

APPEND_ONLY = ("referral_decisions",)


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_codes_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referral_codes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_referral_codes_tenant_id_code")),
        sa.UniqueConstraint(
            "tenant_id", "member_id", name=op.f("uq_referral_codes_tenant_id_member_id")
        ),
    )
    op.create_table(
        "referral_shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_shares_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referral_shares_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_shares")),
    )
    op.create_index(
        "ix_referral_shares_member",
        "referral_shares",
        ["tenant_id", "member_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "referral_settings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("min_amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("referrer_points", sa.BigInteger(), nullable=False),
        sa.Column("referee_points", sa.BigInteger(), nullable=False),
        sa.Column("referrer_campaign_id", sa.Uuid(), nullable=True),
        sa.Column("referee_campaign_id", sa.Uuid(), nullable=True),
        sa.Column("level2_enabled", sa.Boolean(), nullable=False),
        sa.Column("level2_points", sa.BigInteger(), nullable=False),
        sa.Column("level2_campaign_id", sa.Uuid(), nullable=True),
        sa.Column("cap_per_month", sa.Integer(), nullable=True),
        sa.Column("cap_lifetime", sa.Integer(), nullable=True),
        sa.Column("velocity_count", sa.Integer(), nullable=False),
        sa.Column("velocity_minutes", sa.Integer(), nullable=False),
        sa.Column("review_required", sa.Boolean(), nullable=False),
        sa.Column("attach_within_days", sa.Integer(), nullable=False),
        sa.Column(
            "disposable_add",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "disposable_remove",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("share_url", sa.String(length=500), nullable=False),
        sa.Column(
            "share_texts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["level2_campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_referral_settings_level2_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_referral_settings_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["referee_campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_referral_settings_referee_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["referrer_campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_referral_settings_referrer_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referral_settings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_settings")),
        sa.UniqueConstraint("program_id", name=op.f("uq_referral_settings_program_id")),
    )
    op.create_index(
        op.f("ix_referral_settings_tenant_id"), "referral_settings", ["tenant_id"], unique=False
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=False),
        sa.Column("referee_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("held_reason", sa.String(length=40), nullable=True),
        sa.Column("device_id", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("order_amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("cancelled_reason", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"], ["referral_codes.id"], name=op.f("fk_referrals_code_id_referral_codes")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_referrals_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["referee_id"], ["members.id"], name=op.f("fk_referrals_referee_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referrals_referrer_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referrals_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint(
            "program_id", "referee_id", name=op.f("uq_referrals_program_id_referee_id")
        ),
    )
    op.create_index("ix_referrals_code_time", "referrals", ["code_id", "created_at"], unique=False)
    op.create_index(
        "ix_referrals_referrer", "referrals", ["referrer_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_referrals_status", "referrals", ["program_id", "status", "id"], unique=False
    )
    op.create_table(
        "referral_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=10), nullable=True),
        sa.Column("to_status", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_decisions_referral_id_referrals"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referral_decisions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_decisions")),
    )
    op.create_index(
        "ix_referral_decisions_referral", "referral_decisions", ["referral_id", "id"], unique=False
    )
    op.create_table(
        "referral_rewards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("coupon_id", sa.Uuid(), nullable=True),
        sa.Column("local_month", sa.String(length=7), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_referral_rewards_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_rewards_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_referral_rewards_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_rewards_referral_id_referrals"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referral_rewards_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_referral_rewards_transfer_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_rewards")),
        sa.UniqueConstraint(
            "referral_id", "role", name=op.f("uq_referral_rewards_referral_id_role")
        ),
    )
    op.create_index(
        "ix_referral_rewards_member", "referral_rewards", ["member_id", "local_month"], unique=False
    )
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION setia_refuse_change()"
            )
        else:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")

    op.drop_index("ix_referral_rewards_member", table_name="referral_rewards")
    op.drop_table("referral_rewards")
    op.drop_index("ix_referral_decisions_referral", table_name="referral_decisions")
    op.drop_table("referral_decisions")
    op.drop_index("ix_referrals_status", table_name="referrals")
    op.drop_index("ix_referrals_referrer", table_name="referrals")
    op.drop_index("ix_referrals_code_time", table_name="referrals")
    op.drop_table("referrals")
    op.drop_index(op.f("ix_referral_settings_tenant_id"), table_name="referral_settings")
    op.drop_table("referral_settings")
    op.drop_index("ix_referral_shares_member", table_name="referral_shares")
    op.drop_table("referral_shares")
    op.drop_table("referral_codes")
