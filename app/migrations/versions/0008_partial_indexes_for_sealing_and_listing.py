"""partial indexes for sealing and listing

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 09:01:05.990040
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_unsealed",
            ["chain", "id"],
            unique=False,
            postgresql_where=sa.text("hash IS NULL"),
            sqlite_where=sa.text("hash IS NULL"),
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_users_live_by_created_at",
            ["org_id", "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("deprovisioned_at IS NULL"),
            sqlite_where=sa.text("deprovisioned_at IS NULL"),
        )


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_users_live_by_created_at",
            postgresql_where=sa.text("deprovisioned_at IS NULL"),
            sqlite_where=sa.text("deprovisioned_at IS NULL"),
        )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_audit_events_unsealed",
            postgresql_where=sa.text("hash IS NULL"),
            sqlite_where=sa.text("hash IS NULL"),
        )
