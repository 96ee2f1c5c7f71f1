"""The drift report: mapping rules whose group is gone or renamed, and users whose access
differs from what the rules give them now (the users come from the provisioning service's dry
run)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

import licensing
from app.models import Group, MappingRule, Organization

DRIFT_COLUMNS = (
    "kind",
    "user_id",
    "userName",
    "current",
    "expected",
    "explanation",
    "rule_id",
    "match",
    "group",
    "group_id",
    "current_group",
    "candidate_group_id",
    "role",
    "project",
)
MISSING = "missing_rule_groups"
RENAMED = "renamed_rule_groups"


def rule_groups(session: Session, organization: Organization) -> dict[str, list[dict[str, Any]]]:
    """Both notes on rules' groups: those gone (`missing_rule_groups`) and those the IdP
    renamed (`renamed_rule_groups`)."""
    return {
        MISSING: missing_rule_groups(session, organization),
        RENAMED: renamed_rule_groups(session, organization),
    }


def missing_rule_groups(session: Session, organization: Organization) -> list[dict[str, Any]]:
    """Rules that grant through no group: no group has their value yet, or the group they
    are bound to was deleted (then a group that now has the rule's name is named, for
    `rule edit --rebind`: it is a new group, and the rule does not grant through it)."""
    rules = _rules(session, organization)
    alive = _bound_groups(session, organization, rules)
    missing = []
    for rule in rules:
        if rule.bound_group_id is not None:
            if rule.bound_group_id in alive:
                continue
            named = _named_by(session, organization, rule)
            if named is None:
                why = "its group was deleted"
            else:
                why = (
                    f"its group was deleted; a group with the same {_attribute(rule)} exists, "
                    "which the rule does not grant through (a new group): rebind it with "
                    f"`rule edit --id {rule.id} --rebind`"
                )
            missing.append(_rule_document(rule, why) | {"candidate_group_id": named})
        elif _named_by(session, organization, rule) is None:
            why = f"no group has this {_attribute(rule)} yet"
            if rule.match != licensing.GroupMatch.ID:
                why += "; the rule binds to the first one that does"
            missing.append(_rule_document(rule, why))
    return missing


def renamed_rule_groups(session: Session, organization: Organization) -> list[dict[str, Any]]:
    """Rules whose bound group the IdP has renamed (or given another externalId) since the
    rule was written: the rule follows the group, only its label is out of date."""
    rules = _rules(session, organization)
    groups = _bound_groups(session, organization, rules)
    renamed = []
    for rule in rules:
        group = groups.get(rule.bound_group_id)
        if group is None:
            continue
        if rule.match == licensing.GroupMatch.EXTERNAL_ID:
            moved = group.external_id != rule.group_value
        else:
            moved = group.display_name_key != rule.group_value.lower()
        if moved:
            why = (
                f"its group is now {group.display_name!r} in the IdP; the rule follows it "
                f"(`rule edit --id {rule.id} --group ...` updates the rule's label)"
            )
            renamed.append(_rule_document(rule, why) | {"current_group": group.display_name})
    return renamed


def _rules(session: Session, organization: Organization) -> Sequence[MappingRule]:
    return session.scalars(
        select(MappingRule).where(MappingRule.org_id == organization.id).order_by(MappingRule.id)
    ).all()


def _bound_groups(
    session: Session, organization: Organization, rules: Iterable[MappingRule]
) -> dict[UUID | None, Group]:
    """The existing groups these rules are bound to, by id."""
    ids = {r.bound_group_id for r in rules if r.bound_group_id is not None}
    if not ids:
        return {}
    found = session.scalars(
        select(Group).where(Group.org_id == organization.id, Group.id.in_(sorted(ids)))
    )
    return {g.id: g for g in found}


def _named_by(session: Session, organization: Organization, rule: MappingRule) -> str | None:
    """The id of the group that has the rule's value now, if any."""
    query = select(Group.id).where(Group.org_id == organization.id)
    if rule.match == licensing.GroupMatch.ID:
        try:
            query = query.where(Group.id == UUID(rule.group_value))
        except ValueError:
            return None
    elif rule.match == licensing.GroupMatch.EXTERNAL_ID:
        query = query.where(Group.external_id == rule.group_value)
    else:
        query = query.where(Group.display_name_key == rule.group_value.lower())
    found = session.scalar(query.order_by(Group.created_at, Group.id).limit(1))
    return str(found) if found is not None else None


def _attribute(rule: MappingRule) -> str:
    return {"id": "id", "externalId": "externalId"}.get(rule.match, "name")


def _rule_document(rule: MappingRule, explanation: str) -> dict[str, Any]:
    return {
        "rule_id": str(rule.id),
        "match": rule.match,
        "group": rule.group_value,
        "group_id": str(rule.bound_group_id) if rule.bound_group_id is not None else None,
        "role": rule.role_key,
        "project": rule.project_key,
        "explanation": explanation,
    }


def drift_rows(
    rules: Mapping[str, Iterable[dict[str, Any]]], users: Iterable[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Every part of the drift report as one table: rules first, then users."""
    for rule in rules.get(MISSING, ()):
        yield {"kind": "missing_rule_group"} | rule
    for rule in rules.get(RENAMED, ()):
        yield {"kind": "renamed_rule_group"} | rule
    for user in users:
        yield {"kind": "user"} | user
