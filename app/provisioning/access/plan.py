"""Recompute, step one: each affected user's current assignments and the ones the rules now
give them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import or_, select

import licensing
from app.db import in_ids
from app.models import Group, Membership, RoleAssignment, User
from app.provisioning.scope import BATCH, Scope, chunks, parse_uuid

# Users planned per round trip once a change is large (ids travel as one array parameter).
PLAN_BATCH = 5_000
# What recomputing a user's access reads: no JSON attributes to decode for 50,000 users.
PLAN_COLUMNS = (
    User.id,
    User.user_name,
    User.is_active,
    User.deprovisioned_at,
    User.seat,
    User.pending_since,
)


class UserState(NamedTuple):
    """What recomputing access reads of a user: a row, not an ORM object (50,000 of them,
    hence a tuple, which is built several times faster than a frozen dataclass)."""

    id: UUID
    user_name: str
    is_active: bool
    deprovisioned_at: datetime | None
    seat: str
    pending_since: datetime | None


@dataclass(frozen=True, slots=True)
class AccessPlan:
    """One user's current assignments and the ones the rules now give them."""

    user: UserState
    groups: Sequence[licensing.GroupRef]
    current: Mapping[str, RoleAssignment]
    desired: Mapping[str, licensing.Assignment]
    is_active: bool

    def access_before(self) -> licensing.UserAccess:
        """The user's access as it stands."""
        return licensing.UserAccess(
            str(self.user.id),
            self.user.is_active and self.user.deprovisioned_at is None,
            {p: a.role_key for p, a in self.current.items()},
            licensing.Seat(self.user.seat),
            self.user.pending_since is not None,
        )

    def access_desired(self, catalogue: licensing.RoleCatalogue) -> licensing.UserAccess:
        """The user's access as the rules would have it, before any seat decision."""
        roles = [catalogue.get(a.role_key) for a in self.desired.values()]
        return licensing.UserAccess(
            str(self.user.id),
            self.is_active,
            {p: a.role_key for p, a in self.desired.items()},
            licensing.classify_seat(self.is_active, roles),
            False,
        )


def plan_access(scope: Scope, ids: Sequence[UUID]) -> list[AccessPlan]:
    """Each user's current and desired roles, loaded a batch at a time."""
    # Rules and roles are read only when someone is active: deprovisioning needs neither.
    resolver: licensing.RoleResolver | None = None
    plans: list[AccessPlan] = []
    refs: dict[UUID, licensing.GroupRef] = {}
    size = BATCH if len(ids) <= BATCH else PLAN_BATCH
    for chunk in chunks(ids, size):
        users = user_states(scope, chunk)
        if resolver is None and any(
            u.is_active and u.deprovisioned_at is None for u in users.values()
        ):
            resolver = scope.resolver()
        groups = _group_refs(scope, chunk, refs) if resolver is not None and resolver.rules else {}
        current = _assignments(scope, chunk)
        for user_id in chunk:
            user = users.get(user_id)
            if user is None:
                continue
            is_active = user.is_active and user.deprovisioned_at is None
            user_groups = groups.get(user_id, [])
            desired = (
                resolver.effective_roles(user_groups) if is_active and resolver is not None else {}
            )
            plans.append(AccessPlan(user, user_groups, current[user_id], desired, is_active))
    return plans


def user_states(scope: Scope, ids: Sequence[UUID]) -> dict[UUID, UserState]:
    """What recomputing reads of these users, read now: under the seat counter's lock, not
    from objects this request loaded before taking it (a promotion may have come between)."""
    return {
        row.id: UserState._make(row)
        for row in scope.rows(
            select(*PLAN_COLUMNS).where(
                in_ids(scope.session, User.id, ids), User.org_id == scope.org_id
            )
        )
    }


def _group_refs(
    scope: Scope, ids: Sequence[UUID], refs: dict[UUID, licensing.GroupRef]
) -> dict[UUID, list[licensing.GroupRef]]:
    """The groups of these users, one GroupRef per group shared by its members (`refs`)."""
    groups: dict[UUID, list[licensing.GroupRef]] = defaultdict(list)
    for user_id, group_id, external_id, display_name in scope.rows(
        select(Membership.user_id, Group.id, Group.external_id, Group.display_name)
        .join(Group, Group.id == Membership.group_id)
        .where(in_ids(scope.session, Membership.user_id, ids))
    ):
        ref = refs.get(group_id)
        if ref is None:
            ref = refs[group_id] = licensing.GroupRef(str(group_id), external_id, display_name)
        groups[user_id].append(ref)
    return groups


def _assignments(scope: Scope, ids: Sequence[UUID]) -> dict[UUID, dict[str, RoleAssignment]]:
    """These users' role assignments, by user and project."""
    current: dict[UUID, dict[str, RoleAssignment]] = defaultdict(dict)
    for assignment in scope.session.scalars(
        select(RoleAssignment).where(in_ids(scope.session, RoleAssignment.user_id, ids))
    ):
        current[assignment.user_id][assignment.project_key] = assignment
    return current


def users_matching(scope: Scope, rules: Iterable[licensing.MappingRule]) -> list[UUID]:
    """Members of every group these rules select: the users a rule change can affect."""
    conditions = []
    for rule in rules:
        # A bound rule reaches its group alone, whatever the group is called now.
        if rule.bound_group_id is not None or rule.match is licensing.GroupMatch.ID:
            parsed = parse_uuid(rule.bound_group_id or rule.group_value)
            if parsed is not None:
                conditions.append(Group.id == parsed)
        elif rule.match is licensing.GroupMatch.EXTERNAL_ID:
            conditions.append(Group.external_id == rule.group_value)
        else:
            conditions.append(Group.display_name_key == rule.group_value.lower())
    if not conditions:
        return []
    group_ids = select(Group.id).where(Group.org_id == scope.org_id, or_(*conditions))
    return list(
        scope.session.scalars(
            select(Membership.user_id).where(Membership.group_id.in_(group_ids)).distinct()
        )
    )
