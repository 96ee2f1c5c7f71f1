"""`blue-provisioning import`: users from a CSV file (docs/import.md). `import users` checks
every row, then imports them in batches in this process, with a progress bar on a terminal;
`--dry-run` prints the check and writes nothing. Exits 1 when any row failed (the others are
imported): a script notices, and the failures are printed with their line numbers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import click
from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from app import imports, organizations
from app.cli.common import (
    cli_actor,
    command_unit,
    echo_json,
    json_option,
    org_option,
    org_reader,
    reported_refusals,
)
from app.models import ImportJob, ImportStatus

# Failed rows printed after a run; the rest are in `import show --result`.
SHOWN_FAILURES = 100


@click.group("import")
def import_cli() -> None:
    """Import users from a CSV file."""


@import_cli.command("users")
@org_option()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row, print the preview, write nothing.")
@json_option()
def import_users(slug: str, file: Path, dry_run: bool, as_json: bool) -> None:
    """Create or update the users of FILE (email or userName, givenName, familyName, groups,
    projectRoles); an identical row changes nothing."""
    if dry_run:
        with _rolled_back() as session, file.open(encoding="utf-8-sig", newline="") as stream:
            org = organizations.get_organization(session, slug)
            job = imports.create_job(session, org.id, cli_actor(), file.name, stream)
            _report(session, job, as_json, preview=True)
        return
    with command_unit() as session, file.open(encoding="utf-8-sig", newline="") as stream:
        org = organizations.get_organization(session, slug)
        job = imports.create_job(session, org.id, cli_actor(), file.name, stream)
        imports.start_job(session, org.id, job.id)
        job_id = job.id
    _run(slug, job_id, as_json)


@import_cli.command("run")
@org_option()
@click.argument("job_id")
@json_option()
def run_job(slug: str, job_id: str, as_json: bool) -> None:
    """Run (or resume) an import job: a previewed one is started, a failed or interrupted
    one goes on from the first row not yet done."""
    with command_unit() as session:
        org = organizations.get_organization(session, slug)
        job = imports.get_job(session, org.id, job_id)
        if job.status in (ImportStatus.PREVIEWED, ImportStatus.FAILED):
            imports.start_job(session, org.id, job.id)
        found = job.id
    _run(slug, found, as_json)


@import_cli.command("show")
@org_option()
@click.argument("job_id")
@click.option("--result", is_flag=True, help="Print every row's outcome as CSV.")
@json_option()
def show_job(slug: str, job_id: str, result: bool, as_json: bool) -> None:
    """An import job's status and counts (and failed rows), or its result as CSV."""
    with org_reader(slug) as (session, org):
        job = imports.get_job(session, org.id, job_id)
        if result:
            for text in imports.result_lines(session, job):
                click.echo(text, nl=False)
            return
        _report(session, job, as_json, preview=job.status == ImportStatus.PREVIEWED, exit=False)


def _run(slug: str, job_id: UUID, as_json: bool) -> None:
    """Run the job here, with a progress bar when standard output is a terminal."""
    with reported_refusals():
        if sys.stdout.isatty() and not as_json:
            job = _run_with_bar(job_id)
        else:
            job = imports.run_import(job_id)
    with org_reader(slug) as (session, org):
        _report(session, imports.get_job(session, org.id, job.id), as_json, preview=False)


def _run_with_bar(job_id: UUID) -> ImportJob:
    with _reading() as session:
        total = session.get_one(ImportJob, job_id).total
    shown = 0
    with click.progressbar(length=total, label="importing", show_pos=True) as bar:

        def progress(job: ImportJob) -> None:
            nonlocal shown
            bar.update(job.processed - shown)
            shown = job.processed

        return imports.run_import(job_id, progress)


def _report(
    session: Session, job: ImportJob, as_json: bool, preview: bool, exit: bool = True
) -> None:
    """Print the job's counts and failed rows; exit 1 when a row failed."""
    failures = imports.failed_rows(session, job.org_id, job.id, SHOWN_FAILURES)
    if as_json:
        echo_json(
            {
                "id": str(job.id),
                "file": job.file_name,
                "status": job.status,
                "ignored_columns": job.ignored_columns,
                "existing": job.existing,
                "error": job.error,
                **job.counts(),
                "failures": [{"line": r.line, "reason": r.reason} for r in failures],
            }
        )
    else:
        _print_summary(job, preview, len(failures))
        for row in failures:
            click.echo(f"line {row.line}: {row.reason}")
        if job.failed > len(failures):
            click.echo(f"… and {job.failed - len(failures)} more: import show --result")
    if exit and (job.failed or job.status == ImportStatus.FAILED):
        sys.exit(1)


def _print_summary(job: ImportJob, preview: bool, shown: int) -> None:
    if preview:
        click.echo(f"preview of {job.file_name} (nothing written): {job.total} rows")
        valid = job.total - job.failed
        click.echo(
            f"valid {valid} ({valid - job.existing} new, {job.existing} existing users), "
            f"failed {job.failed}"
        )
    else:
        click.echo(f"import {job.id} ({job.file_name}): {job.status}")
        counts = job.counts()
        click.echo(
            f"rows {counts['total']}: created {counts['created']}, updated {counts['updated']}, "
            f"unchanged {counts['unchanged']}, failed {counts['failed']}"
        )
    if job.ignored_columns:
        click.echo(f"columns ignored: {', '.join(job.ignored_columns)}")
    if job.error:
        click.echo(f"stopped: {job.error} (resume with: import run {job.id})")


@contextmanager
def _rolled_back() -> Iterator[Session]:
    """A transaction that is always rolled back: the dry run writes nothing."""
    sessions: sessionmaker[Session] = current_app.extensions["sessions"]
    with reported_refusals(), sessions() as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def _reading() -> Iterator[Session]:
    sessions: sessionmaker[Session] = current_app.extensions["sessions"]
    with sessions() as session:
        yield session
