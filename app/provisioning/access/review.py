"""Reading access as the rules would have it: drift from the current rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from sqlalchemy import select

from app.models import HeldChange, HeldKind, User
from app.provisioning.access.plan import AccessPlan, plan_access
from app.provisioning.scope import BATCH, Scope


def drift(scope: Scope) -> Iterator[dict[str, Any]]:
    """Users whose stored roles differ from what the current rules give them, in batches."""
    held_users = _users_with_held_grants(scope)
    last: UUID | None = None
    while True:
        query = select(User.id).where(User.org_id == scope.org_id).order_by(User.id).limit(BATCH)
        if last is not None:
            query = query.where(User.id > last)
        ids = list(scope.session.scalars(query))
        if not ids:
            return
        last = ids[-1]
        plans = plan_access(scope, ids)
        for plan in plans:
            row = _drifted(plan, held_users)
            if row is not None:
                yield row
        # Keep memory flat across an organization of 100,000 users.
        for plan in plans:
            for assignment in plan.current.values():
                scope.session.expunge(assignment)


def _users_with_held_grants(scope: Scope) -> set[str]:
    """Users whose grants a directory change's hold keeps back (a staged rule or default
    role is not in force, so it explains no drift)."""
    return {
        user_id
        for ids in scope.session.scalars(
            select(HeldChange.user_ids).where(
                HeldChange.org_id == scope.org_id,
                HeldChange.status == "held",
                HeldChange.kind == HeldKind.DIRECTORY.value,
            )
        )
        for user_id in ids
    }


def _drifted(plan: AccessPlan, held_users: set[str]) -> dict[str, Any] | None:
    """The drift report's row for a user whose roles differ from the rules', else None."""
    current = {p: a.role_key for p, a in plan.current.items()}
    expected = {p: a.role_key for p, a in plan.desired.items()}
    if current == expected:
        return None
    user_id = str(plan.user.id)
    if plan.user.pending_since is not None:
        why = "pending a paid seat (overage policy hold)"
    elif user_id in held_users:
        why = "grants held by the mass-grant guard"
    else:
        why = "roles differ from the current rules"
    return {
        "user_id": user_id,
        "userName": plan.user.user_name,
        "current": current,
        "expected": expected,
        "explanation": why,
    }
