"""index ``members (merged_into_id, tenant_id)``: a member's erasure and data export find the records
merged into it (and theirs), which walked the tenant's members.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_members_merged_into", "members", ["merged_into_id", "tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_members_merged_into", table_name="members")
