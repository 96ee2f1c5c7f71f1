"""The access report: one row per user and role, as of now or as of a past date.

As of now it reads the live tables; as of a past date it replays the audit trail up to that
moment (`app.reporting.replay`), so it shows what was live then, not what is live now.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

import licensing
from app.actions import SourceKey
from app.db import utcnow
from app.models import Group, MappingRule, Membership, Organization, RoleAssignment, SeatKind, User
from app.reporting.lookups import BATCH, find_group_ids
from app.reporting.replay import (
    UserState,
    group_names_at,
    members_at,
    replayed_states,
    user_status,
)

ACCESS_COLUMNS = (
    "user_id",
    "userName",
    "status",
    "seat",
    "project",
    "role",
    "paid",
    "groups",
    "rules",
    "granted_at",
    "last_login_at",
    "source",
)
SEATS = ("paid", "free", "pending", "none")
STATUSES = ("active", "deactivated", "deleted")


@dataclass(frozen=True, slots=True)
class AccessFilters:
    project: str | None = None
    role: str | None = None
    seat: str | None = None  # paid | free | pending | none
    status: str | None = None  # active | deactivated | deleted
    group: str | None = None  # group id or display name
    not_logged_in_days: int | None = None  # paid seats unused for N days: reclaim candidates
    deactivated_with_role: bool = False  # must be empty; shown anyway


class Names:
    """Rule and group names for provenance, looked up once per id; groups by the name they
    had at `as_of` when given (an IdP rename since then does not rewrite the past)."""

    def __init__(self, session: Session, org_id: UUID, as_of: datetime | None = None) -> None:
        self.session = session
        self.org_id = org_id
        self.as_of = as_of
        self.rules = {
            str(r.id): f"{r.match} {r.group_value} → {r.role_key} in {r.project_key}"
            for r in session.scalars(select(MappingRule).where(MappingRule.org_id == org_id))
        }
        self.groups: dict[str, str] = {}

    def load_groups(self, ids: set[str]) -> None:
        missing = [UUID(i) for i in ids - self.groups.keys()]
        for chunk_start in range(0, len(missing), BATCH):
            chunk = missing[chunk_start : chunk_start + BATCH]
            if self.as_of is not None:
                then = [str(group_id) for group_id in chunk]
                self.groups |= group_names_at(self.session, self.org_id, then, self.as_of)
                chunk = [group_id for group_id in chunk if str(group_id) not in self.groups]
            for group_id, name in self.session.execute(
                select(Group.id, Group.display_name).where(
                    Group.org_id == self.org_id, Group.id.in_(chunk)
                )
            ):
                self.groups[str(group_id)] = name
        for known in ids:
            self.groups.setdefault(known, f"(deleted group {known})")

    def group(self, group_id: str) -> str:
        return self.groups.get(group_id, group_id)

    def rule(self, rule_id: str) -> str:
        return self.rules.get(rule_id, f"(deleted rule {rule_id})")


def _grants(
    roles: dict[str, dict[str, Any]], filters: AccessFilters
) -> list[tuple[str, dict[str, Any]]]:
    """The grants the project and role filters select. In a project, the user's role is that
    project's own assignment, or the every-project one (`*`) when it has none."""
    grants = sorted(roles.items())
    if filters.project:
        own = roles.get(filters.project)
        grants = (
            [(filters.project, own)]
            if own is not None
            else [(p, g) for p, g in grants if p == licensing.ALL_PROJECTS]
        )
    if filters.role:
        grants = [(p, g) for p, g in grants if g["role"] == filters.role]
    return grants


def _matches(
    state: UserState,
    filters: AccessFilters,
    group_members: set[str] | None,
    now: datetime,
) -> bool:
    roles = state.roles or {}
    seat = "pending" if state.is_pending else state.seat
    # A user pending a paid seat holds a free seat (or none) meanwhile: seat=free finds them too.
    if (
        filters.seat
        and filters.seat != seat
        and not (filters.seat == state.seat and filters.seat != "pending")
    ):
        return False
    if filters.status and filters.status != state.status:
        return False
    if filters.deactivated_with_role and (state.status == "active" or not roles):
        return False
    if filters.not_logged_in_days is not None:
        cutoff = now - timedelta(days=filters.not_logged_in_days)
        if state.seat != SeatKind.PAID or (
            state.last_login_at is not None and state.last_login_at >= cutoff
        ):
            return False
    if group_members is not None and state.user_id not in group_members:
        return False
    return not ((filters.project or filters.role) and not _grants(roles, filters))


