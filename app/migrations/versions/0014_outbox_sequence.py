"""the outbox's per-organization sequence, kept beside the audit chain's head

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:00:00.000000

An organization's outbox events are numbered when their transaction commits, under the lock
of the organization's audit chain head that sealing already takes: the counter lives in that
row, so numbering costs no statement of its own and follows commit order.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outbox_seq", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_column("outbox_seq")
