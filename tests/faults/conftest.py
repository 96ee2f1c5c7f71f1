"""Fault tests of 10 s or more (a private PostgreSQL cluster, a restart) run only when
BLUE_FAULTS=1 (`make faults`); the short ones run in every `make test`."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BLUE_FAULTS") == "1":
        return
    long = [item for item in items if item.get_closest_marker("long_fault")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if item not in long]
