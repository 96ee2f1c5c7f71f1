"""Recompute roles and seats of exactly the users a change affects, in its transaction:
plan (current and desired roles) → guard (hold mass grants) → decide (seat and roles under
the contract) → write (bulk rows, seat ledger, audit)."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from uuid import UUID

from sqlalchemy import select

import licensing
from app.db import utcnow
from app.models import SeatKind, User
from app.provisioning.access.guard import Verdict, assess
from app.provisioning.access.guard import guard as guard_grants
from app.provisioning.access.plan import AccessPlan, plan_access
from app.provisioning.access.writes import WRITE_BATCH, AccessWrites, write_access
from app.provisioning.scope import Scope

# The roles of an organization without custom roles.
BUILT_IN_CATALOGUE = licensing.RoleCatalogue(())


def recompute(scope: Scope, user_ids: Iterable[UUID], reason: str, guard: bool = True) -> None:
    """Recompute roles and seats of exactly these users, in this transaction.

    Grants of a change too large for the mass-grant guard are held for an admin; its
    revocations always apply at once.
    """
    plans = _plans(scope, user_ids)
    if guard:
        plans = guard_grants(scope, plans, reason)
    _apply_all(scope, plans, reason)


def recompute_unless_held(scope: Scope, user_ids: Iterable[UUID], reason: str) -> Verdict | None:
    """Recompute these users, unless the guard would hold the change's grants: then write
    nothing and return its verdict, for the caller to stage the whole change."""
    plans = _plans(scope, user_ids)
    verdict = assess(scope, plans)
    if verdict is None:
        _apply_all(scope, plans, reason)
    return verdict


def _plans(scope: Scope, user_ids: Iterable[UUID]) -> list[AccessPlan]:
    """The users' current and desired access, read under the seat counter's lock."""
    ids = sorted(set(user_ids), key=attrgetter("int"))  # UUID order, sorted in C
    if not ids:
        return []
    # Seats and pending marks change only under the seat counter's lock: take it before
    # reading them, or a promotion committed meanwhile goes unseen and the count drifts.
    scope.lock_seats_if_in_play()
    return plan_access(scope, ids)


def _apply_all(scope: Scope, plans: list[AccessPlan], reason: str) -> None:
    """Decide and write every plan; promote pending users when a paid seat was freed."""
    if not plans:
        return
    freed = False
    writes = AccessWrites()
    for plan in plans:
        freed = _apply(scope, plan, reason, writes) or freed
        if writes.size >= WRITE_BATCH:
            write_access(scope, writes)
    write_access(scope, writes)
    scope.session.flush()
    if freed:
        promote_pending(scope)


def decide(scope: Scope, plan: AccessPlan) -> licensing.SeatDecision:
    """One user's seat and assignments under the contract, taking the seat counter's lock
    when a paid seat is in question."""
    desired = plan.desired
    # A user losing all access needs no role lookups: spare reading the custom roles.
    catalogue = scope.catalogue() if desired else BUILT_IN_CATALOGUE
    wants_paid = any(catalogue.get(a.role_key).is_paid for a in desired.values())
    holds_paid = plan.user.seat == SeatKind.PAID
    if wants_paid or holds_paid:
        scope.lock_organization()
    contract = scope.contract()
    paid_in_use = scope.organization.paid_seat_count
    # The free fallback only matters when `hold` would keep this user off a paid seat.
    may_hold = (
        wants_paid
        and not holds_paid
        and contract.policy is licensing.OveragePolicy.HOLD
        and paid_in_use + 1 > contract.paid_seat_tier
    )
    return licensing.decide_seat(
        desired,
        scope.resolver().free_fallback_roles(plan.groups) if may_hold else {},
        catalogue,
        is_active=plan.is_active,
        holds_paid_seat=holds_paid,
        paid_seats_in_use=paid_in_use - (1 if holds_paid else 0),
        contract=contract,
    )


def _apply(scope: Scope, plan: AccessPlan, reason: str, writes: AccessWrites) -> bool:
    """Decide one user's assignments and seat, queue the rows that record them and keep the
    seat counter true; returns True when a paid seat was released."""
    user = plan.user
    decision = decide(scope, plan)
    now = utcnow()
    queued = writes.size
    writes.revoke(user.id, plan.current, decision.assignments, reason)
    for project, wanted in decision.assignments.items():
        writes.assign(scope, user.id, plan.current, project, wanted, reason, now)
    if writes.size != queued:  # a role granted, changed or revoked
        writes.publish_access(user.id, decision.assignments, reason)
    new_seat = writes.seat(scope, user, decision, reason, now)
    holds_paid = user.seat == SeatKind.PAID
    released = holds_paid and new_seat != SeatKind.PAID
    if new_seat == SeatKind.PAID and not holds_paid:
        scope.organization.paid_seat_count += 1
        scope.paid_seats_granted.add(str(user.id))
    elif released:
        scope.organization.paid_seat_count -= 1
    if scope.recorder is not None:
        scope.recorder.decided(plan, decision)
    return released


def promote_pending(scope: Scope) -> None:
    """Give freed paid seats to pending users, longest waiting first."""
    scope.lock_organization()
    free = scope.contract().free_paid_seats(scope.organization.paid_seat_count)
    if free <= 0:
        return
    waiting = scope.session.execute(
        select(User.id, User.pending_since)
        .where(User.org_id == scope.org_id, User.pending_since.is_not(None))
        .order_by(User.pending_since, User.id)
        .limit(free)
    ).all()
    order = licensing.promotion_order(
        [licensing.PendingUser(str(i), since) for i, since in waiting if since], free
    )
    if order:
        recompute(scope, [UUID(i) for i in order], reason="promoted")
