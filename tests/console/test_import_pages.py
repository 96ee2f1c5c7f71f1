"""The Import page: upload → preview with each bad row → start → progress (polled) → result
CSV; org admins only, CSRF on every form, another organization's jobs answer 404."""

from __future__ import annotations

import io
import re
from uuid import UUID

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import imports
from app.audit import Actor
from app.models import AuditEvent, ImportJob, ImportStatus, Organization, User
from tests.console.support import csrf_token

FILE = (
    "Email;First name;Last name;Groups\n"
    "ada@acme.example;Ada;Lovelace;Engineering\n"
    "not-an-email;Bad;Row;\n"
    "grace@acme.example;Grace;Hopper;Engineering;\n"
)


def upload(client: FlaskClient, text: str, name: str = "people.csv") -> TestResponse:
    token = csrf_token(client, "/console/imports")
    data = {"file": (io.BytesIO(text.encode("utf-8")), name), "csrf_token": token}
    return client.post("/console/imports", data=data, content_type="multipart/form-data")


def job_of(location: str) -> UUID:
    found = re.search(r"/console/imports/([0-9a-f-]{36})$", location)
    assert found is not None, location
    return UUID(found.group(1))


def users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def test_upload_shows_the_preview_with_each_bad_row_and_writes_nothing(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    before = users(session)
    response = upload(admin, FILE)
    assert response.status_code == 302
    page = admin.get(response.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "3 rows checked" in text and "<strong>2</strong> can be imported" in text
    assert "2 new users, 0 existing users" in text
    assert "<td>3</td>" in text and "&#39;not-an-email&#39; is not an email address" in text
    assert "Import 2 rows" in text
    session.expire_all()
    assert users(session) == before
    assert session.get_one(ImportJob, job_of(response.headers["Location"])).status == "previewed"


def test_a_file_that_cannot_be_imported_is_refused_with_its_reason(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    response = upload(admin, "first name,last name\nAda,Lovelace\n")
    assert response.status_code == 400
    assert "needs an email or a userName column" in response.get_data(as_text=True)
    missing = admin.post(
        "/console/imports",
        data={"csrf_token": csrf_token(admin, "/console/imports")},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400
    assert session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_start_runs_in_the_background_with_a_polled_progress_bar_and_a_result_csv(
    app: Flask, admin: FlaskClient, session: Session, acme: Organization
) -> None:
    job_id = job_of(upload(admin, FILE).headers["Location"])
    token = csrf_token(admin, f"/console/imports/{job_id}")
    started = admin.post(f"/console/imports/{job_id}/start", data={"csrf_token": token})
    assert started.status_code == 302
    page = admin.get(f"/console/imports/{job_id}").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in page and "<progress" in page
    assert "Waiting for a worker" in page
    sessions = app.extensions["sessions"]
    while imports.work_once(sessions):  # the worker's share, as `blue-provisioning worker` runs
        pass
    fragment = admin.get(f"/console/imports/{job_id}/progress")
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert "hx-trigger" not in text  # done: the page stops polling
    assert '<progress id="import-bar" max="3" value="3">' in text
    assert "<dt>Created</dt><dd>2</dd>" in text and "<dt>Failed</dt><dd>1</dd>" in text
    result = admin.get(f"/console/imports/{job_id}/result.csv")
    assert result.status_code == 200 and result.mimetype == "text/csv"
    assert 'filename="people-result.csv"' in result.headers["Content-Disposition"]
    assert result.get_data(as_text=True).splitlines() == [
        "line,userName,email,outcome,reason",
        "2,ada@acme.example,ada@acme.example,created,",
        "3,,not-an-email,failed,'not-an-email' is not an email address",
        "4,grace@acme.example,grace@acme.example,created,",
    ]
    session.expire_all()
    actors = set(
        session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "user.created"))
    )
    assert actors == {"it@acme.example"}
    listing = admin.get("/console/imports").get_data(as_text=True)
    assert "people.csv" in listing and "done" in listing


def test_a_security_reviewer_gets_403_on_every_import_page_and_action(
    admin: FlaskClient, reviewer: FlaskClient, acme: Organization
) -> None:
    job_id = job_of(upload(admin, FILE).headers["Location"])
    for url in (
        "/console/imports",
        f"/console/imports/{job_id}",
        f"/console/imports/{job_id}/progress",
        f"/console/imports/{job_id}/result.csv",
    ):
        assert reviewer.get(url).status_code == 403, url
    token = csrf_token(reviewer)
    refused = reviewer.post(
        "/console/imports",
        data={"file": (io.BytesIO(FILE.encode()), "x.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 403
    start = reviewer.post(f"/console/imports/{job_id}/start", data={"csrf_token": token})
    assert start.status_code == 403


def test_import_forms_without_a_csrf_token_are_refused(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    no_token = admin.post(
        "/console/imports",
        data={"file": (io.BytesIO(FILE.encode()), "x.csv")},
        content_type="multipart/form-data",
    )
    assert no_token.status_code == 400
    job_id = job_of(upload(admin, FILE).headers["Location"])
    assert admin.post(f"/console/imports/{job_id}/start").status_code == 400
    session.expire_all()
    assert session.get_one(ImportJob, job_id).status == ImportStatus.PREVIEWED


def test_another_organizations_import_answers_404(
    admin: FlaskClient, session: Session, acme: Organization, other_org: Organization
) -> None:
    job = imports.create_job(
        session, other_org.id, Actor("cli", "globex-admin"), "g.csv", io.StringIO(FILE)
    )
    session.commit()
    for url in (
        f"/console/imports/{job.id}",
        f"/console/imports/{job.id}/progress",
        f"/console/imports/{job.id}/result.csv",
        "/console/imports/not-a-uuid",
    ):
        assert admin.get(url).status_code == 404, url
    token = csrf_token(admin, "/console/imports")
    assert (
        admin.post(f"/console/imports/{job.id}/start", data={"csrf_token": token}).status_code
        == 404
    )
    session.expire_all()
    assert session.get_one(ImportJob, job.id).status == ImportStatus.PREVIEWED
    assert "g.csv" not in admin.get("/console/imports").get_data(as_text=True)
