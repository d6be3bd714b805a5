"""coupons: campaigns, codes, generation batches and redemptions

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=60), nullable=False),
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
        sa.Column("discount_type", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("percent", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("max_discount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column(
            "free_item_skus",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "skus",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "categories",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "exclude_skus",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "exclude_categories",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("min_spend", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("uses_per_code", sa.Integer(), nullable=True),
        sa.Column("member_bound", sa.Boolean(), nullable=False),
        sa.Column("code_pattern", sa.String(length=64), nullable=True),
        sa.Column("public_code", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_coupon_campaigns_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_coupon_campaigns_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_campaigns")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_coupon_campaigns_tenant_id_code")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_coupon_campaigns_tenant_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("coupon_campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_campaigns_tenant", ["tenant_id", "id"], unique=False)
    op.create_table(
        "coupon_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_coupon_batches_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_coupon_batches_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_batches")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_coupon_batches_tenant_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("coupon_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coupon_batches_campaign_id"), ["campaign_id"], unique=False
        )
    op.create_table(
        "coupons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_type", sa.String(length=40), nullable=True),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["coupon_batches.id"], name=op.f("fk_coupons_batch_id_coupon_batches")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_coupons_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_coupons_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_coupons_tenant_id_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index("ix_coupons_campaign", ["campaign_id", "id"], unique=False)
        # Partial: most codes (generated, imported, public) have no member and no source.
        batch_op.create_index(
            "ix_coupons_member",
            ["member_id"],
            unique=False,
            sqlite_where=sa.text("member_id IS NOT NULL"),
            postgresql_where=sa.text("member_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_coupons_source",
            ["tenant_id", "source_type", "source_id"],
            unique=True,
            sqlite_where=sa.text("source_type IS NOT NULL"),
            postgresql_where=sa.text("source_type IS NOT NULL"),
        )
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("coupon_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("discount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("active_key", sa.String(length=240), nullable=True),
        sa.Column(
            "cart",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["coupon_campaigns.id"],
            name=op.f("fk_coupon_redemptions_campaign_id_coupon_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_coupon_redemptions_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupon_redemptions_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_coupon_redemptions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_redemptions")),
        sa.UniqueConstraint("active_key", name=op.f("uq_coupon_redemptions_active_key")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_coupon_redemptions_tenant_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_redemptions_coupon", ["coupon_id", "id"], unique=False)
        batch_op.create_index(
            "ix_coupon_redemptions_member", ["campaign_id", "member_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_coupon_redemptions_order", ["tenant_id", "order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_redemptions_order")
        batch_op.drop_index("ix_coupon_redemptions_member")
        batch_op.drop_index("ix_coupon_redemptions_coupon")
    op.drop_table("coupon_redemptions")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("uq_coupons_source")
        batch_op.drop_index("ix_coupons_member")
        batch_op.drop_index("ix_coupons_campaign")
        batch_op.drop_index(batch_op.f("ix_coupons_batch_id"))
    op.drop_table("coupons")
    with op.batch_alter_table("coupon_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_batches_campaign_id"))
    op.drop_table("coupon_batches")
    with op.batch_alter_table("coupon_campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_campaigns_tenant")
    op.drop_table("coupon_campaigns")
