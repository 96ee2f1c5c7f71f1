"""The database restarted under SCIM load (issue #16 item 13), on a private PostgreSQL cluster:
while it is down requests answer a SCIM 503 with Retry-After (or succeed), never a 500; once
it is back the same gunicorn, with the same workers, serves again without being restarted, and
the same webhook worker delivers every change made before, during and after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import make_engine
from bench.harness import ServerProcess
from tests.app.webhooks.support import Receiver
from tests.faults.cluster import PrivateCluster, private_cluster
from tests.faults.support import (
    BIN,
    Served,
    Traffic,
    blue_cli,
    gunicorn,
    missing_users,
    refusals_that_are_not_clean_503s,
    users_of,
    wait_until_serving,
)

DOWN_SECONDS = 2.0


@pytest.fixture
def cluster(database_url: str) -> Iterator[PrivateCluster]:
    del database_url  # only to be parametrized on PostgreSQL (postgresql_only)
    with private_cluster() as running:
        admin = make_engine(running.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text('CREATE DATABASE "blue"'))
        admin.dispose()
        yield running


@pytest.fixture
def served(cluster: PrivateCluster, tmp_path: Path) -> Iterator[Served]:
    with gunicorn(cluster.url("blue"), tmp_path) as running:
        yield running


@pytest.fixture
def webhook_worker(served: Served, tmp_path: Path) -> Iterator[tuple[ServerProcess, Receiver]]:
    """`blue-provisioning worker` delivering every event of acme to a local receiver."""
    receiver = Receiver()
    receiver.start()
    blue_cli(served, "webhook", "add", "--org", "acme", "--url", receiver.url)
    argv = [str(BIN / "blue-provisioning"), "worker"]
    worker = ServerProcess("worker", argv, served.env(), tmp_path / "worker.log")
    worker.start()
    yield worker, receiver
    worker.stop()
    receiver.stop()


def delivered_users(receiver: Receiver) -> set[str]:
    return {r.user_id for r in receiver.accepted if r.user_id is not None}


@pytest.mark.postgresql_only
@pytest.mark.long_fault
def test_the_service_recovers_from_a_database_restart_by_itself(
    cluster: PrivateCluster,
    served: Served,
    webhook_worker: tuple[ServerProcess, Receiver],
) -> None:
    worker, receiver = webhook_worker
    workers = served.process.children()
    with Traffic(served) as traffic:
        time.sleep(1.0)
        cluster.stop("fast")
        time.sleep(DOWN_SECONDS)
        down = traffic.statuses()
        cluster.start()
        recovered_after = wait_until_serving(served, timeout=20)
        time.sleep(1.0)
    statuses = traffic.statuses()
    print(f"\nanswers {statuses}; up again, serving after {recovered_after:.2f} s")
    assert not traffic.failures, traffic.failures[:3]
    assert refusals_that_are_not_clean_503s(traffic) == []
    assert down[503] > 0  # the restart was seen
    assert statuses[201] > down[201]  # and traffic succeeded again after it
    assert served.process.children() == workers  # no worker was restarted
    engine = make_engine(served.database_url)
    assert missing_users(engine, served.org_id, traffic.created) == []
    stored = {str(user_id) for user_id in users_of(engine, served.org_id)}
    engine.dispose()
    deadline = time.monotonic() + 60
    while not stored <= delivered_users(receiver) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.process is not None and worker.process.poll() is None  # never restarted
    assert stored - delivered_users(receiver) == set(), worker.log_tail()
    assert blue_cli(served, "audit", "verify", "--org", "acme").startswith("OK")
