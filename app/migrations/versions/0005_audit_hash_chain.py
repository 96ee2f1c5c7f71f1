"""audit hash chain

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:03:51.507799
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The audit trail is append-only. The one UPDATE allowed seals a row written in the same
# transaction (hash still NULL) by filling in seq, prev_hash and hash, nothing else.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
    END IF;
    IF OLD.hash IS NOT NULL THEN
        RAISE EXCEPTION 'audit_events is append-only: UPDATE of a sealed event refused';
    END IF;
    IF (NEW.id, NEW.org_id, NEW.chain, NEW.at, NEW.actor_type, NEW.actor, NEW.action,
        NEW.target_type, NEW.target_id, NEW.before::text, NEW.after::text, NEW.request_id,
        NEW.source_ip, NEW.user_agent)
       IS DISTINCT FROM
       (OLD.id, OLD.org_id, OLD.chain, OLD.at, OLD.actor_type, OLD.actor, OLD.action,
        OLD.target_type, OLD.target_id, OLD.before::text, OLD.after::text, OLD.request_id,
        OLD.source_ip, OLD.user_agent) THEN
        RAISE EXCEPTION 'audit_events is append-only: only sealing may update an event';
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:

    op.create_table(
        "audit_heads",
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_heads")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain", sa.String(length=40), nullable=False, server_default="global")
        )
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_audit_events_chain_seq", ["chain", "seq"], unique=True)
        batch_op.create_index(
            "ix_audit_events_org_id_action", ["org_id", "action", "at"], unique=False
        )
    # Events written before the chain existed join their organization's chain; the next
    # commit on that chain seals them.
    op.execute(
        "UPDATE audit_events SET chain = CAST(org_id AS VARCHAR(40)) WHERE org_id IS NOT NULL"
        if op.get_bind().dialect.name == "postgresql"
        else "UPDATE audit_events SET chain = "
        "lower(substr(hex(org_id), 1, 8) || '-' || substr(hex(org_id), 9, 4) || '-' || "
        "substr(hex(org_id), 13, 4) || '-' || substr(hex(org_id), 17, 4) || '-' || "
        "substr(hex(org_id), 21)) WHERE org_id IS NOT NULL"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_id_action")
        batch_op.drop_index("ix_audit_events_chain_seq")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
        batch_op.drop_column("chain")

    op.drop_table("audit_heads")
