"""Running import jobs: a batch of rows per transaction through the provisioning service,
the job's counts updated with each batch, so a job shows its progress, and one that stopped
(a crash, a failed batch) resumes where it was: rows already done are not done again.

`run_import` runs a job to its end in this process (the CLI, tests); `work_once` is a
worker's share: one step of the oldest waiting job, claimed with FOR UPDATE SKIP LOCKED on
PostgreSQL so that several `blue-provisioning worker` processes share the jobs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import Actor
from app.db import utcnow
from app.errors import InvalidChangeError, NotFoundError
from app.imports.statistics import refresh_statistics
from app.models import ImportJob, ImportRow, ImportStatus, RowOutcome
from app.provisioning import ProvisioningService
from app.provisioning.imports import ImportResult, UserImport

log = logging.getLogger(__name__)
# Rows per transaction: large enough that the per-batch work (locks, the seat counter, the
# audit chain head) is shared by many users, small enough that a batch commits in well
# under a second and the progress moves.
BATCH_SIZE = 500
WAITING = (ImportStatus.QUEUED, ImportStatus.RUNNING)
Progress = Callable[[ImportJob], None]


def job_actor(job: ImportJob) -> Actor:
    """Who started the job: the actor of every change it makes."""
    return Actor(kind=job.actor_kind, label=job.actor_label)


def step(session: Session, job: ImportJob, batch_size: int | None = None) -> bool:
    """One step of a started job in the caller's transaction: first its role groups, then a
    batch of rows, until none is left. False once the job is done."""
    service = ProvisioningService(session, job.org_id, job_actor(job))
    if job.status == ImportStatus.QUEUED:
        service.prepare_role_groups([(p, r) for p, r in job.role_pairs])
        job.status = ImportStatus.RUNNING
        job.started_at = job.started_at or utcnow()
        return True
    rows = list(
        session.scalars(
            select(ImportRow)
            .where(
                ImportRow.job_id == job.id,
                ImportRow.line > job.done_through_line,
                ImportRow.outcome == RowOutcome.PENDING,
            )
            .order_by(ImportRow.line)
            .limit(batch_size or BATCH_SIZE)
        )
    )
    if not rows:
        job.status = ImportStatus.DONE
        job.finished_at = utcnow()
        return False
    refresh_statistics(session)
    _run_batch(session, service, job, rows)
    job.done_through_line = rows[-1].line
    return True


def _run_batch(
    session: Session, service: ProvisioningService, job: ImportJob, rows: Sequence[ImportRow]
) -> None:
    """Import a batch of rows, checked again against the directory as it is now (a project
    may have gone since the preview), and record each row's outcome and the job's counts."""
    projects = service.project_keys()
    results: dict[int, ImportResult] = {}
    specs: list[UserImport] = []
    lines: list[int] = []
    for row in rows:
        values = row.values
        pairs, problem = service.check_project_roles(
            [(p, r) for p, r in values["project_roles"]], projects
        )
        if problem is not None:
            results[row.line] = ImportResult(RowOutcome.FAILED, problem)
            continue
        lines.append(row.line)
        specs.append(
            UserImport(
                user_name=values["user_name"],
                email=values.get("email"),
                given_name=values.get("given_name"),
                family_name=values.get("family_name"),
                groups=tuple(values.get("groups", ())),
                project_roles=tuple(pairs),
            )
        )
    results.update(zip(lines, service.import_users(specs), strict=True))
    _record_outcomes(session, job.id, results)
    for result in results.values():
        counter = result.outcome.value
        setattr(job, counter, getattr(job, counter) + 1)
    job.processed += len(results)


def _record_outcomes(session: Session, job_id: UUID, results: dict[int, ImportResult]) -> None:
    """Write each row's outcome: one UPDATE per outcome for the rows without a reason (all
    but the failed), one per failed row."""
    plain: dict[str, list[int]] = defaultdict(list)
    reasoned: list[dict[str, Any]] = []
    for line, result in results.items():
        if result.reason is None:
            plain[result.outcome.value].append(line)
        else:
            reasoned.append(
                {
                    "job_id": job_id,
                    "line": line,
                    "outcome": result.outcome.value,
                    "reason": result.reason,
                }
            )
    for outcome, lines in plain.items():
        session.execute(
            update(ImportRow)
            .where(ImportRow.job_id == job_id, ImportRow.line.in_(lines))
            .values(outcome=outcome, reason=None)
            .execution_options(synchronize_session=False)
        )
    if reasoned:
        session.execute(update(ImportRow).execution_options(synchronize_session=False), reasoned)


def run_import(
    job_id: UUID,
    progress: Progress | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> ImportJob:
    """Run a started (or failed, or interrupted) job to its end, a transaction per step;
    `progress` sees the job after each. A step that fails marks the job failed (with the
    error) and ends the run: running it again resumes it."""
    sessions = sessions or current_app.extensions["sessions"]
    while True:
        try:
            with sessions.begin() as session:
                job = session.scalar(
                    select(ImportJob).where(ImportJob.id == job_id).with_for_update()
                )
                if job is None:
                    raise NotFoundError(f"import {job_id} not found")
                if job.status == ImportStatus.PREVIEWED:
                    raise InvalidChangeError(f"import {job_id} has not been started")
                if job.status == ImportStatus.DONE:
                    return job
                if job.status == ImportStatus.FAILED:
                    job.status, job.error = ImportStatus.QUEUED, None
                more = step(session, job)
        except (NotFoundError, InvalidChangeError):
            raise
        except Exception as error:
            return _failed(sessions, job_id, error)
        if progress is not None:
            progress(job)
        if not more:
            return job


def work_once(sessions: sessionmaker[Session]) -> bool:
    """A worker's share: one step of the oldest waiting job no other worker holds; False
    when there was none."""
    job_id: UUID | None = None
    try:
        with sessions.begin() as session:
            job = session.scalar(
                select(ImportJob)
                .where(ImportJob.status.in_([s.value for s in WAITING]))
                .order_by(ImportJob.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                return False
            job_id = job.id
            step(session, job)
    except Exception as error:
        if job_id is None:
            raise
        _failed(sessions, job_id, error)
    return True


def _failed(sessions: sessionmaker[Session], job_id: UUID, error: Exception) -> ImportJob:
    """Mark the job failed with the error, in a transaction of its own (the step's rolled
    back: its rows are still to do)."""
    log.exception("import step failed", extra={"import": str(job_id)})
    with sessions.begin() as session:
        job = session.get(ImportJob, job_id, with_for_update=True)
        assert job is not None
        job.status = ImportStatus.FAILED
        job.error = f"{type(error).__name__}: {error}"[:2000]
        job.finished_at = utcnow()
    return job
