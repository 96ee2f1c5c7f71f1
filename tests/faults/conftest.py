"""Fault tests of 10 s or more (a private PostgreSQL cluster, a restart) run only when
BLUE_FAULTS=1 (`make faults`); the short ones run in every `make test`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import postgres_database
from tests.faults.support import Served, gunicorn


@pytest.fixture(scope="session")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """gunicorn (2 workers) on a database of its own, shared by the short fault tests (each
    leaves it serving); only on PostgreSQL (the tests are postgresql_only)."""
    del database_url  # for the parametrization: on SQLite, postgresql_only deselects the test
    log_dir = tmp_path_factory.mktemp("faults")
    with postgres_database("blue_faults") as url, gunicorn(url, log_dir) as running:
        yield running


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BLUE_FAULTS") == "1":
        return
    long = [item for item in items if item.get_closest_marker("long_fault")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if item not in long]
