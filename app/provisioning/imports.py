"""Users from a CSV import, a batch at a time: created or updated, added to the groups named,
and their roles and seats recomputed for exactly the batch's affected users, with the same
audit records and Blue events as SCIM changes, in the caller's transaction.

Blue has no per-user role grant: roles come from mapping rules on groups (and the default
role). A row's project roles therefore become memberships of an import-owned group per
(project, role), `import:<project>:<role key>`, which one mapping rule (by group id) maps to
that role in that project (`prepare_role_groups`). The grants show in every report with that
group and rule as their provenance, and the guard, the tier and the policy apply as for any
membership. An import only adds: it never removes a membership, a role group's included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from sqlalchemy import delete, select

import licensing
from app.actions import Action, GroupKey, OutboxType, Target
from app.db import bulk_insert, in_ids, utcnow
from app.models import (
    Group,
    MappingRule,
    Membership,
    Project,
    RowOutcome,
    SeatKind,
    User,
    UserSource,
    UserValue,
)
from app.provisioning import access, events
from app.provisioning.directory.groups import create_group, touch_groups
from app.provisioning.directory.users import user_snapshot, user_state
from app.provisioning.rules import create_rule
from app.provisioning.scope import Scope
from app.provisioning.specs import GroupSpec, RuleSpec

# The ledger and held changes name what changed access this way.
REASON = "csv_import"
ROLE_GROUP_PREFIX = "import:"
_NAMES = ("given_name", "family_name")


@dataclass(frozen=True, slots=True)
class UserImport:
    """One row of an import: the user to create or update and the groups to add them to.
    `project_roles` are (project key, role key) pairs, checked by `check_project_roles`."""

    user_name: str
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    groups: tuple[str, ...] = ()
    project_roles: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What became of one row, and why when it failed."""

    outcome: RowOutcome
    reason: str | None = None
    user_id: UUID | None = None


class Known(NamedTuple):
    """What matching and the unchanged check read of a user: a row, not an ORM object (no
    JSON attributes decoded for the 50,000 users of a re-import that changes nothing)."""

    id: UUID
    user_name_key: str
    deprovisioned_at: datetime | None
    given_name: str | None
    family_name: str | None
    primary_email: str | None


_KNOWN = (
    User.id,
    User.user_name_key,
    User.deprovisioned_at,
    User.given_name,
    User.family_name,
    User.primary_email,
)


@dataclass(slots=True)
class _Batch:
    """What a batch changes, collected and then written a few statements at a time."""

    results: list[ImportResult | None]
    users: list[Known | None]
    created: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)
    audit: list[events.EventRow] = field(default_factory=list)
    outbox: list[events.OutboxRow] = field(default_factory=list)


def role_group_name(project: str, role_key: str) -> str:
    """The import-owned group whose members get `role_key` in `project`."""
    return f"{ROLE_GROUP_PREFIX}{project}:{role_key}"


def check_project_roles(
    scope: Scope, pairs: Iterable[tuple[str, str]], projects: Collection[str]
) -> tuple[list[tuple[str, str]], str | None]:
    """The pairs with roles given by key or name as their keys, or the first problem:
    an unknown project (not in `projects`, nor `*`) or role."""
    catalogue = scope.catalogue()
    resolved: list[tuple[str, str]] = []
    for project, role in pairs:
        if project != licensing.ALL_PROJECTS and project not in projects:
            return [], f"unknown project {project!r}"
        found = catalogue.find(role)
        if found is None:
            try:
                found = catalogue.by_name(role)
            except licensing.LicensingError:
                return [], f"unknown role {role!r}"
        resolved.append((project, found.key))
    return resolved, None


def project_keys(scope: Scope) -> set[str]:
    """The organization's project keys."""
    return set(scope.session.scalars(select(Project.key).where(Project.org_id == scope.org_id)))


def prepare_role_groups(scope: Scope, pairs: Iterable[tuple[str, str]]) -> None:
    """Create the role group and its mapping rule of each (project, role key) not there yet.
    Run in a transaction of its own before the batches: a rule change locks the seat counter,
    which the scope's lock order puts after the groups a batch locks."""
    for project, role_key in sorted(set(pairs)):
        name = role_group_name(project, role_key)
        group = scope.session.scalar(
            select(Group).where(Group.org_id == scope.org_id, Group.display_name_key == name)
        )
        if group is None:
            group = create_group(scope, GroupSpec(display_name=name))
        rule = scope.session.scalar(
            select(MappingRule.id).where(
                MappingRule.org_id == scope.org_id,
                MappingRule.match == licensing.GroupMatch.ID.value,
                MappingRule.group_value == str(group.id),
                MappingRule.role_key == role_key,
                MappingRule.project_key == project,
            )
        )
        if rule is None:
            create_rule(
                scope, RuleSpec(licensing.GroupMatch.ID.value, str(group.id), role_key, project)
            )


