"""One user's access explained: roles per project, the rules and groups behind each, the seat
and why it is paid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

import licensing
from app.actions import SourceKey
from app.models import Group, MappingRule, Organization, RoleAssignment, User


def user_access(
    session: Session, organization: Organization, catalogue: licensing.RoleCatalogue, user: User
) -> dict[str, Any]:
    """A user's roles per project with the rules and groups behind them, seat and why paid."""
    assignments = session.scalars(
        select(RoleAssignment)
        .where(RoleAssignment.user_id == user.id)
        .order_by(RoleAssignment.project_key)
    ).all()
    rules, groups = _provenance_names(session, organization, assignments)
    roles = []
    why_paid = []
    for assignment in assignments:
        entry = _role_entry(assignment, catalogue, rules, groups)
        roles.append(entry)
        if entry["paid"]:
            why_paid.append(
                {
                    "project": assignment.project_key,
                    "role": entry["role_name"],
                    "because": entry["source"],
                }
            )
    return {
        "id": str(user.id),
        "userName": user.user_name,
        "active": user.is_active and user.deprovisioned_at is None,
        "seat": user.seat,
        "pending": user.pending_since is not None,
        "pending_since": user.pending_since.isoformat() if user.pending_since else None,
        "roles": roles,
        "why_paid": why_paid,
    }


def _provenance_names(
    session: Session, organization: Organization, assignments: Sequence[RoleAssignment]
) -> tuple[dict[str, MappingRule], dict[str, str]]:
    """The rules (by id) and group names (by id) the assignments' sources name."""
    sources = [s for a in assignments for s in a.sources]
    rule_ids = {UUID(s[SourceKey.RULE_ID]) for s in sources}
    group_ids = {UUID(s[SourceKey.GROUP_ID]) for s in sources}
    rules = {
        str(r.id): r
        for r in session.scalars(
            select(MappingRule).where(
                MappingRule.org_id == organization.id, MappingRule.id.in_(rule_ids)
            )
        )
    }
    groups = {
        str(g.id): g.display_name
        for g in session.scalars(
            select(Group).where(Group.org_id == organization.id, Group.id.in_(group_ids))
        )
    }
    return rules, groups


def _role_entry(
    assignment: RoleAssignment,
    catalogue: licensing.RoleCatalogue,
    rules: dict[str, MappingRule],
    groups: dict[str, str],
) -> dict[str, Any]:
    """One assignment as the user's access shows it, with the rules and groups behind it."""
    role = catalogue.find(assignment.role_key)
    provenance: list[dict[str, Any]] = [
        {
            "rule_id": s[SourceKey.RULE_ID],
            "rule": _describe_rule(rules.get(s[SourceKey.RULE_ID])),
            "group_id": s[SourceKey.GROUP_ID],
            "group": groups.get(s[SourceKey.GROUP_ID]),
        }
        for s in assignment.sources
    ]
    return {
        "project": assignment.project_key,
        "role": assignment.role_key,
        "role_name": role.name if role else assignment.role_key,
        "paid": bool(role and role.is_paid),
        "granted_at": assignment.granted_at.isoformat(),
        "source": provenance or [{"default_role": True}],  # no rule: the default role
    }


def _describe_rule(rule: MappingRule | None) -> str | None:
    if rule is None:
        return None
    return f"{rule.match} {rule.group_value!r} → {rule.role_key} in {rule.project_key}"
