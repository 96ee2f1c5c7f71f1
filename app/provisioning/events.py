"""The one place the provisioning core writes audit records: in the change's transaction,
chained when it commits (app.audit). Blue's outbox rows will be written here too, in the same
flush."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from app import audit
from app.actions import Action, Target
from app.audit import Actor, EventRow
from app.provisioning.scope import Scope

__all__ = ["EventRow", "changed", "record", "record_changes", "record_many", "record_service"]


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


def changed(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys whose values differ, with their values before and after."""
    keys = set(before) | set(after)
    different = {k for k in keys if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in different}, {k: after.get(k) for k in different}
