"""Worker processes on PostgreSQL, really committing: two share the work without delivering
anything twice and keep each user's order; a running worker delivers within the bound; a
stopped one finishes its request in flight and releases the rest; SIGTERM ends the command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from app import crypto, provisioning
from app.config import Settings
from app.db import make_sessions, utcnow
from app.delivery import Worker, new_secret
from app.models import DeliveryState, OutboxEvent, WebhookAttempt, WebhookDelivery
from app.provisioning import SYSTEM, ProvisioningService
from tests.app.webhooks.support import Receiver

pytestmark = pytest.mark.postgresql_only


@pytest.fixture
def sessions(committing_engine: Engine) -> sessionmaker[Session]:
    return make_sessions(committing_engine)


@pytest.fixture
def org_id(
    sessions: sessionmaker[Session], separate_database: Settings, receiver: Receiver
) -> UUID:
    """An organization with one endpoint on the receiver, committed."""
    with sessions.begin() as session:
        org = provisioning.create_organization(session, "Acme", "acme", 100)
        secret = crypto.encrypt(separate_database.secret_key, new_secret())
        ProvisioningService(session, org, SYSTEM).add_webhook(
            receiver.url, secret, production=False
        )
        return org.id


def commit_events(
    sessions: sessionmaker[Session], org_id: UUID, users: list[UUID], count: int
) -> list[UUID]:
    """Committed events with the next seqs, round-robin over the users; their ids."""
    with sessions.begin() as session:
        start = session.scalar(select(OutboxEvent.seq).order_by(OutboxEvent.seq.desc())) or 0
        ids = [uuid4() for _ in range(count)]
        rows = [
            {
                "id": ids[i],
                "org_id": org_id,
                "seq": start + i + 1,
                "type": "user.updated",
                "user_id": users[i % len(users)],
                "payload": {"n": start + i + 1},
                "at": utcnow(),
            }
            for i in range(count)
        ]
        session.execute(insert(OutboxEvent), rows)
    return ids


@pytest.fixture
def running() -> Iterator[list[tuple[Worker, threading.Thread]]]:
    """Workers started by the test, stopped and joined after it."""
    started: list[tuple[Worker, threading.Thread]] = []
    yield started
    for worker, _ in started:
        worker.stop.set()
    for _, thread in started:
        thread.join(timeout=30)


def start(
    running: list[tuple[Worker, threading.Thread]],
    sessions: sessionmaker[Session],
    settings: Settings,
    name: str,
) -> Worker:
    worker = Worker(sessions, settings, name=name)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    running.append((worker, thread))
    return worker


def test_two_workers_share_the_work_without_duplicates_in_order_per_user(
    sessions: sessionmaker[Session],
    separate_database: Settings,
    org_id: UUID,
    receiver: Receiver,
    running: list[tuple[Worker, threading.Thread]],
) -> None:
    users = [uuid4() for _ in range(20)]
    sent = commit_events(sessions, org_id, users, 200)
    receiver.delay = 0.002
    for name in ("w1", "w2"):
        start(running, sessions, separate_database, name)

    receiver.wait_for(200, timeout=60)
    time.sleep(0.3)  # anything sent twice would arrive now

    ids = [r.event_id for r in receiver.received]
    assert sorted(ids) == sorted(str(e) for e in sent)  # each once
    order = {str(e): i for i, e in enumerate(sent)}
    for user in users:
        mine = [order[r.event_id] for r in receiver.received if r.user_id == str(user)]
        assert mine == sorted(mine)
    with sessions() as session:
        workers = set(session.scalars(select(WebhookAttempt.worker)))
        states = set(session.scalars(select(WebhookDelivery.state)))
    assert workers == {"w1", "w2"}
    assert states == {DeliveryState.DELIVERED}


def test_a_running_worker_delivers_a_new_event_within_the_bound(
    sessions: sessionmaker[Session],
    separate_database: Settings,
    org_id: UUID,
    receiver: Receiver,
    running: list[tuple[Worker, threading.Thread]],
) -> None:
    start(running, sessions, separate_database, "w1")
    time.sleep(0.5)  # idle, polling
    latencies = []
    for _ in range(5):
        committed = time.monotonic()
        [event_id] = commit_events(sessions, org_id, [uuid4()], 1)
        while str(event_id) not in {r.event_id for r in receiver.accepted}:
            assert time.monotonic() - committed < 5
            time.sleep(0.005)
        latencies.append(time.monotonic() - committed)
    # Polling every 200 ms: well under the 5 s bound of issue #14.
    assert max(latencies) < 1.0


def test_a_stopped_worker_finishes_its_request_and_releases_the_rest(
    sessions: sessionmaker[Session],
    separate_database: Settings,
    org_id: UUID,
    receiver: Receiver,
    running: list[tuple[Worker, threading.Thread]],
) -> None:
    commit_events(sessions, org_id, [uuid4() for _ in range(3)], 3)
    receiver.delay = 0.5
    worker = start(running, sessions, separate_database, "w1")
    deadline = time.monotonic() + 5
    while receiver.arrivals == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)

    worker.stop.set()
    running[0][1].join(timeout=5)

    assert not running[0][1].is_alive()
    with sessions() as session:
        rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.seq)).all()
    assert [r.state for r in rows] == ["delivered", "pending", "pending"]
    assert [(r.locked_by, r.locked_until, r.attempts) for r in rows[1:]] == [(None, None, 0)] * 2
    assert len(receiver.accepted) == 1


def test_the_worker_command_stops_gracefully_on_sigterm(
    sessions: sessionmaker[Session], separate_database: Settings, org_id: UUID, receiver: Receiver
) -> None:
    env = {
        **os.environ,
        "BLUE_DATABASE_URL": separate_database.database_url,
        "BLUE_SECRET_KEY": separate_database.secret_key,
        "BLUE_ENV": "development",
    }
    command = [sys.executable, "-c", "from app.entrypoint import main; main()", "worker"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        [event_id] = commit_events(sessions, org_id, [uuid4()], 1)
        receiver.wait_for(1, timeout=15)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out.decode().strip().startswith("stopped: delivered 1")
    assert receiver.accepted[0].event_id == str(event_id)
