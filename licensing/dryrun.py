"""Dry run: what a change would do to users' roles and the organization's seat totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from licensing.errors import InvalidValueError
from licensing.seats import Seat


class ChangeKind(StrEnum):
    """How a user's role in one project changes."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class UserAccess:
    """One user's access at a point in time: role key per project key, seat, pending flag."""

    user_id: str
    is_active: bool
    assignments: Mapping[str, str]
    seat: Seat
    is_pending: bool = False


@dataclass(frozen=True, slots=True)
class RoleChange:
    """A user's role in one project before and after; None means no role there."""

    user_id: str
    project: str
    role_before: str | None
    role_after: str | None

    @property
    def kind(self) -> ChangeKind:
        """Whether the role was added, removed or changed."""
        if self.role_before is None:
            return ChangeKind.ADDED
        return ChangeKind.REMOVED if self.role_after is None else ChangeKind.CHANGED


@dataclass(frozen=True, slots=True)
class UserChange:
    """Everything that changes for one user."""

    user_id: str
    role_changes: tuple[RoleChange, ...]
    seat_before: Seat
    seat_after: Seat
    is_pending_before: bool
    is_pending_after: bool


class SeatBucket(StrEnum):
    """Where seat totals count an active user: each active user in exactly one bucket."""

    PAID = "paid"
    FREE = "free"
    PENDING = "pending"  # waiting for a paid seat, on a free seat or none meanwhile
    NONE = "none"  # active, but no role at all


def seat_bucket(is_active: bool, seat: Seat, is_pending: bool) -> SeatBucket | None:
    """The bucket an active user counts in; None for an inactive one, counted nowhere."""
    if not is_active:
        return None
    # A pending user holds a free seat (or none) while waiting: counted as pending only.
    if is_pending:
        return SeatBucket.PENDING
    return SeatBucket(seat.value)


@dataclass(frozen=True, slots=True)
class SeatTotals:
    """An organization's active users by bucket (`seat_bucket`): each counted once, so paid +
    free + pending + none is the number of active users."""

    paid: int
    free: int
    pending: int
    none: int = 0

    def __post_init__(self) -> None:
        # A negative total means the caller's totals do not match the users it passed.
        if min(self.paid, self.free, self.pending, self.none) < 0:
            raise InvalidValueError(f"seat totals must not be negative: {self}")

    @property
    def active(self) -> int:
        """Active users: the four buckets added up."""
        return self.paid + self.free + self.pending + self.none

    def moved(self, moves: Mapping[SeatBucket, int]) -> SeatTotals:
        """These totals with each bucket moved by its count (users in minus users out)."""
        return SeatTotals(
            self.paid + moves.get(SeatBucket.PAID, 0),
            self.free + moves.get(SeatBucket.FREE, 0),
            self.pending + moves.get(SeatBucket.PENDING, 0),
            self.none + moves.get(SeatBucket.NONE, 0),
        )


@dataclass(frozen=True, slots=True)
class HeldGrants:
    """Grants of one change the mass-grant guard holds: not applied until an admin confirms."""

    reason: str  # what made the change: rule_created, membership_changed, ...
    reasons: tuple[str, ...]  # the thresholds it exceeds
    grants: tuple[RoleChange, ...]
    new_paid_seat_user_ids: tuple[str, ...]
    new_project_admin_user_ids: tuple[str, ...]

    @property
    def user_ids(self) -> tuple[str, ...]:
        """Every user the held grants would reach, sorted."""
        return tuple(sorted({c.user_id for c in self.grants} | set(self.new_paid_seat_user_ids)))


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """Per-user changes (users that change only, by user_id) and org totals before/after.

    Only what would really be applied counts: grants the mass-grant guard would hold are in
    `held`, not in `changes` nor in the totals after.
    """

    changes: tuple[UserChange, ...]
    totals_before: SeatTotals
    totals_after: SeatTotals
    held: tuple[HeldGrants, ...] = ()


def _no_access(user_id: str) -> UserAccess:
    return UserAccess(user_id, is_active=False, assignments={}, seat=Seat.NONE)


def diff_user(before: UserAccess, after: UserAccess) -> UserChange | None:
    """What changes between two states of one user, or None if nothing does."""
    role_changes: list[RoleChange] = []
    for project in sorted(before.assignments.keys() | after.assignments.keys()):
        role_before, role_after = before.assignments.get(project), after.assignments.get(project)
        if role_before != role_after:
            role_changes.append(RoleChange(after.user_id, project, role_before, role_after))
    if not role_changes and (before.seat, before.is_pending) == (after.seat, after.is_pending):
        return None
    return UserChange(
        after.user_id,
        tuple(role_changes),
        before.seat,
        after.seat,
        before.is_pending,
        after.is_pending,
    )


def diff_users(
    before: Mapping[str, UserAccess], after: Mapping[str, UserAccess]
) -> tuple[UserChange, ...]:
    """Changes of every user in either mapping; a user missing from one side has no access."""
    changes = (
        diff_user(before.get(user_id, _no_access(user_id)), after.get(user_id, _no_access(user_id)))
        for user_id in sorted(before.keys() | after.keys())
    )
    return tuple(change for change in changes if change is not None)


def diff_access(
    before: Mapping[str, UserAccess],
    after: Mapping[str, UserAccess],
    totals_before: SeatTotals,
    held: Sequence[HeldGrants] = (),
) -> DryRunResult:
    """Dry-run result for the affected users; totals after = totals before + their deltas."""
    changes = diff_users(before, after)
    moves: Counter[SeatBucket] = Counter()
    # Every user passed, changed or not: an active user with no role who is deactivated
    # changes no role and no seat, yet leaves the `none` bucket.
    for user_id in before.keys() | after.keys():
        was = _bucket(before.get(user_id, _no_access(user_id)))
        now = _bucket(after.get(user_id, _no_access(user_id)))
        if was is not now:
            if was is not None:
                moves[was] -= 1
            if now is not None:
                moves[now] += 1
    return DryRunResult(changes, totals_before, totals_before.moved(moves), tuple(held))


def _bucket(access: UserAccess) -> SeatBucket | None:
    return seat_bucket(access.is_active, access.seat, access.is_pending)
