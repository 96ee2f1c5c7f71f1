"""Recompute, step two: the mass-grant guard holds the grants of a change too large for its
thresholds until an admin confirms them; revocations always apply at once.

It counts new paid seats per change, per request (a SCIM /Bulk is one request: one scope) and
over a sliding window per organization, read from the seat ledger, so a mass grant split into
small changes is held too. A directory change (members added, a user reactivated) is applied
and only its grants wait; an admin's rule or default-role change is staged whole (`staged`):
not in force until confirmed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select

import licensing
from app.actions import Action, Target
from app.db import utcnow
from app.models import HeldChange, HeldKind, SeatEvent, SeatKind, User
from app.provisioning import events
from app.provisioning.access.plan import AccessPlan
from app.provisioning.scope import Scope

# The ledger reason of grants an admin confirmed: they do not count towards the window again.
CONFIRMED_PREFIX = "confirmed:"
# A held change lists at most this many distinct threshold reasons.
MAX_REASONS = 10
_T = TypeVar("_T")


def confirmed_reason(reason: str) -> str:
    """The ledger and audit reason of grants applied because an admin confirmed them."""
    return f"{CONFIRMED_PREFIX}{reason}"[:64]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard holds a change's grants: what they are, and why."""

    split: licensing.ChangeSplit
    decision: licensing.GuardDecision
    before: Mapping[str, licensing.UserAccess]

    @property
    def user_ids(self) -> list[str]:
        """The users the held grants would reach, sorted."""
        return sorted(
            {c.user_id for c in self.split.grants} | set(self.split.new_paid_seat_user_ids)
        )


def guard(scope: Scope, plans: list[AccessPlan], reason: str) -> list[AccessPlan]:
    """The plans to apply: all of them, or, for a change over the organization's mass-grant
    thresholds, only what they keep and revoke (the grants wait in a held change)."""
    verdict = assess(scope, plans)
    if verdict is None:
        return plans
    hold(scope, verdict, reason)
    return [
        _without_grants(plan, verdict.split, verdict.before[str(plan.user.id)]) for plan in plans
    ]


def assess(scope: Scope, plans: list[AccessPlan]) -> Verdict | None:
    """The guard's verdict on these plans when it holds their grants; None when it lets
    them through (a change that grants nothing always passes)."""
    if not plans:
        return None
    thresholds = thresholds_of(scope)
    catalogue = scope.catalogue()
    before = {str(p.user.id): p.access_before() for p in plans}
    after = {str(p.user.id): p.access_desired(catalogue) for p in plans}
    split = licensing.split_change(before, after, catalogue)
    if not split.grants and not split.new_paid_seat_user_ids:
        return None
    new_paid = split.new_paid_seat_user_ids
    earlier = len(scope.paid_seats_granted.difference(new_paid))
    decision = licensing.evaluate_guard(
        split,
        active_users_for_share(scope, len(new_paid) + earlier, thresholds),
        thresholds,
        earlier_in_request=earlier,
        earlier_in_window=paid_seats_in_window(scope, thresholds, len(new_paid)),
    )
    return Verdict(split, decision, before) if decision.is_held else None


def thresholds_of(scope: Scope) -> licensing.GuardThresholds:
    """The organization's mass-grant thresholds."""
    org = scope.organization
    return licensing.GuardThresholds(
        max_new_paid_seats=org.guard_max_new_paid_seats,
        max_new_paid_share=org.guard_max_new_paid_share,
        max_new_project_admins=org.guard_max_new_project_admins,
        window_minutes=org.guard_window_minutes,
        max_new_paid_seats_in_window=org.guard_max_new_paid_seats_in_window,
    )


def paid_seats_in_window(scope: Scope, thresholds: licensing.GuardThresholds, new_paid: int) -> int:
    """Paid seats given within the guard's window before this change (this request's
    earlier ones included: the ledger rows are in its transaction), read from the seat
    ledger through its partial index, and only as far as the limit can tell."""
    if not new_paid or not thresholds.window_minutes:
        return 0
    since = utcnow() - timedelta(minutes=thresholds.window_minutes)
    given = (
        select(SeatEvent.id)
        .where(
            SeatEvent.org_id == scope.org_id,
            SeatEvent.to_seat == SeatKind.PAID.value,
            SeatEvent.at >= since,
            SeatEvent.from_seat != SeatKind.PAID.value,
            SeatEvent.reason.not_like(f"{CONFIRMED_PREFIX}%"),
        )
        .limit(thresholds.max_new_paid_seats_in_window + 1)
        .subquery()
    )
    return scope.session.scalar(select(func.count()).select_from(given)) or 0


