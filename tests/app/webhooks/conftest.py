"""Fixtures of the webhook tests: a running receiver, a movable clock, a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from app import db
from app.config import Settings
from app.delivery import Worker
from tests.app.webhooks.support import Clock, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(db, "clock", clock)
    return clock


@pytest.fixture
def worker(app: Flask, settings: Settings) -> Worker:
    """A worker on the test's transaction (one thread: run it in the test's own)."""
    return Worker(app.extensions["sessions"], settings, name="worker-1")
