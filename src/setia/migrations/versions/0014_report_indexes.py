"""indexes for reports over a window of time: ledger transfers and orders by program and time

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE INDEX (never batch mode on ledger tables: it would rebuild the table and
    # drop its append-only triggers).
    op.create_index(
        "ix_ledger_transfers_program_effective",
        "ledger_transfers",
        ["program_id", "effective_at"],
    )
    op.create_index("ix_orders_program_occurred", "orders", ["program_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_program_occurred", table_name="orders")
    op.drop_index("ix_ledger_transfers_program_effective", table_name="ledger_transfers")
