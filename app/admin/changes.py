"""Admin changes as typed values, shared by the JSON API and the CLI, and how each one is made
through the provisioning service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import TypeVar

import licensing
from app.admin import queries
from app.models import HeldChange, MappingRule, Organization
from app.provisioning import ContractSpec, ProvisioningService, RuleChanges, RuleSpec

_V = TypeVar("_V", int, float)


class Keep(Enum):
    """A field the caller left out: the current value stays."""

    KEEP = "keep"


KEEP = Keep.KEEP


def custom_role_key(key: str) -> str:
    """A custom role's catalogue key, from its key or bare slug."""
    if key.startswith(licensing.CUSTOM_KEY_PREFIX):
        return key
    return licensing.CUSTOM_KEY_PREFIX + key


@dataclass(frozen=True, slots=True)
class RuleInput:
    """A mapping rule as an admin writes it: the role by key or by name."""

    group: str
    role: str
    match: str = licensing.GroupMatch.DISPLAY_NAME.value
    project: str = licensing.ALL_PROJECTS
    priority: int = 0

    def spec(self, service: ProvisioningService) -> RuleSpec:
        """The rule as the service takes it; an unknown role is InvalidChangeError."""
        return RuleSpec(
            match=self.match,
            group_value=self.group,
            role_key=service.role_key(self.role),
            project_key=self.project,
            priority=self.priority,
        )


@dataclass(frozen=True, slots=True)
class RuleEdit:
    """Some fields of an existing rule; None keeps the rule's value."""

    group: str | None = None
    role: str | None = None
    match: str | None = None
    project: str | None = None
    priority: int | None = None
    # Bind the rule again to the group its value names now (its own group was deleted).
    rebind: bool = False

    def applied_to(self, rule: MappingRule) -> RuleInput:
        """The whole rule once this edit is made."""
        return RuleInput(
            group=self.group if self.group is not None else rule.group_value,
            role=self.role if self.role is not None else rule.role_key,
            match=self.match if self.match is not None else rule.match,
            project=self.project if self.project is not None else rule.project_key,
            priority=self.priority if self.priority is not None else rule.priority,
        )


def create_rule(service: ProvisioningService, rule: RuleInput) -> MappingRule | HeldChange:
    """Add a mapping rule (or, when the guard holds its grants, the held change staging it)."""
    return service.create_rule(rule.spec(service))


def edit_rule(
    service: ProvisioningService, rule_id: str, edit: RuleEdit
) -> MappingRule | HeldChange:
    """Change some fields of a rule of this organization (or, when the guard holds the
    edit's grants, the held change staging it)."""
    current = queries.get_rule(service.session, service.organization, rule_id)
    row = service.update_rule(current.id, edit.applied_to(current).spec(service))
    return service.rebind_rule(row.id) if edit.rebind else row


@dataclass(frozen=True, slots=True)
class ContractInput:
    """Contract fields to change; KEEP leaves one as it is, None clears a date."""

    paid_seats: int | Keep = KEEP
    policy: str | Keep = KEEP
    billing_terms: str | Keep = KEEP
    starts_on: date | None | Keep = KEEP
    ends_on: date | None | Keep = KEEP

    @property
    def is_empty(self) -> bool:
        return all(
            isinstance(value, Keep)
            for value in (
                self.paid_seats,
                self.policy,
                self.billing_terms,
                self.starts_on,
                self.ends_on,
            )
        )

    def spec(self, organization: Organization) -> ContractSpec:
        """The whole contract once these fields change."""
        org = organization
        return ContractSpec(
            paid_seat_tier=org.paid_seat_tier
            if isinstance(self.paid_seats, Keep)
            else self.paid_seats,
            policy=org.overage_policy if isinstance(self.policy, Keep) else self.policy,
            billing_terms=org.billing_terms
            if isinstance(self.billing_terms, Keep)
            else self.billing_terms,
            starts_on=org.contract_starts_on
            if isinstance(self.starts_on, Keep)
            else self.starts_on,
            ends_on=org.contract_ends_on if isinstance(self.ends_on, Keep) else self.ends_on,
        )


def set_contract(service: ProvisioningService, contract: ContractInput) -> Organization:
    """Change the contract fields given, keeping the others."""
    return service.set_contract(contract.spec(service.organization))


@dataclass(frozen=True, slots=True)
class GuardInput:
    """Mass-grant guard thresholds to change; None keeps one as it is."""

    max_new_paid_seats: int | None = None
    max_new_paid_share: float | None = None
    max_new_project_admins: int | None = None
    window_minutes: int | None = None
    max_new_paid_seats_in_window: int | None = None


