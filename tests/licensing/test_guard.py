from dataclasses import replace

import pytest

from licensing import (
    ChangeKind,
    ChangeSplit,
    CustomRole,
    GuardThresholds,
    InvalidValueError,
    RoleCatalogue,
    RoleChange,
    UserAccess,
    classify_seat,
    evaluate_guard,
    split_change,
)

CATALOGUE = RoleCatalogue(
    [
        CustomRole("lead", "Lead", 450),
        CustomRole("peer", "Peer", 450),
        CustomRole("owner", "Owner", 600),
    ]
)
THRESHOLDS = GuardThresholds(
    max_new_paid_seats=10, max_new_paid_share=0.25, max_new_project_admins=2, share_floor=5
)
GONE = CustomRole("gone", "Gone", 1).to_role()
MARKS = {ChangeKind.ADDED: "+", ChangeKind.REMOVED: "-", ChangeKind.CHANGED: ">"}


def access(user_id: str, roles: dict[str, str]) -> UserAccess:
    # A custom role deleted from the catalogue was still paid while the user held it.
    seat = classify_seat(bool(roles), [CATALOGUE.find(key) or GONE for key in roles.values()])
    return UserAccess(user_id, bool(roles), roles, seat)


def describe(change: RoleChange) -> str:
    return (
        f"{change.project} {change.role_before or ''}{MARKS[change.kind]}{change.role_after or ''}"
    )


@pytest.mark.parametrize(
    ("before", "after", "grants", "revocations", "seat_change"),
    [
        ({}, {"apollo": "client"}, ["apollo +client"], [], ""),
        ({"apollo": "client"}, {"apollo": "team_member"}, ["apollo client>team_member"], [], "new"),
        (
            {"apollo": "project_admin"},
            {"apollo": "client"},
            [],
            ["apollo project_admin>client"],
            "released",
        ),
        ({"apollo": "team_member"}, {}, [], ["apollo team_member-"], "released"),
        # Equal ranks and roles that can no longer be ranked are treated as grants.
        ({"x": "custom:lead"}, {"x": "custom:peer"}, ["x custom:lead>custom:peer"], [], ""),
        ({"x": "custom:gone"}, {"x": "custom:lead"}, ["x custom:gone>custom:lead"], [], ""),
        (
            {"x": "client", "y": "team_member"},
            {"x": "team_member"},
            ["x client>team_member"],
            ["y team_member-"],
            "",
        ),
    ],
)
def test_split_change_separates_grants_from_revocations(
    before: dict[str, str],
    after: dict[str, str],
    grants: list[str],
    revocations: list[str],
    seat_change: str,
) -> None:
    split = split_change({"u1": access("u1", before)}, {"u1": access("u1", after)}, CATALOGUE)
    assert [describe(change) for change in split.grants] == grants
    assert [describe(change) for change in split.revocations] == revocations
    assert split.new_paid_seat_user_ids == (("u1",) if seat_change == "new" else ())
    assert split.released_paid_seat_user_ids == (("u1",) if seat_change == "released" else ())


@pytest.mark.parametrize(
    ("role_key", "is_admin"),
    [("project_admin", True), ("custom:owner", True), ("custom:lead", False), ("client", False)],
)
def test_roles_ranked_at_or_above_project_admin_count_as_admin_grants(
    role_key: str, is_admin: bool
) -> None:
    split = split_change({}, {"u1": access("u1", {"apollo": role_key})}, CATALOGUE)
    assert split.new_project_admin_user_ids == (("u1",) if is_admin else ())


def test_held_change_still_applies_its_revocations() -> None:
    before = access("u1", {"apollo": "client", "hermes": "team_member", "zeus": "project_admin"})
    after = access("u1", {"apollo": "project_admin", "zeus": "client"})
    split = split_change({"u1": before}, {"u1": after}, CATALOGUE)
    assert split.assignments_after_revocations(before) == {"apollo": "client", "zeus": "client"}


def fake_split(new_paid: int, new_admins: int) -> ChangeSplit:
    user_ids = tuple(f"u{n}" for n in range(max(new_paid, new_admins)))
    return ChangeSplit((), (), user_ids[:new_paid], (), user_ids[:new_admins])


