"""CSV imports of users: the job (who started it, its status and counts) and one row per line
of the file, parsed once at upload, so a job streams, resumes where it stopped and its result
is read back from the table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ImportStatus(StrEnum):
    PREVIEWED = "previewed"  # parsed and checked; nothing written to the directory yet
    QUEUED = "queued"  # started: a worker (or run_import) will take it
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # a batch failed for a reason no row explains; run_import resumes it


class RowOutcome(StrEnum):
    PENDING = "pending"
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class ImportJob(Base):
    """One uploaded file: parsed rows wait in `import_rows` until the job runs."""

    __tablename__ = "import_jobs"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    file_name: Mapped[str] = mapped_column(String(256))
    # Who started it, as the audit trail names the actor of every change it makes.
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_label: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(10), default=ImportStatus.PREVIEWED)
    # Columns the file had that the import does not read (shown in the preview).
    ignored_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The (project, role key) pairs the rows name: their role groups are made before the rows.
    role_pairs: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    total: Mapped[int] = mapped_column(default=0)
    # Valid rows that named an existing user when the file was previewed (the rest are new).
    existing: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Rows with an outcome: a row refused by the preview counts from the start.
    processed: Mapped[int] = mapped_column(default=0)
    # Every row up to this line has its outcome: the next batch starts after it.
    done_through_line: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_import_jobs_org_id_created_at", "org_id", "created_at"),
        # What a worker claims: the started jobs, oldest first.
        Index(
            "ix_import_jobs_waiting",
            "created_at",
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
    )

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    def counts(self) -> dict[str, Any]:
        """The job's counts, as the CLI, the console and the tests read them."""
        return {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "processed": self.processed,
        }


class ImportRow(Base):
    """One line of an import's file: its parsed values, and what became of it."""

    __tablename__ = "import_rows"

    job_id: Mapped[UUID] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(primary_key=True)
    # lower(userName) and lower(email): a later line naming the same user is a duplicate.
    user_key: Mapped[str | None] = mapped_column(String(256))
    email_key: Mapped[str | None] = mapped_column(String(320))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(10), default=RowOutcome.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_import_rows_user_key", "job_id", "user_key"),
        Index("ix_import_rows_email_key", "job_id", "email_key"),
        # The rows a run still has to do, in line order.
        Index(
            "ix_import_rows_pending",
            "job_id",
            "line",
            postgresql_where=text("outcome = 'pending'"),
            sqlite_where=text("outcome = 'pending'"),
        ),
    )
