"""organizations and scim tokens

Revision ID: 0001
Revises:
Create Date: 2026-11-27 07:45:17.729743
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("paid_seat_tier", sa.Integer(), nullable=False),
        sa.Column("contract_starts_on", sa.Date(), nullable=True),
        sa.Column("contract_ends_on", sa.Date(), nullable=True),
        sa.Column("billing_terms", sa.String(length=20), nullable=False),
        sa.Column("overage_policy", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_scim_tokens_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("org_id", "label", name=op.f("uq_scim_tokens_org_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scim_tokens_token_hash")),
    )
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scim_tokens_org_id"), ["org_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_tokens_org_id"))

    op.drop_table("scim_tokens")
    op.drop_table("organizations")
