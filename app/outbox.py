"""Blue's events: queued with each change, written when its transaction commits, read in order.

The provisioning package queues an event (`queue`, `queue_many`) for every change Blue acts
on, through `app.provisioning.events`, the door that writes the audit trail. Nothing is
written then: when the transaction commits, `app.audit`'s seal, holding the organization's
chain head lock, numbers the organization's events from the counter in that row (`seq`) and
writes them as it stores the head: on PostgreSQL a few in the very statement that updates the
head (no round trip of their own), many by COPY; elsewhere in one INSERT. So an event exists
only if its change committed, and `seq` follows commit order: a transaction that numbers
events holds the lock until it commits, so a reader that has seen seq N will never later
see a lower number appear (the pull feed's `after=N` misses nothing).

Coalescing: a user's events of one type in one transaction become one event, the last, with
the final state, at the place of the last (a rule change and the promotion it causes
recompute a user twice; a /Bulk may update one user twice). Events of different types stay
apart and in order. A rolled-back savepoint takes the events queued inside it with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Insert,
    Select,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    event,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.db import COPY_THRESHOLD, copy_rows, json_texts, utcnow
from app.models import OutboxEvent

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_QUEUED = "outbox_queued"
_MARKS = "outbox_at_savepoints"
_COLUMNS = ("id", "org_id", "seq", "type", "user_id", "payload", "at")
# Built once: every committing change runs it.
_INSERT = insert(OutboxEvent)


class Queued(NamedTuple):
    """An event waiting for its transaction to commit."""

    org_id: UUID
    type: str
    user_id: UUID | None
    payload: Mapping[str, Any]
    at: datetime


def queue(
    session: Session, org_id: UUID, type_: str, user_id: UUID | None, payload: Mapping[str, Any]
) -> None:
    """Queue one event of this transaction."""
    session.info.setdefault(_QUEUED, []).append(Queued(org_id, type_, user_id, payload, utcnow()))


def queue_many(
    session: Session,
    org_id: UUID,
    events: Iterable[tuple[str, UUID | None, Mapping[str, Any]]],
) -> None:
    """Queue many events of one organization at one instant (a rule change: 50,000 users).

    Events that share one payload object share its serialization when they are written.
    """
    now = utcnow()
    session.info.setdefault(_QUEUED, []).extend(
        Queued(org_id, type_, user_id, payload, now) for type_, user_id, payload in events
    )


def queued_orgs(session: Session) -> set[UUID]:
    """The organizations with events queued in this transaction."""
    return {item.org_id for item in session.info.get(_QUEUED, ())}


def take(session: Session) -> dict[UUID, list[Queued]]:
    """This transaction's events, coalesced, by organization in queueing order; the queue
    is emptied."""
    queued: list[Queued] = session.info.pop(_QUEUED, [])
    seen: set[tuple[UUID, str, UUID | None]] = set()
    kept: list[Queued] = []
    for item in reversed(queued):
        key = (item.org_id, item.type, item.user_id)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    by_org: dict[UUID, list[Queued]] = {}
    for item in reversed(kept):
        by_org.setdefault(item.org_id, []).append(item)
    return by_org


def write(session: Session, numbered: Sequence[tuple[int, Queued]]) -> None:
    """Insert events with their numbers: one INSERT, or for many on PostgreSQL one COPY of
    plain tuples (a rule change writes 100,000: one access and one seat event per user)."""
    if not numbered:
        return
    if session.connection().dialect.name != "postgresql" or len(numbered) < COPY_THRESHOLD:
        rows = [
            {
                "id": uuid4(),
                "org_id": item.org_id,
                "seq": seq,
                "type": item.type,
                "user_id": item.user_id,
                "payload": item.payload,
                "at": item.at,
            }
            for seq, item in numbered
        ]
        session.execute(_INSERT, rows)
        return
    as_json = json_texts()  # events of a bulk change share their payload objects
    copy_rows(
        session,
        OutboxEvent,
        _COLUMNS,
        (
            (uuid4(), item.org_id, seq, item.type, item.user_id, as_json(item.payload), item.at)
            for seq, item in numbered
        ),
    )


def _from_arrays() -> Insert:
    arrays = [
        bindparam("ids", type_=ARRAY(Uuid())),
        bindparam("org_ids", type_=ARRAY(Uuid())),
        bindparam("seqs", type_=ARRAY(BigInteger())),
        bindparam("types", type_=ARRAY(Text())),
        bindparam("user_ids", type_=ARRAY(Uuid())),
        cast(bindparam("payloads", type_=ARRAY(Text())), ARRAY(JSON())),
        bindparam("ats", type_=ARRAY(DateTime(timezone=True))),
    ]
    rows: Select[Any] = select(literal_column("*")).select_from(func.unnest(*arrays))
    # The table, not the entity: the ORM would take the parameters for rows of its own.
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return insert(table).from_select(_COLUMNS, rows)


# PostgreSQL: a few events as one statement of seven array parameters (`array_values`),
# whatever their number; `app.audit` adds the chain head's UPDATE to it as a CTE, so a plain
# SCIM create makes no round trip for its event. Built once; cacheable, unlike a VALUES list.
INSERT_FROM_ARRAYS = _from_arrays()


def array_values(numbered: Sequence[tuple[int, Queued]]) -> dict[str, Any]:
    """The parameters of INSERT_FROM_ARRAYS for these events."""
    return {
        "ids": [uuid4() for _ in numbered],
        "org_ids": [item.org_id for _, item in numbered],
        "seqs": [seq for seq, _ in numbered],
        "types": [item.type for _, item in numbered],
        "user_ids": [item.user_id for _, item in numbered],
        "payloads": [json.dumps(item.payload) for _, item in numbered],
        "ats": [item.at for _, item in numbered],
    }


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: Any) -> None:
    if transaction.nested:
        marks = session.info.setdefault(_MARKS, {})
        marks[id(transaction)] = len(session.info.get(_QUEUED, ()))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: Any) -> None:
    mark = session.info.get(_MARKS, {}).pop(id(previous_transaction), None)
    if mark is not None:
        del session.info.get(_QUEUED, [])[mark:]
    elif not previous_transaction.nested:
        _forget(session)


@event.listens_for(Session, "after_commit")
def _forget(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its events wait for the transaction's commit
    session.info.pop(_QUEUED, None)
    session.info.pop(_MARKS, None)


# ------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Events after a cursor, in order; `next_cursor` resumes after the last of them."""

    events: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def parse_cursor(value: str | None) -> int:
    """The position a cursor names (ValueError if it names none); none: the beginning."""
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 19:
        raise ValueError(f"not a cursor: {value!r}")
    return int(value)


def read_feed(session: Session, org_id: UUID, after: int, limit: int) -> FeedPage:
    """The organization's committed events numbered after `after`, at most `limit`, by seq.

    The cursor is the last event's seq, the database's own number: stable across restarts
    and the same for every reader.
    """
    rows = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.org_id == org_id, OutboxEvent.seq > after)
        .order_by(OutboxEvent.seq)
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    last = page[-1].seq if page else None
    return FeedPage(
        [document(row) for row in page],
        str(last if last is not None else after),
        len(rows) > limit,
    )


def document(row: OutboxEvent) -> dict[str, Any]:
    """An event as Blue receives it (the feed's entries; a webhook's body)."""
    return {
        "id": str(row.id),
        "seq": row.seq,
        "type": row.type,
        "timestamp": row.at.isoformat(),
        "org_id": str(row.org_id),
        "user_id": str(row.user_id) if row.user_id is not None else None,
        "data": row.payload,
    }