def hold(
    scope: Scope,
    verdict: Verdict,
    reason: str,
    kind: HeldKind = HeldKind.DIRECTORY,
    payload: Mapping[str, Any] | None = None,
) -> HeldChange:
    """Record held grants, audited and shown to a dry run: a staged change is a held change
    of its own; a directory change's grants join the open held change of the same actor and
    reason within the window (a sync spread over many requests is one change to confirm)."""
    decision, split = verdict.decision, verdict.split
    users = verdict.user_ids
    held = _open_directory_hold(scope, reason) if kind is HeldKind.DIRECTORY else None
    if held is None:
        origin = {"origin": reason, "actor": scope.cause, "request_id": scope.actor.request_id}
        held = HeldChange(
            org_id=scope.org_id,
            kind=kind,
            payload=dict(payload) if payload is not None else origin,
            reason=reason,
            cause=scope.cause,
            reasons=list(decision.reasons),
            user_ids=users,
            new_paid_seats=decision.new_paid_seats,
            new_project_admins=decision.new_project_admins,
        )
        scope.session.add(held)
        scope.session.flush()
    else:
        held.user_ids = sorted(set(held.user_ids) | set(users))
        fresh = [r for r in decision.reasons if r not in held.reasons]
        held.reasons = [*held.reasons, *fresh][:MAX_REASONS]
        held.new_paid_seats += decision.new_paid_seats
        held.new_project_admins += decision.new_project_admins
    after: dict[str, Any] = {
        "kind": kind.value,
        "reason": reason,
        "reasons": list(decision.reasons),
        "users": len(users),
        "new_paid_seats": decision.new_paid_seats,
    }
    if payload is not None:
        after["change"] = dict(payload)
    events.record(scope, Action.CHANGE_HELD, Target.HELD_CHANGE, held.id, None, after)
    if scope.recorder is not None:
        scope.recorder.held(
            licensing.HeldGrants(
                reason,
                decision.reasons,
                split.grants,
                split.new_paid_seat_user_ids,
                split.new_project_admin_user_ids,
            )
        )
    return held


def staged(
    scope: Scope,
    kind: HeldKind,
    payload: Mapping[str, Any],
    reason: str,
    change: Callable[[], tuple[_T, Verdict | None]],
) -> _T | HeldChange:
    """Make an admin's change in a savepoint, the guard judging its grants: kept when the
    guard lets them through; when it would hold them, undone and recorded as a staged held
    change instead, not in force until an admin confirms it. A rule edit that would both
    revoke and grant is staged whole: the rule in force stays as it was."""
    # Lock the seat counter before the savepoint: rolling a savepoint back releases the
    # locks taken inside it (PostgreSQL), and the window's count is only true under it.
    scope.lock_organization()
    savepoint = scope.session.begin_nested()
    try:
        result, verdict = change()
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        scope.invalidate()
        raise
    if verdict is None:
        savepoint.commit()
        return result
    savepoint.rollback()
    scope.invalidate()  # the rules and default role as they stand, without the change
    return hold(scope, verdict, reason, kind, payload)


def _open_directory_hold(scope: Scope, reason: str) -> HeldChange | None:
    """The open held change of a directory change by the same actor for the same reason,
    opened within the guard's window (at least a minute), to add grants to."""
    minutes = max(scope.organization.guard_window_minutes, 1)
    return scope.session.scalars(
        select(HeldChange)
        .where(
            HeldChange.org_id == scope.org_id,
            HeldChange.status == "held",
            HeldChange.created_at >= utcnow() - timedelta(minutes=minutes),
            HeldChange.kind == HeldKind.DIRECTORY.value,
            HeldChange.cause == scope.cause,
            HeldChange.reason == reason,
        )
        .order_by(HeldChange.created_at.desc())
        .limit(1)
    ).first()


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
