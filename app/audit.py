"""The audit trail: events appended with each change and hash-chained per organization.

Events are kept with the transaction without their place in the chain (a query in the
transaction may write them early). When the transaction commits, `seal` locks the chain's head
row, numbers the transaction's events and links each to the previous one by hash: events not
yet written go in sealed, those written early are updated. The lock is held only from
sealing to commit, so writers of one organization queue briefly instead of for their whole
transaction.

Blue's outbox events (app.outbox) are numbered under the same lock: the organization's head
row also holds its outbox counter, and the events are written as the chain is sealed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import outbox
from app.db import COPY_THRESHOLD, RawJson, bulk_insert, utcnow
from app.models import AuditEvent, AuditHead

GLOBAL_CHAIN = "global"
# A batch this large is sealed as it is written (see append_many).
SEAL_ON_WRITE = 200
# What an event records about its change, in the order the audit trail's export shows them.
RECORDED_FIELDS = (
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
)
# What an event's hash covers (with its place in the chain, `seq` and `prev_hash`).
HASHED_FIELDS = ("chain", "org_id", *RECORDED_FIELDS)
_PENDING = "audit_chains"
_HEADS = "audit_heads"
_MOVED = "audit_heads_moved"
_SNAPSHOTS = "audit_heads_at_savepoints"
_ADDED = "audit_events_added"
_WRITTEN = "audit_chains_written"
_TRIAL = "audit_trial"  # set while a dry run's rolled-back savepoint is open


@contextmanager
def trial(session: Session) -> Iterator[None]:
    """A dry run's events are written but never sealed: they roll back with its savepoint,
    and sealing would lock the chain head every writer of the organization needs."""
    session.info[_TRIAL] = session.info.get(_TRIAL, 0) + 1
    try:
        yield
    finally:
        session.info[_TRIAL] -= 1


class Head(NamedTuple):
    """A chain's head as this transaction sees it: the last event and the outbox counter."""

    seq: int
    hash: str
    outbox_seq: int


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked for a change, as the audit trail records it."""

    kind: str  # scim | sso | api | cli | console | system
    label: str
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


SYSTEM_ACTOR = Actor(kind="system", label="system")


def chain_of(org_id: UUID | None) -> str:
    return str(org_id) if org_id is not None else GLOBAL_CHAIN


def append(
    session: Session,
    org_id: UUID | None,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: UUID | str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Record one change in the current transaction; it is chained when the transaction commits."""
    chain = chain_of(org_id)
    event_ = AuditEvent(
        org_id=org_id,
        chain=chain,
        at=utcnow(),
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        **_actor_fields(actor),
    )
    session.add(event_)
    session.info.setdefault(_ADDED, []).append(event_)
    session.info.setdefault(_PENDING, set()).add(chain)


class EventRow(NamedTuple):
    """One event for `append_many`; the organization and actor are shared by the batch."""

    action: str
    target_type: str
    target_id: str | None
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


def append_many(
    session: Session, org_id: UUID | None, actor: Actor, rows: Sequence[EventRow]
) -> None:
    """Record many changes at once (a rule change can touch 50,000 users).

    Large batches are sealed as they are written: the chain head is locked now rather than
    at commit, and the rows go in with their place in the chain, instead of being written
    and then updated one by one.
    """
    if not rows:
        return
    chain = chain_of(org_id)
    now = utcnow()
    shared = {"org_id": org_id, "chain": chain, "at": now, **_actor_fields(actor)}
    values: list[dict[str, Any]] = [shared | row._asdict() for row in rows]
    if len(values) < SEAL_ON_WRITE or session.info.get(_TRIAL):
        _write_unsealed(session, chain, values)
    else:
        _write_sealed(session, chain, values)


def _actor_fields(actor: Actor) -> dict[str, Any]:
    """The columns that record who asked for a change."""
    return {
        "actor_type": actor.kind,
        "actor": actor.label,
        "request_id": actor.request_id,
        "source_ip": actor.source_ip,
        "user_agent": actor.user_agent,
    }


def _write_unsealed(session: Session, chain: str, values: list[dict[str, Any]]) -> None:
    """Insert a small batch as it is; `seal` numbers it at commit."""
    for value in values:
        for side in ("before", "after"):
            if value[side] is not None:
                value[side] = dict(value[side])
    session.execute(insert(AuditEvent), values)
    session.info.setdefault(_PENDING, set()).add(chain)
    session.info.setdefault(_WRITTEN, set()).add(chain)


