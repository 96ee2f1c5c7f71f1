"""staged held changes and the guard's sliding window

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("held_changes", schema=None) as batch_op:
        # Every change held before this revision held the grants of a directory change.
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="directory")
        )
        batch_op.add_column(
            sa.Column("payload", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.create_index(
            "ix_held_changes_open",
            ["org_id", "created_at"],
            unique=False,
            postgresql_where=sa.text("status = 'held'"),
            sqlite_where=sa.text("status = 'held'"),
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("guard_window_minutes", sa.Integer(), nullable=False, server_default="10")
        )
        batch_op.add_column(
            sa.Column(
                "guard_max_new_paid_seats_in_window",
                sa.Integer(),
                nullable=False,
                server_default="100",
            )
        )
    with op.batch_alter_table("seat_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seat_events_paid_grants",
            ["org_id", "at"],
            unique=False,
            postgresql_where=sa.text("to_seat = 'paid'"),
            sqlite_where=sa.text("to_seat = 'paid'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("seat_events", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_events_paid_grants")
    # SQLite drops these columns in place: copying `organizations` into a new table would
    # break every foreign key that points at it.
    with op.batch_alter_table("organizations", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("guard_max_new_paid_seats_in_window")
        batch_op.drop_column("guard_window_minutes")
    with op.batch_alter_table("held_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_held_changes_open")
        batch_op.drop_column("payload")
        batch_op.drop_column("kind")
