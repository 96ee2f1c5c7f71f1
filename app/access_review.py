"""Access-review reports for security teams and account managers, streamed row by row.

The access report as of now reads the live tables; as of a past date it replays the audit
trail up to that moment, so it shows what was live then, not what is live now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session

import licensing
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


def _status(user: User) -> str:
    if user.deprovisioned_at is not None:
        return "deleted"
    return "active" if user.is_active else "deactivated"


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


def _matches(
    state: _UserState,
    filters: AccessFilters,
    group_members: set[str] | None,
    now: datetime,
) -> bool:
    roles = state.roles or {}
    seat = "pending" if state.is_pending else state.seat
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
    if filters.project and not any(p in (filters.project, "*") for p in roles):
        return False
    return not (filters.role and not any(r["role"] == filters.role for r in roles.values()))


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
    roles = state.roles or {}
    shown = [
        (project, grant)
        for project, grant in sorted(roles.items())
        if (not filters.project or project in (filters.project, "*"))
        and (not filters.role or grant["role"] == filters.role)
    ]
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


def _group_members(session: Session, org_id: UUID, group: str | None) -> set[str] | None:
    if not group:
        return None
    try:
        condition = Group.id == UUID(group)
    except ValueError:
        condition = Group.display_name_key == group.lower()
    group_ids = select(Group.id).where(Group.org_id == org_id, condition)
    return {
        str(u)
        for u in session.scalars(
            select(Membership.user_id).where(Membership.group_id.in_(group_ids))
        )
    }


def access_report(
    session: Session,
    organization: Organization,
    catalogue: licensing.RoleCatalogue,
    filters: AccessFilters,
    as_of: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """One row per user and role (users without a role get one row), as of now or a date."""
    names = Names(session, organization.id)
    members = _group_members(session, organization.id, filters.group)
    now = as_of or datetime.now(UTC)
    states = (
        _live_states(session, organization)
        if as_of is None
        else _replayed_states(session, organization, as_of)
    )
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


def _live_states(session: Session, organization: Organization) -> Iterator[list[_UserState]]:
    last_key = ""
    while True:
        users = session.scalars(
            select(User)
            .where(User.org_id == organization.id, User.user_name_key > last_key)
            .order_by(User.user_name_key)
            .limit(BATCH)
        ).all()
        if not users:
            return
        last_key = users[-1].user_name_key
        roles: dict[UUID, dict[str, dict[str, Any]]] = defaultdict(dict)
        for user_id, project, role, sources, granted_at in session.execute(
            select(
                RoleAssignment.user_id,
                RoleAssignment.project_key,
                RoleAssignment.role_key,
                RoleAssignment.sources,
                RoleAssignment.granted_at,
            ).where(RoleAssignment.user_id.in_([u.id for u in users]))
        ):
            roles[user_id][project] = {"role": role, "sources": sources, "granted_at": granted_at}
        yield [
            _UserState(
                user_id=str(u.id),
                user_name=u.user_name,
                status=_status(u),
                seat=u.seat,
                is_pending=u.pending_since is not None,
                last_login_at=u.last_login_at,
                source=u.source,
                roles=roles.get(u.id, {}),
            )
            for u in users
        ]
        for user in users:
            session.expunge(user)


def _replayed_states(
    session: Session, organization: Organization, as_of: datetime
) -> Iterator[list[_UserState]]:
    """Everyone's access at `as_of`, rebuilt by replaying the audit trail up to it."""
    states: dict[str, _UserState] = {}
    events = session.execute(
        select(
            AuditEvent.action,
            AuditEvent.target_id,
            AuditEvent.before,
            AuditEvent.after,
            AuditEvent.at,
            AuditEvent.actor_type,
        )
        .where(
            AuditEvent.org_id == organization.id,
            AuditEvent.target_type == "user",
            AuditEvent.at <= as_of,
        )
        .order_by(AuditEvent.chain, AuditEvent.seq, AuditEvent.id)
        .execution_options(yield_per=5000)
    )
    for action, target_id, before, after, at, actor_type in events:
        if target_id is None:
            continue
        state = states.get(target_id)
        if state is None:
            state = states[target_id] = _UserState(target_id, target_id, roles={})
        _replay(state, action, before or {}, after or {}, at, actor_type)
    ids = sorted(states)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        current = dict(
            session.execute(
                select(User.id, User.user_name).where(User.id.in_([UUID(i) for i in chunk]))
            ).all()
        )
        batch = []
        for user_id in chunk:
            state = states[user_id]
            state.user_name = current.get(UUID(user_id), state.user_name)
            batch.append(state)
        yield batch


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


