"""Reads of the Mapping rules page: rules, projects, roles, the default role, the guard's
thresholds and held changes; and a dry run's outcome with the users' names. Reads only,
always scoped to the signed-in person's organization (another's ids are NotFoundError)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import licensing
from app.admin import documents, queries
from app.admin.changes import DryRun
from app.errors import NotFoundError
from app.models import CustomRole, HeldChange, MappingRule, Organization, Project

# A preview or a held change names at most this many users; the rest are counted.
USER_LIMIT = 200


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A mapping rule as the page shows it: names beside keys, and the group it follows."""

    id: str
    match: str
    group: str
    bound_group: str | None  # the bound group's current name, when it differs or is gone
    bound_deleted: bool
    role_key: str
    role_name: str
    project: str
    priority: int

    @property
    def sentence(self) -> str:
        """The rule in words, as the previews and held changes say it."""
        return f"members of {self.group!r} ({self.match}) get {self.role_name} in {self.project}"


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: str
    key: str
    name: str
    rule_count: int


@dataclass(frozen=True, slots=True)
class CustomRoleRow:
    id: str
    key: str
    slug: str
    name: str
    rank: int
    description: str


@dataclass(frozen=True, slots=True)
class HeldRow:
    """A held change: what it stages or holds, why, and for how many users."""

    id: str
    status: str
    kind: str
    summary: str
    reasons: tuple[str, ...]
    user_count: int
    new_paid_seats: int
    new_project_admins: int
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class RulesPage:
    rules: list[RuleRow]
    projects: list[ProjectRow]
    roles: list[licensing.Role]
    custom_roles: list[CustomRoleRow]
    default_role: str | None
    default_role_name: str | None
    guard: dict[str, Any]
    held: list[HeldRow]
    decided: list[HeldRow]


def organization(session: Session, org_id: UUID) -> Organization:
    found = session.get(Organization, org_id)
    if found is None:
        raise NotFoundError(f"organization {org_id} not found")
    return found


def catalogue(session: Session, org_id: UUID) -> licensing.RoleCatalogue:
    """The organization's roles: the built-ins and its custom roles."""
    rows = session.scalars(select(CustomRole).where(CustomRole.org_id == org_id))
    return licensing.RoleCatalogue(
        licensing.CustomRole(
            slug=r.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
            name=r.name,
            rank=r.rank,
            description=r.description,
            permissions=tuple(r.permissions),
        )
        for r in rows
    )


def role_name(roles: licensing.RoleCatalogue, key: str | None) -> str | None:
    """A role's name by key (the key itself for a role that is gone)."""
    if key is None:
        return None
    found = roles.find(key)
    return found.name if found is not None else key


def rules_page(session: Session, org_id: UUID) -> RulesPage:
    """Everything the Mapping rules page shows."""
    org = organization(session, org_id)
    roles = catalogue(session, org_id)
    rules = [_rule_row(row, roles) for row in queries.list_rules(session, org)]
    held = [held_row(h, roles) for h in queries.list_held_changes(session, org, "held")]
    decided = [
        held_row(h, roles)
        for h in queries.list_held_changes(session, org, None, 20)
        if h.status != "held"
    ]
    return RulesPage(
        rules=rules,
        projects=_projects(session, org),
        roles=list(roles.roles),
        custom_roles=[_custom_role_row(r) for r in queries.list_custom_roles(session, org)],
        default_role=org.default_role_key,
        default_role_name=role_name(roles, org.default_role_key),
        guard=documents.guard(org),
        held=held,
        decided=decided[:10],
    )


def _rule_row(row: MappingRule, roles: licensing.RoleCatalogue) -> RuleRow:
    bound = documents.bound_group(row)
    name = bound["display_name"] if bound is not None else None
    return RuleRow(
        id=str(row.id),
        match=row.match,
        group=row.group_value,
        bound_group=name if name is not None and name != row.group_value else None,
        bound_deleted=bool(bound and bound["deleted"]),
        role_key=row.role_key,
        role_name=role_name(roles, row.role_key) or row.role_key,
        project=row.project_key,
        priority=row.priority,
    )


