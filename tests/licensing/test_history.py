from datetime import UTC, date, datetime

import pytest

from licensing import (
    BillingTerms,
    Contract,
    ContractHistory,
    InvalidValueError,
    OveragePolicy,
    Seat,
    SeatBucket,
    SeatTotals,
    UserAccess,
    diff_access,
    seat_bucket,
)


def contract(tier: int, policy: OveragePolicy = OveragePolicy.ALLOW) -> Contract:
    return Contract(tier, date(2026, 1, 1), None, BillingTerms.ANNUAL, policy)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


HISTORY = ContractHistory(
    ((at(1), contract(10)), (at(10), contract(5, OveragePolicy.HOLD)), (at(20), contract(20)))
)


@pytest.mark.parametrize(
    ("instant", "tier"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), 10),  # before the first version: the first
        (at(1), 10),
        (at(9, 23), 10),
        (at(10), 5),  # in force from the moment it was set
        (at(19, 23), 5),
        (at(20), 20),
        (datetime(2030, 1, 1, tzinfo=UTC), 20),
    ],
)
def test_contract_in_force_at_an_instant(instant: datetime, tier: int) -> None:
    assert HISTORY.at(instant).paid_seat_tier == tier


def test_changes_between_take_the_versions_after_start_up_to_end() -> None:
    assert [c.paid_seat_tier for _, c in HISTORY.changes_between(at(1), at(20))] == [5, 20]
    assert HISTORY.changes_between(at(10), at(19)) == []


@pytest.mark.parametrize(
    "versions",
    [
        (),
        ((datetime(2026, 3, 1), contract(1)),),  # naive
        ((at(10), contract(1)), (at(1), contract(2))),  # out of order
    ],
)
def test_contract_history_refuses_what_cannot_be_told(
    versions: tuple[tuple[datetime, Contract], ...],
) -> None:
    with pytest.raises(InvalidValueError):
        ContractHistory(versions)


@pytest.mark.parametrize(
    ("is_active", "seat", "is_pending", "bucket"),
    [
        (True, Seat.PAID, False, SeatBucket.PAID),
        (True, Seat.FREE, False, SeatBucket.FREE),
        (True, Seat.FREE, True, SeatBucket.PENDING),  # waiting on a free seat: pending only
        (True, Seat.NONE, True, SeatBucket.PENDING),
        (True, Seat.NONE, False, SeatBucket.NONE),  # active with no role
        (False, Seat.NONE, False, None),  # inactive: counted nowhere
    ],
)
def test_each_active_user_counts_in_one_bucket(
    is_active: bool, seat: Seat, is_pending: bool, bucket: SeatBucket | None
) -> None:
    assert seat_bucket(is_active, seat, is_pending) == bucket


def test_seat_totals_add_up_to_active_users() -> None:
    totals = SeatTotals(3, 2, 1, 4)
    assert totals.active == 10
    moved = totals.moved({SeatBucket.FREE: -1, SeatBucket.PENDING: 1})
    assert moved == SeatTotals(3, 1, 2, 4) and moved.active == 10


def test_dry_run_totals_move_each_user_between_buckets() -> None:
    no_role = UserAccess("u1", True, {}, Seat.NONE)
    waiting = UserAccess("u2", True, {"*": "client"}, Seat.FREE, is_pending=True)
    before = {"u1": no_role, "u2": UserAccess("u2", True, {"*": "client"}, Seat.FREE)}
    after = {"u1": UserAccess("u1", False, {}, Seat.NONE), "u2": waiting}
    result = diff_access(before, after, SeatTotals(0, 1, 0, 1))
    # u1 deactivated changes no role and no seat, yet is no longer an active user.
    assert result.totals_after == SeatTotals(0, 0, 1, 0)
