"""`blue-provisioning import`: users from a CSV file, the dry run, exit codes, resuming and
the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, ImportJob, ImportStatus, Organization, User
from app.provisioning import GroupSpec, ProvisioningService, RuleSpec
from app.provisioning import access as provisioning_access
from app.provisioning.service import SYSTEM
from tests.support import make_org

GOOD = "email,givenName,groups\nann@acme.example,Ann,Engineering\nben@acme.example,Ben,\n"
ONE_BAD = "email,givenName\nann@acme.example,Ann\nnot-an-email,Bad\ncid@acme.example,Cid\n"


@pytest.fixture
def acme(session: Session) -> Organization:
    org, _ = make_org(session, "acme")
    service = ProvisioningService(session, org, SYSTEM)
    service.create_group(GroupSpec(display_name="Engineering"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "*"))
    session.commit()
    return org


def csv_file(tmp_path: Path, text: str, name: str = "users.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def test_import_users_prints_the_summary_and_exits_zero(
    runner: FlaskCliRunner, session: Session, acme: Organization, tmp_path: Path
) -> None:
    result = runner.invoke(args=["import", "users", "--org", "acme", csv_file(tmp_path, GOOD)])
    assert result.exit_code == 0, result.output
    assert "done" in result.output
    assert "rows 2: created 2, updated 0, unchanged 0, failed 0" in result.output
    assert users(session) == 2
    again = runner.invoke(args=["import", "users", "--org", "acme", csv_file(tmp_path, GOOD)])
    assert again.exit_code == 0
    assert "rows 2: created 0, updated 0, unchanged 2, failed 0" in again.output


def test_the_dry_run_prints_the_preview_and_writes_nothing(
    runner: FlaskCliRunner, session: Session, acme: Organization, tmp_path: Path
) -> None:
    audit = session.scalar(select(func.count()).select_from(AuditEvent))
    path = csv_file(tmp_path, ONE_BAD)
    result = runner.invoke(args=["import", "users", "--org", "acme", path, "--dry-run"])
    assert result.exit_code == 1
    assert "preview of users.csv (nothing written): 3 rows" in result.output
    assert "valid 2 (2 new, 0 existing users), failed 1" in result.output
    assert "line 3: 'not-an-email' is not an email address" in result.output
    session.expire_all()
    assert users(session) == 0
    assert session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit


def test_a_failed_row_is_printed_with_its_line_and_the_exit_status_is_one(
    runner: FlaskCliRunner, session: Session, acme: Organization, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, ONE_BAD)
    result = runner.invoke(args=["import", "users", "--org", "acme", path, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["status"] == "done"
    assert (report["created"], report["failed"]) == (2, 1)
    assert report["failures"] == [{"line": 3, "reason": "'not-an-email' is not an email address"}]
    assert users(session) == 2


def test_a_file_that_cannot_be_imported_is_refused(
    runner: FlaskCliRunner, acme: Organization, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, "givenName\nAnn\n")
    result = runner.invoke(args=["import", "users", "--org", "acme", path])
    assert result.exit_code == 1
    assert "needs an email or a userName column" in result.output
    unknown = runner.invoke(args=["import", "users", "--org", "nope", csv_file(tmp_path, GOOD)])
    assert unknown.exit_code != 0


def test_import_run_resumes_a_failed_job_and_show_prints_the_result(
    runner: FlaskCliRunner,
    session: Session,
    acme: Organization,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(provisioning_access, "recompute", broken)
        result = runner.invoke(args=["import", "users", "--org", "acme", csv_file(tmp_path, GOOD)])
    assert result.exit_code == 1
    assert "stopped: RuntimeError: disk full" in result.output
    job = session.scalars(select(ImportJob)).one()
    assert job.status == ImportStatus.FAILED
    resumed = runner.invoke(args=["import", "run", "--org", "acme", str(job.id)])
    assert resumed.exit_code == 0, resumed.output
    assert "created 2" in resumed.output
    shown = runner.invoke(args=["import", "show", "--org", "acme", str(job.id), "--result"])
    assert shown.output.splitlines()[1:] == [
        "2,ann@acme.example,ann@acme.example,created,",
        "3,ben@acme.example,ben@acme.example,created,",
    ]
    globex, _ = make_org(session, "globex")
    other = runner.invoke(args=["import", "show", "--org", "globex", str(job.id)])
    assert other.exit_code == 1 and "not found" in other.output
