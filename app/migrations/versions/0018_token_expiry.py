"""bearer tokens may expire

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 19:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no default: instant on PostgreSQL however many tokens there are, and the
    # old version (which never reads it) keeps serving while this runs (expand first).
    op.add_column("scim_tokens", sa.Column("expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("scim_tokens", "expires_at")
