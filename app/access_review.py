"""Access-review reports for security teams and account managers, streamed row by row.

The access report as of now reads the live tables; as of a past date it replays the audit
trail up to that moment, so it shows what was live then, not what is live now. The audit trail
itself is queried here too: filtered, paged by its sequence number, or exported whole.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Integer, Select, and_, func, or_, select
from sqlalchemy.orm import Session

import licensing
from app.audit import chain_of
from app.errors import NotFoundError
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
)

BATCH = 1000
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
CHANGE_COLUMNS = (
    "at",
    "user_id",
    "userName",
    "change",
    "project",
    "role_before",
    "role_after",
    "seat_before",
    "seat_after",
    "reason",
    "actor_type",
    "actor",
    "request_id",
)
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
RENEWAL_COLUMNS = ("month", "peak_paid", "end_paid", "end_free", "tier", "utilisation")
AUDIT_COLUMNS = (
    "seq",
    "at",
    "actor_type",
    "actor",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "request_id",
    "source_ip",
    "user_agent",
    "id",
    "org_id",
    "prev_hash",
    "hash",
)
SEATS = ("paid", "free", "pending", "none")
STATUSES = ("active", "deactivated", "deleted")
MEMBERSHIP_ACTIONS = ("membership.added", "membership.removed")


@dataclass(frozen=True, slots=True)
class AccessFilters:
    project: str | None = None
    role: str | None = None
    seat: str | None = None  # paid | free | pending | none
    status: str | None = None  # active | deactivated | deleted
    group: str | None = None  # group id or display name
    not_logged_in_days: int | None = None  # paid seats unused for N days: reclaim candidates
    deactivated_with_role: bool = False  # must be empty; shown anyway


@dataclass
class _UserState:
    user_id: str
    user_name: str
    status: str = "active"
    seat: str = SeatKind.NONE
    is_pending: bool = False
    last_login_at: datetime | None = None
    source: str = "scim"
    roles: dict[str, dict[str, Any]] | None = None


def _status(is_active: bool, deprovisioned_at: datetime | None) -> str:
    if deprovisioned_at is not None:
        return "deleted"
    return "active" if is_active else "deactivated"


# ------------------------------------------------------------- parameters


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
        return datetime.combine(day + timedelta(days=1 if end_of_day else 0), time.min, UTC)
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
        live = select(Group.id).where(Group.org_id == organization.id, Group.id == UUID(group_id))
        recorded = select(AuditEvent.id).where(
            AuditEvent.org_id == organization.id,
            AuditEvent.target_type == "group",
            AuditEvent.target_id == group_id,
        )
        if session.scalar(live) is None and session.scalar(recorded.limit(1)) is None:
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
        ids.update(
            target
            for target in session.scalars(
                select(AuditEvent.target_id)
                .where(
                    AuditEvent.org_id == organization.id,
                    AuditEvent.action.in_(("group.created", "group.updated")),
                    func.lower(AuditEvent.after["display_name"].as_string()) == key,
                )
                .distinct()
            )
            if target is not None
        )
    if not ids:
        raise NotFoundError(f"group {reference!r} not found")
    return sorted(ids)


# ---------------------------------------------------------- access report


class Names:
    """Rule and group names for provenance, looked up once per id."""

    def __init__(self, session: Session, org_id: UUID) -> None:
        self.session = session
        self.org_id = org_id
        self.rules = {
            str(r.id): f"{r.match} {r.group_value} → {r.role_key} in {r.project_key}"
            for r in session.scalars(select(MappingRule).where(MappingRule.org_id == org_id))
        }
        self.groups: dict[str, str] = {}

    def load_groups(self, ids: set[str]) -> None:
        missing = [UUID(i) for i in ids - self.groups.keys()]
        for chunk_start in range(0, len(missing), BATCH):
            chunk = missing[chunk_start : chunk_start + BATCH]
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
    state: _UserState,
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
    state: _UserState, filters: AccessFilters, names: Names, catalogue: licensing.RoleCatalogue
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
            "groups": sorted({names.group(s["group_id"]) for s in sources}),
            "rules": sorted({names.rule(s["rule_id"]) for s in sources}) or ["default role"],
            "granted_at": grant["granted_at"].isoformat() if grant.get("granted_at") else None,
        }


def _members_at(
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
                and_(AuditEvent.target_type == "group", AuditEvent.target_id.in_(group_ids)),
                AuditEvent.action == "user.deleted",  # leaves its groups without member events
            ),
        )
        .order_by(AuditEvent.seq, AuditEvent.id)
        .execution_options(yield_per=5000)
    )
    wanted = set(group_ids)
    for action, target_id, before, after in events:
        if action == "membership.added" and after:
            pairs.add((target_id, after["user_id"]))
        elif action == "membership.removed" and before:
            pairs.discard((target_id, before["user_id"]))
        elif action == "group.deleted":
            pairs = {pair for pair in pairs if pair[0] != target_id}
        elif action == "user.deleted" and after:
            for left in wanted.intersection(after.get("groups_left") or ()):
                pairs.discard((left, target_id))
    return {user_id for _, user_id in pairs}


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
    names = Names(session, organization.id)
    now = as_of or datetime.now(UTC)
    group_ids = (
        find_group_ids(session, organization, filters.group, history=as_of is not None)
        if filters.group
        else None
    )
    members: set[str] | None = None
    if as_of is None:
        states = _live_states(session, organization, group_ids)
    else:
        states = _replayed_states(session, organization, as_of)
        if group_ids is not None:
            members = _members_at(session, organization.id, group_ids, as_of)
    for batch in states:
        names.load_groups(
            {
                s["group_id"]
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
) -> Iterator[list[_UserState]]:
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
    ).where(User.org_id == organization.id)
    if group_ids is not None:
        query = query.where(
            User.id.in_(
                select(Membership.user_id).where(
                    Membership.group_id.in_([UUID(g) for g in group_ids])
                )
            )
        )
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
        roles: dict[UUID, dict[str, dict[str, Any]]] = {u.id: {} for u in users}
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
                roles[user_id][project] = {
                    "role": role,
                    "sources": sources,
                    "granted_at": granted_at,
                }
        yield [
            _UserState(
                user_id=str(u.id),
                user_name=u.user_name,
                status=_status(u.is_active, u.deprovisioned_at),
                seat=u.seat,
                is_pending=u.pending_since is not None,
                last_login_at=u.last_login_at,
                source=u.source,
                roles=roles[u.id],
            )
            for u in users
        ]


def _replayed_states(
    session: Session, organization: Organization, as_of: datetime
) -> Iterator[list[_UserState]]:
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
            AuditEvent.target_type == "user",
            AuditEvent.target_id.is_not(None),
            AuditEvent.at <= as_of,
        )
        .order_by(AuditEvent.target_id, AuditEvent.seq, AuditEvent.id)
        .execution_options(yield_per=5000)
    )
    batch: list[_UserState] = []
    for target_id, user_events in groupby(events, key=lambda row: str(row[0])):
        state = _UserState(target_id, target_id, roles={})
        for _, action, before, after, at, actor_type in user_events:
            _replay(state, action, before or {}, after or {}, at, actor_type)
        batch.append(state)
        if len(batch) == BATCH:
            yield _with_current_names(session, batch)
            batch = []
    if batch:
        yield _with_current_names(session, batch)


def _with_current_names(session: Session, batch: list[_UserState]) -> list[_UserState]:
    ids = []
    for state in batch:
        try:
            ids.append(UUID(state.user_id))
        except ValueError:
            continue
    current = dict(session.execute(select(User.id, User.user_name).where(User.id.in_(ids))).all())
    for state in batch:
        try:
            state.user_name = current.get(UUID(state.user_id), state.user_name)
        except ValueError:
            continue
    return batch


def _replay(
    state: _UserState,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    at: datetime,
    actor_type: str,
) -> None:
    roles = state.roles if state.roles is not None else {}
    state.roles = roles
    if action == "user.created":
        state.user_name = after.get("user_name", state.user_name)
        state.status = "active" if after.get("active", True) else "deactivated"
        state.source = "sso" if actor_type == "sso" else "scim" if actor_type == "scim" else "admin"
    elif action == "user.relinked":
        state.status = "active" if after.get("active", True) else "deactivated"
        state.user_name = after.get("user_name", state.user_name)
    elif action in ("user.deactivated", "user.reactivated", "user.updated"):
        if "active" in after:
            state.status = "active" if after["active"] else "deactivated"
        if "user_name" in after:
            state.user_name = after["user_name"]
    elif action == "user.deleted":
        state.status = "deleted"
    elif action == "role.granted" or action == "role.changed":
        previous = roles.get(after["project"])
        granted_at = at
        if action == "role.changed" and previous and previous["role"] == after["role"]:
            granted_at = previous["granted_at"]
        roles[after["project"]] = {
            "role": after["role"],
            "sources": after.get("sources") or [],
            "granted_at": granted_at,
        }
    elif action == "role.revoked":
        roles.pop(before.get("project", ""), None)
    elif action == "seat.changed":
        state.seat = after.get("seat", state.seat)
        state.is_pending = bool(after.get("pending"))
    elif action == "login.accepted":
        state.last_login_at = at


# ---------------------------------------------------------- change report


def change_report(
    session: Session, organization: Organization, start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    """Access granted, changed and revoked, seats gained and released in [start, end)."""
    events = session.execute(
        select(
            AuditEvent.at,
            AuditEvent.target_id,
            AuditEvent.action,
            AuditEvent.before,
            AuditEvent.after,
            AuditEvent.actor_type,
            AuditEvent.actor,
            AuditEvent.request_id,
        )
        .where(
            AuditEvent.org_id == organization.id,
            AuditEvent.at >= start,
            AuditEvent.at < end,
            AuditEvent.action.in_(("role.granted", "role.changed", "role.revoked", "seat.changed")),
        )
        .order_by(AuditEvent.at, AuditEvent.id)
        .execution_options(yield_per=BATCH)
    )
    for partition in events.partitions():
        names = _user_names(session, organization, {row.target_id or "" for row in partition})
        for event in partition:
            yield _change_row(event, names)


def _user_names(
    session: Session, organization: Organization, user_ids: Iterable[str]
) -> dict[str, str]:
    ids = []
    for user_id in user_ids:
        try:
            ids.append(UUID(user_id))
        except ValueError:
            continue
    return {
        str(user_id): name
        for user_id, name in session.execute(
            select(User.id, User.user_name).where(User.org_id == organization.id, User.id.in_(ids))
        )
    }


def _change_row(event: Any, names: dict[str, str]) -> dict[str, Any]:
    before, after = event.before or {}, event.after or {}
    user_id = event.target_id or ""
    row: dict[str, Any] = {column: None for column in CHANGE_COLUMNS}
    row |= {
        "at": event.at.isoformat(),
        "user_id": user_id,
        "userName": names.get(user_id, user_id),
        "actor_type": event.actor_type,
        "actor": event.actor,
        "request_id": event.request_id,
        "reason": after.get("reason"),
    }
    if event.action == "seat.changed":
        gained = after.get("seat") == SeatKind.PAID
        lost = before.get("seat") == SeatKind.PAID
        change = "seat_gained" if gained else "seat_released" if lost else "seat_changed"
        row |= {
            "change": change,
            "seat_before": before.get("seat"),
            "seat_after": after.get("seat"),
        }
    else:
        change = {
            "role.granted": "granted",
            "role.changed": "changed",
            "role.revoked": "revoked",
        }[event.action]
        row |= {
            "change": change,
            "project": after.get("project") or before.get("project"),
            "role_before": before.get("role"),
            "role_after": after.get("role"),
        }
    return row


# --------------------------------------------------------- renewal report


def renewal_report(
    session: Session, organization: Organization, reclaim_days: int = 30
) -> dict[str, Any]:
    """Paid-seat use against the tier by month over the contract, with a renewal forecast."""
    today = datetime.now(UTC).date()
    start = organization.contract_starts_on or date(today.year - 1, today.month, 1)
    end = organization.contract_ends_on or _one_year_after(start)
    months = _month_starts(start, min(today, end))
    start_at = datetime.combine(start, time.min, UTC)

    def delta(seat: SeatKind) -> Any:
        return func.sum(
            (SeatEvent.to_seat == seat).cast(Integer) - (SeatEvent.from_seat == seat).cast(Integer)
        )

    opening = session.execute(
        select(delta(SeatKind.PAID), delta(SeatKind.FREE)).where(
            SeatEvent.org_id == organization.id, SeatEvent.at < start_at
        )
    ).one()
    paid, free = int(opening[0] or 0), int(opening[1] or 0)
    ledger = iter(
        session.execute(
            select(SeatEvent.at, SeatEvent.from_seat, SeatEvent.to_seat)
            .where(SeatEvent.org_id == organization.id, SeatEvent.at >= start_at)
            .order_by(SeatEvent.at, SeatEvent.id)
            .execution_options(yield_per=5000)
        )
    )
    entry = next(ledger, None)
    series: list[dict[str, Any]] = []
    end_paid: list[int] = []
    peaks: list[int] = []
    tier = organization.paid_seat_tier
    for month in months:
        following = datetime.combine(_next_month(month), time.min, UTC)
        peak = paid
        while entry is not None and entry.at < following:
            paid += (entry.to_seat == SeatKind.PAID) - (entry.from_seat == SeatKind.PAID)
            free += (entry.to_seat == SeatKind.FREE) - (entry.from_seat == SeatKind.FREE)
            peak = max(peak, paid)
            entry = next(ledger, None)
        peaks.append(peak)
        end_paid.append(paid)
        series.append(
            {
                "month": month.isoformat()[:7],
                "peak_paid": peak,
                "end_paid": paid,
                "end_free": free,
                "tier": tier,
                "utilisation": round(peak / tier, 3) if tier else None,
            }
        )
    totals = session.execute(
        select(User.seat, User.pending_since.is_not(None), func.count())
        .where(User.org_id == organization.id, User.deprovisioned_at.is_(None))
        .group_by(User.seat, User.pending_since.is_not(None))
    ).all()
    cutoff = datetime.now(UTC) - timedelta(days=reclaim_days)
    reclaim = (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(
                User.org_id == organization.id,
                User.seat == SeatKind.PAID,
                (User.last_login_at.is_(None)) | (User.last_login_at < cutoff),
            )
        )
        or 0
    )
    return {
        "tier": tier,
        "policy": organization.overage_policy,
        "contract_start": start.isoformat(),
        "contract_end": end.isoformat(),
        "months": series,
        "peak_paid": max(peaks, default=paid),
        "current": {
            "paid": sum(n for seat, _, n in totals if seat == SeatKind.PAID),
            "free": sum(n for seat, _, n in totals if seat == SeatKind.FREE),
            "pending": sum(n for _, is_pending, n in totals if is_pending),
        },
        "reclaim_candidates": reclaim,
        "reclaim_after_days": reclaim_days,
        "forecast_paid_at_renewal": _forecast(end_paid, months, end),
    }


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _month_starts(start: date, until: date) -> list[date]:
    months = []
    month = start.replace(day=1)
    while month <= until:
        months.append(month)
        month = _next_month(month)
    return months or [start.replace(day=1)]


def _forecast(values: Sequence[int], months: Sequence[date], renewal: date) -> int:
    """Least-squares line through the monthly paid seats, read at the renewal month."""
    if not values:
        return 0
    if len(values) == 1:
        return values[0]
    n = len(values)
    xs = range(n)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    first = months[0]
    target = (renewal.year - first.year) * 12 + renewal.month - first.month
    return max(0, round(mean_y + slope * (target - mean_x)))


def renewal_rows(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The renewal report's monthly series, as rows for CSV and JSON Lines."""
    yield from report["months"]