def import_users(scope: Scope, rows: Sequence[UserImport]) -> list[ImportResult]:
    """Create or update these users (matched by userName, else email, among the
    organization's live users), add them to the groups named (created when missing) and
    recompute the access of exactly the users whose memberships changed (and of new users
    when there is a default role): one result per row. An identical row writes nothing."""
    batch = _Batch(results=[None] * len(rows), users=[None] * len(rows))
    _match_users(scope, rows, batch)
    group_ids = _groups_of(scope, rows, batch)
    # The scope's lock order: the groups, then the seat counter, then users' rows.
    scope.lock_group_ids({g for ids in group_ids.values() for g in ids})
    scope.lock_seats_if_in_play()
    new = [i for i, r in enumerate(batch.results) if r is None and batch.users[i] is None]
    _create_users(scope, rows, new, batch)
    _update_users(scope, rows, batch)
    affected = _add_memberships(scope, group_ids, batch)
    events.record_many(scope, batch.audit)
    events.publish_many(scope, batch.outbox)
    if scope.organization.default_role_key is not None:
        affected.update(u.id for i in new if (u := batch.users[i]) is not None)
    access.recompute(scope, affected, reason=REASON)
    return [_result(batch, i) for i in range(len(rows))]


def match_users(scope: Scope, rows: Sequence[UserImport]) -> list[tuple[bool, str | None]]:
    """For the preview, reading only: whether each row names an existing user, and why it
    could not be imported when it names a deleted user, two users, or one an earlier row of
    these names (as `import_users` would refuse it)."""
    batch = _Batch(results=[None] * len(rows), users=[None] * len(rows))
    _match_users(scope, rows, batch)
    return [
        (batch.users[i] is not None, result.reason if result is not None else None)
        for i, result in enumerate(batch.results)
    ]


def _result(batch: _Batch, index: int) -> ImportResult:
    found = batch.results[index]
    if found is not None:
        return found
    user = batch.users[index]
    assert user is not None
    if index in batch.created:
        outcome = RowOutcome.CREATED
    else:
        outcome = RowOutcome.UPDATED if index in batch.changed else RowOutcome.UNCHANGED
    return ImportResult(outcome, None, user.id)


def _failed(reason: str) -> ImportResult:
    return ImportResult(RowOutcome.FAILED, reason)


def _match_users(scope: Scope, rows: Sequence[UserImport], batch: _Batch) -> None:
    """Find each row's user: by userName, else by email (see `_pick_users`)."""
    session = scope.session
    keys = sorted({r.user_name.lower() for r in rows})
    emails = sorted({r.email.lower() for r in rows if r.email})
    by_name = {
        u.user_name_key: u
        for u in map(
            Known._make,
            scope.rows(
                select(*_KNOWN).where(User.org_id == scope.org_id, User.user_name_key.in_(keys))
            ),
        )
    }
    by_email: dict[str, set[UUID]] = defaultdict(set)
    if emails:
        for user_id, value_key in scope.rows(
            select(UserValue.user_id, UserValue.value_key).where(
                UserValue.org_id == scope.org_id,
                UserValue.attribute == "emails",
                UserValue.value_key.in_(emails),
            )
        ):
            by_email[str(value_key)].add(user_id)
    loaded = {u.id: u for u in by_name.values()}
    wanted = sorted({i for ids in by_email.values() for i in ids} - set(loaded))
    if wanted:
        for row in scope.rows(select(*_KNOWN).where(in_ids(session, User.id, wanted))):
            loaded[row.id] = Known._make(row)
    _pick_users(rows, batch, by_name, {k: [loaded[i] for i in v] for k, v in by_email.items()})


