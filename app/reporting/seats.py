"""Seat reports: paid, free, pending and no-seat counts now (each active user once), the users
waiting for a paid seat, and seats day by day from the seat ledger."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, Row, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

import licensing
from app.db import utcnow
from app.models import Organization, SeatEvent, SeatKind, User


@dataclass(frozen=True, slots=True)
class SeatSummary:
    """Active users by seat against the tier: paid + free + pending + none = active."""

    tier: int
    paid: int
    free: int
    pending: int
    none: int
    policy: str
    overage: int

    def as_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "paid": self.paid,
            "free": self.free,
            "pending": self.pending,
            "none": self.none,
            "active": self.paid + self.free + self.pending + self.none,
            "policy": self.policy,
            "overage": self.overage,
        }


def seat_totals(session: Session, org_id: UUID) -> licensing.SeatTotals:
    """Active users right now, each counted once (`licensing.seat_bucket`): paid, free,
    pending (waiting for a paid seat, whatever they hold meanwhile) and none (no role)."""
    rows = session.execute(
        select(User.seat, User.pending_since.is_not(None), func.count())
        .where(User.org_id == org_id, User.is_active.is_(True), User.deprovisioned_at.is_(None))
        .group_by(User.seat, User.pending_since.is_not(None))
    ).all()
    counts: Counter[licensing.SeatBucket] = Counter()
    for seat, is_pending, count in rows:
        bucket = licensing.seat_bucket(True, licensing.Seat(seat), bool(is_pending))
        if bucket is not None:
            counts[bucket] += count
    return licensing.SeatTotals(0, 0, 0).moved(counts)


def seat_summary(session: Session, organization: Organization) -> SeatSummary:
    """Active users by seat (each counted once) against the contracted tier."""
    totals = seat_totals(session, organization.id)
    return SeatSummary(
        tier=organization.paid_seat_tier,
        paid=totals.paid,
        free=totals.free,
        pending=totals.pending,
        none=totals.none,
        policy=organization.overage_policy,
        overage=max(0, totals.paid - organization.paid_seat_tier),
    )


def pending_users(session: Session, organization: Organization) -> list[dict[str, Any]]:
    """Users waiting for a paid seat, in the order they will be promoted."""
    rows = session.execute(
        select(User.id, User.user_name, User.pending_since)
        .where(User.org_id == organization.id, User.pending_since.is_not(None))
        .order_by(User.pending_since, User.id)
    )
    return [
        {"id": str(i), "userName": name, "pending_since": since.isoformat() if since else None}
        for i, name, since in rows
    ]


def seats_before(session: Session, org_id: UUID, instant: datetime) -> tuple[int, int]:
    """Paid and free seats held just before `instant`, summed from the seat ledger."""

    def delta(seat: SeatKind) -> Any:
        return func.sum(
            (SeatEvent.to_seat == seat).cast(Integer())
            - (SeatEvent.from_seat == seat).cast(Integer())
        )

    opening = session.execute(
        select(delta(SeatKind.PAID), delta(SeatKind.FREE)).where(
            SeatEvent.org_id == org_id, SeatEvent.at < instant
        )
    ).one()
    return int(opening[0] or 0), int(opening[1] or 0)


def ledger(
    session: Session, org_id: UUID, start: datetime, end: datetime | None = None
) -> Iterator[Row[datetime, str, str]]:
    """The seat ledger's entries (at, from_seat, to_seat) in [start, end), in order."""
    query = select(SeatEvent.at, SeatEvent.from_seat, SeatEvent.to_seat).where(
        SeatEvent.org_id == org_id, SeatEvent.at >= start
    )
    if end is not None:
        query = query.where(SeatEvent.at < end)
    return iter(
        session.execute(
            query.order_by(SeatEvent.at, SeatEvent.id).execution_options(yield_per=5000)
        )
    )


def seat_moves(from_seat: str, to_seat: str) -> tuple[int, int]:
    """How one ledger entry moves the paid and free counts (each -1, 0 or +1)."""
    paid = (to_seat == SeatKind.PAID) - (from_seat == SeatKind.PAID)
    free = (to_seat == SeatKind.FREE) - (from_seat == SeatKind.FREE)
    return paid, free


@dataclass(frozen=True, slots=True)
class Pending:
    """Users waiting for a paid seat just before each of some instants."""

    users: list[int]  # everyone pending
    on_free_seat: list[int]  # those of them holding a free seat meanwhile


def pending_before(session: Session, org_id: UUID, instants: Sequence[datetime]) -> Pending:
    """How many users were pending just before each instant (ascending), from the ledger.

    Each ledger entry that left a user pending starts a wait that the user's next entry ends.
    Only those entries are read (a partial index keeps them apart), a row at a time, and each
    wait is added to the instants it spans at once: memory grows with the instants only.
    """
    n = len(instants)
    users, on_free = [0] * (n + 1), [0] * (n + 1)
    if not instants:
        return Pending([], [])
    following = aliased(SeatEvent)
    ended_at = (
        select(following.at)
        .where(
            following.user_id == SeatEvent.user_id,
            or_(
                following.at > SeatEvent.at,
                and_(following.at == SeatEvent.at, following.id > SeatEvent.id),
            ),
        )
        .order_by(following.at, following.id)
        .limit(1)
        .correlate(SeatEvent)
        .scalar_subquery()
    )
    waits = session.execute(
        select(SeatEvent.at, ended_at, SeatEvent.to_seat)
        .where(SeatEvent.org_id == org_id, SeatEvent.is_pending, SeatEvent.at < instants[-1])
        .execution_options(yield_per=5000)
    )
    for started_at, ended, seat in waits:
        # Pending just before instant t: the wait started before t and had not ended before t.
        first = bisect_right(instants, started_at)
        last = n if ended is None else bisect_right(instants, ended)
        if first >= last:
            continue
        users[first] += 1
        users[last] -= 1
        if seat == SeatKind.FREE:
            on_free[first] += 1
            on_free[last] -= 1
    return Pending(list(accumulate(users[:n])), list(accumulate(on_free[:n])))


def seat_history(
    session: Session, organization: Organization, start: date, end: date
) -> dict[str, Any]:
    """Paid, free and pending users at the end of each day in [start, end], from the seat
    ledger; the period stops at today (UTC), since no later day has happened yet."""
    end = min(end, utcnow().date())
    if end < start:
        raise ValueError("the period ends before it starts, or starts after today")
    start_at = datetime.combine(start, time.min, UTC)
    end_at = datetime.combine(end + timedelta(days=1), time.min, UTC)
    paid, free = seats_before(session, organization.id, start_at)
    changes: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for at, from_seat, to_seat in ledger(session, organization.id, start_at, end_at):
        day = at.astimezone(UTC).date()
        paid_move, free_move = seat_moves(from_seat, to_seat)
        changes[day][0] += paid_move
        changes[day][1] += free_move
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    pending = pending_before(
        session,
        organization.id,
        [datetime.combine(d + timedelta(days=1), time.min, UTC) for d in days],
    )
    series: list[dict[str, Any]] = []
    paid_values: list[int] = []
    for index, day in enumerate(days):
        paid += changes[day][0]
        free += changes[day][1]
        series.append(
            {
                "date": day.isoformat(),
                "paid": paid,
                # A pending user's free seat counts as pending, as in the seat totals.
                "free": free - pending.on_free_seat[index],
                "pending": pending.users[index],
            }
        )
        paid_values.append(paid)
    return {
        "tier": organization.paid_seat_tier,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "series": series,
        "peak_paid": max(paid_values),
        "average_paid": round(sum(paid_values) / len(paid_values), 2),
    }
