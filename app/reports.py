"""Read-only views of access and seats: what a user holds and why, seat counts and history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session

import licensing
from app.models import Group, MappingRule, Organization, RoleAssignment, SeatEvent, SeatKind, User


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


def seat_summary(session: Session, organization: Organization) -> SeatSummary:
    """Paid / free / pending counts against the contracted tier."""
    rows = session.execute(
        select(User.seat, User.pending_since.is_not(None), func.count())
        .where(User.org_id == organization.id, User.deprovisioned_at.is_(None))
        .group_by(User.seat, User.pending_since.is_not(None))
    ).all()
    paid = sum(n for seat, _, n in rows if seat == SeatKind.PAID)
    free = sum(n for seat, _, n in rows if seat == SeatKind.FREE)
    pending = sum(n for _, is_pending, n in rows if is_pending)
    return SeatSummary(
        tier=organization.paid_seat_tier,
        paid=paid,
        free=free,
        pending=pending,
        policy=organization.overage_policy,
        overage=max(0, paid - organization.paid_seat_tier),
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


def seat_history(
    session: Session, organization: Organization, start: date, end: date
) -> dict[str, Any]:
    """Paid and free seats at the end of each day in [start, end], from the seat ledger."""
    if end < start:
        raise ValueError("the period ends before it starts")
    start_at = datetime.combine(start, time.min, UTC)
    end_at = datetime.combine(end + timedelta(days=1), time.min, UTC)

    def delta(seat: SeatKind) -> Any:
        return func.sum(
            (SeatEvent.to_seat == seat).cast(Integer())
            - (SeatEvent.from_seat == seat).cast(Integer())
        )

    opening = session.execute(
        select(delta(SeatKind.PAID), delta(SeatKind.FREE)).where(
            SeatEvent.org_id == organization.id, SeatEvent.at < start_at
        )
    ).one()
    paid, free = int(opening[0] or 0), int(opening[1] or 0)
    changes: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for at, from_seat, to_seat in session.execute(
        select(SeatEvent.at, SeatEvent.from_seat, SeatEvent.to_seat)
        .where(
            SeatEvent.org_id == organization.id,
            SeatEvent.at >= start_at,
            SeatEvent.at < end_at,
        )
        .order_by(SeatEvent.at)
    ):
        day = at.astimezone(UTC).date()
        changes[day][0] += (to_seat == SeatKind.PAID) - (from_seat == SeatKind.PAID)
        changes[day][1] += (to_seat == SeatKind.FREE) - (from_seat == SeatKind.FREE)
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


def user_access(
    session: Session, organization: Organization, catalogue: licensing.RoleCatalogue, user: User
) -> dict[str, Any]:
    """A user's roles per project with the rules and groups behind them, seat and why paid."""
    assignments = session.scalars(
        select(RoleAssignment)
        .where(RoleAssignment.user_id == user.id)
        .order_by(RoleAssignment.project_key)
    ).all()
    rule_ids = {UUID(s["rule_id"]) for a in assignments for s in a.sources}
    group_ids = {UUID(s["group_id"]) for a in assignments for s in a.sources}
    rules = {
        str(r.id): r
        for r in session.scalars(
            select(MappingRule).where(
                MappingRule.org_id == organization.id, MappingRule.id.in_(rule_ids)
            )
        )
    }
    groups = {
        str(g.id): g.display_name
        for g in session.scalars(
            select(Group).where(Group.org_id == organization.id, Group.id.in_(group_ids))
        )
    }
    roles = []
    why_paid = []
    for assignment in assignments:
        role = catalogue.find(assignment.role_key)
        provenance: list[dict[str, Any]] = [
            {
                "rule_id": s["rule_id"],
                "rule": _describe_rule(rules.get(s["rule_id"])),
                "group_id": s["group_id"],
                "group": groups.get(s["group_id"]),
            }
            for s in assignment.sources
        ]
        entry = {
            "project": assignment.project_key,
            "role": assignment.role_key,
            "role_name": role.name if role else assignment.role_key,
            "paid": bool(role and role.is_paid),
            "granted_at": assignment.granted_at.isoformat(),
            "source": provenance or [{"default_role": True}],
        }
        roles.append(entry)
        if entry["paid"]:
            why_paid.append(
                {
                    "project": assignment.project_key,
                    "role": entry["role_name"],
                    "because": provenance or [{"default_role": True}],
                }
            )
    return {
        "id": str(user.id),
        "userName": user.user_name,
        "active": user.is_active and user.deprovisioned_at is None,
        "seat": user.seat,
        "pending": user.pending_since is not None,
        "pending_since": user.pending_since.isoformat() if user.pending_since else None,
        "roles": roles,
        "why_paid": why_paid,
    }


def _describe_rule(rule: MappingRule | None) -> str | None:
    if rule is None:
        return None
    return f"{rule.match} {rule.group_value!r} → {rule.role_key} in {rule.project_key}"