def _pick_users(
    rows: Sequence[UserImport],
    batch: _Batch,
    by_name: Mapping[str, Known],
    by_email: Mapping[str, list[Known]],
) -> None:
    """Each row's existing user, or None for a new one. A row fails whose userName names a
    deleted user (the IdP's create relinks those, with their history), whose userName and
    email name two users, whose email alone names several, or whose user an earlier row of
    the batch already has."""
    seen: set[UUID] = set()
    for index, row in enumerate(rows):
        named = by_name.get(row.user_name.lower())
        email_key = (row.email or "").lower()
        holders = [u for u in by_email.get(email_key, ()) if u.deprovisioned_at is None]
        if named is not None and named.deprovisioned_at is not None:
            reason = f"user {row.user_name!r} was deleted; only the IdP can restore them"
        elif named is not None and holders and named not in holders:
            reason = f"userName and email {row.email!r} belong to different users"
        elif named is None and len(holders) > 1:
            reason = f"email {row.email!r} belongs to {len(holders)} users"
        else:
            user = named or (holders[0] if holders else None)
            if user is not None and user.id in seen:
                reason = "the same user as an earlier row"
            else:
                if user is not None:
                    seen.add(user.id)
                batch.users[index] = user
                continue
        batch.results[index] = _failed(reason)


def _groups_of(scope: Scope, rows: Sequence[UserImport], batch: _Batch) -> dict[int, list[UUID]]:
    """The groups each row's user joins, by row: the groups named (created when missing)
    and the role groups of its project roles (`prepare_role_groups` made them)."""
    wanted: dict[int, list[str]] = {}
    for index, row in enumerate(rows):
        if batch.results[index] is None:
            roles = [role_group_name(p, r) for p, r in row.project_roles]
            wanted[index] = [*row.groups, *roles]
    keys = sorted({name.lower() for names in wanted.values() for name in names})
    found = {
        key: group_id
        for group_id, key in scope.session.execute(
            select(Group.id, Group.display_name_key).where(
                Group.org_id == scope.org_id, Group.display_name_key.in_(keys)
            )
        )
    }
    group_ids: dict[int, list[UUID]] = {}
    for index, names in wanted.items():
        missing_role = next(
            (n for n in names if n.startswith(ROLE_GROUP_PREFIX) and n.lower() not in found), None
        )
        if missing_role is not None and missing_role not in rows[index].groups:
            batch.results[index] = _failed(f"role group {missing_role!r} is missing")
            continue
        for name in names:
            if name.lower() not in found:
                found[name.lower()] = create_group(scope, GroupSpec(display_name=name)).id
        group_ids[index] = sorted({found[n.lower()] for n in names})
    return group_ids


