"""Request bodies of the admin API, checked field by field and turned into typed changes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta
from typing import Any

from app.admin.changes import (
    KEEP,
    ContractInput,
    CustomRoleEdit,
    CustomRoleInput,
    GuardInput,
    Keep,
    ProposedChange,
    RuleEdit,
    RuleInput,
)
from app.errors import InvalidChangeError

RULE_FIELDS = ("group", "match", "role", "project", "priority")
CUSTOM_ROLE_FIELDS = ("slug", "name", "rank", "description", "permissions")
LARGEST_INTEGER = 2**31 - 1  # PostgreSQL's integer
CONTRACT_FIELDS = ("paid_seats", "policy", "billing_terms", "starts_on", "ends_on")
GUARD_FIELDS = (
    "max_new_paid_seats",
    "max_new_paid_share",
    "max_new_project_admins",
    "window_minutes",
    "max_new_paid_seats_in_window",
)
# The seat history is computed day by day; a longer period is a mistake, not a report.
MAX_HISTORY_DAYS = 3660
DEFAULT_HISTORY_DAYS = 30
DRY_RUN_FIELDS = (
    "add_rules",
    "remove_rules",
    "edit_rules",
    "default_role",
    "custom_roles",
    "paid_seats",
    "policy",
)


class PayloadError(InvalidChangeError):
    """The request body does not have the expected shape."""


class Payload:
    """A JSON object read field by field: wrong types and unknown fields are refused."""

    def __init__(self, body: Any, what: str, fields: Collection[str]) -> None:
        if not isinstance(body, dict):
            raise PayloadError(f"{what} must be a JSON object")
        unknown = sorted(set(body) - set(fields))
        if unknown:
            raise PayloadError(
                f"unknown field(s) in {what}: {', '.join(unknown)}; expected: {', '.join(fields)}"
            )
        self._body: dict[str, Any] = body
        self._what = what

    def has(self, name: str) -> bool:
        return name in self._body

    def _fail(self, name: str, expected: str) -> PayloadError:
        return PayloadError(f"{name} in {self._what} must be {expected}")

    def text(self, name: str) -> str | None:
        """A string field; None when absent or null."""
        value = self._body.get(name)
        if value is not None and not isinstance(value, str):
            raise self._fail(name, "a string")
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None or not value.strip():
            raise PayloadError(f"{self._what} needs {name}")
        return value

    def integer(self, name: str) -> int | None:
        """An integer field; None when absent or null. JSON integers have no bound, the
        columns they go to do: past PostgreSQL's integer the write would be a 500."""
        value = self._body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._fail(name, "an integer")
        if value is not None and abs(value) > LARGEST_INTEGER:
            raise self._fail(name, f"an integer between -{LARGEST_INTEGER} and {LARGEST_INTEGER}")
        return value

    def flag(self, name: str) -> bool:
        """A boolean field; False when absent or null."""
        value = self._body.get(name)
        if value is not None and not isinstance(value, bool):
            raise self._fail(name, "true or false")
        return bool(value)

    def required_integer(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise PayloadError(f"{self._what} needs {name}")
        return value

    def number(self, name: str) -> float | None:
        value = self._body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(name, "a number")
        return float(value)

    def day(self, name: str) -> date | None | Keep:
        """An ISO date; KEEP when absent, None when null."""
        if name not in self._body:
            return KEEP
        value = self._body[name]
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(name, "an ISO date (YYYY-MM-DD) or null")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self._fail(name, "an ISO date (YYYY-MM-DD) or null") from None

    def texts(self, name: str) -> tuple[str, ...] | None:
        value = self._body.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(name, "a list of strings")
        return tuple(value)

    def items(self, name: str) -> list[Any]:
        value = self._body.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(name, "a list")
        return value


def rule_input(body: Any, what: str = "the rule") -> RuleInput:
    """A whole mapping rule: group and role required, match/project/priority defaulted."""
    payload = Payload(body, what, RULE_FIELDS)
    defaults = RuleInput(group="", role="")
    return RuleInput(
        group=payload.required_text("group"),
        role=payload.required_text("role"),
        match=payload.text("match") or defaults.match,
        project=payload.text("project") or defaults.project,
        priority=payload.integer("priority") or 0,
    )


def rule_edit(body: Any, what: str = "the rule", extra: Collection[str] = ()) -> RuleEdit:
    """Some fields of a mapping rule."""
    payload = Payload(body, what, (*RULE_FIELDS, "rebind", *extra))
    return RuleEdit(
        group=payload.text("group"),
        role=payload.text("role"),
        match=payload.text("match"),
        project=payload.text("project"),
        priority=payload.integer("priority"),
        rebind=payload.flag("rebind"),
    )


def project_input(body: Any) -> tuple[str, str]:
    """A new project's key and name (the name defaults to the key)."""
    payload = Payload(body, "the project", ("key", "name"))
    key = payload.required_text("key")
    return key, payload.text("name") or key


def project_name(body: Any) -> str:
    return Payload(body, "the project", ("name",)).required_text("name")


def custom_role_input(body: Any) -> CustomRoleInput:
    payload = Payload(body, "the custom role", CUSTOM_ROLE_FIELDS)
    return CustomRoleInput(
        slug=payload.required_text("slug"),
        name=payload.required_text("name"),
        rank=payload.required_integer("rank"),
        description=payload.text("description") or "",
        permissions=payload.texts("permissions") or (),
    )


def custom_role_edit(key: str, body: Any, what: str = "the custom role") -> CustomRoleEdit:
    payload = Payload(body, what, ("key", *CUSTOM_ROLE_FIELDS[1:]))
    return CustomRoleEdit(
        key=key,
        name=payload.text("name"),
        rank=payload.integer("rank"),
        description=payload.text("description"),
        permissions=payload.texts("permissions"),
    )


def default_role(body: Any) -> str | None:
    """The default role's key or name, or None for no default role."""
    payload = Payload(body, "the default role", ("role",))
    if not payload.has("role"):
        raise PayloadError("the default role needs role (a role key or name, or null for none)")
    return payload.text("role")


def contract_input(body: Any) -> ContractInput:
    """Contract fields to change; absent fields keep their value, a null date clears it."""
    payload = Payload(body, "the contract", CONTRACT_FIELDS)
    paid_seats = payload.integer("paid_seats")
    policy = payload.text("policy")
    billing_terms = payload.text("billing_terms")
    return ContractInput(
        paid_seats=KEEP if paid_seats is None else paid_seats,
        policy=KEEP if policy is None else policy,
        billing_terms=KEEP if billing_terms is None else billing_terms,
        starts_on=payload.day("starts_on"),
        ends_on=payload.day("ends_on"),
    )


def guard_input(body: Any) -> GuardInput:
    payload = Payload(body, "the guard thresholds", GUARD_FIELDS)
    return GuardInput(
        max_new_paid_seats=payload.integer("max_new_paid_seats"),
        max_new_paid_share=payload.number("max_new_paid_share"),
        max_new_project_admins=payload.integer("max_new_project_admins"),
        window_minutes=payload.integer("window_minutes"),
        max_new_paid_seats_in_window=payload.integer("max_new_paid_seats_in_window"),
    )


# A dry run is the rule editor's preview: real proposals change a handful of rules. Its cost
# grows with the rules tried plus the users they touch (their users are recomputed once,
# `ProvisioningService.change_rules`); the number is bounded all the same.
MAX_DRY_RUN_CHANGES = 100


class TooManyChangesError(PayloadError):
    """More changes in one dry run than MAX_DRY_RUN_CHANGES (413)."""


def proposed_change(body: Any) -> ProposedChange:
    """A dry run's proposal: rules to add, remove and edit, default role, ranks, contract."""
    payload = Payload(body, "the dry run", DRY_RUN_FIELDS)
    edits: list[tuple[str, RuleEdit]] = []
    for n, item in enumerate(payload.items("edit_rules")):
        what = f"edit_rules[{n}]"
        rule_id = Payload(item, what, (*RULE_FIELDS, "id")).required_text("id")
        edits.append((rule_id, rule_edit(item, what, extra=("id",))))
    roles = []
    for n, item in enumerate(payload.items("custom_roles")):
        what = f"custom_roles[{n}]"
        key = Payload(item, what, ("key", *CUSTOM_ROLE_FIELDS[1:])).required_text("key")
        roles.append(custom_role_edit(key, item, what))
    removed = payload.items("remove_rules")
    if not all(isinstance(rule_id, str) for rule_id in removed):
        raise PayloadError("remove_rules in the dry run must be a list of rule ids")
    paid_seats = payload.integer("paid_seats")
    policy = payload.text("policy")
    changes = len(payload.items("add_rules")) + len(removed) + len(edits) + len(roles)
    if changes > MAX_DRY_RUN_CHANGES:
        raise TooManyChangesError(
            f"a dry run tries at most {MAX_DRY_RUN_CHANGES} rule and custom role changes, "
            f"not {changes}: split it"
        )
    return ProposedChange(
        add_rules=[
            rule_input(item, f"add_rules[{n}]") for n, item in enumerate(payload.items("add_rules"))
        ],
        remove_rules=[str(rule_id) for rule_id in removed],
        edit_rules=edits,
        default_role=payload.text("default_role") if payload.has("default_role") else KEEP,
        custom_roles=roles,
        contract=ContractInput(
            paid_seats=KEEP if paid_seats is None else paid_seats,
            policy=KEEP if policy is None else policy,
        ),
    )


def seat_period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The seat history period: by default the 30 days up to today, and never past today (no
    later day has happened); refused when reversed or when it starts after today."""
    if start is not None and start > today:
        raise PayloadError(f"the period starts on {start}, after today ({today})")
    if end is not None and start is not None and end < start:
        raise PayloadError(f"the period ends on {end} before it starts on {start}")
    end = min(end or today, today)
    start = start or end - timedelta(days=DEFAULT_HISTORY_DAYS - 1)
    if (end - start).days >= MAX_HISTORY_DAYS:
        raise PayloadError(f"the period is longer than {MAX_HISTORY_DAYS} days")
    return start, end
