"""The audit trail replayed up to a past instant: who held what then, and who was in a group.

Live tables say what is true now; only the trail says what was true on a past date. These
functions read the same action names and payload keys the writers record (`app.actions`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.actions import AccessKey, Action, GroupKey, Target, UserKey
from app.models import AuditEvent, Organization, SeatKind
from app.reporting.lookups import BATCH, user_names

USER_ACTIONS = frozenset(
    (
        Action.USER_CREATED,
        Action.USER_RELINKED,
        Action.USER_UPDATED,
        Action.USER_DEACTIVATED,
        Action.USER_REACTIVATED,
        Action.USER_DELETED,
    )
)


@dataclass
class UserState:
    """One user's status, seat and grants (by project) as a report shows them."""

    user_id: str
    user_name: str
    status: str = "active"
    seat: str = SeatKind.NONE
    is_pending: bool = False
    last_login_at: datetime | None = None
    source: str = "scim"
    roles: dict[str, dict[str, Any]] | None = None


def user_status(is_active: bool, deprovisioned_at: datetime | None) -> str:
    """active, deactivated or deleted (deprovisioned)."""
    if deprovisioned_at is not None:
        return "deleted"
    return "active" if is_active else "deactivated"


def members_at(
    session: Session, org_id: UUID, group_ids: Sequence[str], as_of: datetime
) -> set[str]:
    """Ids of the users who were members of these groups at `as_of`, from the audit trail."""
    pairs: set[tuple[str, str]] = set()
    events = session.execute(
        select(AuditEvent.action, AuditEvent.target_id, AuditEvent.before, AuditEvent.after)
        .where(
            AuditEvent.org_id == org_id,
            AuditEvent.at <= as_of,
            or_(
                and_(AuditEvent.target_type == Target.GROUP, AuditEvent.target_id.in_(group_ids)),
                AuditEvent.action == Action.USER_DELETED,  # leaves its groups without events
            ),
        )
        .order_by(AuditEvent.seq, AuditEvent.id)
        .execution_options(yield_per=5000)
    )
    wanted = set(group_ids)
    for action, target_id, before, after in events:
        if action == Action.MEMBERSHIP_ADDED and after:
            pairs.add((target_id, after[GroupKey.USER_ID]))
        elif action == Action.MEMBERSHIP_REMOVED and before:
            pairs.discard((target_id, before[GroupKey.USER_ID]))
        elif action == Action.GROUP_DELETED:
            pairs = {pair for pair in pairs if pair[0] != target_id}
        elif action == Action.USER_DELETED and after:
            for left in wanted.intersection(after.get(UserKey.GROUPS_LEFT) or ()):
                pairs.discard((left, target_id))
    return {user_id for _, user_id in pairs}


def group_names_at(
    session: Session, org_id: UUID, group_ids: Sequence[str], as_of: datetime
) -> dict[str, str]:
    """The displayName each of these groups had at `as_of`, from the audit trail (created and
    renamed events carry it); groups the trail never named are left out."""
    names: dict[str, str] = {}
    events = session.execute(
        select(AuditEvent.target_id, AuditEvent.after)
        .where(
            AuditEvent.org_id == org_id,
            AuditEvent.target_type == Target.GROUP,
            AuditEvent.target_id.in_(group_ids),
            AuditEvent.action.in_((Action.GROUP_CREATED, Action.GROUP_UPDATED)),
            AuditEvent.at <= as_of,
        )
        .order_by(AuditEvent.seq, AuditEvent.id)
    )
    for target_id, after in events:
        name = (after or {}).get(GroupKey.DISPLAY_NAME)
        if target_id is not None and name is not None:
            names[target_id] = name
    return names


