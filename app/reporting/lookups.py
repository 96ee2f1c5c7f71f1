"""What the reports share: their parameters read as instants, users and groups found by id or
name, and user names looked up a batch at a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.actions import Action, GroupKey, Target
from app.errors import NotFoundError
from app.models import AuditEvent, Group, Organization, User

# Users (or groups) a report holds in memory at once.
BATCH = 1000


# The instants a report may be asked about: well inside what dates can hold.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _is_date(text: str) -> bool:
    return len(text.strip()) == 10


def parse_instant(text: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or datetime as a UTC instant (a naive time is UTC).

    A date is its first midnight, or with `end_of_day` the midnight that ends it: the
    exclusive bound that makes `until=2025-01-31` include the 31st.
    """
    text = text.strip()
    if _is_date(text):
        day = date.fromisoformat(text)
        instant = datetime.combine(day, time.min, UTC)
    else:
        value = datetime.fromisoformat(text)
        instant = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not EARLIEST <= instant <= LATEST:
        # Reports add and subtract days and months: years 1 and 9999 would overflow.
        raise ValueError(f"{text} is outside {EARLIEST.year}-{LATEST.year}")
    return instant + timedelta(days=1) if _is_date(text) and end_of_day else instant


def parse_as_of(text: str) -> datetime:
    """The instant an as-of report shows: a date means the end of that day (UTC)."""
    instant = parse_instant(text, end_of_day=True)
    return instant - timedelta(microseconds=1) if _is_date(text) else instant


def find_user_id(session: Session, organization: Organization, reference: str) -> str:
    """A user's id from its id or userName (any case), deprovisioned users included."""
    try:
        condition = User.id == UUID(reference)
    except ValueError:
        condition = User.user_name_key == reference.lower()
    found = session.scalar(select(User.id).where(User.org_id == organization.id, condition))
    if found is None:
        raise NotFoundError(f"user {reference!r} not found")
    return str(found)


def find_group_ids(
    session: Session, organization: Organization, reference: str, history: bool = True
) -> list[str]:
    """Ids of the group with this id or displayName; NotFoundError when there is none.

    With `history`, deleted and renamed groups count too: a deleted group lives on only in the
    audit trail, so a name is also looked up among the names groups were created or renamed with.
    """
    try:
        group_id = str(UUID(reference))
    except ValueError:
        group_id = None
    if group_id is not None:
        if not _group_is_known(session, organization, group_id):
            raise NotFoundError(f"group {reference!r} not found")
        return [group_id]
    key = reference.strip().lower()
    ids = {
        str(g)
        for g in session.scalars(
            select(Group.id).where(Group.org_id == organization.id, Group.display_name_key == key)
        )
    }
    if history:
        ids.update(_group_ids_once_named(session, organization, key))
    if not ids:
        raise NotFoundError(f"group {reference!r} not found")
    return sorted(ids)


def _group_is_known(session: Session, organization: Organization, group_id: str) -> bool:
    """Whether the group is in the directory, or was once (the audit trail names it)."""
    live = select(Group.id).where(Group.org_id == organization.id, Group.id == UUID(group_id))
    recorded = select(AuditEvent.id).where(
        AuditEvent.org_id == organization.id,
        AuditEvent.target_type == Target.GROUP,
        AuditEvent.target_id == group_id,
    )
    return session.scalar(live) is not None or session.scalar(recorded.limit(1)) is not None


def _group_ids_once_named(session: Session, organization: Organization, key: str) -> set[str]:
    """Ids of the groups created or renamed with this name (lower case), deleted ones too."""
    return {
        target
        for target in session.scalars(
            select(AuditEvent.target_id)
            .where(
                AuditEvent.org_id == organization.id,
                AuditEvent.action.in_((Action.GROUP_CREATED, Action.GROUP_UPDATED)),
                func.lower(AuditEvent.after[GroupKey.DISPLAY_NAME].as_string()) == key,
            )
            .distinct()
        )
        if target is not None
    }


def user_names(session: Session, org_id: UUID, user_ids: Iterable[str]) -> dict[str, str]:
    """The current userName of each of these users that still exists, by user id."""
    ids = []
    for user_id in user_ids:
        try:
            ids.append(UUID(user_id))
        except ValueError:
            continue
    return {
        str(user_id): name
        for user_id, name in session.execute(
            select(User.id, User.user_name).where(User.org_id == org_id, User.id.in_(ids))
        )
    }
