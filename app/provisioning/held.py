"""Changes the mass-grant guard held: an admin confirms or discards them.

A directory change's held grants (kind `directory`) are recomputed on confirm, as the users'
groups and rules stand then. A staged rule or default-role change is applied on confirm, as
it was proposed, without the guard; a discard drops it and the previous rule or setting stays
in force.
"""

from __future__ import annotations

from uuid import UUID

from app.actions import Action, Target
from app.db import utcnow
from app.errors import ConflictError
from app.models import HeldChange, HeldKind
from app.provisioning import events
from app.provisioning.access import confirmed_reason, recompute
from app.provisioning.rules import confirm_staged
from app.provisioning.scope import Scope


def confirm_held(scope: Scope, held_id: str | UUID) -> HeldChange:
    """Apply a held change: a directory change's grants as the users' groups and rules stand
    now; a staged rule or default-role change as proposed (ConflictError, and the change stays
    held, when the rule it edits or the role or project it names is gone)."""
    held = _still_held(scope, held_id)
    if held.kind == HeldKind.DIRECTORY:
        users = [UUID(u) for u in held.user_ids]
        recompute(scope, users, reason=confirmed_reason(held.reason), guard=False)
    else:
        confirm_staged(scope, held)  # refuses before it writes anything
    return _decide(scope, held, "confirmed", Action.CHANGE_CONFIRMED)


def discard_held(scope: Scope, held_id: str | UUID) -> HeldChange:
    """Drop a held change: the users keep the access they had, and a staged rule or
    default-role change never comes into force."""
    return _decide(scope, _still_held(scope, held_id), "discarded", Action.CHANGE_DISCARDED)


def _still_held(scope: Scope, held_id: str | UUID) -> HeldChange:
    """The organization's held change, or ConflictError when it was already decided."""
    held = scope.scoped(HeldChange, held_id, "held change")
    if held.status != "held":
        raise ConflictError(f"held change {held_id} was already {held.status}")
    return held


def _decide(scope: Scope, held: HeldChange, status: str, action: Action) -> HeldChange:
    """Mark a change still held as decided, by whom and when, in the audit trail too."""
    held.status, held.decided_at = status, utcnow()
    held.decided_by = scope.cause
    events.record(
        scope,
        action,
        Target.HELD_CHANGE,
        held.id,
        {"status": "held"},
        {"status": status, "kind": held.kind, "reason": held.reason},
    )
    return held
