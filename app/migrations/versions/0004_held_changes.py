"""held changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 08:00:03.636250
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "held_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("cause", sa.String(length=256), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("user_ids", sa.JSON(), nullable=False),
        sa.Column("new_paid_seats", sa.Integer(), nullable=False),
        sa.Column("new_project_admins", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_held_changes_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_changes")),
    )
    with op.batch_alter_table("held_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_changes_org_id"), ["org_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("held_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_changes_org_id"))

    op.drop_table("held_changes")
