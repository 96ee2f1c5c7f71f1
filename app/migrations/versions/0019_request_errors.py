"""request errors per token and hour, for the console's connection health

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_errors",
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=False),
        sa.Column("last_detail", sa.String(length=300), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["scim_tokens.id"],
            name=op.f("fk_request_errors_token_id_scim_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", "hour", name=op.f("pk_request_errors")),
    )


def downgrade() -> None:
    op.drop_table("request_errors")
