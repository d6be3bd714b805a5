"""causes: causes, their donations (append-only) and receipt number counters

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

APPEND_ONLY = ("cause_donations",)


def upgrade() -> None:
    op.create_table(
        "causes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
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
        sa.Column(
            "image_urls",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("goal_points", sa.BigInteger(), nullable=True),
        sa.Column("value_per_point", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("min_points", sa.BigInteger(), nullable=False),
        sa.Column("max_points", sa.BigInteger(), nullable=True),
        sa.Column("match_ratio", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("match_budget", sa.BigInteger(), nullable=False),
        sa.Column("match_cap_per_member", sa.BigInteger(), nullable=True),
        sa.Column("receipt_prefix", sa.String(length=12), nullable=False),
        sa.Column("donated_points", sa.BigInteger(), nullable=False),
        sa.Column("matched_points", sa.BigInteger(), nullable=False),
        sa.Column("donations_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_causes_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_causes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_causes")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_causes_program_id_code")),
    )
    op.create_index(op.f("ix_causes_tenant_id"), "causes", ["tenant_id"], unique=False)

    op.create_table(
        "cause_receipt_sequences",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cause_receipt_sequences_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "prefix", "year", name=op.f("pk_cause_receipt_sequences")
        ),
    )

    op.create_table(
        "cause_donations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("cause_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("matched_points", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("matched_value", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("receipt_number", sa.String(length=40), nullable=False),
        sa.Column("receipt_year", sa.Integer(), nullable=False),
        sa.Column("receipt_seq", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=40), nullable=True),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cause_id"], ["causes.id"], name=op.f("fk_cause_donations_cause_id_causes")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_cause_donations_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_cause_donations_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cause_donations_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_cause_donations_transfer_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cause_donations")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_cause_donations_tenant_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "receipt_number", name=op.f("uq_cause_donations_tenant_id_receipt_number")
        ),
    )
    op.create_index("ix_cause_donations_cause", "cause_donations", ["cause_id", "id"], unique=False)
    op.create_index(
        "ix_cause_donations_member", "cause_donations", ["member_id", "cause_id"], unique=False
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
    op.drop_index("ix_cause_donations_member", table_name="cause_donations")
    op.drop_index("ix_cause_donations_cause", table_name="cause_donations")
    op.drop_table("cause_donations")
    op.drop_table("cause_receipt_sequences")
    op.drop_index(op.f("ix_causes_tenant_id"), table_name="causes")
    op.drop_table("causes")
