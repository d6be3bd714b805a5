"""ledger returns and wallet accounts; program settings for checkout and coupons

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 00:16:06.464798

Plain ``ADD COLUMN`` on both backends (no batch copy on SQLite: a table copy would drop the
append-only triggers of ``ledger_transfers``). On SQLite the new foreign key is not
declared: SQLite cannot add one to an existing table without copying it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WALLET_PROGRAM_CODES = ("WALLET_ISSUED", "WALLET_SPENT")


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("ledger_transfers", sa.Column("reverses_id", sa.Uuid(), nullable=True))
    op.create_index(
        op.f("ix_ledger_transfers_reverses_id"), "ledger_transfers", ["reverses_id"], unique=False
    )
    if bind.dialect.name == "postgresql":
        op.create_foreign_key(
            op.f("fk_ledger_transfers_reverses_id_ledger_transfers"),
            "ledger_transfers",
            "ledger_transfers",
            ["reverses_id"],
            ["id"],
        )
    op.add_column("programs", sa.Column("points_payment_rate", sa.Numeric(precision=18, scale=6)))
    op.add_column(
        "programs",
        sa.Column("points_payment_max_percent", sa.Integer(), nullable=False, server_default="100"),
    )
    op.add_column(
        "programs",
        sa.Column(
            "coupon_cancel_returns_points",
            sa.Boolean(),
            nullable=False,
            server_default=sa.true(),
        ),
    )
    op.add_column(
        "programs",
        sa.Column("refund_restores_coupon", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    # Every existing program gets the wallet's program accounts.
    accounts = sa.table(
        "ledger_accounts",
        sa.column("id", sa.Uuid()),
        sa.column("program_id", sa.Uuid()),
        sa.column("code", sa.String()),
        sa.column("member_id", sa.Uuid()),
        sa.column("no_overdraft", sa.Boolean()),
        sa.column("no_overcredit", sa.Boolean()),
        sa.column("debits_posted", sa.BigInteger()),
        sa.column("credits_posted", sa.BigInteger()),
        sa.column("debits_pending", sa.BigInteger()),
        sa.column("credits_pending", sa.BigInteger()),
        sa.column("version", sa.BigInteger()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    program_ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM programs"))]
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "program_id": pid if isinstance(pid, uuid.UUID) else uuid.UUID(str(pid)),
            "code": code,
            "member_id": None,
            "no_overdraft": False,
            "no_overcredit": False,
            "debits_posted": 0,
            "credits_posted": 0,
            "debits_pending": 0,
            "credits_pending": 0,
            "version": 0,
            "created_at": now,
        }
        for pid in program_ids
        for code in WALLET_PROGRAM_CODES
    ]
    if rows:
        op.bulk_insert(accounts, rows)


def downgrade() -> None:
    op.execute(
        "DELETE FROM ledger_accounts WHERE code IN ('WALLET', 'WALLET_ISSUED', 'WALLET_SPENT')"
    )
    for column in (
        "refund_restores_coupon",
        "coupon_cancel_returns_points",
        "points_payment_max_percent",
        "points_payment_rate",
    ):
        op.drop_column("programs", column)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(
            op.f("fk_ledger_transfers_reverses_id_ledger_transfers"),
            "ledger_transfers",
            type_="foreignkey",
        )
    op.drop_index(op.f("ix_ledger_transfers_reverses_id"), table_name="ledger_transfers")
    op.drop_column("ledger_transfers", "reverses_id")
