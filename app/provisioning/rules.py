"""Mapping rules (members of group G get role R in project P) and the default role."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select

import licensing
from app.actions import Action, Target
from app.errors import InvalidChangeError
from app.models import MappingRule, User
from app.provisioning import events
from app.provisioning.access import recompute, users_matching
from app.provisioning.binding import bind_rule, names_another_group
from app.provisioning.catalogue import find_project
from app.provisioning.scope import Scope, licensing_rule
from app.provisioning.specs import RuleSpec


def create_rule(scope: Scope, spec: RuleSpec) -> MappingRule:
    """Add a mapping rule and give its groups' members their new roles."""
    _check_rule(scope, spec)
    row = MappingRule(org_id=scope.org_id)
    _write_rule(row, spec)
    scope.session.add(row)
    scope.session.flush()
    scope.invalidate()
    events.record(scope, Action.RULE_CREATED, Target.RULE, row.id, None, _rule_snapshot(row))
    bind_rule(scope, row)
    recompute(scope, users_matching(scope, [licensing_rule(row)]), reason="rule_created")
    return row


def update_rule(scope: Scope, rule_id: str | UUID, spec: RuleSpec) -> MappingRule:
    """Change a rule; users matched before or after are re-resolved."""
    row = _get_rule(scope, rule_id)
    _check_rule(scope, spec)
    old = licensing_rule(row)
    before = _rule_snapshot(row)
    _write_rule(row, spec)
    bind_rule(scope, row, again=names_another_group(old, row))
    scope.invalidate()
    after = _rule_snapshot(row)
    if after == before:
        return row
    events.record_changes(scope, Action.RULE_UPDATED, Target.RULE, row.id, before, after)
    affected = users_matching(scope, [old, licensing_rule(row)])
    recompute(scope, affected, reason="rule_changed")
    return row


def delete_rule(scope: Scope, rule_id: str | UUID) -> None:
    """Remove a rule; its users lose what only it granted, at once."""
    row = _get_rule(scope, rule_id)
    old = licensing_rule(row)
    events.record(scope, Action.RULE_DELETED, Target.RULE, row.id, _rule_snapshot(row), None)
    scope.session.delete(row)
    scope.session.flush()
    scope.invalidate()
    recompute(scope, users_matching(scope, [old]), reason="rule_deleted")


def _check_rule(scope: Scope, spec: RuleSpec) -> None:
    try:
        licensing.GroupMatch(spec.match)
    except ValueError:
        kinds = ", ".join(m.value for m in licensing.GroupMatch)
        raise InvalidChangeError(f"match must be one of: {kinds}") from None
    if not spec.group_value.strip():
        raise InvalidChangeError("the rule needs a group")
    if scope.catalogue().find(spec.role_key) is None:
        raise InvalidChangeError(f"unknown role {spec.role_key!r}")
    if spec.project_key != licensing.ALL_PROJECTS and find_project(scope, spec.project_key) is None:
        raise InvalidChangeError(
            f"unknown project {spec.project_key!r}; create it first or use '*'"
        )


def _write_rule(row: MappingRule, spec: RuleSpec) -> None:
    row.match = spec.match
    row.group_value = spec.group_value.strip()
    row.group_key = (
        row.group_value.lower()
        if spec.match == licensing.GroupMatch.DISPLAY_NAME
        else row.group_value
    )
    row.role_key = spec.role_key
    row.project_key = spec.project_key
    row.priority = spec.priority


def _get_rule(scope: Scope, rule_id: str | UUID) -> MappingRule:
    return scope.scoped(MappingRule, rule_id, "mapping rule")


def _rule_snapshot(row: MappingRule) -> dict[str, Any]:
    return {
        "match": row.match,
        "group": row.group_value,
        "role": row.role_key,
        "project": row.project_key,
        "priority": row.priority,
    }


def set_default_role(scope: Scope, role_key: str | None) -> None:
    """The role for users in no mapped group (None: no role)."""
    if role_key is not None and scope.catalogue().find(role_key) is None:
        raise InvalidChangeError(f"unknown role {role_key!r}")
    before = scope.organization.default_role_key
    if before == role_key:
        return
    scope.organization.default_role_key = role_key
    events.record(
        scope,
        Action.ORG_DEFAULT_ROLE_CHANGED,
        Target.ORGANIZATION,
        scope.org_id,
        {"default_role": before},
        {"default_role": role_key},
    )
    # Only users whom no rule reaches can be affected.
    matched = set(users_matching(scope, scope.rules()))
    live = scope.session.scalars(
        select(User.id).where(User.org_id == scope.org_id, User.deprovisioned_at.is_(None))
    )
    recompute(scope, [u for u in live if u not in matched], reason="default_role_changed")
