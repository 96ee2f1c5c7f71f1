"""Webhook endpoints: where an organization's outbox events are delivered (app/delivery), and
replays of what was delivered or went dead. Secrets arrive already encrypted (app/crypto.py);
the audit trail records which endpoint changed, never a secret."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy import delete, func, select, update

from app.actions import Action, Target
from app.db import utcnow
from app.delivery.destinations import is_loopback_host
from app.errors import InvalidChangeError, NotFoundError
from app.models import (
    DeliveryState,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.provisioning import events
from app.provisioning.scope import Scope
from app.provisioning.scope import parse_uuid as _parse_uuid

MAX_URL_LENGTH = 2048
EVENT_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z_]+)*(\.\*)?$")
MAX_DELIVERIES = 1000


def check_url(url: str, production: bool) -> str:
    """The URL as stored, or InvalidChangeError: https, or http to a loopback host outside
    production (a receiver on the developer's machine)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidChangeError(f"{url!r} is not a valid URL") from None
    if len(url) > MAX_URL_LENGTH or not parts.hostname or parts.scheme not in ("https", "http"):
        raise InvalidChangeError("a webhook URL is an absolute https URL")
    if parts.username is not None or parts.fragment:
        raise InvalidChangeError("a webhook URL carries no credentials and no fragment")
    if parts.scheme == "http" and (production or not is_loopback_host(parts.hostname)):
        raise InvalidChangeError(
            "a webhook URL must be https (http only to a loopback host, in development)"
        )
    return url


def check_event_types(event_types: Sequence[str] | None) -> list[str] | None:
    """The filter as stored (None: every type); each entry a type or a `prefix.*`."""
    if event_types is None:
        return None
    cleaned = sorted({t.strip() for t in event_types if t.strip()})
    for event_type in cleaned:
        if not EVENT_TYPE.match(event_type):
            raise InvalidChangeError(f"{event_type!r} is not an event type (e.g. user.deactivated)")
    return cleaned or None


def add_webhook(
    scope: Scope,
    url: str,
    encrypted_secret: str,
    event_types: Sequence[str] | None = None,
    *,
    production: bool,
) -> WebhookEndpoint:
    """Add an endpoint; it receives the events committed from now on."""
    endpoint = WebhookEndpoint(
        org_id=scope.org_id,
        url=check_url(url, production),
        event_types=check_event_types(event_types),
        encrypted_secret=encrypted_secret,
        fanned_out_seq=scope.session.scalar(
            select(func.coalesce(func.max(OutboxEvent.seq), 0)).where(
                OutboxEvent.org_id == scope.org_id
            )
        ),
    )
    scope.session.add(endpoint)
    scope.session.flush()
    events.record(
        scope, Action.WEBHOOK_CREATED, Target.WEBHOOK, endpoint.id, None, _snapshot(endpoint)
    )
    return endpoint


def get_webhook(scope: Scope, webhook_id: str | UUID) -> WebhookEndpoint:
    """An endpoint of this organization, or NotFoundError."""
    return scope.scoped(WebhookEndpoint, webhook_id, "webhook")


def list_webhooks(scope: Scope) -> list[WebhookEndpoint]:
    """The organization's endpoints, oldest first."""
    return list(
        scope.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.org_id == scope.org_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def set_webhook_enabled(scope: Scope, webhook_id: str | UUID, enabled: bool) -> WebhookEndpoint:
    """Pause or resume an endpoint; a paused one keeps its queue and resumes where it stopped."""
    endpoint = get_webhook(scope, webhook_id)
    if endpoint.is_enabled != enabled:
        before = _snapshot(endpoint)
        endpoint.is_enabled = enabled
        endpoint.updated_at = utcnow()
        events.record_changes(
            scope, Action.WEBHOOK_UPDATED, Target.WEBHOOK, endpoint.id, before, _snapshot(endpoint)
        )
    return endpoint


def rotate_webhook_secret(
    scope: Scope, webhook_id: str | UUID, encrypted_secret: str, overlap: timedelta
) -> WebhookEndpoint:
    """Sign with a new secret; the current one keeps signing too for `overlap` (both
    signatures in `webhook-signature`), so the receiver can switch in its own time."""
    if overlap < timedelta(0):
        raise InvalidChangeError("the overlap of a rotation cannot be negative")
    endpoint = get_webhook(scope, webhook_id)
    now = utcnow()
    keep = overlap > timedelta(0)
    endpoint.encrypted_previous_secret = endpoint.encrypted_secret if keep else None
    endpoint.previous_secret_until = now + overlap if keep else None
    endpoint.encrypted_secret = encrypted_secret
    endpoint.updated_at = now
    after = {"previous_secret_until": _iso(endpoint.previous_secret_until)}
    events.record(scope, Action.WEBHOOK_SECRET_ROTATED, Target.WEBHOOK, endpoint.id, None, after)
    return endpoint


def delete_webhook(scope: Scope, webhook_id: str | UUID) -> None:
    """Remove an endpoint with its queue and its attempts' records."""
    endpoint = get_webhook(scope, webhook_id)
    events.record(
        scope, Action.WEBHOOK_DELETED, Target.WEBHOOK, endpoint.id, _snapshot(endpoint), None
    )
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    scope.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    scope.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    scope.session.delete(endpoint)
    scope.session.flush()


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A delivery as the operator sees it."""

    delivery: WebhookDelivery
    event_type: str
    url: str


def list_deliveries(
    scope: Scope, failed: bool = False, limit: int = 100, webhook_id: str | UUID | None = None
) -> list[DeliveryView]:
    """The latest deliveries, newest first; `failed`: the dead ones and those retrying."""
    statement = (
        select(WebhookDelivery, OutboxEvent.type, WebhookEndpoint.url)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.org_id == scope.org_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.seq.desc())
        .limit(max(1, min(limit, MAX_DELIVERIES)))
    )
    if failed:
        statement = statement.where(
            (WebhookDelivery.state == DeliveryState.DEAD)
            | ((WebhookDelivery.state == DeliveryState.PENDING) & (WebhookDelivery.attempts > 0))
        )
    if webhook_id is not None:
        endpoint = get_webhook(scope, webhook_id)
        statement = statement.where(WebhookDelivery.endpoint_id == endpoint.id)
    return [DeliveryView(d, t, u) for d, t, u in scope.session.execute(statement)]


def replay_event(scope: Scope, event_id: str | UUID) -> int:
    """Deliver an event again to every endpoint it went (or failed to go) to; how many."""
    parsed = event_id if isinstance(event_id, UUID) else _parse_uuid(event_id)
    count = _replay(scope, WebhookDelivery.event_id == parsed) if parsed else 0
    if not count:
        raise NotFoundError(f"no delivery of event {event_id} to replay")
    after = {"event_id": str(parsed), "deliveries": count}
    events.record(scope, Action.WEBHOOK_REPLAYED, Target.WEBHOOK, None, None, after)
    return count


def replay_dead(scope: Scope) -> int:
    """Deliver every dead delivery of the organization again; how many."""
    count = _replay(scope, WebhookDelivery.state == DeliveryState.DEAD)
    if count:
        after = {"dead": True, "deliveries": count}
        events.record(scope, Action.WEBHOOK_REPLAYED, Target.WEBHOOK, None, None, after)
    return count


def _replay(scope: Scope, which: Any) -> int:
    # Back in the queue from the start, in its place in its user's order (its own seq).
    result = scope.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.org_id == scope.org_id, which)
        .values(
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            locked_until=None,
            locked_by=None,
            delivered_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"url": endpoint.url, "events": endpoint.event_types, "enabled": endpoint.is_enabled}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
