"""contract versions

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=False),
        sa.Column("paid_seat_tier", sa.Integer(), nullable=False),
        sa.Column("overage_policy", sa.String(length=10), nullable=False),
        sa.Column("billing_terms", sa.String(length=20), nullable=False),
        sa.Column("contract_starts_on", sa.Date(), nullable=True),
        sa.Column("contract_ends_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_contract_versions_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_versions")),
    )
    with op.batch_alter_table("contract_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contract_versions_org_id_effective_at",
            ["org_id", "effective_at", "id"],
            unique=False,
        )
    # What each organization's contract is now, in force since the organization was created:
    # the trail before this revision kept no versions to tell an earlier one.
    op.execute(
        "INSERT INTO contract_versions (org_id, effective_at, paid_seat_tier, overage_policy,"
        " billing_terms, contract_starts_on, contract_ends_on)"
        " SELECT id, created_at, paid_seat_tier, overage_policy, billing_terms,"
        " contract_starts_on, contract_ends_on FROM organizations"
    )
    with op.batch_alter_table("seat_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seat_events_org_id_pending",
            ["org_id", "at"],
            unique=False,
            postgresql_where=sa.text("is_pending"),
            sqlite_where=sa.text("is_pending = 1"),
        )


def downgrade() -> None:
    with op.batch_alter_table("seat_events", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_events_org_id_pending")
    with op.batch_alter_table("contract_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_contract_versions_org_id_effective_at")
    op.drop_table("contract_versions")
