"""Recompute, step two: the mass-grant guard holds the grants of a change too large for its
thresholds until an admin confirms them; revocations always apply at once."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select

import licensing
from app.actions import Action, Target
from app.models import HeldChange, User
from app.provisioning import events
from app.provisioning.access.plan import AccessPlan
from app.provisioning.scope import Scope


def guard(scope: Scope, plans: list[AccessPlan], reason: str) -> list[AccessPlan]:
    """The plans to apply: all of them, or, for a change over the organization's mass-grant
    thresholds, only what they keep and revoke (the grants wait in a held change)."""
    thresholds = thresholds_of(scope)
    if _within_reach(scope, len(plans), thresholds):
        return plans
    catalogue = scope.catalogue()
    before = {str(p.user.id): p.access_before() for p in plans}
    after = {str(p.user.id): p.access_desired(catalogue) for p in plans}
    split = licensing.split_change(before, after, catalogue)
    active = active_users_for_share(scope, len(split.new_paid_seat_user_ids), thresholds)
    decision = licensing.evaluate_guard(split, active, thresholds)
    if not decision.is_held:
        return plans
    _hold(scope, split, decision, reason)
    if scope.recorder is not None:
        # A dry run shows the grants themselves; the held-change row says they would wait.
        return plans
    return [_without_grants(plan, split, before[str(plan.user.id)]) for plan in plans]


def thresholds_of(scope: Scope) -> licensing.GuardThresholds:
    """The organization's mass-grant thresholds."""
    org = scope.organization
    return licensing.GuardThresholds(
        max_new_paid_seats=org.guard_max_new_paid_seats,
        max_new_paid_share=org.guard_max_new_paid_share,
        max_new_project_admins=org.guard_max_new_project_admins,
    )


def _within_reach(scope: Scope, reach: int, thresholds: licensing.GuardThresholds) -> bool:
    """Whether a change of `reach` users cannot cross any threshold: it cannot grant more
    seats or admin roles than it has users, so the bookkeeping can be skipped."""
    return (
        reach <= thresholds.max_new_paid_seats
        and reach <= thresholds.max_new_project_admins
        and (
            reach <= thresholds.share_floor
            or reach
            <= thresholds.max_new_paid_share * active_users_for_share(scope, reach, thresholds)
        )
    )


def _hold(
    scope: Scope,
    split: licensing.ChangeSplit,
    decision: licensing.GuardDecision,
    reason: str,
) -> None:
    """Record the held change and its audit event."""
    granted = sorted({c.user_id for c in split.grants} | set(split.new_paid_seat_user_ids))
    held = HeldChange(
        org_id=scope.org_id,
        reason=reason,
        cause=scope.cause,
        reasons=list(decision.reasons),
        user_ids=granted,
        new_paid_seats=decision.new_paid_seats,
        new_project_admins=decision.new_project_admins,
    )
    scope.session.add(held)
    scope.session.flush()
    events.record(
        scope,
        Action.CHANGE_HELD,
        Target.HELD_CHANGE,
        held.id,
        None,
        {"reason": reason, "reasons": list(decision.reasons), "users": len(granted)},
    )


def _without_grants(
    plan: AccessPlan, split: licensing.ChangeSplit, before: licensing.UserAccess
) -> AccessPlan:
    """The plan with its grants taken out: what the user keeps, less what is revoked."""
    safe = split.assignments_after_revocations(before)
    desired = {
        project: plan.current[project].as_assignment()
        if project in plan.current and plan.current[project].role_key == role_key
        else plan.desired.get(project) or licensing.Assignment(project, role_key, ())
        for project, role_key in safe.items()
    }
    return replace(plan, desired=desired)


def active_users_for_share(
    scope: Scope, new_paid: int, thresholds: licensing.GuardThresholds
) -> int:
    """Active users, counted only as far as the share threshold can tell.

    The share rule holds a change when new_paid / active > the share limit, that is when
    fewer than new_paid / limit users are active: counting up to that bound answers it
    exactly, so a change of 50 members reads at most a few hundred rows, not the whole
    directory. Below the bound the count is exact (the held change's reason shows it).
    """
    if new_paid <= thresholds.share_floor:
        return 0  # the share rule cannot apply; evaluate_guard does not look at the count
    share = thresholds.max_new_paid_share
    bound = int(new_paid / share) + 1 if share > 0 else None
    live = (
        select(User.id)
        .where(
            User.org_id == scope.org_id,
            User.is_active.is_(True),
            User.deprovisioned_at.is_(None),
        )
        .limit(bound)
        .subquery()
    )
    return scope.session.scalar(select(func.count()).select_from(live)) or 0
