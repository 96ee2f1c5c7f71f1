"""index expiring sso requests

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 08:50:12.922682
"""

from __future__ import annotations

from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("sso_requests", schema=None) as batch_op:
        batch_op.create_index("ix_sso_requests_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("sso_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_sso_requests_expires_at")
