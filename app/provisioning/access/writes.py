"""Recompute, step four: the rows a decision changes, queued per user and written together
with a few bulk statements (a rule change can touch 50,000 users in one transaction), with
Blue's access.changed and seat.changed events, which carry the user's access now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

import licensing
from app.actions import AccessKey, Action, OutboxKey, OutboxType, SourceKey, Target
from app.db import bulk_insert, in_ids
from app.errors import ConflictError
from app.models import RoleAssignment, SeatEvent, SeatKind, User
from app.provisioning import events
from app.provisioning.access.plan import UserState
from app.provisioning.scope import BATCH, Scope, chunks

# Queued audit rows that trigger a bulk write: COPY is cheap per row, dear per statement.
WRITE_BATCH = 10_000
_T = TypeVar("_T")


@dataclass(slots=True)
class AccessWrites:
    """Rows queued for a batch of users, written together by `write_access`."""

    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[tuple[RoleAssignment, dict[str, Any]]] = field(default_factory=list)
    deleted: list[RoleAssignment] = field(default_factory=list)
    seat_events: list[dict[str, Any]] = field(default_factory=list)
    seats: list[tuple[UserState, SeatKind, datetime | None]] = field(default_factory=list)
    audit_rows: list[events.EventRow] = field(default_factory=list)
    outbox_rows: list[events.OutboxRow] = field(default_factory=list)
    payloads: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def shared(self, key: tuple[Any, ...], value: _T) -> _T:
        """`value`, or the equal one queued earlier under `key`: 50,000 users granted the same
        role by the same rule share one payload, which is serialized once."""
        found: _T = self.payloads.setdefault(key, value)
        return found

    def audit(
        self,
        action: Action,
        user_id: UUID,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        """Queue an audit event about a user."""
        self.audit_rows.append(events.EventRow(action, Target.USER, str(user_id), before, after))

    @property
    def size(self) -> int:
        """How many events are queued: the measure of when to write."""
        return len(self.audit_rows)

    def clear(self) -> None:
        """Forget what was written."""
        self.inserted.clear()
        self.updated.clear()
        self.deleted.clear()
        self.seat_events.clear()
        self.seats.clear()
        self.audit_rows.clear()
        self.outbox_rows.clear()
        self.payloads.clear()

    def sources(self, wanted: licensing.Assignment) -> list[dict[str, Any]]:
        """An assignment's provenance as rows and events record it (shared)."""
        return self.shared(
            ("sources", wanted.sources),
            [
                {SourceKey.RULE_ID: s.rule_id, SourceKey.GROUP_ID: s.group_id}
                for s in wanted.sources
            ],
        )

    def publish_access(
        self, user_id: UUID, assignments: Mapping[str, licensing.Assignment], reason: str
    ) -> None:
        """Queue Blue's access.changed event: every project's role the user has now."""
        projects = sorted(assignments)
        key = tuple((p, assignments[p].role_key, assignments[p].sources) for p in projects)
        payload = self.payloads.get(("access", key, reason))
        if payload is None:
            roles = [
                {
                    AccessKey.PROJECT: project,
                    AccessKey.ROLE: assignments[project].role_key,
                    AccessKey.SOURCES: self.sources(assignments[project]),
                }
                for project in projects
            ]
            payload = self.shared(
                ("access", key, reason), {OutboxKey.ROLES: roles, AccessKey.REASON: reason}
            )
        self.outbox_rows.append((OutboxType.ACCESS_CHANGED, user_id, payload))

    def revoke(
        self,
        user_id: UUID,
        current: Mapping[str, RoleAssignment],
        kept: Mapping[str, Any],
        reason: str,
    ) -> None:
        """Queue the removal of every current assignment whose project is not `kept`."""
        for project, assignment in current.items():
            if project not in kept:
                self.deleted.append(assignment)
                self.audit(
                    Action.ROLE_REVOKED,
                    user_id,
                    {
                        AccessKey.PROJECT: project,
                        AccessKey.ROLE: assignment.role_key,
                        AccessKey.SOURCES: assignment.sources,
                    },
                    self.shared(("revoked", reason), {AccessKey.REASON: reason}),
                )

    def assign(
        self,
        scope: Scope,
        user_id: UUID,
        current: Mapping[str, RoleAssignment],
        project: str,
        wanted: licensing.Assignment,
        reason: str,
        now: datetime,
    ) -> None:
        """Queue one project's assignment: a grant, a change of role or sources, or nothing."""
        sources = self.sources(wanted)
        after = self.shared(
            ("assigned", project, wanted.role_key, wanted.sources, reason),
            {
                AccessKey.PROJECT: project,
                AccessKey.ROLE: wanted.role_key,
                AccessKey.SOURCES: sources,
                AccessKey.REASON: reason,
            },
        )
        existing = current.get(project)
        if existing is None:
            self.inserted.append(
                {
                    "org_id": scope.org_id,
                    "user_id": user_id,
                    "project_key": project,
                    "role_key": wanted.role_key,
                    "sources": sources,
                    "granted_at": now,
                }
            )
            self.audit(Action.ROLE_GRANTED, user_id, None, after)
        elif existing.role_key != wanted.role_key or existing.sources != sources:
            before = {
                AccessKey.PROJECT: project,
                AccessKey.ROLE: existing.role_key,
                AccessKey.SOURCES: existing.sources,
            }
            is_new_role = existing.role_key != wanted.role_key
            self.updated.append(
                (
                    existing,
                    {
                        "id": existing.id,
                        "role_key": wanted.role_key,
                        "sources": sources,
                        "granted_at": now if is_new_role else existing.granted_at,
                    },
                )
            )
            self.audit(Action.ROLE_CHANGED, user_id, before, after)

    def seat(
        self,
        scope: Scope,
        user: UserState,
        decision: licensing.SeatDecision,
        reason: str,
        now: datetime,
    ) -> SeatKind:
        """Queue the user's new seat and pending mark, with a ledger row and an audit event
        when either changes; returns the new seat."""
        new_seat = SeatKind(decision.seat.value)
        was_pending = user.pending_since is not None
        pending_since = user.pending_since
        if decision.is_pending and not was_pending:
            pending_since = now
        elif not decision.is_pending and was_pending:
            pending_since = None
        if new_seat != user.seat or pending_since != user.pending_since:
            self.seats.append((user, new_seat, pending_since))
        if new_seat == user.seat and decision.is_pending == was_pending:
            return new_seat
        self.seat_events.append(
            {
                "org_id": scope.org_id,
                "user_id": user.id,
                "from_seat": user.seat,
                "to_seat": new_seat,
                "is_pending": decision.is_pending,
                "reason": reason,
                "cause": scope.cause,
                "at": now,
            }
        )
        self.audit(
            Action.SEAT_CHANGED,
            user.id,
            self.shared(
                ("seat before", user.seat, was_pending),
                {AccessKey.SEAT: user.seat, AccessKey.PENDING: was_pending},
            ),
            self.shared(
                ("seat after", new_seat, decision.is_pending, decision.is_overage, reason),
                {
                    AccessKey.SEAT: new_seat.value,
                    AccessKey.PENDING: decision.is_pending,
                    AccessKey.OVERAGE: decision.is_overage,
                    AccessKey.REASON: reason,
                },
            ),
        )
        self.publish_seat(user.id, new_seat, decision, reason)
        return new_seat

    def publish_seat(
        self, user_id: UUID, seat: SeatKind, decision: licensing.SeatDecision, reason: str
    ) -> None:
        """Queue Blue's seat.changed event: the user's seat now, and why."""
        status = "released" if seat == SeatKind.NONE else seat.value
        status = "pending" if decision.is_pending else status
        payload = self.shared(
            ("seat event", seat, decision.is_pending, decision.is_overage, reason),
            {
                AccessKey.SEAT: seat.value,
                AccessKey.PENDING: decision.is_pending,
                AccessKey.OVERAGE: decision.is_overage,
                OutboxKey.STATUS: status,
                AccessKey.REASON: reason,
            },
        )
        self.outbox_rows.append((OutboxType.SEAT_CHANGED, user_id, payload))


