"""read-only tokens and rate limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 07:59:01.152940
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_number", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
    )
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_read_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:

    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.drop_column("is_read_only")

    op.drop_table("rate_limits")