def _write_sealed(session: Session, chain: str, values: list[dict[str, Any]]) -> None:
    """Insert a large batch numbered and hash-linked, after the head it continues is locked."""
    seal(session)  # earlier events of this transaction come first in the chain
    seq, prev, _ = _lock_head(session, chain)
    context = _context_text(values[0])  # one organization, actor and instant for the batch
    text_of = _payload_texts()
    for value in values:
        seq += 1
        before, after = text_of(value["before"]), text_of(value["after"])
        value["seq"], value["prev_hash"] = seq, prev
        prev = value["hash"] = _hash_text(
            prev, _event_text(seq, prev, value, before, after), context
        )
        # Serialized once: the same text is hashed and stored.
        value["before"], value["after"] = RawJson(before), RawJson(after)
    bulk_insert(session, AuditEvent, values)
    _move_head(session, chain, seq, prev)


def _payload_texts() -> Callable[[Mapping[str, Any] | None], str]:
    """A payload's canonical JSON, serialized once per payload object.

    Many events of a bulk change carry the very same payload object ("granted Team Member by
    this rule"). The caller's rows keep those objects alive, so their ids are stable keys.
    """
    texts: dict[int, str] = {}

    def text_of(payload: Mapping[str, Any] | None) -> str:
        text = texts.get(id(payload))
        if text is None:
            plain = payload if payload is None or isinstance(payload, dict) else dict(payload)
            text = texts[id(payload)] = _json(plain)
        return text

    return text_of


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
# How `_ENCODER` writes a string (it escapes to ASCII), without encoding a container around it.
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


def _context_text(values: Mapping[str, Any]) -> str:
    """The fields an event shares with the rest of its batch, as canonical JSON."""
    org_id = values["org_id"]
    return _json(
        [
            values["chain"],
            str(org_id) if org_id else None,
            values["at"].isoformat(timespec="microseconds"),
            values["actor_type"],
            values["actor"],
            values["request_id"],
            values["source_ip"],
            values["user_agent"],
        ]
    )


def _event_text(
    seq: int, prev_hash: str, values: Mapping[str, Any], before: str, after: str
) -> str:
    """The event's own fields as canonical JSON; `before`/`after` already serialized.

    Written out rather than encoded as a list (100,000 events in a rule change): the text is
    exactly what `_json` gives for `[seq, prev_hash, action, target_type, target_id]`.
    """
    action, target_type = _json_scalar(values["action"]), _json_scalar(values["target_type"])
    target_id = _json_scalar(values["target_id"])
    return f"[{seq:d},{_quote(prev_hash)},{action},{target_type},{target_id},{before},{after}]"


