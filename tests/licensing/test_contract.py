from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from licensing import (
    CLIENT,
    PROJECT_ADMIN,
    TEAM_MEMBER,
    VIEW_ONLY,
    Assignment,
    BillingTerms,
    Contract,
    CustomRole,
    InvalidValueError,
    OveragePolicy,
    PendingUser,
    Role,
    RoleCatalogue,
    Seat,
    SeatDecision,
    Source,
    classify_seat,
    decide_seat,
    promotion_order,
)

LEAD = CustomRole("lead", "Lead", 150).to_role()
CATALOGUE = RoleCatalogue([CustomRole("lead", "Lead", 150)])
ALLOW, HOLD = OveragePolicy.ALLOW, OveragePolicy.HOLD
S1, S2 = Source("r1", "g-eng"), Source("r2", "g-ops")
WANTS_PAID = {
    "*": Assignment("*", "client", (S1,)),
    "apollo": Assignment("apollo", "project_admin", (S2,)),
    "hermes": Assignment("hermes", "team_member", (S2,)),
}
# No free fallback for hermes, so holding drops that project.
FALLBACK = {
    "*": Assignment("*", "client", (S1,)),
    "apollo": Assignment("apollo", "client", (S1,)),
}
WANTS_PAID_IN_ZEUS = {"zeus": Assignment("zeus", "team_member", (S1,))}
WANTS_FREE = {"*": Assignment("*", "client", (S1,))}
PAID_ROLES = {"*": "client", "apollo": "project_admin", "hermes": "team_member"}
PAID, FREE, NONE = Seat.PAID, Seat.FREE, Seat.NONE


def decide(
    desired: dict[str, Assignment],
    policy: OveragePolicy,
    in_use: int,
    holds_paid: bool,
    is_active: bool = True,
) -> SeatDecision:
    contract = Contract(10, None, None, BillingTerms.ANNUAL, policy)
    return decide_seat(
        desired,
        FALLBACK,
        CATALOGUE,
        is_active=is_active,
        holds_paid_seat=holds_paid,
        paid_seats_in_use=in_use,
        contract=contract,
    )


@pytest.mark.parametrize(
    ("is_active", "roles", "seat"),
    [
        (True, [TEAM_MEMBER, VIEW_ONLY], PAID),
        (True, [LEAD], PAID),
        (True, [CLIENT, VIEW_ONLY], FREE),
        (True, [], NONE),
        (False, [PROJECT_ADMIN], NONE),
        (False, [CLIENT], NONE),
    ],
)
def test_classify_seat(is_active: bool, roles: list[Role], seat: Seat) -> None:
    assert classify_seat(is_active, roles) is seat


HELD_ROLES = {"*": "client", "apollo": "client"}


@pytest.mark.parametrize(
    ("policy", "in_use", "holds_paid", "desired", "seat", "roles", "is_pending", "is_overage"),
    [
        (ALLOW, 5, False, WANTS_PAID, PAID, PAID_ROLES, False, False),
        (ALLOW, 10, False, WANTS_PAID, PAID, PAID_ROLES, False, True),
        (HOLD, 9, False, WANTS_PAID, PAID, PAID_ROLES, False, False),
        # Hold with the tier used up: best free role per project; hermes has none and is dropped.
        (HOLD, 10, False, WANTS_PAID, FREE, HELD_ROLES, True, False),
        (HOLD, 10, False, WANTS_PAID_IN_ZEUS, NONE, {}, True, False),
        # Already paid: never demoted for billing, even over the tier.
        (HOLD, 12, True, WANTS_PAID, PAID, PAID_ROLES, False, True),
        (ALLOW, 12, True, WANTS_PAID, PAID, PAID_ROLES, False, True),
        (HOLD, 10, False, WANTS_FREE, FREE, {"*": "client"}, False, False),
    ],
)
def test_decide_seat_applies_overage_policy(
    policy: OveragePolicy,
    in_use: int,
    holds_paid: bool,
    desired: dict[str, Assignment],
    seat: Seat,
    roles: dict[str, str],
    is_pending: bool,
    is_overage: bool,
) -> None:
    decision = decide(desired, policy, in_use, holds_paid)
    assert decision.seat is seat
    assert {project: a.role_key for project, a in decision.assignments.items()} == roles
    assert (decision.is_pending, decision.is_overage) == (is_pending, is_overage)


@pytest.mark.parametrize("policy", [ALLOW, HOLD])
def test_inactive_user_holds_no_seat_and_no_roles(policy: OveragePolicy) -> None:
    decision = decide(WANTS_PAID, policy, 0, True, is_active=False)
    assert decision == SeatDecision(NONE, {}, is_pending=False, is_overage=False)


T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
PENDING = [
    PendingUser("u3", T0 + timedelta(hours=2)),
    PendingUser("u2", T0 + timedelta(hours=1)),
    PendingUser("u1", T0 + timedelta(hours=1)),
    PendingUser("u0", T0 + timedelta(hours=3)),
]


@pytest.mark.parametrize(
    ("free_seats", "promoted"),
    [(-1, []), (0, []), (1, ["u1"]), (3, ["u1", "u2", "u3"]), (10, ["u1", "u2", "u3", "u0"])],
)
def test_promotion_is_first_come_first_served(free_seats: int, promoted: list[str]) -> None:
    assert promotion_order(PENDING, free_seats) == promoted


@pytest.mark.parametrize(
    ("tier", "starts_on", "ends_on", "in_use", "free"),
    [
        (10, date(2025, 1, 1), date(2025, 12, 31), 4, 6),
        (10, None, None, 12, 0),
        (0, None, None, 0, 0),
    ],
)
def test_free_paid_seats_never_negative(
    tier: int, starts_on: date | None, ends_on: date | None, in_use: int, free: int
) -> None:
    contract = Contract(tier, starts_on, ends_on, BillingTerms.QUARTERLY, HOLD)
    assert contract.free_paid_seats(in_use) == free


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Contract(-1, None, None, BillingTerms.CUSTOM, ALLOW), "negative"),
        (
            lambda: Contract(5, date(2025, 2, 1), date(2025, 1, 1), BillingTerms.CUSTOM, ALLOW),
            "before",
        ),
        (lambda: PendingUser("u1", datetime(2025, 1, 1)), "timezone-aware"),
    ],
)
def test_invalid_contract_or_pending_user_raises(make: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        make()