def write_access(scope: Scope, writes: AccessWrites) -> None:
    """Write the queued assignment, seat-ledger and audit rows with a few bulk statements."""
    session = scope.session
    if writes.deleted:
        ids = [a.id for a in writes.deleted]
        for chunk in chunks(ids, BATCH):
            session.execute(delete(RoleAssignment).where(RoleAssignment.id.in_(chunk)))
        for assignment in writes.deleted:
            session.expunge(assignment)
    if writes.updated:
        session.execute(update(RoleAssignment), [row for _, row in writes.updated])
        for assignment, _ in writes.updated:
            session.expire(assignment)
    bulk_insert(session, RoleAssignment, writes.inserted)
    bulk_insert(session, SeatEvent, writes.seat_events)
    write_seats(scope, writes.seats)
    events.record_many(scope, writes.audit_rows)
    events.publish_many(scope, writes.outbox_rows)
    writes.clear()


def write_seats(scope: Scope, seats: Sequence[tuple[UserState, SeatKind, datetime | None]]) -> None:
    """Set users' seats with one UPDATE per distinct value, not one per user."""
    by_value: dict[tuple[str, datetime | None], list[UserState]] = defaultdict(list)
    for user, new_seat, new_pending_since in seats:
        by_value[(new_seat.value, new_pending_since)].append(user)
    for (seat, pending_since), users in by_value.items():
        for chunk in chunks(users, WRITE_BATCH):
            _write_seat(scope, chunk, seat, pending_since)


def _write_seat(
    scope: Scope, users: Sequence[UserState], seat: str, pending_since: datetime | None
) -> None:
    """Give these users one seat and pending mark."""
    session = scope.session
    statement = update(User).where(in_ids(session, User.id, [u.id for u in users]))
    if seat != SeatKind.NONE:
        # A seat goes to live users only: one deactivated or deleted by a request that did
        # not wait for the seat counter (see Scope.lock_seats_if_in_play) makes this change
        # fail rather than seat someone who has left.
        statement = statement.where(User.is_active.is_(True), User.deprovisioned_at.is_(None))
    result = cast(
        CursorResult[Any],
        session.execute(
            statement.values(seat=seat, pending_since=pending_since).execution_options(
                synchronize_session=False
            ),
        ),
    )
    if seat != SeatKind.NONE and result.rowcount != len(users):
        raise ConflictError(
            "users were deactivated or deleted while this change was applied; try again"
        )
    for user in users:
        # The row is written; keep a loaded object true without dirtying it.
        loaded = session.identity_map.get(identity_key(User, user.id))
        if loaded is not None:
            set_committed_value(loaded, "seat", seat)
            set_committed_value(loaded, "pending_since", pending_since)
