"""The change report: access granted, changed and revoked, seats gained and released.

Seats read as the users held them: "pending" for a user waiting for a paid seat under `hold`
(not the free seat or none held meanwhile), "paid (overage)" for a paid seat granted above
the tier under `allow`; `change` says seat_gained, seat_released, seat_pending (started to
wait), pending_ended (stopped waiting without a paid seat) or seat_changed (free ↔ none).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.actions import AccessKey, Action
from app.models import AuditEvent, Organization, SeatKind
from app.reporting.lookups import BATCH, user_names

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
OVERAGE_SEAT = "paid (overage)"
# What each role action is called in the report's `change` column.
ROLE_CHANGES = {
    Action.ROLE_GRANTED: "granted",
    Action.ROLE_CHANGED: "changed",
    Action.ROLE_REVOKED: "revoked",
}


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
            AuditEvent.action.in_((*ROLE_CHANGES, Action.SEAT_CHANGED)),
        )
        .order_by(AuditEvent.at, AuditEvent.id)
        .execution_options(yield_per=BATCH)
    )
    for partition in events.partitions():
        names = user_names(session, organization.id, {row.target_id or "" for row in partition})
        for event in partition:
            yield _change_row(event, names)


def seat_label(seat: dict[str, Any]) -> str | None:
    """A seat.changed side as the report names it: "pending" for a user waiting for a paid
    seat (whatever they hold meanwhile), "paid (overage)" for a paid seat above the tier."""
    if seat.get(AccessKey.PENDING):
        return "pending"
    if seat.get(AccessKey.SEAT) == SeatKind.PAID and seat.get(AccessKey.OVERAGE):
        return OVERAGE_SEAT
    value = seat.get(AccessKey.SEAT)
    return str(value) if value is not None else None


def seat_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a seat.changed event did: gained or released a paid seat, started or stopped
    waiting for one, or moved between free and none."""
    if after.get(AccessKey.SEAT) == SeatKind.PAID:
        return "seat_gained"
    if before.get(AccessKey.SEAT) == SeatKind.PAID:
        return "seat_released"
    if after.get(AccessKey.PENDING) and not before.get(AccessKey.PENDING):
        return "seat_pending"
    if before.get(AccessKey.PENDING) and not after.get(AccessKey.PENDING):
        return "pending_ended"
    return "seat_changed"


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
        "reason": after.get(AccessKey.REASON),
    }
    if event.action == Action.SEAT_CHANGED:
        row |= {
            "change": seat_change(before, after),
            "seat_before": seat_label(before),
            "seat_after": seat_label(after),
        }
    else:
        row |= {
            "change": ROLE_CHANGES[event.action],
            "project": after.get(AccessKey.PROJECT) or before.get(AccessKey.PROJECT),
            "role_before": before.get(AccessKey.ROLE),
            "role_after": after.get(AccessKey.ROLE),
        }
    return row
