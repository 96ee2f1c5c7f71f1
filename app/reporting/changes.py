"""The change report: access granted, changed and revoked, seats gained and released."""

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
        gained = after.get(AccessKey.SEAT) == SeatKind.PAID
        lost = before.get(AccessKey.SEAT) == SeatKind.PAID
        change = "seat_gained" if gained else "seat_released" if lost else "seat_changed"
        row |= {
            "change": change,
            "seat_before": before.get(AccessKey.SEAT),
            "seat_after": after.get(AccessKey.SEAT),
        }
    else:
        row |= {
            "change": ROLE_CHANGES[event.action],
            "project": after.get(AccessKey.PROJECT) or before.get(AccessKey.PROJECT),
            "role_before": before.get(AccessKey.ROLE),
            "role_after": after.get(AccessKey.ROLE),
        }
    return row
