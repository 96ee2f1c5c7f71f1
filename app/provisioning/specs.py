"""What callers ask the provisioning core for: the input types of its operations."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Plain string attributes of a user, by column name.
USER_STRING_COLUMNS = (
    "display_name",
    "given_name",
    "family_name",
    "middle_name",
    "formatted_name",
    "honorific_prefix",
    "honorific_suffix",
    "nick_name",
    "profile_url",
    "title",
    "user_type",
    "preferred_language",
    "locale",
    "timezone",
    "employee_number",
    "cost_center",
    "organization_name",
    "division",
    "department",
    "manager_id",
)
MULTI_VALUED = ("emails", "phoneNumbers", "addresses", "photos", "roles", "x509Certificates")


@dataclass(frozen=True, slots=True)
class UserSpec:
    """The complete desired state of a user's directory attributes (a create or full replace)."""

    user_name: str
    external_id: str | None = None
    # None: not given. A new user starts active; a replace keeps the current state, so a
    # PUT or PATCH that omits or removes "active" never reactivates a deactivated user.
    is_active: bool | None = None
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    multi_values: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    extensions: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """The desired state of a group; `member_ids` None leaves members untouched."""

    display_name: str
    external_id: str | None = None
    extensions: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    member_ids: Collection[str] | None = None


@dataclass(frozen=True, slots=True)
class MemberChange:
    """Members to add and remove, applied after an optional full replacement."""

    added: Collection[str] = ()
    removed: Collection[str] = ()
    replaced: Collection[str] | None = None


@dataclass(frozen=True, slots=True)
class LoginClaims:
    """What an IdP asserted at login, already verified by the SSO adapter."""

    subject: str
    email: str | None = None
    email_verified: bool = False
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    # None: the IdP sent no group claim (or none is configured); memberships stay.
    groups: Sequence[str] | None = None
    groups_overage: bool = False


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """Members of the group matched by `match`/`group_value` get `role_key` in `project_key`."""

    match: str
    group_value: str
    role_key: str
    project_key: str = "*"
    priority: int = 0


@dataclass(frozen=True, slots=True)
class RuleChanges:
    """Several mapping-rule changes made together, in this order: removals (by rule id),
    edits (rule id, the whole rule once edited), additions."""

    removed: Sequence[str] = ()
    edited: Sequence[tuple[str, RuleSpec]] = ()
    added: Sequence[RuleSpec] = ()

    def __len__(self) -> int:
        return len(self.removed) + len(self.edited) + len(self.added)


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The organization's contract: its paid-seat tier, overage policy and period."""

    paid_seat_tier: int
    policy: str = "allow"
    billing_terms: str = "annual"
    starts_on: date | None = None
    ends_on: date | None = None
