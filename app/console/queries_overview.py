"""Reads for the console's overview: seats against the tier, the seat trend over the contract
period, recent changes, held changes and connection health. Reads only, scoped by
organization, each on an index (the seat counts scan the organization's users once, as the
seat report does)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import request_errors
from app.actions import Action, Target
from app.admin.queries import list_held_changes
from app.db import utcnow
from app.models import (
    AuditEvent,
    DeliveryState,
    Group,
    HeldChange,
    IdpConnection,
    LoginIdentity,
    Organization,
    ScimToken,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.reporting import contract_history, seat_history, seat_summary
from app.reporting.lookups import user_names

RECENT_LIMIT = 10
HELD_LIMIT = 10
# Without a contract period the trend shows the last 90 days.
DEFAULT_TREND_DAYS = 90
ERROR_WINDOW = timedelta(hours=24)
# Sign-ins and sessions are not changes: the recent changes leave them to the audit page.
NOT_CHANGES = (
    Action.LOGIN_ACCEPTED,
    Action.LOGIN_LINKED,
    Action.LOGIN_REFUSED,
    Action.LOGIN_GROUPS_OVERAGE,
    Action.SESSION_ENDED,
    Action.CONSOLE_SIGNED_IN,
    Action.CONSOLE_SIGNED_OUT,
)


@dataclass(frozen=True, slots=True)
class SeatCounts:
    """Users by seat now (each active user once: paid + free + pending + none = active), the
    deactivated ones (kept, no seat) and the deprovisioned (deleted, history kept)."""

    tier: int
    policy: str
    paid: int
    free: int
    pending: int
    none: int
    deactivated: int
    deprovisioned: int

    @property
    def overage(self) -> int:
        return max(0, self.paid - self.tier)


@dataclass(frozen=True, slots=True)
class SeatTrend:
    """Paid seats at the end of each day of the contract period so far, and the tier in
    force that day; `end` is the period's last day, which may lie ahead."""

    start: date
    end: date
    days: list[date]
    paid: list[int]
    tier: list[int]

    @property
    def peak(self) -> int:
        return max(self.paid, default=0)


@dataclass(frozen=True, slots=True)
class RecentChange:
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    target: str | None


@dataclass(frozen=True, slots=True)
class TokenHealth:
    label: str
    scope: str
    prefix: str
    is_read_only: bool
    last_used_at: datetime | None
    errors: int = 0  # refused or failed requests in the error window (app/request_errors.py)
    last_error: str | None = None  # "409 userName ... already exists"


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    name: str
    protocol: str
    is_enabled: bool
    last_login_at: datetime | None
    refused: int  # refused logins in the error window


@dataclass(frozen=True, slots=True)
class WebhookHealth:
    url: str
    is_enabled: bool
    dead: int  # deliveries that went dead (dead letters) in the error window


@dataclass(frozen=True, slots=True)
class Health:
    tokens: list[TokenHealth]
    connections: list[ConnectionHealth]
    webhooks: list[WebhookHealth]
    refused_unknown: int  # refused logins that named no connection of ours
    since: datetime

    @property
    def errors(self) -> int:
        """Errors in the window: requests with a token that failed, refused SSO logins and
        webhook deliveries gone dead."""
        return (
            sum(t.errors for t in self.tokens)
            + self.refused_unknown
            + sum(c.refused for c in self.connections)
            + sum(w.dead for w in self.webhooks)
        )


@dataclass(frozen=True, slots=True)
class Overview:
    counts: SeatCounts
    trend: SeatTrend
    recent: list[RecentChange]
    held: Sequence[HeldChange]
    health: Health


def overview(session: Session, organization: Organization) -> Overview:
    """Everything the overview page shows, read in the caller's (read-only) unit."""
    now = utcnow()
    return Overview(
        counts=seat_counts(session, organization),
        trend=seat_trend(session, organization, now.date()),
        recent=recent_changes(session, organization.id),
        held=list_held_changes(session, organization, "held", HELD_LIMIT),
        health=health(session, organization.id, now - ERROR_WINDOW),
    )


def seat_counts(session: Session, organization: Organization) -> SeatCounts:
    """The seat summary of the seat report, with the users who hold no seat by leaving.

    Everyone minus the users not deprovisioned are the deprovisioned, and those minus the
    active ones (the summary's buckets) the deactivated: two counts the (org_id, created_at,
    id) indexes answer, the whole one and the partial one of users not deprovisioned, rather
    than a second pass over the users' rows."""
    summary = seat_summary(session, organization)
    everyone = session.scalar(select(func.count()).where(User.org_id == organization.id)) or 0
    kept = (
        session.scalar(
            select(func.count()).where(
                User.org_id == organization.id, User.deprovisioned_at.is_(None)
            )
        )
        or 0
    )
    active = summary.paid + summary.free + summary.pending + summary.none
    return SeatCounts(
        tier=summary.tier,
        policy=summary.policy,
        paid=summary.paid,
        free=summary.free,
        pending=summary.pending,
        none=summary.none,
        deactivated=kept - active,
        deprovisioned=everyone - kept,
    )


