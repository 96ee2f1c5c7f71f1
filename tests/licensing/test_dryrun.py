import pytest

from licensing import (
    ChangeKind,
    InvalidValueError,
    RoleChange,
    Seat,
    SeatTotals,
    UserAccess,
    diff_access,
)

PAID, FREE, NONE = Seat.PAID, Seat.FREE, Seat.NONE
TOTALS = SeatTotals(paid=10, free=20, pending=2)
MARKS = {ChangeKind.ADDED: "+", ChangeKind.REMOVED: "-", ChangeKind.CHANGED: ">"}


def access(seat: Seat, is_pending: bool = False, **roles: str) -> UserAccess:
    # Keyword `all` stands for the `*` project key, which is not a valid keyword.
    assignments = {"*" if project == "all" else project: role for project, role in roles.items()}
    return UserAccess("u1", seat is not NONE, assignments, seat, is_pending)


def describe(change: RoleChange) -> str:
    return (
        f"{change.project} {change.role_before or ''}{MARKS[change.kind]}{change.role_after or ''}"
    )


FREE_CLIENT = access(FREE, all="client")
PENDING_CLIENT = access(FREE, True, all="client")
PAID_MEMBER = access(PAID, all="team_member")
PAID_ADMIN = access(PAID, all="client", apollo="project_admin")
INACTIVE = access(NONE)


@pytest.mark.parametrize(
    ("before", "after", "role_changes", "totals_after"),
    [
        (None, PAID_MEMBER, ["* +team_member"], SeatTotals(11, 20, 2)),
        (FREE_CLIENT, PAID_ADMIN, ["apollo +project_admin"], SeatTotals(11, 19, 2)),
        (PAID_MEMBER, PAID_ADMIN, ["* team_member>client", "apollo +project_admin"], TOTALS),
        (PAID_MEMBER, INACTIVE, ["* team_member-"], SeatTotals(9, 20, 2)),
        # A pending user counts as pending only, not also in the free seat held meanwhile.
        (FREE_CLIENT, PENDING_CLIENT, [], SeatTotals(10, 19, 3)),
        (PENDING_CLIENT, None, ["* client-"], SeatTotals(10, 20, 1)),
    ],
)
def test_diff_access_reports_role_and_seat_changes_and_totals(
    before: UserAccess | None,
    after: UserAccess | None,
    role_changes: list[str],
    totals_after: SeatTotals,
) -> None:
    result = diff_access({"u1": before} if before else {}, {"u1": after} if after else {}, TOTALS)
    (change,) = result.changes
    assert [describe(role_change) for role_change in change.role_changes] == role_changes
    seats = (before.seat if before else NONE, after.seat if after else NONE)
    assert (change.seat_before, change.seat_after) == seats
    assert (result.totals_before, result.totals_after) == (TOTALS, totals_after)


def test_diff_access_sums_deltas_and_omits_unchanged_users() -> None:
    same = UserAccess("u0", True, {"*": "client"}, FREE)
    before = {"u0": same, "u2": UserAccess("u2", True, {"*": "team_member"}, PAID)}
    after = {
        "u0": same,
        "u2": UserAccess("u2", True, {"*": "client"}, FREE),
        "u1": UserAccess("u1", True, {"apollo": "project_admin"}, PAID),
    }
    result = diff_access(before, after, TOTALS)
    assert [change.user_id for change in result.changes] == ["u1", "u2"]
    assert result.totals_after == SeatTotals(10, 21, 2)


def test_totals_inconsistent_with_users_raise() -> None:
    with pytest.raises(InvalidValueError, match="negative"):
        diff_access({"u1": PAID_MEMBER}, {}, SeatTotals(0, 0, 0))