# ----------------------------------------------------------- drift report


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


# ------------------------------------------------------------ audit trail


@dataclass(frozen=True, slots=True)
class AuditFilters:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    actor: str | None = None
    actor_type: str | None = None
    action: str | None = None  # exact, or a prefix: "role." or "role.*"
    user_id: str | None = None  # events about the user, their memberships included
    group_ids: Sequence[str] | None = None  # events about the group(s)


def audit_query(organization: Organization, filters: AuditFilters) -> Select[Any]:
    """The organization's sealed events that match, in chain order (by seq)."""
    query = select(*_EVENT_FIELDS).where(
        AuditEvent.chain == chain_of(organization.id),
        AuditEvent.org_id == organization.id,
        AuditEvent.seq.is_not(None),
    )
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.actor_type:
        query = query.where(AuditEvent.actor_type == filters.actor_type)
    if filters.action:
        if filters.action.endswith((".", "*")):
            prefix = filters.action.rstrip("*")
            query = query.where(AuditEvent.action.startswith(prefix, autoescape=True))
        else:
            query = query.where(AuditEvent.action == filters.action)
    targets: list[ColumnElement[bool]] = []
    if filters.user_id is not None:
        targets.append(
            and_(AuditEvent.target_type == "user", AuditEvent.target_id == filters.user_id)
        )
        targets.append(
            and_(
                AuditEvent.target_type == "group",
                AuditEvent.action.in_(MEMBERSHIP_ACTIONS),
                or_(
                    AuditEvent.after["user_id"].as_string() == filters.user_id,
                    AuditEvent.before["user_id"].as_string() == filters.user_id,
                ),
            )
        )
    if filters.group_ids is not None:
        targets.append(
            and_(AuditEvent.target_type == "group", AuditEvent.target_id.in_(filters.group_ids))
        )
    if targets:
        query = query.where(or_(*targets))
    return query.order_by(AuditEvent.seq)


