"""Reads for the console's directory pages: users (filtered, keyset-paged), one user's page,
groups with their member counts and the mapping rules that use them. Reads only, always
scoped by organization; each list walks an index in its page order (users by
(org_id, user_name_key), groups by (org_id, display_name_key)) and stops after one page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

import licensing
from app.actions import GroupKey, Target
from app.models import (
    AuditEvent,
    Group,
    MappingRule,
    Membership,
    Organization,
    RoleAssignment,
    SeatEvent,
    SeatKind,
    User,
    UserSource,
)
from app.reporting import MEMBERSHIP_ACTIONS, user_access
from app.reporting.audit_trail import event_document

PAGE_SIZE = 50
HISTORY_LIMIT = 50
SEAT_CHOICES = ("paid", "free", "pending", "none")
STATUS_CHOICES = ("active", "deactivated", "deprovisioned")
SOURCE_CHOICES = tuple(source.value for source in UserSource)
T = TypeVar("T")


# ------------------------------------------------------------------ cursors


def encode_cursor(*parts: str) -> str:
    """An opaque cursor: resume after the row with these sort keys."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int = 2) -> tuple[str, ...]:
    """The sort keys a cursor resumes after; ValueError when it is not one of ours."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError("the page cursor is not valid") from None
    if not isinstance(value, list) or len(value) != size:
        raise ValueError("the page cursor is not valid")
    if not all(isinstance(part, str) for part in value):
        raise ValueError("the page cursor is not valid")
    UUID(value[-1])  # the row id: ValueError when it is not one
    return tuple(value)


def _after(
    key: InstrumentedAttribute[str], row_id: InstrumentedAttribute[UUID], cursor: str | None
) -> ColumnElement[bool]:
    """Rows after the cursor in (key, id) order: a page never repeats or skips a row."""
    if cursor is None:
        return true()
    last_key, last_id = decode_cursor(cursor)
    return or_(key > last_key, and_(key == last_key, row_id > UUID(last_id)))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows, and the cursor of the next page (None on the last)."""

    rows: list[T]
    next_cursor: str | None


# ------------------------------------------------------------------ users


