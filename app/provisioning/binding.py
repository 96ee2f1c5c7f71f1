"""Mapping rules bound to groups: a displayName or externalId rule follows the group it first
matched, by identity, so an IdP rename changes nothing but the label.

A rule binds when it is written and a group it names exists, or later when such a group
appears (SCIM create, SSO just-in-time creation, a rename or new externalId that makes a group
match an unbound rule). It stores the group's id and, when the IdP sent one, its externalId.
A deleted group leaves its rules bound to the deleted id: they grant nothing, a new group that
takes the same name does not inherit them (the drift report flags them), and only a group the
IdP re-creates with the same externalId, its own identity for the group, takes them back.
`rebind_rule` (``rule edit --rebind``) binds a rule again to the group its value names now.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select, update

import licensing
from app.actions import Action, BindingKey, Target
from app.errors import InvalidChangeError
from app.models import Group, MappingRule
from app.provisioning import events
from app.provisioning.access import recompute, users_matching
from app.provisioning.scope import Scope, licensing_rule


def group_ref(group: Group) -> licensing.GroupRef:
    """A group as the licensing rules see it."""
    return licensing.GroupRef(str(group.id), group.external_id, group.display_name)


def bind_rule(scope: Scope, row: MappingRule, again: bool = False) -> None:
    """Bind a rule just written to the group its value names, if one exists; a bound rule
    stays bound unless `again` (an edit made it name another group).
    The caller recomputes the users the rule reaches."""
    if row.match == licensing.GroupMatch.ID:
        found: Group | None = None
    elif row.bound_group_id is not None and not again:
        return
    else:
        found = _group_named_by(scope, row)
    _set_binding(scope, row, found, "rule_written")


def names_another_group(old: licensing.MappingRule, row: MappingRule) -> bool:
    """Whether an edit made the rule name a group by another attribute or value."""
    if old.match != row.match:
        return True
    if old.match is licensing.GroupMatch.DISPLAY_NAME:
        return old.group_value.lower() != row.group_value.lower()
    return old.group_value != row.group_value


def rebind_rule(scope: Scope, rule_id: str | UUID) -> MappingRule:
    """Bind a rule again to the group its value names now (say a group re-created under the
    same name); the members of the old and the new group are re-resolved. InvalidChangeError
    when no group has that value: the rule keeps the group it has."""
    row = scope.scoped(MappingRule, rule_id, "mapping rule")
    if row.match == licensing.GroupMatch.ID:
        raise InvalidChangeError("a rule that matches a group by id is not rebound")
    found = _group_named_by(scope, row)
    if found is None:
        attribute = "named" if row.match == licensing.GroupMatch.DISPLAY_NAME else "with externalId"
        raise InvalidChangeError(
            f"no group {attribute} {row.group_value!r} to bind the rule to; "
            "the rule stays bound to its group (change the rule's group instead)"
        )
    old = licensing_rule(row)
    _set_binding(scope, row, found, "rebind")
    new = licensing_rule(row)
    if new != old:
        recompute(scope, users_matching(scope, [old, new]), reason="rule_rebound")
    return row


def bind_rules_to_group(scope: Scope, group: Group, reason: str) -> bool:
    """Bind the rules this new or renamed group should take (`MappingRule.binds_to`);
    whether any did. The caller recomputes the group's members when one did."""
    ref = group_ref(group)
    candidates = [rule for rule in scope.rules() if rule.binds_to(ref)]
    # A bound rule takes a re-created group only if its own group is gone.
    orphans = [
        rule
        for rule in scope.rules()
        if rule.is_bound and rule.binds_to(ref, bound_group_exists=False)
    ]
    if orphans:
        alive = _existing_groups(scope, {r.bound_group_id for r in orphans if r.bound_group_id})
        candidates += [r for r in orphans if r.bound_group_id not in alive]
    if not candidates:
        return False
    for rule in sorted({r.rule_id for r in candidates}):
        row = scope.scoped(MappingRule, rule, "mapping rule")
        _set_binding(scope, row, group, reason)
    return True


def follow_external_id(scope: Scope, group: Group) -> None:
    """The IdP changed a group's externalId: the rules bound to it remember the new one."""
    scope.session.execute(
        update(MappingRule)
        .where(MappingRule.org_id == scope.org_id, MappingRule.bound_group_id == group.id)
        .values(bound_external_id=group.external_id)
    )
    scope.invalidate()


def _group_named_by(scope: Scope, row: MappingRule) -> Group | None:
    """The group a displayName or externalId rule's value names (the oldest, should an
    externalId be shared)."""
    if row.match == licensing.GroupMatch.EXTERNAL_ID:
        condition = Group.external_id == row.group_value
    else:
        condition = Group.display_name_key == row.group_value.lower()
    return scope.session.scalar(
        select(Group)
        .where(Group.org_id == scope.org_id, condition)
        .order_by(Group.created_at, Group.id)
        .limit(1)
    )


def _existing_groups(scope: Scope, group_ids: set[str]) -> set[str]:
    ids = [UUID(i) for i in group_ids]
    found = scope.session.scalars(
        select(Group.id).where(Group.org_id == scope.org_id, Group.id.in_(ids))
    )
    return {str(i) for i in found}


def _set_binding(scope: Scope, row: MappingRule, group: Group | None, reason: str) -> None:
    """Bind the rule to `group` (None: unbound) and audit it, if that changes anything."""
    group_id = group.id if group is not None else None
    external_id = group.external_id if group is not None else None
    if (row.bound_group_id, row.bound_external_id) == (group_id, external_id):
        return
    before = _binding(row.bound_group_id, row.bound_external_id)
    row.bound_group_id = group_id
    row.bound_external_id = external_id
    after = _binding(group_id, external_id) | {
        BindingKey.DISPLAY_NAME: group.display_name if group is not None else None,
        BindingKey.REASON: reason,
    }
    events.record(scope, Action.RULE_BOUND, Target.RULE, row.id, before, after)
    scope.session.flush()
    scope.session.expire(row, ["bound_group"])
    scope.invalidate()


def _binding(group_id: UUID | None, external_id: str | None) -> dict[str, Any]:
    return {
        BindingKey.GROUP_ID: str(group_id) if group_id is not None else None,
        BindingKey.EXTERNAL_ID: external_id,
    }