def _create_users(
    scope: Scope, rows: Sequence[UserImport], new: Sequence[int], batch: _Batch
) -> None:
    """Insert the batch's new users with their emails, audited and published to Blue."""
    if not new:
        return
    now = utcnow()
    users: list[User] = []
    rows_written: list[dict[str, Any]] = []
    for index in new:
        row = rows[index]
        emails = [{"value": row.email, "primary": True}] if row.email else []
        values: dict[str, Any] = {
            "id": uuid4(),
            "org_id": scope.org_id,
            "user_name": row.user_name,
            "user_name_key": row.user_name.lower(),
            "external_id": None,
            "is_active": True,
            "deprovisioned_at": None,
            "source": UserSource.CSV.value,
            "seat": SeatKind.NONE.value,
            "pending_since": None,
            "given_name": row.given_name,
            "family_name": row.family_name,
            "primary_email": row.email.lower() if row.email else None,
            "multi_values": {"emails": emails} if emails else {},
            "extensions": {},
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        rows_written.append(values)
        # Never added to the session: the rows go in by one bulk insert (COPY); the object
        # gives the audit record and Blue's event the very shape a SCIM create gives them.
        user = User(**values)
        users.append(user)
        batch.users[index] = Known(
            user.id, user.user_name_key, None, row.given_name, row.family_name, user.primary_email
        )
        batch.audit.append(
            events.EventRow(
                Action.USER_CREATED, Target.USER, str(user.id), None, user_snapshot(user)
            )
        )
        batch.outbox.append((OutboxType.USER_PROVISIONED, user.id, user_state(user, False)))
    bulk_insert(scope.session, User, rows_written)
    _write_emails(scope, [u for u in users if u.primary_email])
    batch.created.update(new)


def _write_emails(scope: Scope, users: Sequence[User]) -> None:
    """The rows that let filters and lookups find these users by email."""
    rows = [
        {
            "org_id": scope.org_id,
            "user_id": user.id,
            "attribute": "emails",
            "value": str(item["value"])[:1024],
            "value_key": str(item["value"])[:1024].lower(),
            "display": None,
            "type": item.get("type"),
            "is_primary": item.get("primary") is True,
        }
        for user in users
        for item in user.multi_values.get("emails", [])
        if item.get("value")
    ]
    bulk_insert(scope.session, UserValue, rows)


def _update_users(scope: Scope, rows: Sequence[UserImport], batch: _Batch) -> None:
    """Give existing users the names and email of their rows: a cell left empty keeps the
    value; only users whose attributes differ are read whole and written."""
    differing: dict[UUID, tuple[int, Known]] = {}
    for index, row in enumerate(rows):
        known = batch.users[index]
        if batch.results[index] is None and known is not None and index not in batch.created:
            if _differs(row, known):
                differing[known.id] = (index, known)
    if not differing:
        return
    session = scope.session
    new_email: list[User] = []
    for user in session.scalars(select(User).where(in_ids(session, User.id, sorted(differing)))):
        index, known = differing[user.id]
        if _update_user(user, rows[index], batch):
            batch.changed.add(index)
            if user.primary_email != known.primary_email:
                new_email.append(user)
    if new_email:
        session.execute(
            delete(UserValue).where(
                in_ids(session, UserValue.user_id, [u.id for u in new_email]),
                UserValue.attribute == "emails",
            )
        )
        session.flush()
        _write_emails(scope, new_email)


def _differs(row: UserImport, known: Known) -> bool:
    """Whether the row gives the user a name or email they do not have."""
    return bool(
        (row.given_name and row.given_name != known.given_name)
        or (row.family_name and row.family_name != known.family_name)
        or (row.email and row.email.lower() != known.primary_email)
    )


def _update_user(user: User, row: UserImport, batch: _Batch) -> bool:
    """Apply the row to the user, audited and published as a SCIM replace would be; False
    when nothing changed after all."""
    before, state_before = user_snapshot(user), user_state(user)
    for column in _NAMES:
        value = getattr(row, column)
        if value and value != getattr(user, column):
            setattr(user, column, value)
    if row.email and row.email.lower() != user.primary_email:
        others = [
            {k: v for k, v in e.items() if k != "primary"}
            for e in user.multi_values.get("emails", [])
            if str(e.get("value", "")).lower() != row.email.lower()
        ]
        emails = [{"value": row.email, "primary": True}, *others]
        user.multi_values = {**user.multi_values, "emails": emails}
        user.primary_email = row.email.lower()
    after = user_snapshot(user)
    if after == before:
        return False
    user.version += 1
    user.updated_at = utcnow()
    old, changed = events.changed(before, after)
    batch.audit.append(
        events.EventRow(Action.USER_UPDATED, Target.USER, str(user.id), old, changed)
    )
    state = user_state(user)
    if state != state_before:
        batch.outbox.append((OutboxType.USER_UPDATED, user.id, state))
    return True


def _add_memberships(
    scope: Scope, group_ids: Mapping[int, Sequence[UUID]], batch: _Batch
) -> set[UUID]:
    """Add each row's user to its groups where not a member yet; the users who joined."""
    index_of: dict[UUID, int] = {}
    wanted: set[tuple[UUID, UUID]] = set()
    for index, ids in group_ids.items():
        user = batch.users[index]
        if user is not None and batch.results[index] is None:
            index_of[user.id] = index
            wanted.update((user.id, g) for g in ids)
    if not wanted:
        return set()
    session = scope.session
    all_groups = sorted({g for _, g in wanted})
    present = {
        (user_id, group_id)
        for user_id, group_id in session.execute(
            select(Membership.user_id, Membership.group_id).where(
                in_ids(session, Membership.user_id, sorted(index_of)),
                in_ids(session, Membership.group_id, all_groups),
            )
        )
    }
    missing = sorted(wanted - present)
    now = utcnow()
    bulk_insert(
        session,
        Membership,
        [
            {
                "group_id": g,
                "user_id": u,
                "org_id": scope.org_id,
                "source": "csv",
                "created_at": now,
            }
            for u, g in missing
        ],
    )
    for user_id, group_id in missing:
        batch.audit.append(
            events.EventRow(
                Action.MEMBERSHIP_ADDED,
                Target.GROUP,
                str(group_id),
                None,
                {GroupKey.USER_ID: str(user_id)},
            )
        )
        batch.changed.add(index_of[user_id])
    touch_groups(scope, {g for _, g in missing})
    return {u for u, _ in missing}
