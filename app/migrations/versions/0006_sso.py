"""sso connections, sessions and hand-off keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:06:10.008713
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), nullable=False, server_default="scim")
        )

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=8), nullable=False),
        sa.Column("encrypted_private_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "idp_connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("protocol", sa.String(length=4), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("is_jit_enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("encrypted_secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_idp_connections_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idp_connections")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_idp_connections_org_id")),
    )
    with op.batch_alter_table("idp_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idp_connections_org_id"), ["org_id"], unique=False)

    op.create_table(
        "org_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_org_domains_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_org_domains")),
    )
    with op.batch_alter_table("org_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_domains_org_id"), ["org_id"], unique=False)

    op.create_table(
        "login_identities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["idp_connections.id"],
            name=op.f("fk_login_identities_connection_id_idp_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_login_identities_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_identities")),
        sa.UniqueConstraint(
            "connection_id", "subject", name=op.f("uq_login_identities_connection_id")
        ),
    )
    with op.batch_alter_table("login_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_identities_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sso_replays",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("assertion_id", sa.String(length=256), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["idp_connections.id"],
            name=op.f("fk_sso_replays_connection_id_idp_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "assertion_id", name=op.f("pk_sso_replays")),
    )
    with op.batch_alter_table("sso_replays", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_replays_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "sso_requests",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=True),
        sa.Column("code_verifier", sa.String(length=128), nullable=True),
        sa.Column("return_to", sa.String(length=2048), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["idp_connections.id"],
            name=op.f("fk_sso_requests_connection_id_idp_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_requests")),
    )
    op.create_table(
        "sso_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["idp_connections.id"],
            name=op.f("fk_sso_sessions_connection_id_idp_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_sso_sessions_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sso_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_sso_sessions")),
    )
    with op.batch_alter_table("sso_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_sessions_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blue_url", sa.String(length=1024), nullable=True))
        batch_op.add_column(
            sa.Column("sso_manages_groups", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column(
                "sso_no_role_policy", sa.String(length=10), nullable=False, server_default="refuse"
            )
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("groups_overage_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.drop_column("scope")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("groups_overage_at")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("sso_no_role_policy")
        batch_op.drop_column("sso_manages_groups")
        batch_op.drop_column("blue_url")

    with op.batch_alter_table("sso_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_sessions_user_id"))

    op.drop_table("sso_sessions")
    op.drop_table("sso_requests")
    with op.batch_alter_table("sso_replays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_replays_expires_at"))

    op.drop_table("sso_replays")
    with op.batch_alter_table("login_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_identities_user_id"))

    op.drop_table("login_identities")
    with op.batch_alter_table("org_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_domains_org_id"))

    op.drop_table("org_domains")
    with op.batch_alter_table("idp_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idp_connections_org_id"))

    op.drop_table("idp_connections")
    op.drop_table("signing_keys")
