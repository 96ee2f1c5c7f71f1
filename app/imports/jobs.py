"""Import jobs: an uploaded file parsed once into rows, each checked (the preview) before
anything is written to the directory; started; read back, and its result streamed as CSV.
Running a job is `app.imports.runner`'s."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any, TextIO
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import Actor
from app.db import bulk_insert
from app.errors import InvalidChangeError, NotFoundError
from app.imports.csvfile import CsvFileError, ParsedRow, open_csv
from app.imports.statistics import analyze
from app.models import ImportJob, ImportRow, ImportStatus, RowOutcome
from app.provisioning import ProvisioningService
from app.provisioning.imports import UserImport
from app.provisioning.scope import parse_uuid

# Rows parsed, checked and stored per round trip.
PREVIEW_CHUNK = 1_000
RESULT_COLUMNS = ("line", "userName", "email", "outcome", "reason")


def create_job(
    session: Session, org_id: UUID, actor: Actor, file_name: str, stream: TextIO
) -> ImportJob:
    """Parse the file and check every row, storing each with its problem, if any: a job
    `previewed`, nothing written to the directory. InvalidChangeError for a file that
    cannot be imported at all."""
    job = ImportJob(
        org_id=org_id,
        file_name=file_name[:256] or "import.csv",
        actor_kind=actor.kind,
        actor_label=actor.label[:256],
        status=ImportStatus.PREVIEWED,
        ignored_columns=[],
        role_pairs=[],
    )
    session.add(job)
    session.flush()
    try:
        parsed = open_csv(stream)
        job.ignored_columns = list(parsed.ignored_columns)
        service = ProvisioningService(session, org_id, actor)
        projects = service.project_keys()
        pairs: set[tuple[str, str]] = set()
        analyze_at = 2 * PREVIEW_CHUNK
        while chunk := list(islice(parsed.rows, PREVIEW_CHUNK)):
            rows = _checked(session, service, job, chunk, projects)
            job.existing += _match_existing(service, rows)
            for row in rows:
                if row["outcome"] == RowOutcome.PENDING:
                    pairs.update((p, r) for p, r in row["values"]["project_roles"])
            bulk_insert(session, ImportRow, rows)
            if job.total >= analyze_at:
                # The duplicate check looks earlier lines up by key: with no statistics the
                # planner may walk the job's rows by line instead, once per chunk.
                analyze(session, ["import_rows"])
                analyze_at *= 4
            failed = sum(1 for r in rows if r["outcome"] == RowOutcome.FAILED)
            job.total += len(rows)
            job.failed += failed
            job.processed += failed
    except (CsvFileError, UnicodeDecodeError) as error:
        raise InvalidChangeError(f"{job.file_name}: {_file_problem(error)}") from None
    if job.total == 0:
        raise InvalidChangeError(f"{job.file_name}: the file has no rows")
    job.role_pairs = sorted([list(p) for p in pairs])
    return job


def _file_problem(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "the file is not UTF-8 text"
    return str(error)


def _checked(
    session: Session,
    service: ProvisioningService,
    job: ImportJob,
    chunk: Sequence[ParsedRow],
    projects: set[str],
) -> list[dict[str, Any]]:
    """The chunk's rows as stored: each with its problem (invalid, unknown project or role,
    a duplicate of an earlier line), roles given by name stored by key."""
    earlier = _earlier_lines(session, job.id, chunk)
    rows: list[dict[str, Any]] = []
    for parsed in chunk:
        values, problem = parsed.values, parsed.problem
        user_key = values["user_name"].lower() if values.get("user_name") else None
        email_key = values["email"].lower() if values.get("email") else None
        if problem is None:
            pairs, problem = service.check_project_roles(
                [(p, r) for p, r in values["project_roles"]], projects
            )
            values = {**values, "project_roles": [list(p) for p in pairs]}
        if problem is None:
            problem = _duplicate(earlier, user_key, email_key)
        if problem is None:
            for key in (user_key, email_key):
                if key is not None:
                    earlier.setdefault(key, parsed.line)
        rows.append(
            {
                "job_id": job.id,
                "line": parsed.line,
                "user_key": user_key,
                "email_key": email_key,
                "values": values,
                "outcome": RowOutcome.PENDING if problem is None else RowOutcome.FAILED,
                "reason": problem,
            }
        )
    return rows


def _match_existing(service: ProvisioningService, rows: Sequence[dict[str, Any]]) -> int:
    """Fail the valid rows that name a user the import cannot update (a deleted one, two
    users); the number of valid rows naming an existing user."""
    pending = [r for r in rows if r["outcome"] == RowOutcome.PENDING]
    specs = [UserImport(r["values"]["user_name"], r["values"].get("email")) for r in pending]
    existing = 0
    for row, (found, problem) in zip(pending, service.match_users(specs), strict=True):
        if problem is not None:
            row["outcome"], row["reason"] = RowOutcome.FAILED, problem
        elif found:
            existing += 1
    return existing


def _earlier_lines(session: Session, job_id: UUID, chunk: Sequence[ParsedRow]) -> dict[str, int]:
    """The first earlier valid line of the job naming each userName or email of the chunk."""
    named = (p.values.get(field) for p in chunk for field in ("user_name", "email"))
    keys = sorted({str(v).lower() for v in named if v})
    earlier: dict[str, int] = {}
    if not keys:
        return earlier
    valid = ImportRow.outcome != RowOutcome.FAILED
    for column in (ImportRow.user_key, ImportRow.email_key):
        for key, line in session.execute(
            select(column, func.min(ImportRow.line))
            .where(ImportRow.job_id == job_id, column.in_(keys), valid)
            .group_by(column)
        ):
            earlier[str(key)] = min(line, earlier.get(str(key), line))
    return earlier


def _duplicate(earlier: dict[str, int], user_key: str | None, email_key: str | None) -> str | None:
    """Why a row names a user an earlier line already names, or None."""
    for key in (user_key, email_key):
        if key is not None and key in earlier:
            return f"duplicate: line {earlier[key]} names the same user ({key})"
    return None


def get_job(session: Session, org_id: UUID, job_id: UUID | str) -> ImportJob:
    """An import job of this organization, or NotFoundError (another organization's too)."""
    parsed = job_id if isinstance(job_id, UUID) else parse_uuid(job_id)
    job = session.get(ImportJob, parsed) if parsed is not None else None
    if job is None or job.org_id != org_id:
        raise NotFoundError(f"import {job_id} not found")
    return job


def start_job(session: Session, org_id: UUID, job_id: UUID | str) -> ImportJob:
    """Queue a previewed job (or a failed one, to resume it) for a worker to run."""
    job = get_job(session, org_id, job_id)
    if job.status not in (ImportStatus.PREVIEWED, ImportStatus.FAILED):
        raise InvalidChangeError(f"import {job.id} is {job.status}; it cannot be started")
    job.status = ImportStatus.QUEUED
    job.error = None
    return job


def list_jobs(session: Session, org_id: UUID, limit: int = 20) -> list[ImportJob]:
    """The organization's latest import jobs, newest first."""
    return list(
        session.scalars(
            select(ImportJob)
            .where(ImportJob.org_id == org_id)
            .order_by(ImportJob.created_at.desc(), ImportJob.id)
            .limit(limit)
        )
    )


def failed_rows(
    session: Session, org_id: UUID, job_id: UUID | str, limit: int = 100
) -> list[ImportRow]:
    """The job's first failed rows, in line order."""
    job = get_job(session, org_id, job_id)
    return list(
        session.scalars(
            select(ImportRow)
            .where(ImportRow.job_id == job.id, ImportRow.outcome == RowOutcome.FAILED)
            .order_by(ImportRow.line)
            .limit(limit)
        )
    )


def result_lines(session: Session, job: ImportJob, chunk: int = 1_000) -> Iterator[str]:
    """The job's result as CSV text (line, userName, email, outcome, reason), read from its
    rows a chunk at a time in line order: constant memory whatever the file's size."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESULT_COLUMNS)
    after = 0
    while True:
        rows = session.execute(
            select(ImportRow.line, ImportRow.values, ImportRow.outcome, ImportRow.reason)
            .where(ImportRow.job_id == job.id, ImportRow.line > after)
            .order_by(ImportRow.line)
            .limit(chunk)
        ).all()
        for line, values, outcome, reason in rows:
            writer.writerow([line, values.get("user_name"), values.get("email"), outcome, reason])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < chunk:
            return
        after = rows[-1][0]
