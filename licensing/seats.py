"""Seat classification: what kind of license a user's roles consume."""

from collections.abc import Collection
from enum import StrEnum

from licensing.roles import Role


class Seat(StrEnum):
    """The license a user holds."""

    PAID = "paid"
    FREE = "free"
    NONE = "none"


def classify_seat(is_active: bool, roles: Collection[Role]) -> Seat:
    """Paid if active with any paid role, free if active with only free roles, else none."""
    if not is_active or not roles:
        return Seat.NONE
    return Seat.PAID if any(role.is_paid for role in roles) else Seat.FREE
