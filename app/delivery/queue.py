"""The delivery rows: fan-out from the outbox, claims under a lease, results, releases.

Each function runs in the caller's short transaction; none holds one across an HTTP call.
Claims take `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers share the rows
without waiting on or claiming each other's; on SQLite (one node) BEGIN IMMEDIATE serializes
the writers and the clause is not rendered. Times come from the caller (`app.db.utcnow`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.delivery.documents import event_body
from app.models import DeliveryState, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

FAN_OUT_BATCH = 500


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery with all that sending it needs."""

    delivery_id: UUID
    event_id: UUID
    attempts: int
    url: str
    encrypted_secrets: tuple[str, ...]
    body: bytes


def endpoints_behind(session: Session) -> list[UUID]:
    """Enabled endpoints whose organization has committed events not yet fanned out to them."""
    newer = exists().where(
        OutboxEvent.org_id == WebhookEndpoint.org_id,
        OutboxEvent.seq > WebhookEndpoint.fanned_out_seq,
    )
    return list(
        session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.is_enabled, newer))
    )


def fan_out(session: Session, endpoint_id: UUID, now: datetime) -> int:
    """Queue a delivery for each of the next committed events that the endpoint wants; the
    number of events read. The endpoint's row is locked so that one worker fans it out."""
    endpoint = session.scalar(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.is_enabled)
        .with_for_update(skip_locked=True)
    )
    if endpoint is None:
        return 0
    # `seq` is given in commit order under the organization's lock, so once seq N is
    # visible every smaller one is too: a cursor on it misses nothing.
    events = session.execute(
        select(OutboxEvent.id, OutboxEvent.seq, OutboxEvent.type, OutboxEvent.user_id)
        .where(OutboxEvent.org_id == endpoint.org_id, OutboxEvent.seq > endpoint.fanned_out_seq)
        .order_by(OutboxEvent.seq)
        .limit(FAN_OUT_BATCH)
    ).all()
    if not events:
        return 0
    rows: list[dict[str, Any]] = [
        {
            "id": uuid4(),
            "org_id": endpoint.org_id,
            "endpoint_id": endpoint.id,
            "event_id": event.id,
            "seq": event.seq,
            "stream": event.user_id.hex if event.user_id is not None else "",
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in events
        if wants(endpoint.event_types, event.type)
    ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    endpoint.fanned_out_seq = max(event.seq for event in events if event.seq is not None)
    return len(events)


def wants(event_types: Sequence[str] | None, event_type: str) -> bool:
    """True when the filter takes the type: no filter, the type itself, or `prefix.*`."""
    if not event_types:
        return True
    return any(
        wanted == event_type
        or (wanted.endswith(".*") and event_type.startswith(wanted.removesuffix("*")))
        for wanted in event_types
    )


def claim(session: Session, worker: str, now: datetime, lease: timedelta, limit: int) -> list[Job]:
    """Lease up to `limit` due deliveries. A delivery waits while an earlier one of its stream
    (same endpoint, same user) is pending: one user's events go out in order, one at a time,
    and a failing one holds back only that user's later events."""
    delivery = WebhookDelivery
    earlier = aliased(WebhookDelivery)
    held_back = exists().where(
        earlier.endpoint_id == delivery.endpoint_id,
        earlier.stream == delivery.stream,
        earlier.state == DeliveryState.PENDING,
        earlier.seq < delivery.seq,
    )
    ids = list(
        session.scalars(
            select(delivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == delivery.endpoint_id)
            .where(
                delivery.state == DeliveryState.PENDING,
                delivery.next_attempt_at <= now,
                or_(delivery.locked_until.is_(None), delivery.locked_until <= now),
                WebhookEndpoint.is_enabled,
                ~held_back,
            )
            .order_by(delivery.next_attempt_at, delivery.seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=delivery)
        )
    )
    if not ids:
        return []
    session.execute(
        update(delivery)
        .where(delivery.id.in_(ids))
        .values(locked_until=now + lease, locked_by=worker)
    )
    return _jobs(session, ids, now)


def _jobs(session: Session, ids: Sequence[UUID], now: datetime) -> list[Job]:
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint, OutboxEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.seq)
    ).all()
    jobs = []
    for delivery, endpoint, event in rows:
        secrets = [endpoint.encrypted_secret]
        until = endpoint.previous_secret_until
        if endpoint.encrypted_previous_secret and until is not None and until > now:
            secrets.append(endpoint.encrypted_previous_secret)
        body = event_body(
            event.id, event.org_id, delivery.seq, event.type, event.user_id, event.payload, event.at
        )
        jobs.append(
            Job(delivery.id, event.id, delivery.attempts, endpoint.url, tuple(secrets), body)
        )
    return jobs


@dataclass(frozen=True, slots=True)
class Result:
    """An attempt's outcome: the answer, and the delivery's next state."""

    status: int | None
    latency_ms: int
    error: str | None
    state: DeliveryState
    next_attempt_at: datetime


def record(session: Session, job: Job, result: Result, worker: str, now: datetime) -> None:
    """Record the attempt, and the delivery's new state if this worker still holds its lease
    (one that expired and was claimed again is the new holder's to record)."""
    session.add(
        WebhookAttempt(
            delivery_id=job.delivery_id,
            at=now,
            status=result.status,
            latency_ms=result.latency_ms,
            error=result.error,
            worker=worker,
        )
    )
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.locked_by == worker)
        .values(
            state=result.state,
            attempts=WebhookDelivery.attempts + 1,
            next_attempt_at=result.next_attempt_at,
            locked_until=None,
            locked_by=None,
            last_status=result.status,
            last_error=result.error,
            delivered_at=now if result.state is DeliveryState.DELIVERED else None,
        )
    )


def release(session: Session, ids: Sequence[UUID], worker: str) -> None:
    """Give back leased deliveries unsent (the worker is stopping): due again at once."""
    if ids:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(ids)), WebhookDelivery.locked_by == worker)
            .values(locked_until=None, locked_by=None)
        )