def set_guard_thresholds(service: ProvisioningService, guard: GuardInput) -> Organization:
    """Change the thresholds given, keeping the others."""
    org = service.organization
    service.set_guard_thresholds(
        max_new_paid_seats=_or(guard.max_new_paid_seats, org.guard_max_new_paid_seats),
        max_new_paid_share=_or(guard.max_new_paid_share, org.guard_max_new_paid_share),
        max_new_project_admins=_or(guard.max_new_project_admins, org.guard_max_new_project_admins),
        window_minutes=_or(guard.window_minutes, org.guard_window_minutes),
        max_new_paid_seats_in_window=_or(
            guard.max_new_paid_seats_in_window, org.guard_max_new_paid_seats_in_window
        ),
    )
    return org


def _or(given: _V | None, current: _V) -> _V:
    """The value given, or the current one when left out."""
    return current if given is None else given


def set_default_role(
    service: ProvisioningService, role: str | None
) -> tuple[str | None, HeldChange | None]:
    """Set the default role by key or name (None: no role); returns its key, and the held
    change staging it when the guard holds its grants."""
    key = service.role_key(role) if role is not None else None
    return key, service.set_default_role(key)


@dataclass(frozen=True, slots=True)
class CustomRoleInput:
    """A new custom role."""

    slug: str
    name: str
    rank: int
    description: str = ""
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CustomRoleEdit:
    """Some fields of a custom role; None keeps the role's value."""

    key: str
    name: str | None = None
    rank: int | None = None
    description: str | None = None
    permissions: tuple[str, ...] | None = None

    def apply(self, service: ProvisioningService) -> None:
        service.update_custom_role(
            custom_role_key(self.key),
            name=self.name,
            rank=self.rank,
            description=self.description,
            permissions=self.permissions,
        )


@dataclass(frozen=True, slots=True)
class ProposedChange:
    """Everything a dry run tries at once, applied in this order: custom role changes, the
    contract, rule removals, rule edits, new rules, the default role."""

    add_rules: Sequence[RuleInput] = ()
    remove_rules: Sequence[str] = ()
    edit_rules: Sequence[tuple[str, RuleEdit]] = ()
    default_role: str | None | Keep = KEEP
    custom_roles: Sequence[CustomRoleEdit] = ()
    contract: ContractInput = field(default_factory=ContractInput)

    def apply(self, service: ProvisioningService) -> None:
        """Make every proposed change through the service; the rule changes together, so a
        dry run recomputes their users once (`ProvisioningService.change_rules`)."""
        for role in self.custom_roles:
            role.apply(service)
        if not self.contract.is_empty:
            set_contract(service, self.contract)
        service.change_rules(self.rule_changes(service))
        for rule_id, edit in self.edit_rules:
            if edit.rebind:
                service.rebind_rule(rule_id)
        if not isinstance(self.default_role, Keep):
            set_default_role(service, self.default_role)

    def rule_changes(self, service: ProvisioningService) -> RuleChanges:
        """The rule changes as the service takes them: each edit as the whole rule it makes
        (NotFoundError for a rule not of this organization, InvalidChangeError for an
        unknown role)."""
        edited = []
        for rule_id, edit in self.edit_rules:
            current = queries.get_rule(service.session, service.organization, rule_id)
            edited.append((str(current.id), edit.applied_to(current).spec(service)))
        return RuleChanges(
            removed=tuple(self.remove_rules),
            edited=tuple(edited),
            added=tuple(rule.spec(service) for rule in self.add_rules),
        )


@dataclass(frozen=True, slots=True)
class WouldHold:
    """A change the mass-grant guard would hold during the dry run."""

    reason: str
    reasons: tuple[str, ...]
    user_count: int
    new_paid_seats: int
    new_project_admins: int


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a proposed change would do, and which of its grants the guard would hold (not
    counted in the result's changes or totals after)."""

    result: licensing.DryRunResult
    held: tuple[WouldHold, ...]

    def user_ids(self, limit: int) -> list[str]:
        """The users a report of it names: those changed and those with held grants."""
        held = sorted({u for grants in self.result.held for u in grants.user_ids})
        return [c.user_id for c in self.result.changes[:limit]] + held[:limit]


def dry_run(service: ProvisioningService, change: ProposedChange) -> DryRun:
    """Try the change in a savepoint that is rolled back: nothing is written."""
    result = service.dry_run(change.apply)
    held = tuple(
        WouldHold(
            grants.reason,
            grants.reasons,
            len(grants.user_ids),
            len(grants.new_paid_seat_user_ids),
            len(grants.new_project_admin_user_ids),
        )
        for grants in result.held
    )
    return DryRun(result, held)
