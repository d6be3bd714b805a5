"""checkout: points payments and what order refunds gave back

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY = ("order_refund_returns",)


def upgrade() -> None:
    op.create_table(
        "points_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("live_order_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_total", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("rate", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("points_held", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("hold_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("resolution_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("points_returned", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_points_payments_hold_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_payments_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_points_payments_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["resolution_transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_points_payments_resolution_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_points_payments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_payments")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_points_payments_tenant_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "live_order_id", name=op.f("uq_points_payments_tenant_id_live_order_id")
        ),
    )
    op.create_index(
        "ix_points_payments_due", "points_payments", ["status", "expires_at"], unique=False
    )
    op.create_index(
        "ix_points_payments_member", "points_payments", ["member_id", "id"], unique=False
    )
    op.create_index(
        "ix_points_payments_order", "points_payments", ["tenant_id", "order_id"], unique=False
    )
    op.create_table(
        "order_refund_returns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("source_key", sa.String(length=250), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("refunded_total", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("order_total", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("fully_refunded", sa.Boolean(), nullable=False),
        sa.Column("points_payment_id", sa.Uuid(), nullable=True),
        sa.Column("points_returned", sa.BigInteger(), nullable=False),
        sa.Column("return_transfer_id", sa.Uuid(), nullable=True),
        sa.Column(
            "coupons_restored",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_order_refund_returns_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["points_payment_id"],
            ["points_payments.id"],
            name=op.f("fk_order_refund_returns_points_payment_id_points_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_order_refund_returns_program_id_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["return_transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_order_refund_returns_return_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_order_refund_returns_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refund_returns")),
        sa.UniqueConstraint(
            "tenant_id", "source_key", name=op.f("uq_order_refund_returns_tenant_id_source_key")
        ),
    )
    op.create_index(
        "ix_order_refund_returns_order",
        "order_refund_returns",
        ["tenant_id", "order_id"],
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
    op.drop_index("ix_order_refund_returns_order", table_name="order_refund_returns")
    op.drop_table("order_refund_returns")
    op.drop_index("ix_points_payments_order", table_name="points_payments")
    op.drop_index("ix_points_payments_member", table_name="points_payments")
    op.drop_index("ix_points_payments_due", table_name="points_payments")
    op.drop_table("points_payments")
