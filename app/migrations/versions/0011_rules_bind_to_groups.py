"""mapping rules bind to groups

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00.000000

A displayName or externalId rule records the group it matches (its id, and its externalId when
the IdP sent one), so a rename in the IdP no longer unbinds it. The column has no foreign key:
a deleted group leaves its rules bound to the deleted id (they grant nothing until rebound).
Existing rules are bound to the group they match today.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

rules = sa.table(
    "mapping_rules",
    sa.column("org_id", sa.Uuid()),
    sa.column("match", sa.String()),
    sa.column("group_key", sa.String()),
    sa.column("bound_group_id", sa.Uuid()),
    sa.column("bound_external_id", sa.String()),
)
groups = sa.table(
    "groups",
    sa.column("id", sa.Uuid()),
    sa.column("org_id", sa.Uuid()),
    sa.column("display_name_key", sa.String()),
    sa.column("external_id", sa.String()),
    sa.column("created_at", sa.DateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("mapping_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bound_group_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("bound_external_id", sa.String(length=256), nullable=True))
        batch_op.create_index(
            "ix_mapping_rules_org_id_bound_group_id", ["org_id", "bound_group_id"], unique=False
        )
    # Bind each rule to the group it matches now (the oldest, should an externalId be shared).
    matching = (
        sa.select(groups.c.id)
        .where(
            groups.c.org_id == rules.c.org_id,
            sa.or_(
                sa.and_(
                    rules.c.match == "displayName",
                    groups.c.display_name_key == rules.c.group_key,
                ),
                sa.and_(rules.c.match == "externalId", groups.c.external_id == rules.c.group_key),
            ),
        )
        .order_by(groups.c.created_at, groups.c.id)
        .limit(1)
        .scalar_subquery()
    )
    op.execute(rules.update().where(rules.c.match != "id").values(bound_group_id=matching))
    external = (
        sa.select(groups.c.external_id)
        .where(groups.c.id == rules.c.bound_group_id)
        .scalar_subquery()
    )
    op.execute(
        rules.update().where(rules.c.bound_group_id.is_not(None)).values(bound_external_id=external)
    )


def downgrade() -> None:
    with op.batch_alter_table("mapping_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_mapping_rules_org_id_bound_group_id")
        batch_op.drop_column("bound_external_id")
        batch_op.drop_column("bound_group_id")