def audit_page(
    session: Session,
    organization: Organization,
    filters: AuditFilters,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """One page of events after the cursor; `next_cursor` resumes after the last one.

    Keyset paging on the chain's sequence number, which events get in commit order: a page
    never repeats or skips an event, even while new ones are being written.
    """
    query = audit_query(organization, filters)
    if cursor is not None:
        query = query.where(AuditEvent.seq > decode_cursor(cursor))
    rows = session.execute(query.limit(limit + 1)).all()
    events = [event_document(row) for row in rows[:limit]]
    return {
        "events": events,
        "has_more": len(rows) > limit,
        "next_cursor": encode_cursor(events[-1]["seq"]) if events else cursor,
    }


def audit_events(
    session: Session, organization: Organization, filters: AuditFilters
) -> Iterator[dict[str, Any]]:
    """Every matching event, streamed in chain order."""
    rows = session.execute(audit_query(organization, filters).execution_options(yield_per=2000))
    for row in rows:
        yield event_document(row)


_EVENT_FIELDS = (
    AuditEvent.id,
    AuditEvent.org_id,
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor_type,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.before,
    AuditEvent.after,
    AuditEvent.request_id,
    AuditEvent.source_ip,
    AuditEvent.user_agent,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def event_document(row: Any) -> dict[str, Any]:
    """An event as the API shows it: with `at` exactly as its hash covers it."""
    return {
        "seq": row.seq,
        "at": row.at.isoformat(timespec="microseconds"),
        "actor_type": row.actor_type,
        "actor": row.actor,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "before": row.before,
        "after": row.after,
        "request_id": row.request_id,
        "source_ip": row.source_ip,
        "user_agent": row.user_agent,
        "id": row.id,
        "org_id": str(row.org_id) if row.org_id is not None else None,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def encode_cursor(seq: int) -> str:
    """An opaque cursor: resume after this event."""
    raw = json.dumps({"after": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor resumes after; ValueError when it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError("the cursor is not valid") from None
    after = value.get("after") if isinstance(value, dict) else None
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError("the cursor is not valid")
    return after
