"""analytics: per-tenant settings, saved segments, stored member scores

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APPEND_ONLY = ("analytics_settings_changes",)


def upgrade() -> None:
    op.create_table(
        "analytics_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_analytics_settings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_analytics_settings")),
    )
    op.create_table(
        "analytics_settings_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_settings_changes_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_settings_changes")),
        sa.UniqueConstraint(
            "tenant_id", "version", name=op.f("uq_analytics_settings_changes_tenant_id_version")
        ),
    )
    op.create_table(
        "analytics_fits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settings_version", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("purchasers", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=20), nullable=True),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("log_likelihood", sa.Double(), nullable=True),
        sa.Column(
            "spend_params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("spend_log_likelihood", sa.Double(), nullable=True),
        sa.Column("fit_seconds", sa.Double(), nullable=False),
        sa.Column("total_seconds", sa.Double(), nullable=False),
        sa.Column("predictions_missing", sa.String(length=500), nullable=True),
        sa.Column("spend_missing", sa.String(length=500), nullable=True),
        sa.Column("horizon_weeks", sa.Double(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("discount_rate", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_analytics_fits_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_analytics_fits_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_fits")),
    )
    op.create_index(
        "ix_analytics_fits_program", "analytics_fits", ["program_id", "computed_at"], unique=False
    )
    op.create_table(
        "analytics_segments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
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
            "filter",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_analytics_segments_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_analytics_segments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_segments")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_analytics_segments_tenant_id_key")),
    )
    op.create_table(
        "member_scores",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("fit_id", sa.Uuid(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("spend", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("refunds", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("redemptions", sa.Integer(), nullable=False),
        sa.Column("purchase_days", sa.Integer(), nullable=False),
        sa.Column("first_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_purchase_day", sa.Date(), nullable=True),
        sa.Column("last_purchase_day", sa.Date(), nullable=True),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Double(), nullable=False),
        sa.Column("recency", sa.Double(), nullable=False),
        sa.Column("age", sa.Double(), nullable=False),
        sa.Column("monetary", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("p_alive", sa.Double(), nullable=True),
        sa.Column("expected_purchases", sa.Double(), nullable=True),
        sa.Column("expected_spend", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("clv", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("rfm_r", sa.Integer(), nullable=True),
        sa.Column("rfm_f", sa.Integer(), nullable=True),
        sa.Column("rfm_m", sa.Integer(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=True),
        sa.Column("loyalty_label", sa.String(length=16), nullable=False),
        sa.Column("loyalty_type", sa.String(length=16), nullable=False),
        sa.Column("habitual", sa.Double(), nullable=False),
        sa.Column("transactional", sa.Double(), nullable=False),
        sa.Column("emotional", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fit_id"], ["analytics_fits.id"], name=op.f("fk_member_scores_fit_id_analytics_fits")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_scores_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_member_scores_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_member_scores_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("program_id", "member_id", name=op.f("pk_member_scores")),
    )
    op.create_index(
        "ix_member_scores_segment", "member_scores", ["program_id", "rfm_segment"], unique=False
    )
    op.create_index(
        "ix_member_scores_tenant",
        "member_scores",
        ["tenant_id", "program_id", "member_id"],
        unique=False,
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
    op.drop_index("ix_member_scores_tenant", table_name="member_scores")
    op.drop_index("ix_member_scores_segment", table_name="member_scores")
    op.drop_table("member_scores")
    op.drop_table("analytics_segments")
    op.drop_index("ix_analytics_fits_program", table_name="analytics_fits")
    op.drop_table("analytics_fits")
    op.drop_table("analytics_settings_changes")
    op.drop_table("analytics_settings")
