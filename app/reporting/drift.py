"""The drift report: mapping rules whose group is gone, and users whose access differs from
what the rules give them now (the users come from the provisioning service's dry run)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    "role",
    "project",
)


def missing_rule_groups(session: Session, organization: Organization) -> list[dict[str, Any]]:
    """Rules whose group no longer exists in the directory."""
    missing = []
    for rule in session.scalars(
        select(MappingRule).where(MappingRule.org_id == organization.id).order_by(MappingRule.id)
    ):
        query = select(Group.id).where(Group.org_id == organization.id)
        if rule.match == licensing.GroupMatch.ID:
            try:
                query = query.where(Group.id == UUID(rule.group_value))
            except ValueError:
                missing.append(_rule_document(rule))
                continue
        elif rule.match == licensing.GroupMatch.EXTERNAL_ID:
            query = query.where(Group.external_id == rule.group_value)
        else:
            query = query.where(Group.display_name_key == rule.group_value.lower())
        if session.scalar(query.limit(1)) is None:
            missing.append(_rule_document(rule))
    return missing


def _rule_document(rule: MappingRule) -> dict[str, Any]:
    return {
        "rule_id": str(rule.id),
        "match": rule.match,
        "group": rule.group_value,
        "role": rule.role_key,
        "project": rule.project_key,
    }


def drift_rows(
    missing: Iterable[dict[str, Any]], users: Iterable[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Both parts of the drift report as one table: rules first, then users."""
    for rule in missing:
        yield {"kind": "missing_rule_group"} | rule
    for user in users:
        yield {"kind": "user"} | user
