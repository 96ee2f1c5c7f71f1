"""Seat reports: paid, free and pending counts now, the users waiting for a paid seat, and
seats day by day from the seat ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, Row, func, select
from sqlalchemy.orm import Session

import licensing
from app.models import Organization, SeatEvent, SeatKind, User


@dataclass(frozen=True, slots=True)
class SeatSummary:
    tier: int
    paid: int
    free: int
    pending: int
    policy: str
    overage: int

    def as_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "paid": self.paid,
            "free": self.free,
            "pending": self.pending,
            "policy": self.policy,
            "overage": self.overage,
        }


def seat_totals(session: Session, org_id: UUID) -> licensing.SeatTotals:
    """Paid, free and pending users right now (pending users also count in their free seat)."""
    rows = session.execute(
        select(User.seat, User.pending_since.is_not(None), func.count())
        .where(User.org_id == org_id, User.deprovisioned_at.is_(None))
        .group_by(User.seat, User.pending_since.is_not(None))
    ).all()
    return licensing.SeatTotals(
        paid=sum(n for seat, _, n in rows if seat == SeatKind.PAID),
        free=sum(n for seat, _, n in rows if seat == SeatKind.FREE),
        pending=sum(n for _, is_pending, n in rows if is_pending),
    )


def seat_summary(session: Session, organization: Organization) -> SeatSummary:
    """Paid / free / pending counts against the contracted tier."""
    totals = seat_totals(session, organization.id)
    return SeatSummary(
        tier=organization.paid_seat_tier,
        paid=totals.paid,
        free=totals.free,
        pending=totals.pending,
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


def seat_history(
    session: Session, organization: Organization, start: date, end: date
) -> dict[str, Any]:
    """Paid and free seats at the end of each day in [start, end], from the seat ledger."""
    if end < start:
        raise ValueError("the period ends before it starts")
    start_at = datetime.combine(start, time.min, UTC)
    end_at = datetime.combine(end + timedelta(days=1), time.min, UTC)
    paid, free = seats_before(session, organization.id, start_at)
    changes: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for at, from_seat, to_seat in ledger(session, organization.id, start_at, end_at):
        day = at.astimezone(UTC).date()
        paid_move, free_move = seat_moves(from_seat, to_seat)
        changes[day][0] += paid_move
        changes[day][1] += free_move
    series: list[dict[str, Any]] = []
    paid_values: list[int] = []
    day = start
    while day <= end:
        paid += changes[day][0]
        free += changes[day][1]
        series.append({"date": day.isoformat(), "paid": paid, "free": free})
        paid_values.append(paid)
        day += timedelta(days=1)
    return {
        "tier": organization.paid_seat_tier,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "series": series,
        "peak_paid": max(paid_values),
        "average_paid": round(sum(paid_values) / len(paid_values), 2),
    }
