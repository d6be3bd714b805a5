"""an index for a member's ledger accounts in a program (look-ups by member walked every
account of the program: the unique key has the code between program and member)

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
    # Plain CREATE INDEX (never batch mode on ledger tables: it would rebuild the table and
    # drop its append-only triggers).
    op.create_index("ix_ledger_accounts_member", "ledger_accounts", ["member_id", "program_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_accounts_member", table_name="ledger_accounts")