def change_report(
    session: Session, organization: Organization, start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    """Access granted, changed and revoked, seats gained and released in [start, end)."""
    names: dict[str, str] = {}
    events = session.execute(
        select(AuditEvent)
        .where(
            AuditEvent.org_id == organization.id,
            AuditEvent.at >= start,
            AuditEvent.at < end,
            AuditEvent.action.in_(("role.granted", "role.changed", "role.revoked", "seat.changed")),
        )
        .order_by(AuditEvent.at, AuditEvent.id)
        .execution_options(yield_per=2000)
    ).scalars()
    for event in events:
        before, after = event.before or {}, event.after or {}
        user_id = event.target_id or ""
        if user_id not in names:
            user = session.get(User, UUID(user_id)) if user_id else None
            names[user_id] = user.user_name if user is not None else user_id
        row: dict[str, Any] = {column: None for column in CHANGE_COLUMNS}
        row |= {
            "at": event.at.isoformat(),
            "user_id": user_id,
            "userName": names[user_id],
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
        yield row


def renewal_report(
    session: Session, organization: Organization, reclaim_days: int = 30
) -> dict[str, Any]:
    """Paid-seat use against the tier by month over the contract, with a renewal forecast."""
    today = datetime.now(UTC).date()
    start = organization.contract_starts_on or date(today.year - 1, today.month, 1)
    end = organization.contract_ends_on or date(start.year + 1, start.month, start.day)
    months = _month_starts(start, min(today, end))
    deltas: dict[date, list[int]] = defaultdict(list)
    opening = session.scalar(
        select(
            func.sum(
                (SeatEvent.to_seat == SeatKind.PAID).cast(Integer)
                - (SeatEvent.from_seat == SeatKind.PAID).cast(Integer)
            )
        ).where(
            SeatEvent.org_id == organization.id,
            SeatEvent.at < datetime.combine(start, time.min, UTC),
        )
    )
    paid = int(opening or 0)
    for at, from_seat, to_seat in session.execute(
        select(SeatEvent.at, SeatEvent.from_seat, SeatEvent.to_seat)
        .where(
            SeatEvent.org_id == organization.id,
            SeatEvent.at >= datetime.combine(start, time.min, UTC),
        )
        .order_by(SeatEvent.at, SeatEvent.id)
        .execution_options(yield_per=5000)
    ):
        change = (to_seat == SeatKind.PAID) - (from_seat == SeatKind.PAID)
        if change:
            month = at.astimezone(UTC).date().replace(day=1)
            deltas[month].append(change)
    series: list[dict[str, Any]] = []
    end_paid: list[int] = []
    peaks: list[int] = []
    for month in months:
        peak = paid
        for change in deltas.get(month, []):
            paid += change
            peak = max(peak, paid)
        series.append(
            {
                "month": month.isoformat()[:7],
                "peak_paid": peak,
                "end_paid": paid,
                "tier": organization.paid_seat_tier,
                "utilisation": round(peak / organization.paid_seat_tier, 3)
                if organization.paid_seat_tier
                else None,
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
        "tier": organization.paid_seat_tier,
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


def _month_starts(start: date, until: date) -> list[date]:
    months = []
    month = start.replace(day=1)
    while month <= until:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
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
