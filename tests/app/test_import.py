"""CSV import of users through the provisioning service: outcomes, idempotence, the preview's
per-row errors, project roles, the guard and the overage policy, resuming, tenancy."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import imports
from app.audit import Actor
from app.config import Settings
from app.delivery import Worker
from app.errors import InvalidChangeError, NotFoundError
from app.models import (
    AuditEvent,
    Group,
    HeldChange,
    ImportJob,
    ImportRow,
    ImportStatus,
    Membership,
    Organization,
    OutboxEvent,
    RoleAssignment,
    User,
    UserSource,
)
from app.provisioning import ContractSpec, GroupSpec, ProvisioningService, RuleSpec, UserSpec
from app.provisioning import access as provisioning_access
from tests.support import make_org

ADMIN = Actor(kind="cli", label="it-admin")


def count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def service_of(session: Session, org: Organization) -> ProvisioningService:
    return ProvisioningService(session, org, ADMIN)


def preview(session: Session, org: Organization, text: str, name: str = "users.csv") -> ImportJob:
    job = imports.create_job(session, org.id, ADMIN, name, io.StringIO(text))
    session.commit()
    return job


def run(app: Flask, session: Session, org: Organization, text: str) -> ImportJob:
    """Preview, start and run a file to its end; the job as the database has it."""
    job = preview(session, org, text)
    imports.start_job(session, org.id, job.id)
    session.commit()
    imports.run_import(job.id, sessions=app.extensions["sessions"])
    session.expire_all()
    return session.get_one(ImportJob, job.id)


def outcomes(session: Session, job: ImportJob) -> dict[int, tuple[str, str | None]]:
    rows = session.scalars(select(ImportRow).where(ImportRow.job_id == job.id))
    return {r.line: (r.outcome, r.reason) for r in rows}


def user_named(session: Session, org: Organization, name: str) -> User:
    return session.scalars(
        select(User).where(User.org_id == org.id, User.user_name_key == name.lower())
    ).one()


@pytest.fixture
def acme(session: Session) -> Organization:
    org, _ = make_org(session, "acme", paid_seats=100)
    service = service_of(session, org)
    service.create_group(GroupSpec(display_name="Engineering"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "*"))
    service.create_project("web", "Web")
    session.commit()
    return org


FILE = (
    "Email,User Name,given_name,Family Name,Groups,Project Roles,Badge\n"
    "alice@acme.example,,Alice,Archer,Engineering;Design,,A1\n"
    "bob@acme.example,bob,Robert,Builder,,,\n"
    "carol@acme.example,,Carol,,Design,web:View Only,\n"
)


def test_import_creates_and_updates_users_through_the_service(
    app: Flask, session: Session, acme: Organization
) -> None:
    service_of(session, acme).create_user(
        UserSpec(user_name="bob", attributes={"given_name": "Bob"})
    )
    session.commit()
    job = run(app, session, acme, FILE)
    assert job.status == ImportStatus.DONE
    assert job.counts() == {
        "total": 3,
        "created": 2,
        "updated": 1,
        "unchanged": 0,
        "failed": 0,
        "processed": 3,
    }
    assert job.ignored_columns == ["Badge"]
    alice = user_named(session, acme, "alice@acme.example")
    assert alice.source == UserSource.CSV
    assert (alice.given_name, alice.family_name, alice.primary_email) == (
        "Alice",
        "Archer",
        "alice@acme.example",
    )
    bob = user_named(session, acme, "bob")
    assert bob.given_name == "Robert" and bob.source == UserSource.SCIM
    assert bob.primary_email == "bob@acme.example"
    # Alice's group gives her Team Member (paid) through the rule, like any member.
    roles = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == alice.id))
    assert {(r.project_key, r.role_key) for r in roles} == {("*", "team_member")}
    assert alice.seat == "paid"
    design = session.scalars(select(Group).where(Group.display_name == "Design")).one()
    members = session.scalars(select(Membership).where(Membership.group_id == design.id)).all()
    carol = user_named(session, acme, "carol@acme.example")
    assert {m.user_id for m in members} == {alice.id, carol.id}
    assert {m.source for m in members} == {"csv"}
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.org_id == acme.id)))
    assert {"user.created", "user.updated", "membership.added", "role.granted"} <= actions
    actors = set(
        session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "user.created"))
    )
    assert "it-admin" in actors


def test_importing_the_same_file_again_changes_nothing(
    app: Flask, session: Session, acme: Organization
) -> None:
    first = run(app, session, acme, FILE)
    assert first.created == 3
    audit, outbox = count(session, AuditEvent), count(session, OutboxEvent)
    users = count(session, User)
    again = run(app, session, acme, FILE)
    assert again.counts() == {
        "total": 3,
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "failed": 0,
        "processed": 3,
    }
    assert (count(session, AuditEvent), count(session, OutboxEvent)) == (audit, outbox)
    assert count(session, User) == users


BAD_FILE = (
    "email;userName;givenName;projectRoles\n"
    "not-an-email;;Ann;\n"
    ";;Nobody;\n"
    "dan@acme.example;;Dan;nowhere:View Only\n"
    "erin@acme.example;;Erin;web:Overlord\n"
    "fay@acme.example;;Fay;\n"
    "FAY@acme.example;;Fay again;\n"
    f"gus@acme.example;{'g' * 300};Gus;\n"
    "hal@acme.example;;Hal;web\n"
    "ivy@acme.example;;Ivy;web:view_only\n"
    "jay@acme.example;;J\x00y;\n"
)


def test_the_preview_reports_each_bad_row_and_writes_nothing_to_the_directory(
    session: Session, acme: Organization
) -> None:
    users, groups, audit = count(session, User), count(session, Group), count(session, AuditEvent)
    job = preview(session, acme, BAD_FILE)
    assert job.status == ImportStatus.PREVIEWED
    found = outcomes(session, job)
    reasons = {
        line: reason or "" for line, (outcome, reason) in found.items() if outcome == "failed"
    }
    assert "not an email address" in reasons[2]
    assert reasons[3] == "email or userName is required"
    assert reasons[4] == "unknown project 'nowhere'"
    assert reasons[5] == "unknown role 'Overlord'"
    assert reasons[7].startswith("duplicate: line 6")
    assert "longer than 256" in reasons[8]
    assert "not project:Role" in reasons[9]
    assert "cannot be stored (NUL)" in reasons[11]
    assert found[6] == ("pending", None) and found[10] == ("pending", None)
    assert (job.total, job.failed, job.processed) == (10, 8, 8)
    assert (count(session, User), count(session, Group)) == (users, groups)
    assert count(session, AuditEvent) == audit


def test_the_preview_counts_existing_users_and_fails_rows_naming_a_deleted_one(
    session: Session, acme: Organization
) -> None:
    service = service_of(session, acme)
    service.create_user(UserSpec(user_name="old@acme.example"))
    gone = service.create_user(UserSpec(user_name="gone@acme.example"))
    service.delete_user(gone.id)
    session.commit()
    text = "email\nold@acme.example\ngone@acme.example\nnew@acme.example\n"
    job = preview(session, acme, text)
    assert (job.total, job.existing, job.failed) == (3, 1, 1)
    assert outcomes(session, job)[3] == (
        "failed",
        "user 'gone@acme.example' was deleted; only the IdP can restore them",
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("givenName,familyName\nAnn,Archer\n", "email or a userName column"),
        ("email,mail\na@b.example,c@d.example\n", "more than one column"),
        ("email\n", "no rows"),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_whole(
    session: Session, acme: Organization, text: str, problem: str
) -> None:
    with pytest.raises(InvalidChangeError, match=problem):
        imports.create_job(session, acme.id, ADMIN, "bad.csv", io.StringIO(text))


def test_tab_separated_files_with_a_byte_order_mark_are_read(
    app: Flask, session: Session, acme: Organization
) -> None:
    text = "\ufeffE-Mail Address\tFirst Name\tSurname\nzoe@acme.example\tZoe\tZed\n"
    job = run(app, session, acme, text)
    assert job.created == 1
    assert user_named(session, acme, "zoe@acme.example").family_name == "Zed"


def test_project_roles_are_granted_through_an_import_owned_group_and_rule(
    app: Flask, session: Session, acme: Organization
) -> None:
    job = run(app, session, acme, "email,projectRoles\nivy@acme.example,web:Team Member\n")
    assert job.created == 1
    ivy = user_named(session, acme, "ivy@acme.example")
    [assignment] = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == ivy.id))
    assert (assignment.project_key, assignment.role_key) == ("web", "team_member")
    group = session.scalars(
        select(Group).where(Group.display_name == "import:web:team_member")
    ).one()
    assert assignment.sources[0]["group_id"] == str(group.id)
    again = run(app, session, acme, "email,projectRoles\nivy@acme.example,web:team_member\n")
    assert again.unchanged == 1


def test_groups_not_listed_in_the_file_are_left_alone(
    app: Flask, session: Session, acme: Organization
) -> None:
    run(app, session, acme, "email,groups\njo@acme.example,Engineering;Design\n")
    job = run(app, session, acme, "email,groups\njo@acme.example,Design\n")
    assert job.unchanged == 1
    jo = user_named(session, acme, "jo@acme.example")
    assert count_memberships(session, jo) == 2


def count_memberships(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == user.id)
        )
        or 0
    )


def test_the_mass_grant_guard_holds_an_imports_paid_grants(
    app: Flask, session: Session, acme: Organization
) -> None:
    service_of(session, acme).set_guard_thresholds(2, 1.0, 10)
    session.commit()
    lines = "".join(f"u{i}@acme.example,Engineering\n" for i in range(5))
    job = run(app, session, acme, "email,groups\n" + lines)
    assert job.created == 5
    held = session.scalars(select(HeldChange).where(HeldChange.org_id == acme.id)).one()
    assert held.reason == "csv_import" and len(held.user_ids) == 5
    session.refresh(acme)
    assert acme.paid_seat_count == 0


def test_the_hold_policy_keeps_users_over_the_tier_pending(
    app: Flask, session: Session, acme: Organization
) -> None:
    service = service_of(session, acme)
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))
    service.create_rule(RuleSpec("displayName", "Engineering", "view_only", "*"))
    session.commit()
    lines = "".join(f"u{i}@acme.example,Engineering\n" for i in range(3))
    run(app, session, acme, "email,groups\n" + lines)
    session.refresh(acme)
    assert acme.paid_seat_count == 1
    pending = session.scalar(
        select(func.count()).select_from(User).where(User.pending_since.is_not(None))
    )
    assert pending == 2


def test_a_failed_batch_stops_the_job_and_running_it_again_resumes(
    app: Flask, session: Session, acme: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports.runner, "BATCH_SIZE", 2)
    real = provisioning_access.recompute
    calls = {"n": 0}

    def crash_on_second_batch(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        real(*args, **kwargs)

    monkeypatch.setattr(provisioning_access, "recompute", crash_on_second_batch)
    lines = "".join(f"u{i}@acme.example,Engineering\n" for i in range(5))
    job = run(app, session, acme, "email,groups\n" + lines)
    assert job.status == ImportStatus.FAILED
    assert "database went away" in (job.error or "")
    assert (job.created, job.processed) == (2, 2)
    assert count(session, User) == 2
    finished = imports.run_import(job.id, sessions=app.extensions["sessions"])
    assert finished.status == ImportStatus.DONE
    session.expire_all()
    job = session.get_one(ImportJob, job.id)
    assert (job.created, job.processed, job.failed) == (5, 5, 0)
    created = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.created")
    )
    assert created == 5


def test_a_worker_takes_a_started_job_and_goes_on_with_one_a_dead_worker_left_running(
    app: Flask, session: Session, acme: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = preview(session, acme, "email\nw1@acme.example\nw2@acme.example\n")
    imports.start_job(session, acme.id, job.id)
    session.commit()
    sessions = app.extensions["sessions"]
    assert imports.work_once(sessions)  # role groups; running

    def killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker killed mid-batch")

    with monkeypatch.context() as patch:
        patch.setattr(provisioning_access, "recompute", killed)
        with pytest.raises(SystemExit):
            imports.work_once(sessions)
    session.expire_all()
    left = session.get_one(ImportJob, job.id)
    assert (left.status, left.processed) == (ImportStatus.RUNNING, 0)  # the batch rolled back
    assert count(session, User) == 0
    assert imports.work_once(sessions)  # the next worker: the rows
    assert imports.work_once(sessions)  # nothing left: done
    assert not imports.work_once(sessions)
    session.expire_all()
    done = session.get_one(ImportJob, job.id)
    assert (done.status, done.created, done.processed) == (ImportStatus.DONE, 2, 2)


def test_another_organizations_job_and_users_are_out_of_reach(
    app: Flask, session: Session, acme: Organization
) -> None:
    globex, _ = make_org(session, "globex")
    service_of(session, globex).create_user(UserSpec(user_name="kim@acme.example"))
    session.commit()
    job = run(app, session, acme, "email\nkim@acme.example\n")
    assert job.created == 1  # globex's kim is not acme's
    with pytest.raises(NotFoundError):
        imports.get_job(session, globex.id, job.id)
    with pytest.raises(NotFoundError):
        imports.start_job(session, globex.id, job.id)


def test_the_result_csv_lists_every_row_with_its_outcome(
    app: Flask, session: Session, acme: Organization
) -> None:
    job = run(app, session, acme, "email\nok@acme.example\nbroken\n")
    text = "".join(imports.result_lines(session, job, chunk=1))
    assert text.splitlines() == [
        "line,userName,email,outcome,reason",
        "2,ok@acme.example,ok@acme.example,created,",
        "3,,broken,failed,'broken' is not an email address",
    ]


def test_the_webhook_worker_runs_started_import_jobs_between_deliveries(
    app: Flask, session: Session, acme: Organization, settings: Settings
) -> None:
    job = preview(session, acme, "email,groups\nx1@acme.example,Engineering\n")
    imports.start_job(session, acme.id, job.id)
    session.commit()
    tally = Worker(app.extensions["sessions"], settings).run_once()
    assert tally.import_steps == 3  # role groups, the one batch, done
    session.expire_all()
    done = session.get_one(ImportJob, job.id)
    assert (done.status, done.created) == (ImportStatus.DONE, 1)
