"""The audit trail read back: filtered, paged by its sequence number, or exported whole."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from app.actions import Action, GroupKey, Target
from app.audit import RECORDED_FIELDS, chain_of
from app.models import AuditEvent, Organization

AUDIT_COLUMNS = ("seq", *RECORDED_FIELDS, "id", "org_id", "prev_hash", "hash")
MEMBERSHIP_ACTIONS = (Action.MEMBERSHIP_ADDED, Action.MEMBERSHIP_REMOVED)
_EVENT_FIELDS = tuple(getattr(AuditEvent, column) for column in AUDIT_COLUMNS)


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
    targets = _targets(filters)
    if targets:
        query = query.where(or_(*targets))
    return query.order_by(AuditEvent.seq)


def _targets(filters: AuditFilters) -> list[ColumnElement[bool]]:
    """What the user and group filters select: any one of them matches."""
    targets: list[ColumnElement[bool]] = []
    if filters.user_id is not None:
        targets.append(
            and_(AuditEvent.target_type == Target.USER, AuditEvent.target_id == filters.user_id)
        )
        targets.append(
            and_(
                AuditEvent.target_type == Target.GROUP,
                AuditEvent.action.in_(MEMBERSHIP_ACTIONS),
                or_(
                    AuditEvent.after[GroupKey.USER_ID].as_string() == filters.user_id,
                    AuditEvent.before[GroupKey.USER_ID].as_string() == filters.user_id,
                ),
            )
        )
    if filters.group_ids is not None:
        targets.append(
            and_(
                AuditEvent.target_type == Target.GROUP,
                AuditEvent.target_id.in_(filters.group_ids),
            )
        )
    return targets


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


def event_document(row: Any) -> dict[str, Any]:
    """An event as the API shows it (keys in AUDIT_COLUMNS order): `at` exactly as its hash
    covers it."""
    document = {column: getattr(row, column) for column in AUDIT_COLUMNS}
    document["at"] = row.at.isoformat(timespec="microseconds")
    document["org_id"] = str(row.org_id) if row.org_id is not None else None
    return document


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