def _rows(
    state: UserState, filters: AccessFilters, names: Names, catalogue: licensing.RoleCatalogue
) -> Iterator[dict[str, Any]]:
    base = {
        "user_id": state.user_id,
        "userName": state.user_name,
        "status": state.status,
        "seat": "pending" if state.is_pending else state.seat,
        "last_login_at": state.last_login_at.isoformat() if state.last_login_at else None,
        "source": state.source,
    }
    shown = _grants(state.roles or {}, filters)
    if not shown:
        yield base | {
            "project": None,
            "role": None,
            "paid": False,
            "groups": [],
            "rules": [],
            "granted_at": None,
        }
        return
    for project, grant in shown:
        role = catalogue.find(grant["role"])
        sources = grant.get("sources") or []
        yield base | {
            "project": project,
            "role": grant["role"],
            "paid": bool(role and role.is_paid),
            "groups": sorted({names.group(s[SourceKey.GROUP_ID]) for s in sources}),
            "rules": sorted({names.rule(s[SourceKey.RULE_ID]) for s in sources})
            or ["default role"],
            "granted_at": grant["granted_at"].isoformat() if grant.get("granted_at") else None,
        }


def access_report(
    session: Session,
    organization: Organization,
    catalogue: licensing.RoleCatalogue,
    filters: AccessFilters,
    as_of: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """One row per user and role (users without a role get one row), as of now or a date.

    Rows come a user at a time: by userName as of now, by user id as of a past date.
    """
    names = Names(session, organization.id, as_of)
    now = as_of or utcnow()
    group_ids = (
        find_group_ids(session, organization, filters.group, history=as_of is not None)
        if filters.group
        else None
    )
    members: set[str] | None = None
    if as_of is None:
        states = _live_states(session, organization, group_ids)
    else:
        states = replayed_states(session, organization, as_of)
        if group_ids is not None:
            members = members_at(session, organization.id, group_ids, as_of)
    for batch in states:
        names.load_groups(
            {
                s[SourceKey.GROUP_ID]
                for state in batch
                for grant in (state.roles or {}).values()
                for s in grant.get("sources") or []
            }
        )
        for state in batch:
            if _matches(state, filters, members, now):
                yield from _rows(state, filters, names, catalogue)


def _live_states(
    session: Session, organization: Organization, group_ids: Sequence[str] | None = None
) -> Iterator[list[UserState]]:
    """Everyone's access now (members of the groups only, if given), a batch at a time."""
    query = select(
        User.id,
        User.user_name,
        User.user_name_key,
        User.is_active,
        User.deprovisioned_at,
        User.seat,
        User.pending_since,
        User.last_login_at,
        User.source,
    ).where(User.org_id == organization.id, *_in_groups(group_ids))
    last_key = ""
    while True:
        users = session.execute(
            query.where(User.user_name_key > last_key).order_by(User.user_name_key).limit(BATCH)
        ).all()
        if not users:
            return
        # The batch's assignments by the same key range: cheaper than a thousand ids IN (...).
        window = (User.user_name_key > last_key, User.user_name_key <= users[-1].user_name_key)
        last_key = users[-1].user_name_key
        roles = _live_roles(session, organization, window, {u.id for u in users})
        yield [
            UserState(
                user_id=str(u.id),
                user_name=u.user_name,
                status=user_status(u.is_active, u.deprovisioned_at),
                seat=u.seat,
                is_pending=u.pending_since is not None,
                last_login_at=u.last_login_at,
                source=u.source,
                roles=roles[u.id],
            )
            for u in users
        ]


def _in_groups(group_ids: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """The condition that keeps members of these groups only; none without groups."""
    if group_ids is None:
        return []
    members = select(Membership.user_id).where(
        Membership.group_id.in_([UUID(g) for g in group_ids])
    )
    return [User.id.in_(members)]


def _live_roles(
    session: Session,
    organization: Organization,
    window: Sequence[ColumnElement[bool]],
    user_ids: set[UUID],
) -> dict[UUID, dict[str, dict[str, Any]]]:
    """The grants by project of each of these users, read for the users in `window`."""
    roles: dict[UUID, dict[str, dict[str, Any]]] = {user_id: {} for user_id in user_ids}
    for user_id, project, role, sources, granted_at in session.execute(
        select(
            RoleAssignment.user_id,
            RoleAssignment.project_key,
            RoleAssignment.role_key,
            RoleAssignment.sources,
            RoleAssignment.granted_at,
        )
        .join(User, User.id == RoleAssignment.user_id)
        .where(User.org_id == organization.id, *window)
    ):
        if user_id in roles:  # a group filter leaves some users of the range out
            roles[user_id][project] = {"role": role, "sources": sources, "granted_at": granted_at}
    return roles
