"""in-place seat updates

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:40:05.186147
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_org_id_seat")
        batch_op.drop_index("ix_users_org_id_pending_since")
        batch_op.create_index(
            "ix_users_org_id_pending_since",
            ["org_id", "pending_since"],
            unique=False,
            postgresql_where=sa.text("pending_since IS NOT NULL"),
            sqlite_where=sa.text("pending_since IS NOT NULL"),
        )
    if op.get_bind().dialect.name == "postgresql":
        # Room on each page for a row's new version: seat, version and login updates then
        # stay on the page and skip every index (HOT updates).
        op.execute("ALTER TABLE users SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE users RESET (fillfactor)")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_org_id_pending_since")
        batch_op.create_index(
            "ix_users_org_id_pending_since", ["org_id", "pending_since"], unique=False
        )
        batch_op.create_index("ix_users_org_id_seat", ["org_id", "seat"], unique=False)
