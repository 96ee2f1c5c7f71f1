"""The audit trail: events appended with each change and hash-chained per organization.

Events are written during the transaction without their place in the chain. When the
transaction commits, `seal` locks the chain's head row, numbers the transaction's events and
links each to the previous one by hash. The lock is held only from sealing to commit, so
writers of one organization queue briefly instead of for their whole transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import AuditEvent, AuditHead

GLOBAL_CHAIN = "global"
_PENDING = "audit_chains"


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
    session.add(
        AuditEvent(
            org_id=org_id,
            chain=chain,
            actor_type=actor.kind,
            actor=actor.label,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            request_id=actor.request_id,
            source_ip=actor.source_ip,
            user_agent=actor.user_agent,
        )
    )
    session.info.setdefault(_PENDING, set()).add(chain)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event for `append_many`; the organization and actor are shared by the batch."""

    action: str
    target_type: str
    target_id: str | None
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


def append_many(
    session: Session, org_id: UUID | None, actor: Actor, rows: Sequence[EventRow]
) -> None:
    """Record many changes with one bulk INSERT (a rule change can touch 50,000 users)."""
    if not rows:
        return
    chain = chain_of(org_id)
    now = utcnow()
    session.execute(
        insert(AuditEvent),
        [
            {
                "org_id": org_id,
                "chain": chain,
                "at": now,
                "actor_type": actor.kind,
                "actor": actor.label,
                "action": row.action,
                "target_type": row.target_type,
                "target_id": row.target_id,
                "before": dict(row.before) if row.before is not None else None,
                "after": dict(row.after) if row.after is not None else None,
                "request_id": actor.request_id,
                "source_ip": actor.source_ip,
                "user_agent": actor.user_agent,
            }
            for row in rows
        ],
    )
    session.info.setdefault(_PENDING, set()).add(chain)


def canonical(event_: AuditEvent, seq: int, prev_hash: str) -> bytes:
    """The bytes an event's hash covers: every recorded field, in a fixed JSON form."""
    document = {
        "chain": event_.chain,
        "seq": seq,
        "prev_hash": prev_hash,
        "org_id": str(event_.org_id) if event_.org_id else None,
        "at": event_.at.isoformat(timespec="microseconds"),
        "actor_type": event_.actor_type,
        "actor": event_.actor,
        "action": event_.action,
        "target_type": event_.target_type,
        "target_id": event_.target_id,
        "before": event_.before,
        "after": event_.after,
        "request_id": event_.request_id,
        "source_ip": event_.source_ip,
        "user_agent": event_.user_agent,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event_: AuditEvent, seq: int, prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(event_, seq, prev_hash)).hexdigest()


def seal(session: Session) -> None:
    """Number and hash-link this transaction's new events, chain by chain."""
    chains = session.info.pop(_PENDING, set())
    if not chains:
        return
    session.flush()
    dialect = session.get_bind().dialect.name
    for chain in sorted(chains):  # a fixed order, so two sealers never deadlock
        insert_head = (pg_insert if dialect == "postgresql" else sqlite_insert)(AuditHead)
        # One statement creates the head or locks the existing one (ON CONFLICT DO UPDATE
        # takes the row lock) and reads it back.
        head = session.execute(
            insert_head.values(chain=chain, seq=0, hash="")
            .on_conflict_do_update(index_elements=["chain"], set_={"chain": chain})
            .returning(AuditHead.seq, AuditHead.hash)
        ).one()
        seq, prev = head.seq, head.hash
        unsealed = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.hash.is_(None))
            .order_by(AuditEvent.id)
        ).all()
        if not unsealed:
            continue
        rows = []
        for item in unsealed:
            seq += 1
            digest = event_hash(item, seq, prev)
            rows.append({"id": item.id, "seq": seq, "prev_hash": prev, "hash": digest})
            prev = digest
        for item in unsealed:
            session.expunge(item)
        session.execute(update(AuditEvent), rows)
        session.execute(
            update(AuditHead).where(AuditHead.chain == chain).values(seq=seq, hash=prev)
        )


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    seal(session)


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
