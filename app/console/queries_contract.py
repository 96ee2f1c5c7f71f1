"""Reads of the Contract page: the contract in force, its versions, seats against the tier and
the users waiting for a paid seat in the order they will be promoted. Reads only, scoped to
one organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import licensing
from app.console.queries_rules import organization
from app.models import User
from app.reporting.contracts import contract_history
from app.reporting.seats import SeatSummary, seat_summary

# The pending queue shows its head; the rest are counted.
QUEUE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Version:
    effective_at: datetime
    tier: int
    policy: str
    billing_terms: str
    starts_on: date | None
    ends_on: date | None


@dataclass(frozen=True, slots=True)
class Waiting:
    """A user waiting for a paid seat: their place in the queue and since when."""

    position: int
    user_id: str
    user_name: str
    pending_since: datetime | None


@dataclass(frozen=True, slots=True)
class ContractPage:
    current: Version
    versions: list[Version]  # newest first
    seats: SeatSummary
    queue: list[Waiting]
    queue_length: int


def contract_page(session: Session, org_id: UUID) -> ContractPage:
    """Everything the Contract page shows."""
    org = organization(session, org_id)
    history = contract_history(session, org)
    versions = [_version(at, contract) for at, contract in reversed(history.versions)]
    current = Version(
        effective_at=versions[0].effective_at,
        tier=org.paid_seat_tier,
        policy=org.overage_policy,
        billing_terms=org.billing_terms,
        starts_on=org.contract_starts_on,
        ends_on=org.contract_ends_on,
    )
    queue, length = pending_queue(session, org_id)
    return ContractPage(current, versions, seat_summary(session, org), queue, length)


def _version(effective_at: datetime, contract: licensing.Contract) -> Version:
    return Version(
        effective_at=effective_at,
        tier=contract.paid_seat_tier,
        policy=contract.policy.value,
        billing_terms=contract.billing_terms.value,
        starts_on=contract.starts_on,
        ends_on=contract.ends_on,
    )


def pending_queue(
    session: Session, org_id: UUID, limit: int = QUEUE_LIMIT
) -> tuple[list[Waiting], int]:
    """The head of the queue of users waiting for a paid seat, in arrival order (the order
    `promote_pending` follows: since when, then id), and how many wait in all."""
    waiting = User.org_id == org_id, User.pending_since.is_not(None)
    rows = session.execute(
        select(User.id, User.user_name, User.pending_since)
        .where(*waiting)
        .order_by(User.pending_since, User.id)
        .limit(limit)
    ).all()
    total = session.scalar(select(func.count()).select_from(User).where(*waiting)) or 0
    queue = [
        Waiting(position, str(user_id), name, since)
        for position, (user_id, name, since) in enumerate(rows, start=1)
    ]
    return queue, total
