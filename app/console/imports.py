"""The Import page (org admins): upload a CSV of users, see the preview with each bad row,
start the import, watch its progress (htmx polls a fragment), download the result as CSV.

The file is parsed once, at upload, into the job's rows (app.imports); the import itself runs
in the background, on the `blue-provisioning worker`, so a 50,000-row file never holds a
request open. The page can be left and revisited: the job lives in the database."""

from __future__ import annotations

import io
from collections.abc import Iterator
from http import HTTPStatus

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app import imports
from app.console import bp
from app.console.auth import admin, console_actor, console_user
from app.db import read_only_unit, unit_of_work
from app.errors import NotFoundError, ProvisioningError
from app.models import ImportJob

# Failed rows shown on the job's page; the result CSV has every row.
SHOWN_FAILURES = 100


@bp.get("/imports", endpoint="imports")
@admin
def imports_page() -> ResponseReturnValue:
    """The upload form and the organization's latest imports."""
    return _render_imports_page(HTTPStatus.OK)


def _render_imports_page(status: HTTPStatus) -> ResponseReturnValue:
    with read_only_unit() as session:
        jobs = imports.list_jobs(session, console_user().org_id)
        page = render_template("console/imports.html", jobs=jobs)
    return page, status


@bp.post("/imports")
@admin
def upload_import() -> ResponseReturnValue:
    """Parse and check the uploaded file: the preview, nothing written to the directory."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a CSV file to upload.", "error")
        return _render_imports_page(HTTPStatus.BAD_REQUEST)
    stream = io.TextIOWrapper(upload.stream, encoding="utf-8-sig", newline="")
    try:
        with unit_of_work() as session:
            job = imports.create_job(
                session, console_user().org_id, console_actor(), upload.filename, stream
            )
            job_id = job.id
    except ProvisioningError as error:
        flash(error.detail, "error")
        return _render_imports_page(HTTPStatus.BAD_REQUEST)
    return redirect(url_for("console.import_job", job_id=job_id))


@bp.get("/imports/<job_id>")
@admin
def import_job(job_id: str) -> ResponseReturnValue:
    """A job: its preview (counts, ignored columns, each failed row) and, once started, its
    progress and result."""
    with read_only_unit() as session:
        job = _job(session, job_id)
        failures = imports.failed_rows(session, job.org_id, job.id, SHOWN_FAILURES)
        return render_template("console/import_job.html", job=job, failures=failures)


@bp.post("/imports/<job_id>/start")
@admin
def start_import(job_id: str) -> ResponseReturnValue:
    """Start a previewed job (or resume a failed one): a worker runs it in the background."""
    try:
        with unit_of_work() as session:
            found = _job(session, job_id).id
            imports.start_job(session, console_user().org_id, found)
    except ProvisioningError as error:
        flash(error.detail, "error")
        return redirect(url_for("console.import_job", job_id=job_id))
    flash("Import started: it runs in the background; you can leave this page.", "info")
    return redirect(url_for("console.import_job", job_id=found))


@bp.get("/imports/<job_id>/progress")
@admin
def import_progress(job_id: str) -> ResponseReturnValue:
    """The progress fragment the job's page polls every second while the job runs."""
    with read_only_unit() as session:
        return render_template("console/import_progress.html", job=_job(session, job_id))


@bp.get("/imports/<job_id>/result.csv")
@admin
def import_result(job_id: str) -> ResponseReturnValue:
    """Every row's outcome as CSV, streamed from the job's rows in constant memory."""
    org_id = console_user().org_id
    with read_only_unit() as session:
        name = _result_name(_job(session, job_id))

    def lines() -> Iterator[str]:
        with read_only_unit() as session:
            found = imports.get_job(session, org_id, job_id)
            yield from imports.result_lines(session, found)

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _job(session: Session, job_id: str) -> ImportJob:
    """The signed-in organization's job, or 404 (another organization's too)."""
    try:
        return imports.get_job(session, console_user().org_id, job_id)
    except NotFoundError:
        abort(404)


def _result_name(job: ImportJob) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in job.file_name.rsplit(".", 1)[0])
    return f"{stem[:80] or 'import'}-result.csv"
