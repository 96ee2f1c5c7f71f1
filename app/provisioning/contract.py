"""The organization's contract (paid-seat tier, overage policy, period) and its mass-grant
guard thresholds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import licensing
from app.actions import Action, OutboxType, Target
from app.db import utcnow
from app.errors import InvalidChangeError
from app.models import ContractVersion, Organization, User
from app.provisioning import events
from app.provisioning.access import promote_pending, recompute
from app.provisioning.scope import Scope
from app.provisioning.specs import ContractSpec


def set_contract(scope: Scope, spec: ContractSpec) -> Organization:
    """Change the contract; a larger tier (or `allow`) promotes pending users at once."""
    org = scope.organization
    try:
        licensing.Contract(
            paid_seat_tier=spec.paid_seat_tier,
            starts_on=spec.starts_on,
            ends_on=spec.ends_on,
            billing_terms=licensing.BillingTerms(spec.billing_terms),
            policy=licensing.OveragePolicy(spec.policy),
        )
    except (licensing.LicensingError, ValueError) as error:
        raise InvalidChangeError(str(error)) from None
    scope.lock_organization()
    before = _contract_snapshot(org)
    org.paid_seat_tier = spec.paid_seat_tier
    org.overage_policy = spec.policy
    org.billing_terms = spec.billing_terms
    org.contract_starts_on = spec.starts_on
    org.contract_ends_on = spec.ends_on
    after = _contract_snapshot(org)
    if after != before:
        add_contract_version(scope.session, org, utcnow())
        events.record_changes(
            scope, Action.ORG_CONTRACT_CHANGED, Target.ORGANIZATION, scope.org_id, before, after
        )
        events.publish(scope, OutboxType.CONTRACT_CHANGED, None, after)
    if org.overage_policy == licensing.OveragePolicy.ALLOW:
        waiting = scope.session.scalars(
            select(User.id).where(User.org_id == scope.org_id, User.pending_since.is_not(None))
        ).all()
        recompute(scope, waiting, reason="contract_changed")
    else:
        promote_pending(scope)
    return org


def add_contract_version(session: Session, org: Organization, effective_at: datetime) -> None:
    """Record the organization's contract as it now stands, in force from `effective_at`.

    A version takes effect the moment it is set, never before or later: reports tell a past
    instant by the version whose `effective_at` is the latest not after it. The
    organization's columns stay the current contract, so seat decisions read no history.
    """
    session.add(
        ContractVersion(
            org_id=org.id,
            effective_at=effective_at,
            paid_seat_tier=org.paid_seat_tier,
            overage_policy=org.overage_policy,
            billing_terms=org.billing_terms,
            contract_starts_on=org.contract_starts_on,
            contract_ends_on=org.contract_ends_on,
        )
    )


def _contract_snapshot(org: Organization) -> dict[str, Any]:
    return {
        "paid_seat_tier": org.paid_seat_tier,
        "policy": org.overage_policy,
        "billing_terms": org.billing_terms,
        "starts_on": org.contract_starts_on.isoformat() if org.contract_starts_on else None,
        "ends_on": org.contract_ends_on.isoformat() if org.contract_ends_on else None,
    }


def set_guard_thresholds(
    scope: Scope,
    max_new_paid_seats: int,
    max_new_paid_share: float,
    max_new_project_admins: int,
    *,
    window_minutes: int | None = None,
    max_new_paid_seats_in_window: int | None = None,
) -> None:
    """Configure the mass-grant guard: the limits per change and request, and the sliding
    window (None keeps the window's current setting; 0 minutes turns it off)."""
    org = scope.organization
    window = org.guard_window_minutes if window_minutes is None else window_minutes
    in_window = (
        org.guard_max_new_paid_seats_in_window
        if max_new_paid_seats_in_window is None
        else max_new_paid_seats_in_window
    )
    try:
        licensing.GuardThresholds(
            max_new_paid_seats,
            max_new_paid_share,
            max_new_project_admins,
            window_minutes=window,
            max_new_paid_seats_in_window=in_window,
        )
    except licensing.LicensingError as error:
        raise InvalidChangeError(str(error)) from None
    before = _guard_snapshot(org)
    org.guard_max_new_paid_seats = max_new_paid_seats
    org.guard_max_new_paid_share = max_new_paid_share
    org.guard_max_new_project_admins = max_new_project_admins
    org.guard_window_minutes = window
    org.guard_max_new_paid_seats_in_window = in_window
    after = _guard_snapshot(org)
    if after != before:
        events.record(
            scope, Action.ORG_GUARD_CHANGED, Target.ORGANIZATION, scope.org_id, before, after
        )


def _guard_snapshot(org: Organization) -> dict[str, Any]:
    return {
        "max_new_paid_seats": org.guard_max_new_paid_seats,
        "max_new_paid_share": org.guard_max_new_paid_share,
        "max_new_project_admins": org.guard_max_new_project_admins,
        "window_minutes": org.guard_window_minutes,
        "max_new_paid_seats_in_window": org.guard_max_new_paid_seats_in_window,
    }