def _projects(session: Session, org: Organization) -> list[ProjectRow]:
    used = dict(
        session.execute(
            select(MappingRule.project_key, func.count())
            .where(MappingRule.org_id == org.id)
            .group_by(MappingRule.project_key)
        ).all()
    )
    return [
        ProjectRow(str(p.id), p.key, p.name, used.get(p.key, 0))
        for p in queries.list_projects(session, org)
    ]


def _custom_role_row(row: CustomRole) -> CustomRoleRow:
    slug = row.key.removeprefix(licensing.CUSTOM_KEY_PREFIX)
    return CustomRoleRow(str(row.id), row.key, slug, row.name, row.rank, row.description)


def rule(session: Session, org_id: UUID, rule_id: str) -> RuleRow:
    """One of the organization's rules, for its edit form."""
    org = organization(session, org_id)
    return _rule_row(queries.get_rule(session, org, rule_id), catalogue(session, org_id))


def project(session: Session, org_id: UUID, project_id: str) -> ProjectRow:
    """One of the organization's projects, by id."""
    parsed = _uuid(project_id)
    row = session.get(Project, parsed) if parsed is not None else None
    if row is None or row.org_id != org_id:
        raise NotFoundError(f"project {project_id} not found")
    return ProjectRow(str(row.id), row.key, row.name, 0)


def custom_role(session: Session, org_id: UUID, role_id: str) -> CustomRoleRow:
    """One of the organization's custom roles, by id."""
    parsed = _uuid(role_id)
    row = session.get(CustomRole, parsed) if parsed is not None else None
    if row is None or row.org_id != org_id:
        raise NotFoundError(f"custom role {role_id} not found")
    return _custom_role_row(row)


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class HeldDetail:
    """A held change with the names of the users it reaches (at most USER_LIMIT)."""

    row: HeldRow
    user_names: list[str]
    payload: dict[str, Any]


def held_change(session: Session, org_id: UUID, held_id: str) -> HeldDetail:
    """One of the organization's held changes, whatever its status."""
    org = organization(session, org_id)
    found = queries.get_held_change(session, org, held_id)
    names = queries.user_names(session, org, found.user_ids[:USER_LIMIT])
    return HeldDetail(
        held_row(found, catalogue(session, org_id)),
        sorted(names.values(), key=str.lower),
        dict(found.payload),
    )


def held_row(row: HeldChange, roles: licensing.RoleCatalogue) -> HeldRow:
    return HeldRow(
        id=str(row.id),
        status=row.status,
        kind=row.kind,
        summary=describe(row, roles),
        reasons=tuple(row.reasons),
        user_count=len(row.user_ids),
        new_paid_seats=row.new_paid_seats,
        new_project_admins=row.new_project_admins,
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
    )


def describe(row: HeldChange, roles: licensing.RoleCatalogue) -> str:
    """The held change in one sentence: the staged rule or default role, or where a
    directory change's held grants came from."""
    payload = row.payload
    if row.kind == "default_role":
        before = role_name(roles, payload.get("before")) or "no role"
        after = role_name(roles, payload.get("role")) or "no role"
        return f"Default role: {before} → {after}"
    if row.kind in ("rule_create", "rule_update"):
        proposed = payload.get("rule", {})
        text = (
            f"members of {proposed.get('group')!r} ({proposed.get('match')}) get "
            f"{role_name(roles, proposed.get('role'))} in {proposed.get('project')}"
        )
        return ("New rule: " if row.kind == "rule_create" else "Rule edit: ") + text
    return f"Grants of directory changes ({row.reason}, by {row.cause})"


@dataclass(frozen=True, slots=True)
class Preview:
    """A dry run as the preview page shows it (app/admin/documents.dry_run's document) with
    role names beside keys."""

    document: dict[str, Any]
    role_names: dict[str, str]
    tier: int  # the paid-seat tier in force now


def preview(session: Session, org_id: UUID, outcome: DryRun) -> Preview:
    """Name the users a dry run reaches; roles by name."""
    org = organization(session, org_id)
    names = queries.user_names(session, org, outcome.user_ids(USER_LIMIT))
    roles = catalogue(session, org_id)
    return Preview(
        documents.dry_run(outcome, names, USER_LIMIT),
        {role.key: role.name for role in roles.roles},
        org.paid_seat_tier,
    )


def role_choices(session: Session, org_id: UUID) -> Sequence[licensing.Role]:
    """Every role a rule may grant, highest rank first."""
    return catalogue(session, org_id).roles
