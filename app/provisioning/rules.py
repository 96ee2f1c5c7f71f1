"""Mapping rules (members of group G get role R in project P) and the default role."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select

import licensing
from app.actions import Action, Target
from app.errors import ConflictError, InvalidChangeError, NotFoundError
from app.models import HeldChange, HeldKind, MappingRule, User
from app.provisioning import events
from app.provisioning.access import (
    Verdict,
    confirmed_reason,
    recompute,
    recompute_unless_held,
    staged,
    users_matching,
)
from app.provisioning.binding import bind_rule, names_another_group
from app.provisioning.catalogue import find_project
from app.provisioning.scope import Scope, licensing_rule
from app.provisioning.specs import RuleSpec


def create_rule(scope: Scope, spec: RuleSpec) -> MappingRule | HeldChange:
    """Add a mapping rule and give its groups' members their new roles; when the guard
    would hold those grants, the rule is staged instead: a held change, not in force (no
    rule row) until an admin confirms it."""
    _check_rule(scope, spec)
    _refuse_duplicate(scope, spec)
    payload = {"rule": _spec_snapshot(spec)}
    return staged(
        scope,
        HeldKind.RULE_CREATE,
        payload,
        "rule_created",
        lambda: _add_rule(scope, spec, confirmed=False),
    )


def _add_rule(scope: Scope, spec: RuleSpec, confirmed: bool) -> tuple[MappingRule, Verdict | None]:
    """Write the rule and recompute its users (the guard's verdict, unless confirmed)."""
    row = MappingRule(org_id=scope.org_id)
    _write_rule(row, spec)
    scope.session.add(row)
    scope.session.flush()
    scope.invalidate()
    events.record(scope, Action.RULE_CREATED, Target.RULE, row.id, None, _rule_snapshot(row))
    bind_rule(scope, row)
    affected = users_matching(scope, [licensing_rule(row)])
    return row, _recompute(scope, affected, "rule_created", confirmed)


def update_rule(scope: Scope, rule_id: str | UUID, spec: RuleSpec) -> MappingRule | HeldChange:
    """Change a rule; users matched before or after are re-resolved. When the guard would
    hold the edit's grants the whole edit is staged: the rule stays as it was until an admin
    confirms it (its revocations wait too, the rule in force being the one before)."""
    row = _get_rule(scope, rule_id)
    _check_rule(scope, spec)
    _refuse_duplicate(scope, spec, row.id)
    payload = {"rule_id": str(row.id), "before": _rule_snapshot(row), "rule": _spec_snapshot(spec)}
    return staged(
        scope,
        HeldKind.RULE_UPDATE,
        payload,
        "rule_changed",
        lambda: _change_rule(scope, row, spec, confirmed=False),
    )


def _change_rule(
    scope: Scope, row: MappingRule, spec: RuleSpec, confirmed: bool
) -> tuple[MappingRule, Verdict | None]:
    """Rewrite the rule and recompute its users before and after (the guard's verdict,
    unless confirmed)."""
    old = licensing_rule(row)
    before = _rule_snapshot(row)
    _write_rule(row, spec)
    bind_rule(scope, row, again=names_another_group(old, row))
    scope.invalidate()
    after = _rule_snapshot(row)
    if after == before:
        return row, None
    events.record_changes(scope, Action.RULE_UPDATED, Target.RULE, row.id, before, after)
    affected = users_matching(scope, [old, licensing_rule(row)])
    return row, _recompute(scope, affected, "rule_changed", confirmed)


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


def _refuse_duplicate(scope: Scope, spec: RuleSpec, rule_id: UUID | None = None) -> None:
    """ConflictError when another rule already gives this group this role in this project (a
    form submitted twice, say): a second copy would change nothing but the list."""
    probe = MappingRule(org_id=scope.org_id)
    _write_rule(probe, spec)
    same = scope.session.scalar(
        select(MappingRule.id).where(
            MappingRule.org_id == scope.org_id,
            MappingRule.match == probe.match,
            MappingRule.group_key == probe.group_key,
            MappingRule.role_key == probe.role_key,
            MappingRule.project_key == probe.project_key,
            MappingRule.id != rule_id if rule_id is not None else MappingRule.id.is_not(None),
        )
    )
    if same is not None:
        raise ConflictError(f"rule {same} already gives this group this role in this project")


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


def set_default_role(scope: Scope, role_key: str | None) -> HeldChange | None:
    """The role for users in no mapped group (None: no role). When the guard would hold its
    grants the change is staged: the previous default role stays until an admin confirms;
    returns the held change then, else None."""
    if role_key is not None and scope.catalogue().find(role_key) is None:
        raise InvalidChangeError(f"unknown role {role_key!r}")
    before = scope.organization.default_role_key
    if before == role_key:
        return None
    return staged(
        scope,
        HeldKind.DEFAULT_ROLE,
        {"role": role_key, "before": before},
        "default_role_changed",
        lambda: (None, _change_default_role(scope, role_key, confirmed=False)),
    )


def _change_default_role(scope: Scope, role_key: str | None, confirmed: bool) -> Verdict | None:
    """Set the default role and recompute the users no rule reaches."""
    before = scope.organization.default_role_key
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
    affected = [u for u in live if u not in matched]
    return _recompute(scope, affected, "default_role_changed", confirmed)


# ------------------------------------------------- staged changes, confirmed


def _recompute(scope: Scope, user_ids: list[UUID], reason: str, confirmed: bool) -> Verdict | None:
    """Recompute a rule or default-role change's users: judged by the guard, or, for a
    change an admin confirmed, applied without it (under a reason that says so)."""
    if confirmed:
        recompute(scope, user_ids, reason=confirmed_reason(reason), guard=False)
        return None
    return recompute_unless_held(scope, user_ids, reason)


def confirm_staged(scope: Scope, held: HeldChange) -> None:
    """Apply a staged rule or default-role change as it stands now, without the guard;
    ConflictError when what it names (the rule it edits, its role or project) is gone."""
    payload = held.payload
    if held.kind == HeldKind.DEFAULT_ROLE:
        role_key = payload.get("role")
        if role_key is not None and scope.catalogue().find(role_key) is None:
            raise _gone(held, f"its role {role_key!r} no longer exists")
        if scope.organization.default_role_key != role_key:
            _change_default_role(scope, role_key, confirmed=True)
        return
    spec = _staged_spec(payload["rule"])
    try:
        _check_rule(scope, spec)
    except InvalidChangeError as error:
        raise _gone(held, error.detail) from None
    if held.kind == HeldKind.RULE_CREATE:
        _add_rule(scope, spec, confirmed=True)
        return
    try:
        row = _get_rule(scope, payload["rule_id"])
    except NotFoundError:
        raise _gone(held, f"the rule it edits, {payload['rule_id']}, was deleted") from None
    _change_rule(scope, row, spec, confirmed=True)


def _gone(held: HeldChange, why: str) -> ConflictError:
    return ConflictError(f"held change {held.id} cannot be confirmed: {why}; discard it")


def _spec_snapshot(spec: RuleSpec) -> dict[str, Any]:
    """A proposed rule as a staged change records it (the keys of `_rule_snapshot`)."""
    return {
        "match": spec.match,
        "group": spec.group_value.strip(),
        "role": spec.role_key,
        "project": spec.project_key,
        "priority": spec.priority,
    }


def _staged_spec(snapshot: dict[str, Any]) -> RuleSpec:
    return RuleSpec(
        match=snapshot["match"],
        group_value=snapshot["group"],
        role_key=snapshot["role"],
        project_key=snapshot["project"],
        priority=snapshot["priority"],
    )