def trend_period(organization: Organization, today: date) -> tuple[date, date]:
    """The contract period (a year from its start when it has no end), or the last 90 days."""
    start = organization.contract_starts_on
    end = organization.contract_ends_on
    if start is None:
        end = end if end is not None and end < today else today
        return end - timedelta(days=DEFAULT_TREND_DAYS - 1), end
    if end is None or end < start:
        end = start.replace(year=start.year + 1) - timedelta(days=1)
    return start, end


def seat_trend(session: Session, organization: Organization, today: date) -> SeatTrend:
    """Paid seats day by day from the seat ledger over the period so far, with the tier of
    each day's contract version."""
    start, end = trend_period(organization, today)
    if start > today:
        return SeatTrend(start, end, [], [], [])
    history = seat_history(session, organization, start, min(end, today))
    contracts = contract_history(session, organization)
    days = [date.fromisoformat(point["date"]) for point in history["series"]]
    tiers = [
        contracts.at(datetime.combine(day + timedelta(days=1), time.min, UTC)).paid_seat_tier
        for day in days
    ]
    return SeatTrend(start, end, days, [p["paid"] for p in history["series"]], tiers)


def recent_changes(session: Session, org_id: UUID) -> list[RecentChange]:
    """The newest changes (not sign-ins), on the (org_id, at, id) index, with the names of
    the users and groups they are about."""
    rows = session.execute(
        select(
            AuditEvent.at,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.target_type,
            AuditEvent.target_id,
        )
        .where(AuditEvent.org_id == org_id, AuditEvent.action.not_in(NOT_CHANGES))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(RECENT_LIMIT)
    ).all()
    users = user_names(session, org_id, (r.target_id for r in rows if r.target_type == "user"))
    groups = _group_names(session, org_id, (r.target_id for r in rows if r.target_type == "group"))
    names = {**users, **groups}
    return [
        RecentChange(
            r.at,
            r.actor,
            r.action,
            r.target_type,
            r.target_id,
            names.get(r.target_id or "", r.target_id),
        )
        for r in rows
    ]


def _group_names(session: Session, org_id: UUID, ids: Iterable[str | None]) -> dict[str, str]:
    parsed = []
    for value in ids:
        try:
            parsed.append(UUID(value or ""))
        except ValueError:
            continue
    rows = session.execute(
        select(Group.id, Group.display_name).where(Group.org_id == org_id, Group.id.in_(parsed))
    )
    return {str(group_id): name for group_id, name in rows}


def health(session: Session, org_id: UUID, since: datetime) -> Health:
    """Last SCIM or API request per live token, last login and refused logins per
    connection, dead webhook deliveries per endpoint, since `since`."""
    live = list(
        session.scalars(
            select(ScimToken)
            .where(ScimToken.org_id == org_id, ScimToken.revoked_at.is_(None))
            .order_by(ScimToken.label)
        )
    )
    failed = request_errors.since(session, [t.id for t in live], since)
    tokens = [
        TokenHealth(
            t.label,
            t.scope,
            t.prefix,
            t.is_read_only,
            t.last_used_at,
            failed[t.id].count if t.id in failed else 0,
            f"{failed[t.id].last_status} {failed[t.id].last_detail}" if t.id in failed else None,
        )
        for t in live
    ]
    refused = _refused_logins(session, org_id, since)
    connections = []
    for connection in session.scalars(
        select(IdpConnection).where(IdpConnection.org_id == org_id).order_by(IdpConnection.name)
    ):
        # One range of the (connection_id, subject) unique index per connection.
        last_login = session.scalar(
            select(func.max(LoginIdentity.last_login_at)).where(
                LoginIdentity.connection_id == connection.id
            )
        )
        connections.append(
            ConnectionHealth(
                connection.name,
                connection.protocol,
                connection.is_enabled,
                last_login,
                refused.pop(str(connection.id), 0),
            )
        )
    return Health(
        tokens, connections, _webhooks(session, org_id, since), sum(refused.values()), since
    )


def _refused_logins(session: Session, org_id: UUID, since: datetime) -> Counter[str]:
    """Refused logins since `since` by connection id ("" when none was named), on the
    (org_id, action, at) index."""
    rows = session.execute(
        select(AuditEvent.target_id, func.count())
        .where(
            AuditEvent.org_id == org_id,
            AuditEvent.action == Action.LOGIN_REFUSED,
            AuditEvent.at >= since,
            AuditEvent.target_type == Target.CONNECTION,
        )
        .group_by(AuditEvent.target_id)
    )
    return Counter({(target or ""): count for target, count in rows})


def _webhooks(session: Session, org_id: UUID, since: datetime) -> list[WebhookHealth]:
    """Each endpoint with the deliveries that went dead since `since` (a dead delivery's
    next_attempt_at is when its last attempt failed)."""
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, func.count())
        .where(
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.state == DeliveryState.DEAD,
            WebhookDelivery.next_attempt_at >= since,
        )
        .group_by(WebhookDelivery.endpoint_id)
    )
    dead: dict[UUID, int] = {endpoint_id: count for endpoint_id, count in rows}
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == org_id)
        .order_by(WebhookEndpoint.created_at)
    )
    return [WebhookHealth(e.url, e.is_enabled, dead.get(e.id, 0)) for e in endpoints]
