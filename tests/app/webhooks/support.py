"""Webhook test helpers: a real HTTP receiver on 127.0.0.1 that records what it is sent and
answers as the test tells it; committed outbox events written as the provisioning core will
write them; a clock the test moves."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import crypto
from app.db import utcnow
from app.delivery import new_secret
from app.models import OutboxEvent, WebhookEndpoint
from app.provisioning import SYSTEM, ProvisioningService

SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def user_id(self) -> str | None:
        user: str | None = self.document["data"]["user_id"]
        return user


# What the receiver answers a request: a status and headers.
Rule = Callable[[Received], tuple[int, dict[str, str]]]


def accept(_received: Received) -> tuple[int, dict[str, str]]:
    return 204, {}


class Receiver:
    """A threaded http.server on 127.0.0.1: every request is recorded (the answered ones in
    `accepted`), answered by `rule`; `stop()` and `start()` take it down and bring it back on
    the same port."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answered: list[tuple[Received, int]] = []
        self.rule: Rule = accept
        self.delay = 0.0
        self.arrivals = 0  # requests that reached the handler, answered or not yet
        self.lock = threading.Lock()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/blue"

    @property
    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in order."""
        with self.lock:
            return [r for r, status in self._answered if 200 <= status < 300]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  # http.server's naming
                length = int(self.headers.get("content-length", "0"))
                received = Received(
                    {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                with receiver.lock:
                    receiver.arrivals += 1
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers = receiver.rule(received)
                with receiver.lock:
                    receiver.received.append(received)
                    receiver._answered.append((received, status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The accepted requests once there are at least `count` (or AssertionError)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accepted = self.accepted
            if len(accepted) >= count:
                return accepted
            time.sleep(0.01)
        raise AssertionError(f"{len(self.accepted)} of {count} deliveries arrived")


@dataclass
class Clock:
    """The time app.db.clock reads, moved by the test."""

    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def add_event(
    session: Session,
    org_id: UUID,
    event_type: str = "user.deactivated",
    user_id: UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxEvent:
    """A committed outbox event with the organization's next seq (as the core will write it)."""
    seq = (
        session.scalar(
            select(func.coalesce(func.max(OutboxEvent.seq), 0)).where(OutboxEvent.org_id == org_id)
        )
        or 0
    ) + 1
    event = OutboxEvent(
        id=uuid4(),
        org_id=org_id,
        seq=seq,
        type=event_type,
        user_id=user_id,
        payload=payload if payload is not None else {"active": False},
        at=utcnow(),
    )
    session.add(event)
    session.commit()
    return event


def add_endpoint(
    session: Session,
    org_id: UUID,
    url: str,
    event_types: list[str] | None = None,
    secret: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """An endpoint added through the service, committed; with its secret."""
    secret = secret or new_secret()
    service = ProvisioningService(session, org_id, SYSTEM)
    endpoint = service.add_webhook(
        url, crypto.encrypt(SECRET_KEY, secret), event_types, production=False
    )
    session.commit()
    return endpoint, secret