@dataclass(frozen=True, slots=True)
class UserFilters:
    """The users page's filters, as GET parameters; an unknown choice is ignored."""

    q: str = ""
    seat: str = ""
    role: str = ""
    project: str = ""
    group: str = ""
    status: str = ""
    source: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Self:
        values = {f.name: (args.get(f.name) or "").strip()[:256] for f in fields(cls)}
        for name, choices in (
            ("seat", SEAT_CHOICES),
            ("status", STATUS_CHOICES),
            ("source", SOURCE_CHOICES),
        ):
            if values[name] not in choices:
                values[name] = ""
        return cls(**values)

    def as_args(self) -> dict[str, str]:
        """The filters that are set, to carry into the next page's link."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


@dataclass(frozen=True, slots=True)
class UserRow:
    id: UUID
    user_name: str
    display_name: str | None
    email: str | None
    status: str
    seat: str
    is_pending: bool
    source: str
    last_login_at: datetime | None


def status_of(user: Any) -> str:
    """active, deactivated (by the IdP, kept) or deprovisioned (deleted, history kept)."""
    if user.deprovisioned_at is not None:
        return "deprovisioned"
    return "active" if user.is_active else "deactivated"


def _live() -> ColumnElement[bool]:
    return and_(User.is_active.is_(True), User.deprovisioned_at.is_(None))


def _seat_condition(seat: str) -> ColumnElement[bool]:
    """The seat buckets of the seat totals: a pending user counts as pending only."""
    if seat == "pending":
        return User.pending_since.is_not(None)
    bucket = {"paid": SeatKind.PAID, "free": SeatKind.FREE, "none": SeatKind.NONE}[seat]
    return and_(User.seat == bucket, User.pending_since.is_(None))


def _status_condition(status: str) -> ColumnElement[bool]:
    if status == "active":
        return _live()
    if status == "deactivated":
        return and_(User.is_active.is_(False), User.deprovisioned_at.is_(None))
    return User.deprovisioned_at.is_not(None)


def _role_condition(role: str, project: str) -> ColumnElement[bool]:
    """Users with `role` (any project, when none is given) or any role in `project`.

    A role in `*` is the user's role in every project without one of its own: it counts for
    `project` only when the user has no assignment there (the unique (user_id, project_key)
    index answers each probe)."""

    def assignment(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(RoleAssignment.user_id == User.id, *conditions)

    role_is = RoleAssignment.role_key == role if role else true()
    if not project:
        return assignment(role_is)
    return or_(
        assignment(RoleAssignment.project_key == project, role_is),
        and_(
            assignment(RoleAssignment.project_key == "*", role_is),
            ~assignment(RoleAssignment.project_key == project),
        ),
    )


def _search_condition(q: str) -> ColumnElement[bool]:
    """userName, display name or email containing `q`, in any case."""
    key = q.lower()
    return or_(
        User.user_name_key.contains(key, autoescape=True),
        User.display_name_key.contains(key, autoescape=True),
        func.lower(User.primary_email).contains(key, autoescape=True),
    )


def _user_conditions(org_id: UUID, filters: UserFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [User.org_id == org_id]
    if filters.q:
        conditions.append(_search_condition(filters.q))
    if filters.seat:
        conditions.append(_seat_condition(filters.seat))
    if filters.status:
        conditions.append(_status_condition(filters.status))
    if filters.source:
        conditions.append(User.source == filters.source)
    if filters.role or filters.project:
        conditions.append(_role_condition(filters.role, filters.project))
    if filters.group:
        members = (
            select(Membership.user_id)
            .join(Group, Group.id == Membership.group_id)
            .where(Group.org_id == org_id, Group.display_name_key == filters.group.lower())
        )
        conditions.append(User.id.in_(members))
    return conditions


def user_page(
    session: Session,
    org_id: UUID,
    filters: UserFilters,
    cursor: str | None,
    in_group: UUID | None = None,
) -> Page[UserRow]:
    """One page of the organization's users that match (members of `in_group`, when given),
    by userName; ValueError for a cursor that is not ours."""
    conditions = _user_conditions(org_id, filters)
    if in_group is not None:
        conditions.append(
            User.id.in_(select(Membership.user_id).where(Membership.group_id == in_group))
        )
    query = (
        select(User)
        .where(*conditions, _after(User.user_name_key, User.id, cursor))
        .order_by(User.user_name_key, User.id)
        .limit(PAGE_SIZE + 1)
    )
    users = session.scalars(query).all()
    rows = [
        UserRow(
            id=u.id,
            user_name=u.user_name,
            display_name=u.display_name,
            email=u.primary_email,
            status=status_of(u),
            seat=u.seat,
            is_pending=u.pending_since is not None,
            source=u.source,
            last_login_at=u.last_login_at,
        )
        for u in users[:PAGE_SIZE]
    ]
    last = users[PAGE_SIZE - 1] if len(users) > PAGE_SIZE else None
    return Page(rows, encode_cursor(last.user_name_key, str(last.id)) if last else None)


# ------------------------------------------------------------------ one user


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: UUID
    display_name: str


@dataclass(frozen=True, slots=True)
class SeatChange:
    at: datetime
    from_seat: str
    to_seat: str
    is_pending: bool
    reason: str
    cause: str


@dataclass(frozen=True, slots=True)
class UserDetail:
    """Everything the user page shows, read inside one unit of work."""

    user: User
    status: str
    emails: list[str]
    groups: list[GroupRef]
    access: dict[str, Any]
    seat_history: list[SeatChange]
    audit: list[dict[str, Any]]
    group_names: dict[str, str] = field(default_factory=dict)


def find_user(session: Session, org_id: UUID, user_id: UUID) -> User | None:
    """The organization's user with this id; another organization's is None, like a missing one."""
    return session.scalar(select(User).where(User.id == user_id, User.org_id == org_id))


def user_detail(
    session: Session,
    organization: Organization,
    catalogue: licensing.RoleCatalogue,
    user_id: UUID,
) -> UserDetail | None:
    """The user page: profile, groups, roles with the groups that grant them, why the seat is
    paid, the seat ledger and the audit trail; None when the organization has no such user."""
    user = find_user(session, organization.id, user_id)
    if user is None:
        return None
    groups = [
        GroupRef(group_id, name)
        for group_id, name in session.execute(
            select(Group.id, Group.display_name)
            .join(Membership, Membership.group_id == Group.id)
            .where(Membership.user_id == user.id, Group.org_id == organization.id)
            .order_by(Group.display_name_key)
        )
    ]
    emails = [str(e.get("value")) for e in user.multi_values.get("emails") or [] if e.get("value")]
    return UserDetail(
        user=user,
        status=status_of(user),
        emails=emails,
        groups=groups,
        access=user_access(session, organization, catalogue, user),
        seat_history=seat_changes(session, organization.id, user.id),
        audit=user_audit(session, organization.id, user.id, [g.id for g in groups]),
        group_names={str(g.id): g.display_name for g in groups},
    )


def seat_changes(session: Session, org_id: UUID, user_id: UUID) -> list[SeatChange]:
    """The user's latest seat ledger entries, newest first (index on user_id, at)."""
    rows = session.scalars(
        select(SeatEvent)
        .where(SeatEvent.user_id == user_id, SeatEvent.org_id == org_id)
        .order_by(SeatEvent.at.desc(), SeatEvent.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return [SeatChange(r.at, r.from_seat, r.to_seat, r.is_pending, r.reason, r.cause) for r in rows]


def user_audit(
    session: Session, org_id: UUID, user_id: UUID, group_ids: Sequence[UUID]
) -> list[dict[str, Any]]:
    """The user's latest audit events, newest first: those about the user, and the membership
    events of the groups the user is in now. Both are read through the (org_id, target_type,
    target_id) index; membership events of groups the user has left are on the audit page."""
    about_user = _latest_events(
        session,
        org_id,
        and_(AuditEvent.target_type == Target.USER, AuditEvent.target_id == str(user_id)),
    )
    memberships: list[Any] = []
    if group_ids:
        memberships = _latest_events(
            session,
            org_id,
            and_(
                AuditEvent.target_type == Target.GROUP,
                AuditEvent.target_id.in_([str(g) for g in group_ids]),
                AuditEvent.action.in_(MEMBERSHIP_ACTIONS),
            ),
            user_id=str(user_id),
        )
    events = sorted([*about_user, *memberships], key=lambda e: e["id"], reverse=True)
    return events[:HISTORY_LIMIT]


def _latest_events(
    session: Session, org_id: UUID, target: ColumnElement[bool], user_id: str | None = None
) -> list[dict[str, Any]]:
    """The newest events about `target` (with `user_id` as the member, when given)."""
    query = select(AuditEvent).where(AuditEvent.org_id == org_id, target)
    if user_id is not None:
        query = query.where(
            or_(
                AuditEvent.after[GroupKey.USER_ID].as_string() == user_id,
                AuditEvent.before[GroupKey.USER_ID].as_string() == user_id,
            )
        )
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(HISTORY_LIMIT))
    return [
        {**event_document(row), "summary": describe_change(row.before, row.after)} for row in rows
    ]


def describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """An event's payload in a line: each plain value, `old → new` where both are given.
    Nested values (emails, role sources) are left to the audit trail's full record."""
    before, after = before or {}, after or {}
    parts = []
    for key in sorted({*before, *after}):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict | list) or isinstance(new, dict | list):
            continue
        if key in before and key in after:
            parts.append(f"{key}: {_plain(old)} → {_plain(new)}")
        else:
            parts.append(f"{key}: {_plain(new if key in after else old)}")
    return " · ".join(parts)


