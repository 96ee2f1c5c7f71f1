"""Console forms as changes to preview, then apply: each form becomes a `Proposal` holding the
dry run's `ProposedChange` (app/admin/changes.py, the same the API and CLI preview) and how
to make it through the service once the admin confirms, from the very same form values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import licensing
from app.admin import changes
from app.admin.changes import (
    ContractInput,
    CustomRoleEdit,
    GuardInput,
    ProposedChange,
    RuleEdit,
    RuleInput,
)
from app.errors import InvalidChangeError
from app.models import HeldChange
from app.provisioning import ProvisioningService

Form = Mapping[str, str]
MATCHES = tuple(m.value for m in licensing.GroupMatch)
POLICIES = tuple(p.value for p in licensing.OveragePolicy)
BILLING_TERMS = tuple(b.value for b in licensing.BillingTerms)
RULE_FIELDS = ("group", "match", "role", "project", "priority")


@dataclass(frozen=True, slots=True)
class Proposal:
    """A change an admin asked for: what the preview tries, and what a confirm applies.
    `apply` returns the id of the held change when the guard staged it instead."""

    title: str
    fields: dict[str, str]  # the form's values, carried by the Confirm form as they were
    proposed: ProposedChange
    apply: Callable[[ProvisioningService], str | None]
    summary: str = ""  # what is changed, as it stands now (the rule an edit or delete changes)
    tier_after: int | None = None  # a contract change's new paid-seat tier


def _text(form: Form, name: str) -> str:
    return (form.get(name) or "").strip()


def whole_number(form: Form, name: str, label: str, default: int | None = None) -> int:
    """A form field as an integer; InvalidChangeError (the form again, 400) when it is not."""
    raw = _text(form, name)
    if not raw and default is not None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidChangeError(f"{label} must be a whole number") from None


def _number(form: Form, name: str, label: str) -> float:
    try:
        return float(_text(form, name))
    except ValueError:
        raise InvalidChangeError(f"{label} must be a number") from None


def _day(form: Form, name: str, label: str) -> date | None:
    raw = _text(form, name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidChangeError(f"{label} must be a date (YYYY-MM-DD)") from None


def _held_id(result: object) -> str | None:
    return str(result.id) if isinstance(result, HeldChange) else None


def rule_input(form: Form) -> RuleInput:
    """The rule a create or edit form describes; InvalidChangeError for what is malformed
    here (the service checks the group, role and project)."""
    match = _text(form, "match") or licensing.GroupMatch.DISPLAY_NAME.value
    if match not in MATCHES:
        raise InvalidChangeError(f"match must be one of: {', '.join(MATCHES)}")
    group = _text(form, "group")
    if not group:
        raise InvalidChangeError("the rule needs a group")
    return RuleInput(
        group=group,
        role=_text(form, "role"),
        match=match,
        project=_text(form, "project") or licensing.ALL_PROJECTS,
        priority=whole_number(form, "priority", "priority", default=0),
    )


def _rule_fields(rule: RuleInput) -> dict[str, str]:
    return {
        "group": rule.group,
        "match": rule.match,
        "role": rule.role,
        "project": rule.project,
        "priority": str(rule.priority),
    }


def new_rule(form: Form) -> Proposal:
    """Add a mapping rule."""
    rule = rule_input(form)
    return Proposal(
        title="New mapping rule",
        fields=_rule_fields(rule),
        proposed=ProposedChange(add_rules=[rule]),
        apply=lambda service: _held_id(changes.create_rule(service, rule)),
    )


def rule_edit(rule_id: str, form: Form, now: str = "") -> Proposal:
    """Rewrite a mapping rule with every field of the edit form."""
    rule = rule_input(form)
    edit = RuleEdit(
        group=rule.group,
        role=rule.role,
        match=rule.match,
        project=rule.project,
        priority=rule.priority,
    )
    return Proposal(
        title="Mapping rule edit",
        fields=_rule_fields(rule),
        proposed=ProposedChange(edit_rules=[(rule_id, edit)]),
        apply=lambda service: _held_id(changes.edit_rule(service, rule_id, edit)),
        summary=now,
    )


def rule_removal(rule_id: str, now: str = "") -> Proposal:
    """Delete a mapping rule (never held: revocations apply at once)."""

    def apply(service: ProvisioningService) -> None:
        service.delete_rule(rule_id)

    removal = ProposedChange(remove_rules=[rule_id])
    return Proposal("Delete mapping rule", {}, removal, apply, summary=now)


def default_role(form: Form) -> Proposal:
    """Set the role of users in no mapped group; an empty choice means no role."""
    role = _text(form, "role") or None
    return Proposal(
        title="Default role",
        fields={"role": role or ""},
        proposed=ProposedChange(default_role=role),
        apply=lambda service: _held_id(changes.set_default_role(service, role)[1]),
    )


def custom_role_edit(key: str, form: Form) -> Proposal:
    """Rename, re-rank or re-describe a custom role (a new rank re-resolves its users)."""
    edit = CustomRoleEdit(
        key=key,
        name=_text(form, "name") or None,
        rank=whole_number(form, "rank", "rank"),
        description=_text(form, "description"),
    )

    def apply(service: ProvisioningService) -> None:
        edit.apply(service)

    fields = {
        "name": edit.name or "",
        "rank": str(edit.rank),
        "description": edit.description or "",
    }
    return Proposal("Custom role edit", fields, ProposedChange(custom_roles=[edit]), apply)


def contract(form: Form) -> Proposal:
    """The whole contract as the form gives it: tier, policy, billing terms and period (an
    empty date clears it)."""
    policy, terms = _text(form, "policy"), _text(form, "billing_terms")
    if policy not in POLICIES:
        raise InvalidChangeError(f"policy must be one of: {', '.join(POLICIES)}")
    if terms not in BILLING_TERMS:
        raise InvalidChangeError(f"billing terms must be one of: {', '.join(BILLING_TERMS)}")
    paid_seats = whole_number(form, "paid_seats", "paid seats")
    if paid_seats < 0:
        raise InvalidChangeError("paid seats must not be negative")
    given = ContractInput(
        paid_seats=paid_seats,
        policy=policy,
        billing_terms=terms,
        starts_on=_day(form, "starts_on", "start date"),
        ends_on=_day(form, "ends_on", "end date"),
    )

    def apply(service: ProvisioningService) -> None:
        changes.set_contract(service, given)

    fields = {
        "paid_seats": str(paid_seats),
        "policy": policy,
        "billing_terms": terms,
        "starts_on": _text(form, "starts_on"),
        "ends_on": _text(form, "ends_on"),
    }
    return Proposal(
        "Contract change", fields, ProposedChange(contract=given), apply, tier_after=paid_seats
    )


def guard_input(form: Form) -> GuardInput:
    """The guard's thresholds as the form gives them, all five."""
    return GuardInput(
        max_new_paid_seats=whole_number(form, "max_new_paid_seats", "new paid seats per change"),
        max_new_paid_share=_number(form, "max_new_paid_share", "share of active users"),
        max_new_project_admins=whole_number(
            form, "max_new_project_admins", "new project administrators"
        ),
        window_minutes=whole_number(form, "window_minutes", "window (minutes)"),
        max_new_paid_seats_in_window=whole_number(
            form, "max_new_paid_seats_in_window", "new paid seats in the window"
        ),
    )
