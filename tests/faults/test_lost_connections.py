"""PostgreSQL connections killed under SCIM load (issue #16 items 6 and 13): a real gunicorn,
several clients, and a killer terminating the service's connections every few tenths of a
second. No 500; every refusal is a SCIM 503 with Retry-After; every acknowledged create is
stored; the audit chain still verifies."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text

from app.db import make_engine
from tests.faults.support import (
    Served,
    Traffic,
    blue_cli,
    missing_users,
    refusals_that_are_not_clean_503s,
    wait_until_serving,
)

SECONDS = 4.0
KILL_EVERY = 0.3


def kill_connections(engine: Engine, stop: threading.Event, killed: list[int]) -> None:
    """Terminate every other connection to the database, every KILL_EVERY seconds."""
    while not stop.wait(KILL_EVERY):
        with engine.connect() as killer:
            found = killer.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        killed.append(int(found))


@pytest.mark.postgresql_only
def test_connections_killed_under_load_answer_503_and_lose_nothing(served: Served) -> None:
    engine = make_engine(served.database_url)
    stop = threading.Event()
    killed: list[int] = []
    killer = threading.Thread(target=kill_connections, args=(engine, stop, killed))
    with Traffic(served) as traffic:
        killer.start()
        time.sleep(SECONDS)
        stop.set()
        killer.join()
    statuses = traffic.statuses()
    print(f"\nkilled {sum(killed)} connections in {len(killed)} rounds; answers {statuses}")
    assert sum(killed) > 10  # the killer really hit the service's connections
    assert not traffic.failures, traffic.failures[:3]
    assert refusals_that_are_not_clean_503s(traffic) == []
    assert statuses[201] > 20
    assert missing_users(engine, served.org_id, traffic.created) == []
    wait_until_serving(served, timeout=10)
    assert blue_cli(served, "audit", "verify", "--org", "acme").startswith("OK")
    engine.dispose()