def _plain(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# ------------------------------------------------------------------ groups


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A mapping rule as the groups pages show it."""

    id: UUID
    match: str
    group_value: str
    role: str
    project: str
    is_paid: bool


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: UUID
    display_name: str
    external_id: str | None
    members: int
    rules: list[RuleRef]


def _rules_of(
    session: Session,
    org_id: UUID,
    catalogue: licensing.RoleCatalogue,
    group_ids: Sequence[UUID],
) -> dict[UUID, list[RuleRef]]:
    """The rules that use each group: bound to it (displayName, externalId) or naming its id."""
    if not group_ids:
        return {}
    by_text = {str(g): g for g in group_ids}
    rows = session.scalars(
        select(MappingRule)
        .where(
            MappingRule.org_id == org_id,
            or_(
                MappingRule.bound_group_id.in_(group_ids),
                and_(
                    MappingRule.match == licensing.GroupMatch.ID,
                    MappingRule.group_key.in_(list(by_text)),
                ),
            ),
        )
        .order_by(MappingRule.created_at, MappingRule.id)
    )
    found: dict[UUID, list[RuleRef]] = {}
    for rule in rows:
        group_id = rule.bound_group_id or by_text.get(rule.group_key)
        if group_id is None:
            continue
        role = catalogue.find(rule.role_key)
        found.setdefault(group_id, []).append(
            RuleRef(
                id=rule.id,
                match=rule.match,
                group_value=rule.group_value,
                role=role.name if role else rule.role_key,
                project=rule.project_key,
                is_paid=bool(role and role.is_paid),
            )
        )
    return found


def _member_counts(session: Session, group_ids: Sequence[UUID]) -> dict[UUID, int]:
    """Members of each group, counted on the memberships' primary key (group_id, user_id)."""
    if not group_ids:
        return {}
    rows = session.execute(
        select(Membership.group_id, func.count())
        .where(Membership.group_id.in_(group_ids))
        .group_by(Membership.group_id)
    )
    return {group_id: count for group_id, count in rows}


def group_page(
    session: Session,
    org_id: UUID,
    catalogue: licensing.RoleCatalogue,
    q: str,
    cursor: str | None,
) -> Page[GroupRow]:
    """One page of the organization's groups by name, with member counts and the rules that
    use them; ValueError for a cursor that is not ours."""
    query: Select[Any] = select(Group).where(
        Group.org_id == org_id, _after(Group.display_name_key, Group.id, cursor)
    )
    if q:
        query = query.where(Group.display_name_key.contains(q.lower(), autoescape=True))
    groups = session.scalars(
        query.order_by(Group.display_name_key, Group.id).limit(PAGE_SIZE + 1)
    ).all()
    shown = groups[:PAGE_SIZE]
    ids = [g.id for g in shown]
    counts = _member_counts(session, ids)
    rules = _rules_of(session, org_id, catalogue, ids)
    rows = [
        GroupRow(g.id, g.display_name, g.external_id, counts.get(g.id, 0), rules.get(g.id, []))
        for g in shown
    ]
    last = groups[PAGE_SIZE - 1] if len(groups) > PAGE_SIZE else None
    return Page(rows, encode_cursor(last.display_name_key, str(last.id)) if last else None)


@dataclass(frozen=True, slots=True)
class GroupDetail:
    group: Group
    members: int
    rules: list[RuleRef]
    page: Page[UserRow]


def group_detail(
    session: Session,
    org_id: UUID,
    catalogue: licensing.RoleCatalogue,
    group_id: UUID,
    cursor: str | None,
) -> GroupDetail | None:
    """A group with its rules and one page of its members by userName; None when the
    organization has no such group."""
    group = session.scalar(select(Group).where(Group.id == group_id, Group.org_id == org_id))
    if group is None:
        return None
    return GroupDetail(
        group=group,
        members=_member_counts(session, [group.id]).get(group.id, 0),
        rules=_rules_of(session, org_id, catalogue, [group.id]).get(group.id, []),
        page=user_page(session, org_id, UserFilters(), cursor, in_group=group.id),
    )
