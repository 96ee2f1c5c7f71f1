"""What rules can grant: the organization's Blue projects and its custom roles."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

import licensing
from app.actions import Action, Target
from app.errors import ConflictError, InvalidChangeError, NotFoundError
from app.models import CustomRole, Project
from app.provisioning import events
from app.provisioning.access import recompute, users_matching
from app.provisioning.scope import Scope

PROJECT_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_project(scope: Scope, key: str, name: str) -> Project:
    """Add a Blue project that rules may target."""
    if not PROJECT_KEY.match(key):
        raise InvalidChangeError(
            f"project key {key!r} must be 1-64 letters, digits, '-', '_' or '.'"
        )
    if find_project(scope, key) is not None:
        raise ConflictError(f"project {key!r} already exists")
    project = Project(org_id=scope.org_id, key=key, name=name.strip() or key)
    scope.session.add(project)
    scope.session.flush()
    events.record(
        scope,
        Action.PROJECT_CREATED,
        Target.PROJECT,
        project.id,
        None,
        {"key": key, "name": project.name},
    )
    return project


def rename_project(scope: Scope, key: str, name: str) -> Project:
    """Change a project's display name."""
    project = _get_project(scope, key)
    before = {"name": project.name}
    project.name = name.strip() or key
    if project.name != before["name"]:
        events.record(
            scope,
            Action.PROJECT_UPDATED,
            Target.PROJECT,
            project.id,
            before,
            {"name": project.name},
        )
    return project


def delete_project(scope: Scope, key: str) -> None:
    """Remove a project no rule targets any more."""
    project = _get_project(scope, key)
    if any(rule.project == key for rule in scope.rules()):
        raise ConflictError(f"project {key!r} is used by mapping rules; delete them first")
    events.record(scope, Action.PROJECT_DELETED, Target.PROJECT, project.id, {"key": key}, None)
    scope.session.delete(project)


def find_project(scope: Scope, key: str) -> Project | None:
    """The organization's project with this key, if any."""
    return scope.session.scalar(
        select(Project).where(Project.org_id == scope.org_id, Project.key == key)
    )


def _get_project(scope: Scope, key: str) -> Project:
    project = find_project(scope, key)
    if project is None:
        raise NotFoundError(f"project {key!r} not found")
    return project


def create_custom_role(
    scope: Scope,
    slug: str,
    name: str,
    rank: int,
    description: str = "",
    permissions: Sequence[str] = (),
) -> CustomRole:
    """Add a custom user role (always paid), ranked among the built-in roles."""
    role = _checked_role(scope, slug, name, rank, description, permissions)
    row = CustomRole(
        org_id=scope.org_id,
        key=role.key,
        name=role.name,
        description=role.description,
        permissions=list(role.permissions),
        rank=role.rank,
    )
    scope.session.add(row)
    scope.session.flush()
    scope.invalidate()
    events.record(
        scope, Action.CUSTOM_ROLE_CREATED, Target.CUSTOM_ROLE, row.id, None, _role_snapshot(row)
    )
    return row


def update_custom_role(
    scope: Scope,
    key: str,
    name: str | None = None,
    rank: int | None = None,
    description: str | None = None,
    permissions: Sequence[str] | None = None,
) -> CustomRole:
    """Change a custom role; a new rank re-resolves everyone its rules reach."""
    row = _get_custom_role(scope, key)
    before = _role_snapshot(row)
    role = _checked_role(
        scope,
        row.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
        name if name is not None else row.name,
        rank if rank is not None else row.rank,
        description if description is not None else row.description,
        permissions if permissions is not None else row.permissions,
        replacing=row.key,
    )
    row.name, row.rank = role.name, role.rank
    row.description, row.permissions = role.description, list(role.permissions)
    scope.invalidate()
    after = _role_snapshot(row)
    if after != before:
        events.record_changes(
            scope, Action.CUSTOM_ROLE_UPDATED, Target.CUSTOM_ROLE, row.id, before, after
        )
    if before["rank"] != after["rank"]:
        rules = [r for r in scope.rules() if r.role_key == row.key]
        recompute(scope, users_matching(scope, rules), reason="custom_role_changed")
    return row


def delete_custom_role(scope: Scope, key: str) -> None:
    """Remove a custom role that no rule and no default refers to."""
    key = custom_key(key)
    row = _get_custom_role(scope, key)
    if any(rule.role_key == key for rule in scope.rules()):
        raise ConflictError(f"custom role {key!r} is used by mapping rules; delete them first")
    if scope.organization.default_role_key == key:
        raise ConflictError(f"custom role {key!r} is the default role; change that first")
    events.record(
        scope, Action.CUSTOM_ROLE_DELETED, Target.CUSTOM_ROLE, row.id, _role_snapshot(row), None
    )
    scope.session.delete(row)
    scope.invalidate()


def _checked_role(
    scope: Scope,
    slug: str,
    name: str,
    rank: int,
    description: str,
    permissions: Sequence[str],
    replacing: str | None = None,
) -> licensing.CustomRole:
    """The role as licensing checks it, beside the organization's other custom roles."""
    try:
        role = licensing.CustomRole(
            slug=slug,
            name=name,
            rank=rank,
            description=description,
            permissions=tuple(permissions),
        )
        others = [r for r in scope.custom_roles() if r.key != replacing]
        licensing.RoleCatalogue([*others, role])
    except licensing.LicensingError as error:
        raise InvalidChangeError(str(error)) from None
    return role


def custom_key(key: str) -> str:
    """`lead` and `custom:lead` name the same custom role."""
    prefix = licensing.CUSTOM_KEY_PREFIX
    return key if key.startswith(prefix) else prefix + key


def _get_custom_role(scope: Scope, key: str) -> CustomRole:
    key = custom_key(key)
    row = scope.session.scalar(
        select(CustomRole).where(CustomRole.org_id == scope.org_id, CustomRole.key == key)
    )
    if row is None:
        raise NotFoundError(f"custom role {key!r} not found")
    return row


def _role_snapshot(row: CustomRole) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "rank": row.rank,
        "description": row.description,
        "permissions": list(row.permissions),
    }


def role_key(scope: Scope, role: str) -> str:
    """A role given by key or by (case-insensitive) name, as its key."""
    catalogue = scope.catalogue()
    found = catalogue.find(role)
    if found is None:
        try:
            found = catalogue.by_name(role)
        except licensing.LicensingError:
            names = ", ".join(r.name for r in catalogue.roles)
            raise InvalidChangeError(f"unknown role {role!r}; roles are: {names}") from None
    return found.key
