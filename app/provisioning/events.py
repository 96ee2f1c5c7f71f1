"""The one place the provisioning core writes audit records and Blue's outbox events: in the
change's transaction, chained and numbered when it commits (app.audit, app.outbox).

Audit records say what changed (before and after); outbox events carry the new state, for
Blue (the event types and their payloads: `app.actions.OutboxType`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from app import audit, outbox
from app.actions import USER_OUTBOX_TYPES, Action, OutboxType, Target
from app.audit import Actor, EventRow
from app.provisioning.scope import Scope

__all__ = [
    "EventRow",
    "OutboxRow",
    "changed",
    "publish",
    "publish_many",
    "record",
    "record_changes",
    "record_many",
    "record_service",
    "record_user",
]

# One outbox event of a batch: its type, subject user and payload (the new state).
OutboxRow = tuple[OutboxType, UUID | None, Mapping[str, Any]]


def record_service(
    session: Session,
    actor: Actor,
    action: Action,
    target_type: Target,
    target_id: str,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Record a change of the service's own records (not one organization's): its chain."""
    audit.append(session, None, actor, action, target_type, target_id, None, after)


def record(
    scope: Scope,
    action: Action,
    target_type: Target,
    target_id: UUID | str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Record one change of the scope's organization, by the scope's actor."""
    audit.append(
        scope.session, scope.org_id, scope.actor, action, target_type, target_id, before, after
    )


def record_changes(
    scope: Scope,
    action: Action,
    target_type: Target,
    target_id: UUID | str | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    """Record an update with only the keys whose values changed, before and after."""
    record(scope, action, target_type, target_id, *changed(before, after))


def record_many(scope: Scope, rows: Sequence[EventRow]) -> None:
    """Record many changes by the scope's actor at once (a rule change can touch 50,000)."""
    if rows:
        audit.append_many(scope.session, scope.org_id, scope.actor, rows)


def record_user(
    scope: Scope,
    action: Action,
    user_id: UUID,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    state: Mapping[str, Any] | None,
    only_changes: bool = False,
) -> None:
    """Record a change of a user (with only the changed keys when `only_changes`) and
    publish the user's new `state` to Blue as the event the action stands for (None: no
    event, nothing Blue sees changed)."""
    if only_changes and before is not None:
        before, after = changed(before, after)
    record(scope, action, Target.USER, user_id, before, after)
    if state is not None:
        publish(scope, USER_OUTBOX_TYPES[action], user_id, state)


def publish(
    scope: Scope, type_: OutboxType, user_id: UUID | None, payload: Mapping[str, Any]
) -> None:
    """Publish an event to Blue, written if and when this transaction commits."""
    outbox.queue(scope.session, scope.org_id, type_, user_id, payload)


def publish_many(scope: Scope, rows: Sequence[OutboxRow]) -> None:
    """Publish many events at once (a rule change can touch 50,000 users)."""
    if rows:
        outbox.queue_many(scope.session, scope.org_id, rows)


def changed(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys whose values differ, with their values before and after."""
    keys = set(before) | set(after)
    different = {k for k in keys if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in different}, {k: after.get(k) for k in different}
