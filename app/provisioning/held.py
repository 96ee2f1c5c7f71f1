"""Changes the mass-grant guard held: an admin confirms or discards them."""

from __future__ import annotations

from uuid import UUID

from app.actions import Action, Target
from app.db import utcnow
from app.errors import ConflictError
from app.models import HeldChange
from app.provisioning import events
from app.provisioning.access import recompute
from app.provisioning.scope import Scope


def confirm_held(scope: Scope, held_id: str | UUID) -> HeldChange:
    """Apply a held change's grants, as the users' groups and rules stand now."""
    held = _decide(scope, held_id, "confirmed", Action.CHANGE_CONFIRMED)
    recompute(scope, [UUID(u) for u in held.user_ids], reason="held_change_confirmed", guard=False)
    return held


def discard_held(scope: Scope, held_id: str | UUID) -> HeldChange:
    """Drop a held change's grants; the users keep the access they had."""
    return _decide(scope, held_id, "discarded", Action.CHANGE_DISCARDED)


def _decide(scope: Scope, held_id: str | UUID, status: str, action: Action) -> HeldChange:
    """Mark a change still held as decided, by whom and when, in the audit trail too."""
    held = scope.scoped(HeldChange, held_id, "held change")
    if held.status != "held":
        raise ConflictError(f"held change {held_id} was already {held.status}")
    held.status, held.decided_at = status, utcnow()
    held.decided_by = scope.cause
    events.record(
        scope, action, Target.HELD_CHANGE, held.id, {"status": "held"}, {"status": status}
    )
    return held
