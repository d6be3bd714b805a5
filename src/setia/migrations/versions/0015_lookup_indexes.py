"""indexes for look-ups of one member's rows, which walked a whole program or table:

* ``ledger_accounts (member_id, program_id)``: the unique key has the code between program
  and member;
* ``orders (member_id, program_id, occurred_at)`` in place of ``orders (member_id)``: with
  the member alone SQLite preferred the program's time index for its order;
* ``referrals (program_id, referrer_id, status)`` and ``referrals (referee_id)``.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE/DROP INDEX (never batch mode on ledger tables: it would rebuild the table
    # and drop its append-only triggers).
    op.create_index("ix_ledger_accounts_member", "ledger_accounts", ["member_id", "program_id"])
    op.create_index(
        "ix_orders_member_program", "orders", ["member_id", "program_id", "occurred_at"]
    )
    op.drop_index("ix_orders_member_id", table_name="orders")
    op.create_index(
        "ix_referrals_program_referrer", "referrals", ["program_id", "referrer_id", "status"]
    )
    op.create_index("ix_referrals_referee", "referrals", ["referee_id"])


def downgrade() -> None:
    op.drop_index("ix_referrals_referee", table_name="referrals")
    op.drop_index("ix_referrals_program_referrer", table_name="referrals")
    op.create_index("ix_orders_member_id", "orders", ["member_id"])
    op.drop_index("ix_orders_member_program", table_name="orders")
    op.drop_index("ix_ledger_accounts_member", table_name="ledger_accounts")
