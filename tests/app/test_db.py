"""The engine's pool on PostgreSQL: connections the server dropped while they sat idle."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.db import make_engine
from tests.conftest import POSTGRES_URL


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _terminate(pid: int) -> None:
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.mark.postgresql_only
def test_a_connection_dropped_while_idle_is_replaced_before_use(
    separate_database: Settings,
) -> None:
    engine = make_engine(separate_database.database_url, ping_after_idle=0.05)
    try:
        first = _backend_pid(engine)
        _terminate(first)  # a server restart or a proxy's idle timeout, while it sat in the pool
        time.sleep(0.1)
        assert _backend_pid(engine) != first  # pinged, found dead, replaced: no error
    finally:
        engine.dispose()


@pytest.mark.postgresql_only
def test_a_connection_just_used_is_not_pinged_and_one_failure_replaces_the_pool(
    separate_database: Settings,
) -> None:
    # The trade-off of skipping the ping under load: the one request that meets the dead
    # connection fails, and every pooled connection older than the failure is replaced.
    engine = make_engine(separate_database.database_url, ping_after_idle=60, pool_size=2)
    try:
        with engine.connect() as one, engine.connect() as two:
            pids = [c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in (one, two)]
        for pid in pids:
            _terminate(pid)
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert _backend_pid(engine) not in pids
        assert _backend_pid(engine) not in pids
    finally:
        engine.dispose()