@pytest.mark.parametrize(
    ("new_paid", "new_admins", "active_users", "reasons"),
    [
        (10, 2, 100, ()),
        (11, 0, 100, ("11 new paid seats exceed the limit of 10",)),
        (6, 0, 20, ("new paid seats for 30% of active users exceed the limit of 25%",)),
        (0, 3, 100, ("3 new project administrators exceed the limit of 2",)),
        (
            26,
            0,
            100,
            (
                "26 new paid seats exceed the limit of 10",
                "new paid seats for 26% of active users exceed the limit of 25%",
            ),
        ),
        (6, 0, 0, ("new paid seats for 600% of active users exceed the limit of 25%",)),
        # At or under the share floor the share test does not apply: ordinary onboarding.
        (1, 0, 0, ()),
        (5, 0, 6, ()),
    ],
)
def test_guard_holds_grants_over_any_threshold(
    new_paid: int, new_admins: int, active_users: int, reasons: tuple[str, ...]
) -> None:
    decision = evaluate_guard(fake_split(new_paid, new_admins), active_users, THRESHOLDS)
    assert (decision.is_held, decision.reasons) == (bool(reasons), reasons)
    assert (decision.new_paid_seats, decision.new_project_admins) == (new_paid, new_admins)


@pytest.mark.parametrize("users", [1, 50, 1000])
def test_revocations_are_never_held(users: int) -> None:
    admins = {"apollo": "project_admin", "*": "team_member"}
    before = {f"u{n}": access(f"u{n}", admins) for n in range(users)}
    after = {f"u{n}": access(f"u{n}", {}) for n in range(users)}
    split = split_change(before, after, CATALOGUE)
    decision = evaluate_guard(split, users, THRESHOLDS)
    assert not decision.is_held and split.grants == ()
    assert len(split.revocations) == 2 * users
    assert len(split.released_paid_seat_user_ids) == users


@pytest.mark.parametrize(("seats", "share", "admins"), [(-1, 0.1, 1), (1, 1.5, 1), (1, 0.1, -1)])
def test_thresholds_are_validated(seats: int, share: float, admins: int) -> None:
    with pytest.raises(InvalidValueError):
        GuardThresholds(seats, share, admins)


WINDOWED = GuardThresholds(
    max_new_paid_seats=10,
    max_new_paid_share=1.0,
    max_new_project_admins=2,
    window_minutes=10,
    max_new_paid_seats_in_window=20,
)


@pytest.mark.parametrize(
    ("new_paid", "in_request", "in_window", "thresholds", "reasons"),
    [
        (1, 9, 9, WINDOWED, ()),
        # One request of many small changes counts as one change.
        (
            1,
            10,
            10,
            WINDOWED,
            ("11 new paid seats exceed the limit of 10 (10 earlier in this request)",),
        ),
        # Many requests within the window.
        (1, 0, 20, WINDOWED, ("21 new paid seats within 10 minutes exceed the limit of 20",)),
        # The window turned off.
        (1, 0, 500, replace(WINDOWED, window_minutes=0), ()),
        # A change that grants no paid seat is never held by what came before it.
        (0, 50, 500, WINDOWED, ()),
    ],
)
def test_guard_counts_the_request_and_the_window(
    new_paid: int,
    in_request: int,
    in_window: int,
    thresholds: GuardThresholds,
    reasons: tuple[str, ...],
) -> None:
    decision = evaluate_guard(
        fake_split(new_paid, 0),
        1000,
        thresholds,
        earlier_in_request=in_request,
        earlier_in_window=in_window,
    )
    assert (decision.is_held, decision.reasons) == (bool(reasons), reasons)
    assert decision.new_paid_seats == new_paid


@pytest.mark.parametrize(("minutes", "limit"), [(-1, 10), (10, -1), (24 * 60 + 1, 10)])
def test_window_thresholds_are_validated(minutes: int, limit: int) -> None:
    with pytest.raises(InvalidValueError):
        GuardThresholds(1, 0.1, 1, window_minutes=minutes, max_new_paid_seats_in_window=limit)