def replayed_states(
    session: Session, organization: Organization, as_of: datetime
) -> Iterator[list[UserState]]:
    """Everyone's access at `as_of`, rebuilt by replaying the audit trail up to it.

    Events come user by user, so only one batch of users is ever held in memory.
    """
    events = session.execute(
        select(
            AuditEvent.target_id,
            AuditEvent.action,
            AuditEvent.before,
            AuditEvent.after,
            AuditEvent.at,
            AuditEvent.actor_type,
        )
        .where(
            AuditEvent.org_id == organization.id,
            AuditEvent.target_type == Target.USER,
            AuditEvent.target_id.is_not(None),
            AuditEvent.at <= as_of,
        )
        .order_by(AuditEvent.target_id, AuditEvent.seq, AuditEvent.id)
        .execution_options(yield_per=5000)
    )
    batch: list[UserState] = []
    for target_id, user_events in groupby(events, key=lambda row: str(row[0])):
        state = UserState(target_id, target_id, roles={})
        for _, action, before, after, at, actor_type in user_events:
            _replay(state, action, before or {}, after or {}, at, actor_type)
        batch.append(state)
        if len(batch) == BATCH:
            yield _with_current_names(session, organization, batch)
            batch = []
    if batch:
        yield _with_current_names(session, organization, batch)


def _with_current_names(
    session: Session, organization: Organization, batch: list[UserState]
) -> list[UserState]:
    """The batch with each user's userName as it is now (renamed users show their new name)."""
    current = user_names(session, organization.id, (state.user_id for state in batch))
    for state in batch:
        state.user_name = current.get(state.user_id, state.user_name)
    return batch


def _replay(
    state: UserState,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    at: datetime,
    actor_type: str,
) -> None:
    """Apply one event about the user to its state."""
    if action in USER_ACTIONS:
        _replay_user(state, action, after, actor_type)
    elif action in (Action.ROLE_GRANTED, Action.ROLE_CHANGED):
        _replay_grant(state, action, after, at)
    elif action == Action.ROLE_REVOKED:
        _roles(state).pop(before.get(AccessKey.PROJECT, ""), None)
    elif action == Action.SEAT_CHANGED:
        state.seat = after.get(AccessKey.SEAT, state.seat)
        state.is_pending = bool(after.get(AccessKey.PENDING))
    elif action == Action.LOGIN_ACCEPTED:
        state.last_login_at = at


def _roles(state: UserState) -> dict[str, dict[str, Any]]:
    if state.roles is None:
        state.roles = {}
    return state.roles


def _replay_user(state: UserState, action: str, after: dict[str, Any], actor_type: str) -> None:
    """user.created, relinked, updated, deactivated, reactivated or deleted."""
    if action == Action.USER_CREATED:
        state.user_name = after.get(UserKey.USER_NAME, state.user_name)
        state.status = "active" if after.get(UserKey.ACTIVE, True) else "deactivated"
        state.source = "sso" if actor_type == "sso" else "scim" if actor_type == "scim" else "admin"
    elif action == Action.USER_RELINKED:
        state.status = "active" if after.get(UserKey.ACTIVE, True) else "deactivated"
        state.user_name = after.get(UserKey.USER_NAME, state.user_name)
    elif action in (Action.USER_DEACTIVATED, Action.USER_REACTIVATED, Action.USER_UPDATED):
        if UserKey.ACTIVE in after:
            state.status = "active" if after[UserKey.ACTIVE] else "deactivated"
        if UserKey.USER_NAME in after:
            state.user_name = after[UserKey.USER_NAME]
    elif action == Action.USER_DELETED:
        state.status = "deleted"


def _replay_grant(state: UserState, action: str, after: dict[str, Any], at: datetime) -> None:
    """role.granted or role.changed: the project's grant; a changed source keeps its date."""
    roles = _roles(state)
    project = after[AccessKey.PROJECT]
    previous = roles.get(project)
    granted_at = at
    if action == Action.ROLE_CHANGED and previous and previous["role"] == after[AccessKey.ROLE]:
        granted_at = previous["granted_at"]
    roles[project] = {
        "role": after[AccessKey.ROLE],
        "sources": after.get(AccessKey.SOURCES) or [],
        "granted_at": granted_at,
    }
