"""The delivery worker: fan out new outbox events, claim due deliveries under a lease, send
each, record each result in a transaction of its own. Several processes share the work.

A hand-written poller over the outbox rather than a job library (procrastinate): the outbox
row is already the durable job, written in the change's transaction on SQLite as well as
PostgreSQL (procrastinate is PostgreSQL-only and enqueues through its own connection); the
rules that matter here — one user's events in order, a failing one holding back only that
user's, dead letters and replays per endpoint, every attempt recorded — are this module's
and the `queue`'s either way, and they are a few short queries.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.orm import Session, sessionmaker

from app import crypto
from app.config import Settings
from app.db import utcnow
from app.delivery import queue
from app.delivery.destinations import RefusedDestinationError, Resolver, check_destination
from app.delivery.destinations import system_resolver as default_resolver
from app.delivery.policy import RetryPolicy
from app.delivery.sending import Answer, post
from app.delivery.signing import sign_headers
from app.models import DeliveryState

log = logging.getLogger(__name__)
CLAIM_BATCH = 10
ERROR_PAUSE_SECONDS = 1.0


@dataclass(slots=True)
class Tally:
    """What a worker did: deliveries delivered, failed and to be retried, gone dead."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    queued: int = 0
    import_steps: int = 0  # steps of import jobs (app.imports), done between deliveries

    def add(self, other: Tally) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.dead += other.dead
        self.queued += other.queued
        self.import_steps += other.import_steps

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.dead

    def summary(self) -> str:
        return (
            f"delivered {self.delivered}, retrying {self.retrying}, dead {self.dead} "
            f"({self.queued} deliveries queued)"
        )


@dataclass
class Worker:
    """One worker process's loop. `stop` ends it: the request in flight is finished and
    recorded, the rest of its claim released."""

    sessions: sessionmaker[Session]
    settings: Settings
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stop: threading.Event = field(default_factory=threading.Event)
    resolve: Resolver = default_resolver
    policy: RetryPolicy | None = None

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = RetryPolicy(
                max_attempts=self.settings.webhook_max_attempts,
                base_seconds=self.settings.webhook_backoff_seconds,
                max_seconds=self.settings.webhook_backoff_max_seconds,
            )

    @property
    def lease(self) -> timedelta:
        """Long enough for a whole claim to be sent, each request at its full timeout."""
        return timedelta(seconds=(self.settings.webhook_timeout_seconds + 1) * CLAIM_BATCH + 5)

    def run(self) -> Tally:
        """Deliver until stopped, polling every BLUE_WEBHOOK_POLL_MS when there is nothing."""
        tally = Tally()
        idle = self.settings.webhook_poll_ms / 1000
        while not self.stop.is_set():
            try:
                done = self.run_pass()
            except Exception:
                # The database lost or failing: the leases run out, so nothing is lost;
                # try again after a pause instead of dying in a restart loop.
                log.exception("webhook worker pass failed", extra={"worker": self.name})
                self.stop.wait(ERROR_PAUSE_SECONDS)
                continue
            tally.add(done)
            if done.attempts == 0 and done.queued == 0 and done.import_steps == 0:
                self.stop.wait(idle)
        return tally

    def run_once(self) -> Tally:
        """Deliver what is due now, then return."""
        tally = Tally()
        while not self.stop.is_set():
            done = self.run_pass()
            tally.add(done)
            if done.attempts == 0 and done.queued == 0 and done.import_steps == 0:
                break
        return tally

    def run_pass(self) -> Tally:
        """Fan out what is new, then claim one batch, send it, and record what was sent in
        one transaction (a worker that dies before recording sends again: at least once)."""
        # Import jobs share the worker; imported here, as the provisioning package (which
        # they call) imports this package's destinations.
        from app.imports import work_once

        tally = Tally(queued=self.fan_out(), import_steps=int(work_once(self.sessions)))
        with self.sessions.begin() as session:
            jobs = queue.claim(session, self.name, utcnow(), self.lease, CLAIM_BATCH)
        done: list[tuple[queue.Job, queue.Result, datetime]] = []
        for index, job in enumerate(jobs):
            if self.stop.is_set():
                with self.sessions.begin() as session:
                    queue.release(session, [j.delivery_id for j in jobs[index:]], self.name)
                break
            done.append(self.attempt(job))
        if done:
            with self.sessions.begin() as session:
                for job, result, at in done:
                    queue.record(session, job, result, self.name, at)
        for _, result, _ in done:
            if result.state is DeliveryState.DELIVERED:
                tally.delivered += 1
            elif result.state is DeliveryState.DEAD:
                tally.dead += 1
            else:
                tally.retrying += 1
        return tally

    def fan_out(self) -> int:
        """Queue deliveries for new events, one short transaction per endpoint."""
        with self.sessions.begin() as session:
            endpoint_ids: list[UUID] = queue.endpoints_behind(session)
        queued = 0
        for endpoint_id in endpoint_ids:
            with self.sessions.begin() as session:
                queued += queue.fan_out(session, endpoint_id, utcnow())
        return queued

    def attempt(self, job: queue.Job) -> tuple[queue.Job, queue.Result, datetime]:
        """Send one claimed delivery: the attempt's result, and when it ended."""
        answer = self.send(job)
        assert self.policy is not None
        now = utcnow()
        if self.policy.is_delivered(answer.status):
            state, next_at = DeliveryState.DELIVERED, now
        else:
            delay = self.policy.next_delay(job.attempts + 1, answer.retry_after)
            state = DeliveryState.DEAD if delay is None else DeliveryState.PENDING
            next_at = now + (delay or timedelta(0))
            log.warning(
                "webhook delivery failed",
                extra={"delivery": str(job.delivery_id), "status": answer.status},
            )
        result = queue.Result(answer.status, answer.latency_ms, answer.error, state, next_at)
        return job, result, now

    def send(self, job: queue.Job) -> Answer:
        """The HTTP attempt, signed with the endpoint's current (and previous) secrets."""
        settings = self.settings
        try:
            destination = check_destination(
                job.url, settings.is_production, settings.webhook_allow_hosts, self.resolve
            )
        except RefusedDestinationError as refused:
            return Answer(None, 0, error=f"refused: {refused}")
        try:
            secrets = [crypto.decrypt(settings.secret_key, s) for s in job.encrypted_secrets]
        except crypto.DecryptionError as error:
            return Answer(None, 0, error=str(error))
        timestamp = int(utcnow().timestamp())
        headers = sign_headers(str(job.event_id), timestamp, job.body, secrets)
        return post(destination, job.body, headers, settings.webhook_timeout_seconds, utcnow)
