"""directory, licensing and audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 07:48:30.422097
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_audit_events_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_org_id_at", ["org_id", "at", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_events_org_id_target", ["org_id", "target_type", "target_id"], unique=False
        )

    op.create_table(
        "custom_roles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_custom_roles_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_roles")),
        sa.UniqueConstraint("org_id", "key", name=op.f("uq_custom_roles_org_id")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("display_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("extensions", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_groups_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("org_id", "display_name_key", name=op.f("uq_groups_org_id")),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_groups_org_id_created_at", ["org_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_groups_org_id_external_id", ["org_id", "external_id"], unique=False
        )

    op.create_table(
        "mapping_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("match", sa.String(length=16), nullable=False),
        sa.Column("group_value", sa.String(length=256), nullable=False),
        sa.Column("group_key", sa.String(length=256), nullable=False),
        sa.Column("role_key", sa.String(length=80), nullable=False),
        sa.Column("project_key", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_mapping_rules_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mapping_rules")),
    )
    with op.batch_alter_table("mapping_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mapping_rules_org_id"), ["org_id"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_projects_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("org_id", "key", name=op.f("uq_projects_org_id")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=False),
        sa.Column("user_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("deprovisioned_at", UTCDateTime(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("display_name_key", sa.String(length=256), nullable=True),
        sa.Column("given_name", sa.String(length=256), nullable=True),
        sa.Column("family_name", sa.String(length=256), nullable=True),
        sa.Column("middle_name", sa.String(length=256), nullable=True),
        sa.Column("formatted_name", sa.String(length=512), nullable=True),
        sa.Column("honorific_prefix", sa.String(length=64), nullable=True),
        sa.Column("honorific_suffix", sa.String(length=64), nullable=True),
        sa.Column("nick_name", sa.String(length=256), nullable=True),
        sa.Column("profile_url", sa.String(length=1024), nullable=True),
        sa.Column("title", sa.String(length=256), nullable=True),
        sa.Column("user_type", sa.String(length=64), nullable=True),
        sa.Column("preferred_language", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=64), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("primary_email", sa.String(length=320), nullable=True),
        sa.Column("employee_number", sa.String(length=128), nullable=True),
        sa.Column("cost_center", sa.String(length=128), nullable=True),
        sa.Column("organization_name", sa.String(length=256), nullable=True),
        sa.Column("division", sa.String(length=256), nullable=True),
        sa.Column("department", sa.String(length=256), nullable=True),
        sa.Column("manager_id", sa.String(length=256), nullable=True),
        sa.Column("multi_values", sa.JSON(), nullable=False),
        sa.Column("extensions", sa.JSON(), nullable=False),
        sa.Column("seat", sa.String(length=8), nullable=False),
        sa.Column("pending_since", UTCDateTime(), nullable=True),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_users_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("org_id", "user_name_key", name=op.f("uq_users_org_id")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_users_org_id_created_at", ["org_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_users_org_id_display_name_key", ["org_id", "display_name_key"], unique=False
        )
        batch_op.create_index(
            "ix_users_org_id_external_id", ["org_id", "external_id"], unique=False
        )
        batch_op.create_index(
            "ix_users_org_id_pending_since", ["org_id", "pending_since"], unique=False
        )
        batch_op.create_index("ix_users_org_id_seat", ["org_id", "seat"], unique=False)

    op.create_table(
        "memberships",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_memberships_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_memberships_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_memberships")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index("ix_memberships_user_id", ["user_id", "group_id"], unique=False)

    op.create_table(
        "role_assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_key", sa.String(length=64), nullable=False),
        sa.Column("role_key", sa.String(length=80), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_role_assignments_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_role_assignments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignments")),
        sa.UniqueConstraint("user_id", "project_key", name=op.f("uq_role_assignments_user_id")),
    )
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_role_assignments_org_id_role_key", ["org_id", "role_key"], unique=False
        )

    op.create_table(
        "seat_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("from_seat", sa.String(length=8), nullable=False),
        sa.Column("to_seat", sa.String(length=8), nullable=False),
        sa.Column("is_pending", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("cause", sa.String(length=256), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_seat_events_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_seat_events_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_events")),
    )
    with op.batch_alter_table("seat_events", schema=None) as batch_op:
        batch_op.create_index("ix_seat_events_org_id_at", ["org_id", "at"], unique=False)
        batch_op.create_index("ix_seat_events_user_id", ["user_id", "at"], unique=False)

    op.create_table(
        "user_values",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("attribute", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=True),
        sa.Column("value_key", sa.String(length=1024), nullable=True),
        sa.Column("display", sa.String(length=256), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_user_values_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_values_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_values")),
    )
    with op.batch_alter_table("user_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_user_values_lookup", ["org_id", "attribute", "value_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_user_values_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_role_key", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("paid_seat_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("guard_max_new_paid_seats", sa.Integer(), nullable=False, server_default="50")
        )
        batch_op.add_column(
            sa.Column("guard_max_new_paid_share", sa.Double(), nullable=False, server_default="0.2")
        )
        batch_op.add_column(
            sa.Column(
                "guard_max_new_project_admins", sa.Integer(), nullable=False, server_default="10"
            )
        )


def downgrade() -> None:

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("guard_max_new_project_admins")
        batch_op.drop_column("guard_max_new_paid_share")
        batch_op.drop_column("guard_max_new_paid_seats")
        batch_op.drop_column("paid_seat_count")
        batch_op.drop_column("default_role_key")

    with op.batch_alter_table("user_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_values_user_id"))
        batch_op.drop_index("ix_user_values_lookup")

    op.drop_table("user_values")
    with op.batch_alter_table("seat_events", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_events_user_id")
        batch_op.drop_index("ix_seat_events_org_id_at")

    op.drop_table("seat_events")
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_role_assignments_org_id_role_key")

    op.drop_table("role_assignments")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_memberships_user_id")

    op.drop_table("memberships")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_org_id_seat")
        batch_op.drop_index("ix_users_org_id_pending_since")
        batch_op.drop_index("ix_users_org_id_external_id")
        batch_op.drop_index("ix_users_org_id_display_name_key")
        batch_op.drop_index("ix_users_org_id_created_at")

    op.drop_table("users")
    op.drop_table("projects")
    with op.batch_alter_table("mapping_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mapping_rules_org_id"))

    op.drop_table("mapping_rules")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("ix_groups_org_id_external_id")
        batch_op.drop_index("ix_groups_org_id_created_at")

    op.drop_table("groups")
    op.drop_table("custom_roles")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_id_target")
        batch_op.drop_index("ix_audit_events_org_id_at")

    op.drop_table("audit_events")
