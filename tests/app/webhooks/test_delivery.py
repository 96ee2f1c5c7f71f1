"""The delivery worker against a real HTTP receiver on 127.0.0.1: Standard Webhooks signing,
retries on the service's clock, order per user, dead letters and replays, an outage."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import uuid4

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app import crypto
from app.config import Settings
from app.delivery import Worker, new_secret
from app.models import (
    DeliveryState,
    Organization,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
)
from app.provisioning import SYSTEM, ProvisioningService
from tests.app.webhooks.support import (
    SECRET_KEY,
    Clock,
    Received,
    Receiver,
    Rule,
    add_endpoint,
    add_event,
)


def deliveries(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.seq)))


def fail(status: int, headers: dict[str, str] | None = None) -> Rule:
    """The receiver answers every request with this status."""
    return lambda _received: (status, headers or {})


def test_event_is_delivered_signed_per_standard_webhooks(
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
) -> None:
    org, _ = organization
    _, secret = add_endpoint(session, org.id, receiver.url)
    user_id = uuid4()
    event = add_event(session, org.id, "user.deactivated", user_id, {"active": False})

    tally = worker.run_once()

    assert (tally.delivered, tally.retrying, tally.dead) == (1, 0, 0)
    [request] = receiver.accepted
    document = Webhook(secret).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == str(event.id)
    assert document["type"] == "user.deactivated"
    assert document["data"] == {
        "id": str(event.id),
        "organization_id": str(org.id),
        "seq": event.seq,
        "user_id": str(user_id),
        "payload": {"active": False},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    [delivery] = deliveries(session)
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.attempts == 1
    [attempt] = session.scalars(select(WebhookAttempt)).all()
    assert attempt.status == 204
    assert attempt.error is None
    assert attempt.latency_ms >= 0
    assert attempt.worker == "worker-1"


def test_an_endpoint_receives_only_events_after_it_was_added_and_of_its_types(
    session: Session, organization: tuple[Organization, str], receiver: Receiver, worker: Worker
) -> None:
    org, _ = organization
    add_event(session, org.id, "user.created", uuid4())
    add_endpoint(session, org.id, receiver.url, ["user.deactivated", "seat.*"])
    wanted = [
        add_event(session, org.id, "user.deactivated", uuid4()),
        add_event(session, org.id, "seat.changed", uuid4()),
    ]
    add_event(session, org.id, "user.updated", uuid4())

    worker.run_once()

    assert [r.event_id for r in receiver.accepted] == [str(e.id) for e in wanted]


def test_failures_back_off_with_jitter_and_honour_retry_after(
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
    clock: Clock,
) -> None:
    org, _ = organization
    add_endpoint(session, org.id, receiver.url)
    add_event(session, org.id, user_id=uuid4())
    receiver.rule = fail(503)

    assert worker.run_once().retrying == 1
    [delivery] = deliveries(session)
    # First retry after 5 s (BLUE_WEBHOOK_BACKOFF_SECONDS), jittered into [2.5 s, 5 s).
    assert clock.now + timedelta(seconds=2.5) <= delivery.next_attempt_at
    assert delivery.next_attempt_at < clock.now + timedelta(seconds=5)
    assert delivery.last_status == 503

    assert worker.run_once().attempts == 0  # not due yet
    clock.advance(seconds=5)
    assert worker.run_once().retrying == 1
    [delivery] = deliveries(session)
    assert clock.now + timedelta(seconds=5) <= delivery.next_attempt_at  # doubled: [5 s, 10 s)
    assert delivery.next_attempt_at < clock.now + timedelta(seconds=10)

    receiver.rule = fail(429, {"Retry-After": "120"})
    clock.advance(seconds=10)
    assert worker.run_once().retrying == 1
    [delivery] = deliveries(session)
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=120)

    receiver.rule = fail(200)
    clock.advance(seconds=119)
    assert worker.run_once().attempts == 0
    clock.advance(seconds=1)
    assert worker.run_once().delivered == 1
    [delivery] = deliveries(session)
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 4)
    statuses = session.scalars(select(WebhookAttempt.status).order_by(WebhookAttempt.at)).all()
    assert statuses == [503, 503, 429, 200]


def test_a_failing_event_holds_back_only_its_users_later_events(
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
    clock: Clock,
) -> None:
    org, _ = organization
    add_endpoint(session, org.id, receiver.url)
    alice, bob = uuid4(), uuid4()
    a1 = add_event(session, org.id, "user.updated", alice)
    b1 = add_event(session, org.id, "user.updated", bob)
    a2 = add_event(session, org.id, "user.deactivated", alice)
    b2 = add_event(session, org.id, "user.deactivated", bob)
    receiver.rule = lambda r: (500, {}) if r.event_id == str(a1.id) else (204, {})

    worker.run_once()

    assert [r.event_id for r in receiver.accepted] == [str(b1.id), str(b2.id)]
    assert str(a2.id) not in {r.event_id for r in receiver.received}

    receiver.rule = fail(204)
    clock.advance(seconds=5)
    worker.run_once()
    alice_order = [r.event_id for r in receiver.accepted if r.user_id == str(alice)]
    assert alice_order == [str(a1.id), str(a2.id)]


def test_an_event_goes_dead_after_the_last_attempt_and_is_replayed(
    app: Flask,
    settings: Settings,
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    clock: Clock,
) -> None:
    org, _ = organization
    worker = Worker(app.extensions["sessions"], replace(settings, webhook_max_attempts=3))
    add_endpoint(session, org.id, receiver.url)
    user = uuid4()
    first = add_event(session, org.id, "user.updated", user)
    second = add_event(session, org.id, "user.deactivated", user)
    receiver.rule = fail(400)

    for _ in range(3):
        worker.run_once()
        clock.advance(hours=1)
    dead, waiting = deliveries(session)
    assert (dead.state, dead.attempts, dead.last_status) == (DeliveryState.DEAD, 3, 400)
    # A dead event stops holding back its user's later events (they carry the newer state):
    # the next one was tried at once.
    assert (waiting.state, waiting.attempts) == (DeliveryState.PENDING, 1)
    for _ in range(2):
        worker.run_once()
        clock.advance(hours=1)
    assert [d.state for d in deliveries(session)] == [DeliveryState.DEAD, DeliveryState.DEAD]
    assert worker.run_once().attempts == 0

    service = ProvisioningService(session, org.id, SYSTEM)
    failed = service.list_deliveries(failed=True)
    assert {view.delivery.event_id for view in failed} == {first.id, second.id}
    receiver.rule = fail(204)
    assert service.replay_event(str(first.id)) == 1
    session.commit()
    worker.run_once()
    assert [r.event_id for r in receiver.accepted] == [str(first.id)]

    assert service.replay_dead() == 1
    session.commit()
    worker.run_once()
    assert [r.event_id for r in receiver.accepted] == [str(first.id), str(second.id)]
    assert service.list_deliveries(failed=True) == []


def test_nothing_is_lost_while_the_receiver_is_down(
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
    clock: Clock,
) -> None:
    org, _ = organization
    add_endpoint(session, org.id, receiver.url)
    users = [uuid4() for _ in range(3)]
    receiver.stop()
    sent = [add_event(session, org.id, "user.updated", users[i % 3]) for i in range(9)]

    tally = worker.run_once()
    assert (tally.retrying, tally.delivered) == (3, 0)  # one head per user tried, refused
    errors = session.scalars(select(WebhookAttempt.error)).all()
    assert all(error and "Refused" in error for error in errors)
    for _ in range(3):
        clock.advance(minutes=10)
        worker.run_once()

    receiver.start()
    clock.advance(hours=2)
    worker.run_once()

    accepted = receiver.accepted
    assert sorted(r.event_id for r in accepted) == sorted(str(e.id) for e in sent)
    for user in users:
        order = [r.event_id for r in accepted if r.user_id == str(user)]
        assert order == [str(e.id) for e in sent if e.user_id == user]


def test_both_secrets_sign_during_a_rotation(
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
    clock: Clock,
) -> None:
    org, _ = organization
    endpoint, old = add_endpoint(session, org.id, receiver.url)
    new = new_secret()
    service = ProvisioningService(session, org.id, SYSTEM)
    encrypted = crypto.encrypt(SECRET_KEY, new)
    service.rotate_webhook_secret(endpoint.id, encrypted, timedelta(minutes=2))
    session.commit()
    add_event(session, org.id, user_id=uuid4())
    worker.run_once()
    [during] = receiver.accepted
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)

    clock.advance(minutes=2)  # within the receiver's 5 minutes' tolerance of timestamps
    add_event(session, org.id, user_id=uuid4())
    worker.run_once()
    after: Received = receiver.accepted[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


def test_an_event_without_its_seq_is_not_delivered_until_numbered(
    session: Session, organization: tuple[Organization, str], receiver: Receiver, worker: Worker
) -> None:
    org, _ = organization
    add_endpoint(session, org.id, receiver.url)
    pending = OutboxEvent(org_id=org.id, seq=None, type="user.updated", payload={})
    session.add(pending)
    session.commit()

    assert worker.run_once().queued == 0
    assert receiver.received == []

    pending.seq = 1  # numbered at commit, as the core does
    session.commit()
    assert worker.run_once().delivered == 1
    assert [r.event_id for r in receiver.accepted] == [str(pending.id)]


def test_a_secret_that_cannot_be_decrypted_fails_the_attempt_not_the_worker(
    app: Flask,
    settings: Settings,
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
) -> None:
    org, _ = organization
    add_endpoint(session, org.id, receiver.url)
    add_event(session, org.id)
    other_key = replace(settings, secret_key="another-secret-key-that-is-long-enough-00")

    assert Worker(app.extensions["sessions"], other_key).run_once().retrying == 1
    assert receiver.received == []
    [delivery] = deliveries(session)
    assert delivery.last_error is not None and "cannot be decrypted" in delivery.last_error