def _json_scalar(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if type(value) is int:
        return str(value)
    if value is None:
        return "null"
    return _json(value)


def _canonical_text(values: Mapping[str, Any], seq: int, prev_hash: str) -> str:
    before, after = _json(values["before"]), _json(values["after"])
    text = _event_text(seq, prev_hash, values, before, after)
    return f"{prev_hash}\n{text}\n{_context_text(values)}"


def _hash_text(prev_hash: str, event_text: str, context_text: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{event_text}\n{context_text}".encode()).hexdigest()


def _digest(values: Mapping[str, Any], seq: int, prev_hash: str) -> str:
    """The hash of an event: the previous hash and every recorded field, canonically."""
    return hashlib.sha256(_canonical_text(values, seq, prev_hash).encode()).hexdigest()


def canonical(event_: AuditEvent, seq: int, prev_hash: str) -> bytes:
    """The bytes an event's hash covers: every recorded field, in a fixed JSON form."""
    return _canonical_text(_fields(event_), seq, prev_hash).encode()


def event_hash(event_: AuditEvent, seq: int, prev_hash: str) -> str:
    return _digest(_fields(event_), seq, prev_hash)


def _fields(event_: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event_, name) for name in HASHED_FIELDS}


def _lock_head(session: Session, chain: str) -> Head:
    """Create or lock the chain's head (ON CONFLICT DO UPDATE takes the row lock) and read it.

    The head is read and locked once per transaction and kept in the session: updating one
    row again and again in a transaction leaves a chain of row versions that every later
    update must walk.
    """
    heads: dict[str, Head] = session.info.setdefault(_HEADS, {})
    if chain not in heads:
        statement = _LOCK_HEAD[session.get_bind().dialect.name == "postgresql"]
        head = session.execute(statement, {"chain": chain}).one()
        heads[chain] = Head(head.seq, head.hash, head.outbox_seq)
    return heads[chain]


def _lock_head_statement(insert_head: Any) -> Any:
    return (
        insert_head.values(chain=bindparam("chain"), seq=0, hash="")
        .on_conflict_do_update(index_elements=["chain"], set_={"chain": bindparam("chain")})
        .returning(AuditHead.seq, AuditHead.hash, AuditHead.outbox_seq)
    )


# Built once, by dialect (PostgreSQL or not): every write runs it.
_LOCK_HEAD = {
    True: _lock_head_statement(pg_insert(AuditHead)),
    False: _lock_head_statement(sqlite_insert(AuditHead)),
}
_WRITE_HEAD = (
    update(AuditHead)
    .where(AuditHead.chain == bindparam("head_chain"))
    .values(
        seq=bindparam("head_seq"),
        hash=bindparam("head_hash"),
        outbox_seq=bindparam("head_outbox_seq"),
    )
)


_WRITE_HEAD_AND_EVENTS = outbox.INSERT_FROM_ARRAYS.add_cte(_WRITE_HEAD.cte("moved_head"))


def _move_head(session: Session, chain: str, seq: int, digest: str) -> None:
    heads: dict[str, Head] = session.info[_HEADS]
    heads[chain] = heads[chain]._replace(seq=seq, hash=digest)
    session.info.setdefault(_MOVED, set()).add(chain)


def _write_heads(
    session: Session, events: Mapping[str, Sequence[tuple[int, outbox.Queued]]] | None = None
) -> None:
    """Store each chain head this transaction moved, once, and its numbered outbox events."""
    heads: dict[str, Head] = session.info.get(_HEADS, {})
    events = events or {}
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    for chain in sorted(session.info.pop(_MOVED, set())):
        head = heads[chain]
        values = {
            "head_chain": chain,
            "head_seq": head.seq,
            "head_hash": head.hash,
            "head_outbox_seq": head.outbox_seq,
        }
        numbered = events.get(chain, ())
        if on_postgresql and 0 < len(numbered) < COPY_THRESHOLD:
            # One round trip, not two: the head's UPDATE rides on the events' INSERT (a
            # plain SCIM create stays as quick as it was before the outbox).
            session.execute(_WRITE_HEAD_AND_EVENTS, values | outbox.array_values(numbered))
        else:
            session.execute(_WRITE_HEAD, values)
            outbox.write(session, numbered)


def seal(session: Session, also: Iterable[str] = ()) -> None:
    """Number and hash-link this transaction's new events, chain by chain (and lock the
    heads of the chains `also` names, in the same order).

    Events added through `append` are still objects of this session: they are numbered in
    memory, and those not yet written go to the database sealed, in one INSERT; those an
    earlier flush wrote are updated. Rows written by `append_many` are read back.
    """
    chains = session.info.pop(_PENDING, set()) | set(also)
    added: list[AuditEvent] = session.info.pop(_ADDED, [])
    written: set[str] = session.info.pop(_WRITTEN, set())
    if not chains:
        return
    # A savepoint rolled back takes its events out of the session: skip those.
    live = [item for item in added if item.hash is None and item in session]
    # Everything else is written before the head is locked, so the head stays the last lock
    # taken; the unwritten events wait outside the session until they are numbered.
    unwritten = [item for item in live if item in session.new and item.chain not in written]
    for item in unwritten:
        session.expunge(item)
    session.flush()
    for chain in sorted(chains):  # a fixed order, so two sealers never deadlock
        seq, prev, _ = _lock_head(session, chain)
        if chain in written:
            seq, prev = _seal_written(session, chain, seq, prev)
        else:
            for item in live:
                if item.chain == chain:
                    seq += 1
                    item.seq, item.prev_hash = seq, prev
                    prev = item.hash = event_hash(item, seq, prev)
        _move_head(session, chain, seq, prev)
    session.add_all(unwritten)
    session.flush()


def _seal_written(session: Session, chain: str, seq: int, prev: str) -> tuple[int, str]:
    """Seal events that are rows already, in the order they were written."""
    session.flush()
    unsealed = session.execute(
        select(AuditEvent.id, *(getattr(AuditEvent, name) for name in HASHED_FIELDS))
        .where(AuditEvent.chain == chain, AuditEvent.hash.is_(None))
        .order_by(AuditEvent.id)
    ).all()
    if not unsealed:
        return seq, prev
    rows: list[dict[str, Any]] = []
    for event_row in unsealed:
        seq += 1
        digest = _digest(dict(event_row._mapping), seq, prev)
        rows.append({"id": event_row.id, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    session.execute(update(AuditEvent), rows)
    # Events added through the ORM in this session now have stale chain fields.
    sealed = {row["id"] for row in rows}
    for instance in list(session.identity_map.values()):
        if isinstance(instance, AuditEvent) and instance.id in sealed:
            session.expunge(instance)
    return seq, prev


def _number_outbox(session: Session) -> dict[str, list[tuple[int, outbox.Queued]]]:
    """Number each organization's outbox events after the counter in its chain head (which
    `seal` has locked), by chain; written with the heads."""
    numbered: dict[str, list[tuple[int, outbox.Queued]]] = {}
    heads: dict[str, Head] = session.info.get(_HEADS, {})
    for org_id, items in outbox.take(session).items():
        chain = chain_of(org_id)
        head = heads[chain]
        numbered[chain] = list(enumerate(items, start=head.outbox_seq + 1))
        heads[chain] = head._replace(outbox_seq=head.outbox_seq + len(items))
        session.info.setdefault(_MOVED, set()).add(chain)
    return numbered


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    # SQLAlchemy runs this when a savepoint is released too: the outbox waits for the
    # transaction's own commit, so a user's events coalesce across savepoints (a /Bulk).
    if session.info.get(_TRIAL):
        return  # a dry run's savepoint within it: rolled back, never sealed
    if session.in_nested_transaction():
        seal(session)
        _write_heads(session)
    else:
        seal(session, also=[chain_of(org_id) for org_id in outbox.queued_orgs(session)])
        _write_heads(session, _number_outbox(session))


@event.listens_for(Session, "after_transaction_create")
def _remember_heads(session: Session, transaction: Any) -> None:
    if transaction.nested:
        snapshot = (dict(session.info.get(_HEADS, {})), set(session.info.get(_MOVED, set())))
        session.info.setdefault(_SNAPSHOTS, {})[id(transaction)] = snapshot


@event.listens_for(Session, "after_soft_rollback")
def _restore_heads(session: Session, previous_transaction: Any) -> None:
    # A rolled-back savepoint takes its sealed events (and a head lock it took) with it: the
    # heads go back to what they were when it began.
    snapshot = session.info.get(_SNAPSHOTS, {}).pop(id(previous_transaction), None)
    if snapshot is not None:
        session.info[_HEADS], session.info[_MOVED] = snapshot
    elif not previous_transaction.nested:
        _forget_heads(session)


@event.listens_for(Session, "after_commit")
def _forget_heads(session: Session) -> None:
    for key in (_HEADS, _MOVED, _SNAPSHOTS, _ADDED, _WRITTEN, _PENDING):
        session.info.pop(key, None)


@dataclass(frozen=True, slots=True)
class Verification:
    count: int
    head_hash: str
    broken_at: int | None = None
    problem: str | None = None

    @property
    def is_ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session, org_id: UUID | None) -> Verification:
    """Walk a chain in order; report the first event whose link or hash does not hold."""
    chain = chain_of(org_id)
    expected_seq, prev = 0, ""
    count = 0
    rows: Iterator[AuditEvent] = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain == chain, AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=2000)
    )
    for item in rows:
        expected_seq += 1
        count += 1
        seq = item.seq or 0
        if seq != expected_seq:
            return Verification(count - 1, prev, expected_seq, f"event #{expected_seq} is missing")
        if item.prev_hash != prev:
            return Verification(
                count - 1, prev, seq, f"event #{seq} does not follow event #{seq - 1}"
            )
        if event_hash(item, seq, prev) != item.hash:
            return Verification(count - 1, prev, seq, f"event #{seq} was altered")
        prev = item.hash or ""
    head = session.scalar(select(AuditHead).where(AuditHead.chain == chain))
    if head is not None and (head.seq, head.hash) != (expected_seq, prev):
        return Verification(
            count, prev, expected_seq + 1, f"events after #{expected_seq} are missing"
        )
    return Verification(count, prev)
