"""Contracted paid-seat tier and the overage policy that applies when it is reached."""

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from licensing.errors import InvalidValueError
from licensing.mapping import Assignment
from licensing.roles import RoleCatalogue
from licensing.seats import Seat, classify_seat


class OveragePolicy(StrEnum):
    """What happens to a paid grant once the tier is used up."""

    ALLOW = "allow"
    HOLD = "hold"


class BillingTerms(StrEnum):
    """How often the organization is billed."""

    ANNUAL = "annual"
    QUARTERLY = "quarterly"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Contract:
    """An organization's contract: paid-seat tier, period, billing terms and overage policy."""

    paid_seat_tier: int
    starts_on: date | None
    ends_on: date | None
    billing_terms: BillingTerms
    policy: OveragePolicy

    def __post_init__(self) -> None:
        if self.paid_seat_tier < 0:
            raise InvalidValueError(f"paid seat tier {self.paid_seat_tier} must not be negative")
        if (
            self.starts_on is not None
            and self.ends_on is not None
            and self.ends_on < self.starts_on
        ):
            raise InvalidValueError(
                f"contract ends on {self.ends_on} before it starts on {self.starts_on}"
            )

    def free_paid_seats(self, paid_seats_in_use: int) -> int:
        """Paid seats still available under the tier (never negative)."""
        return max(0, self.paid_seat_tier - paid_seats_in_use)


@dataclass(frozen=True, slots=True)
class ContractHistory:
    """An organization's contract versions, oldest first: each is in force from its
    effective instant (the moment it was set) until the next one's."""

    versions: tuple[tuple[datetime, Contract], ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise InvalidValueError("a contract history has at least one version")
        instants = [effective_at for effective_at, _ in self.versions]
        if any(instant.tzinfo is None for instant in instants):
            raise InvalidValueError("contract versions take effect at timezone-aware instants")
        if instants != sorted(instants):
            raise InvalidValueError("contract versions must be given oldest first")

    def at(self, instant: datetime) -> Contract:
        """The contract in force at `instant`; before the first version, the first one (the
        contract the organization started with)."""
        index = bisect_right([effective_at for effective_at, _ in self.versions], instant)
        return self.versions[max(0, index - 1)][1]

    def changes_between(self, start: datetime, end: datetime) -> list[tuple[datetime, Contract]]:
        """The versions that take effect in (start, end], oldest first."""
        return [(at, contract) for at, contract in self.versions if start < at <= end]


@dataclass(frozen=True, slots=True)
class SeatDecision:
    """The seat and assignments to write for one user.

    `assignments` derive from `effective_roles` (pending users get `free_fallback_roles`);
    `is_overage` means this user's paid seat takes the organization beyond its tier.
    """

    seat: Seat
    assignments: dict[str, Assignment]
    is_pending: bool
    is_overage: bool


@dataclass(frozen=True, slots=True)
class PendingUser:
    """A user held on free roles, waiting for a paid seat."""

    user_id: str
    pending_since: datetime

    def __post_init__(self) -> None:
        # Naive and aware datetimes cannot be compared, which would break promotion order.
        if self.pending_since.tzinfo is None:
            raise InvalidValueError(f"pending_since of {self.user_id!r} must be timezone-aware")


def decide_seat(
    desired: Mapping[str, Assignment],
    free_fallback: Mapping[str, Assignment],
    catalogue: RoleCatalogue,
    *,
    is_active: bool,
    holds_paid_seat: bool,
    paid_seats_in_use: int,
    contract: Contract,
) -> SeatDecision:
    """Seat and roles for one user; `paid_seats_in_use` excludes them. Never fails on billing."""
    # Deprovisioning releases roles and seat; the record and its history stay with the caller.
    if not is_active:
        return SeatDecision(Seat.NONE, {}, is_pending=False, is_overage=False)
    seat = classify_seat(True, [catalogue.get(a.role_key) for a in desired.values()])
    if seat is not Seat.PAID:
        return SeatDecision(seat, dict(desired), is_pending=False, is_overage=False)
    is_overage = paid_seats_in_use + 1 > contract.paid_seat_tier
    # A paid seat already held is kept even over the tier: billing never demotes anyone.
    if contract.policy is OveragePolicy.ALLOW or holds_paid_seat or not is_overage:
        return SeatDecision(Seat.PAID, dict(desired), is_pending=False, is_overage=is_overage)
    held: dict[str, Assignment] = {}
    for project, assignment in desired.items():
        is_paid = catalogue.get(assignment.role_key).is_paid
        candidate = free_fallback.get(project) if is_paid else assignment
        # No free role for the project drops it; a paid "fallback" is a caller bug and ignored.
        if candidate is not None and not catalogue.get(candidate.role_key).is_paid:
            held[project] = candidate
    seat = classify_seat(True, [catalogue.get(a.role_key) for a in held.values()])
    return SeatDecision(seat, held, is_pending=True, is_overage=False)


def promotion_order(pending: Sequence[PendingUser], free_paid_seats: int) -> list[str]:
    """User ids to promote now: longest waiting first (ties by user_id), at most the free seats."""
    # The caller runs each promoted user through `decide_seat` again: their groups may have changed.
    if free_paid_seats <= 0:
        return []
    queue = sorted(pending, key=lambda user: (user.pending_since, user.user_id))
    return [user.user_id for user in queue[:free_paid_seats]]
