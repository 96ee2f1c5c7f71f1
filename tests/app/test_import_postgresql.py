"""Import jobs on PostgreSQL, really committing: two workers share the waiting jobs without
running one job's batches at once or a row twice, and a job a worker left running goes on."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app import imports, provisioning
from app.audit import Actor
from app.db import make_sessions
from app.models import AuditEvent, ImportJob, ImportStatus, User

pytestmark = pytest.mark.postgresql_only


def test_two_workers_share_import_jobs_and_do_every_row_once(
    committing_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports.runner, "BATCH_SIZE", 3)
    sessions: sessionmaker[Session] = make_sessions(committing_engine)
    job_ids = []
    with sessions.begin() as session:
        org = provisioning.create_organization(session, "Acme", "acme", 100)
        for n in range(3):
            text = "email\n" + "".join(f"j{n}u{i}@acme.example\n" for i in range(10))
            job = imports.create_job(
                session, org.id, Actor("cli", "admin"), f"f{n}.csv", io.StringIO(text)
            )
            imports.start_job(session, org.id, job.id)
            job_ids.append(job.id)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                if not imports.work_once(sessions):
                    with sessions.begin() as session:
                        waiting = session.scalar(
                            select(func.count())
                            .select_from(ImportJob)
                            .where(ImportJob.status != ImportStatus.DONE)
                        )
                    if not waiting:
                        return
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    with sessions.begin() as session:
        jobs = session.scalars(select(ImportJob).where(ImportJob.id.in_(job_ids))).all()
        assert {(j.status, j.created, j.processed) for j in jobs} == {(ImportStatus.DONE, 10, 10)}
        assert session.scalar(select(func.count()).select_from(User)) == 30
        created = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.created")
        )
        assert created == 30
