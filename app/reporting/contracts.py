"""The contract's history: its versions, each in force from the moment it was set."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import licensing
from app.models import ContractVersion, Organization


def contract_history(session: Session, organization: Organization) -> licensing.ContractHistory:
    """The organization's contract versions, oldest first (a few rows: one per change).

    An organization without versions (made before they were kept, outside the provisioning
    package) has had its current contract since it was created.
    """
    rows = session.scalars(
        select(ContractVersion)
        .where(ContractVersion.org_id == organization.id)
        .order_by(ContractVersion.effective_at, ContractVersion.id)
    ).all()
    versions = [
        (
            row.effective_at,
            _contract(
                row.paid_seat_tier,
                row.overage_policy,
                row.billing_terms,
                row.contract_starts_on,
                row.contract_ends_on,
            ),
        )
        for row in rows
    ]
    if not versions:
        current = _contract(
            organization.paid_seat_tier,
            organization.overage_policy,
            organization.billing_terms,
            organization.contract_starts_on,
            organization.contract_ends_on,
        )
        versions = [(organization.created_at, current)]
    return licensing.ContractHistory(tuple(versions))


def _contract(
    tier: int, policy: str, terms: str, starts_on: date | None, ends_on: date | None
) -> licensing.Contract:
    return licensing.Contract(
        paid_seat_tier=tier,
        starts_on=starts_on,
        ends_on=ends_on,
        billing_terms=licensing.BillingTerms(terms),
        policy=licensing.OveragePolicy(policy),
    )


def version_document(effective_at: datetime, contract: licensing.Contract) -> dict[str, Any]:
    """One contract version as the reports' JSON shows it."""
    return {
        "effective_at": effective_at.isoformat(),
        "tier": contract.paid_seat_tier,
        "policy": contract.policy.value,
        "billing_terms": contract.billing_terms.value,
        "starts_on": contract.starts_on.isoformat() if contract.starts_on else None,
        "ends_on": contract.ends_on.isoformat() if contract.ends_on else None,
    }
