"""CSV imports of users: jobs and their rows

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

WAITING = sa.text("status IN ('queued', 'running')")
PENDING = sa.text("outcome = 'pending'")


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("file_name", sa.String(length=256), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_label", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("ignored_columns", sa.JSON(), nullable=False),
        sa.Column("role_pairs", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("existing", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("done_through_line", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_import_jobs_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index("ix_import_jobs_org_id_created_at", "import_jobs", ["org_id", "created_at"])
    op.create_index(
        "ix_import_jobs_waiting",
        "import_jobs",
        ["created_at"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    op.create_table(
        "import_rows",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("user_key", sa.String(length=256), nullable=True),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_jobs.id"],
            name=op.f("fk_import_rows_job_id_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "line", name=op.f("pk_import_rows")),
    )
    op.create_index("ix_import_rows_user_key", "import_rows", ["job_id", "user_key"])
    op.create_index("ix_import_rows_email_key", "import_rows", ["job_id", "email_key"])
    op.create_index(
        "ix_import_rows_pending",
        "import_rows",
        ["job_id", "line"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_table("import_rows")
    op.drop_table("import_jobs")
