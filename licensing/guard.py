"""Mass-grant guard: hold a change that grants too much at once for an admin to confirm.

Only grants are ever held. The caller applies a held change's revocations immediately
(`ChangeSplit.assignments_after_revocations`) and keeps its grants until an admin approves,
because delaying a revocation would leave access in place that the IdP already withdrew.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from licensing.dryrun import RoleChange, UserAccess, diff_users
from licensing.errors import InvalidValueError
from licensing.roles import PROJECT_ADMIN, RoleCatalogue
from licensing.seats import Seat

MAX_WINDOW_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class GuardThresholds:
    """Largest grant one change may make without being held; exceeding any one holds it."""

    max_new_paid_seats: int
    max_new_paid_share: float
    max_new_project_admins: int
    # The share test starts above this many new paid seats: in a 3-person organization one
    # new engineer is 33% of the users, and that is ordinary onboarding, not a mass grant.
    share_floor: int = 10
    # The sliding window: more new paid seats than this within so many minutes, over however
    # many requests, holds the change that crosses it (a sync spread over many requests).
    # A window of 0 minutes turns the window off.
    window_minutes: int = 10
    max_new_paid_seats_in_window: int = 100

    def __post_init__(self) -> None:
        if (
            min(
                self.max_new_paid_seats,
                self.max_new_project_admins,
                self.share_floor,
                self.window_minutes,
                self.max_new_paid_seats_in_window,
            )
            < 0
        ):
            raise InvalidValueError("guard thresholds must not be negative")
        if self.window_minutes > MAX_WINDOW_MINUTES:
            raise InvalidValueError(
                f"the guard's window must be at most {MAX_WINDOW_MINUTES} minutes (one day)"
            )
        if not 0.0 <= self.max_new_paid_share <= 1.0:
            raise InvalidValueError(
                f"max_new_paid_share {self.max_new_paid_share} must be between 0 and 1"
            )


@dataclass(frozen=True, slots=True)
class ChangeSplit:
    """A change split into grants, which may be held, and revocations, which never are."""

    grants: tuple[RoleChange, ...]
    revocations: tuple[RoleChange, ...]
    new_paid_seat_user_ids: tuple[str, ...]
    released_paid_seat_user_ids: tuple[str, ...]
    new_project_admin_user_ids: tuple[str, ...]

    def assignments_after_revocations(self, before: UserAccess) -> dict[str, str]:
        """The user's assignments with only the revocations applied: safe to write now."""
        assignments = dict(before.assignments)
        for change in self.revocations:
            if change.user_id != before.user_id:
                continue
            if change.role_after is None:
                assignments.pop(change.project, None)
            else:
                assignments[change.project] = change.role_after
        return assignments


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """Whether to hold the change's grants, and why."""

    is_held: bool
    reasons: tuple[str, ...]
    new_paid_seats: int
    new_project_admins: int


def _is_grant(change: RoleChange, catalogue: RoleCatalogue) -> bool:
    if change.role_after is None:
        return False
    if change.role_before is None:
        return True
    # A role deleted from the catalogue cannot be ranked, so replacing it counts as a grant; so
    # does a move between equal ranks, since the two roles' permissions differ.
    before = catalogue.find(change.role_before)
    return before is None or catalogue.get(change.role_after).rank >= before.rank


def split_change(
    before: Mapping[str, UserAccess],
    after: Mapping[str, UserAccess],
    catalogue: RoleCatalogue,
) -> ChangeSplit:
    """Split a change into grants (new or raised roles, new paid seats) and revocations."""
    grants: list[RoleChange] = []
    revocations: list[RoleChange] = []
    new_paid: list[str] = []
    released: list[str] = []
    for user in diff_users(before, after):
        for change in user.role_changes:
            (grants if _is_grant(change, catalogue) else revocations).append(change)
        if user.seat_after is Seat.PAID and user.seat_before is not Seat.PAID:
            new_paid.append(user.user_id)
        elif user.seat_before is Seat.PAID and user.seat_after is not Seat.PAID:
            released.append(user.user_id)
    # Custom roles ranked at or above Project Administrator count as admin grants too.
    admins = sorted(
        {
            change.user_id
            for change in grants
            if change.role_after is not None
            and catalogue.get(change.role_after).rank >= PROJECT_ADMIN.rank
        }
    )
    return ChangeSplit(
        tuple(grants), tuple(revocations), tuple(new_paid), tuple(released), tuple(admins)
    )


def evaluate_guard(
    split: ChangeSplit,
    active_user_count: int,
    thresholds: GuardThresholds,
    *,
    earlier_in_request: int = 0,
    earlier_in_window: int = 0,
) -> GuardDecision:
    """Hold the grants if any threshold is exceeded; revocations are never held.

    New paid seats are counted for the whole request (`earlier_in_request`: those its earlier
    changes gave, so a SCIM /Bulk of one-member changes counts as one change) and over the
    sliding window (`earlier_in_window`: those given within it before this change), so a
    mass grant cannot be split into changes small enough to pass one by one.
    """
    new_paid = len(split.new_paid_seat_user_ids)
    new_admins = len(split.new_project_admin_user_ids)
    in_request = new_paid + earlier_in_request
    # Measured against active users before the change; at least 1, so a first import into an
    # empty organization is measured too rather than dividing by zero.
    share = in_request / max(active_user_count, 1)
    reasons: list[str] = []
    if new_paid and in_request > thresholds.max_new_paid_seats:
        reasons.append(
            f"{in_request} new paid seats exceed the limit of {thresholds.max_new_paid_seats}"
            + (f" ({earlier_in_request} earlier in this request)" if earlier_in_request else "")
        )
    if new_paid and in_request > thresholds.share_floor and share > thresholds.max_new_paid_share:
        reasons.append(
            f"new paid seats for {share:.0%} of active users exceed the limit of "
            f"{thresholds.max_new_paid_share:.0%}"
        )
    in_window = new_paid + earlier_in_window
    if (
        new_paid
        and thresholds.window_minutes
        and in_window > thresholds.max_new_paid_seats_in_window
    ):
        reasons.append(
            f"{in_window} new paid seats within {thresholds.window_minutes} minutes exceed "
            f"the limit of {thresholds.max_new_paid_seats_in_window}"
        )
    if new_admins > thresholds.max_new_project_admins:
        reasons.append(
            f"{new_admins} new project administrators exceed the limit of "
            f"{thresholds.max_new_project_admins}"
        )
    return GuardDecision(bool(reasons), tuple(reasons), new_paid, new_admins)
