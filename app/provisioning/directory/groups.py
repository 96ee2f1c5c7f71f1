"""Groups of the directory and their members: create, rename, change members, delete."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update

from app.actions import Action, GroupKey, Target
from app.db import utcnow
from app.errors import ConflictError, InvalidChangeError
from app.models import Group, Membership, User
from app.provisioning import events
from app.provisioning.access import recompute
from app.provisioning.binding import bind_rules_to_group, follow_external_id
from app.provisioning.scope import BATCH, Scope, chunks, parse_uuid
from app.provisioning.specs import GroupSpec, MemberChange


def get_group(scope: Scope, group_id: str | UUID) -> Group:
    """A group of this organization, or NotFoundError."""
    return scope.scoped(Group, group_id, "group")


def create_group(scope: Scope, spec: GroupSpec) -> Group:
    """Create a group with its members."""
    check_group_name(scope, spec.display_name)
    group = Group(
        org_id=scope.org_id,
        display_name=spec.display_name,
        display_name_key=spec.display_name.lower(),
        external_id=spec.external_id,
        extensions={k: v for k, v in spec.extensions.items() if v},
    )
    scope.session.add(group)
    scope.session.flush()
    events.record(scope, Action.GROUP_CREATED, Target.GROUP, group.id, None, _identity(group))
    # Before its members are added: they get what the rules it takes grant.
    bind_rules_to_group(scope, group, reason="group_created")
    if spec.member_ids:
        add_members(scope, group, resolve_members(scope, spec.member_ids))
    return group


def replace_group(
    scope: Scope, group_id: str | UUID, spec: GroupSpec, expected_version: int | None = None
) -> Group:
    """Replace a group's attributes and, when given, its whole member list."""
    change = MemberChange(replaced=spec.member_ids) if spec.member_ids is not None else None
    return update_group(scope, group_id, spec, change, expected_version)


def update_group(
    scope: Scope,
    group_id: str | UUID,
    spec: GroupSpec,
    members: MemberChange | None = None,
    expected_version: int | None = None,
) -> Group:
    """Change a group's attributes and apply member additions/removals, atomically."""
    # The group row first, as the scope's lock order has it; read under the lock, the
    # version is never reused by two concurrent changes.
    group = scope.scoped(Group, group_id, "group", lock=True)
    scope.check_version(group.version, expected_version)
    before = _identity(group)
    if spec.display_name != group.display_name:
        check_group_name(scope, spec.display_name, exclude=group.id)
    renamed = spec.display_name.lower() != group.display_name_key
    new_external_id = spec.external_id != group.external_id
    group.display_name = spec.display_name
    group.display_name_key = spec.display_name.lower()
    group.external_id = spec.external_id
    group.extensions = {k: v for k, v in spec.extensions.items() if v}
    after = _identity(group)
    changed = after != before
    if changed:
        events.record_changes(scope, Action.GROUP_UPDATED, Target.GROUP, group.id, before, after)
    if members is not None:
        changed = apply_member_change(scope, group, members) or changed
    if changed:
        group.version += 1
        group.updated_at = utcnow()
    if new_external_id:
        follow_external_id(scope, group)
    # Rules bound to the group follow it whatever its name: a rename alone recomputes no one.
    # Only a rule it now takes (an unbound rule naming it) gives its members new roles.
    if (renamed or new_external_id) and bind_rules_to_group(scope, group, reason="group_renamed"):
        recompute(scope, member_ids(scope, group.id), reason="group_renamed")
    return group


def delete_group(scope: Scope, group_id: str | UUID, expected_version: int | None = None) -> None:
    """Delete a group; its members lose what it granted."""
    group = get_group(scope, group_id)
    scope.check_version(group.version, expected_version)
    members = member_ids(scope, group.id)
    scope.session.execute(delete(Membership).where(Membership.group_id == group.id))
    before = _identity(group) | {"member_count": len(members)}
    events.record(scope, Action.GROUP_DELETED, Target.GROUP, group.id, before, None)
    scope.session.delete(group)
    scope.session.flush()
    recompute(scope, members, reason="group_deleted")


def _identity(group: Group) -> dict[str, Any]:
    """What the audit trail records of a group's identity."""
    return {GroupKey.DISPLAY_NAME: group.display_name, "external_id": group.external_id}


def check_group_name(scope: Scope, display_name: str, exclude: UUID | None = None) -> None:
    """InvalidChangeError for an empty name, ConflictError for one another group has."""
    if not display_name or not display_name.strip():
        raise InvalidChangeError("displayName is required")
    query = select(Group.id).where(
        Group.org_id == scope.org_id, Group.display_name_key == display_name.lower()
    )
    if exclude is not None:
        query = query.where(Group.id != exclude)
    if scope.session.scalar(query) is not None:
        raise ConflictError(f"a group named {display_name!r} already exists")


def resolve_members(scope: Scope, values: Iterable[str]) -> set[UUID]:
    """Member values → live users of this organization; refuses groups and unknown ids."""
    wanted: dict[UUID, str] = {}
    bad: list[str] = []
    for value in values:
        parsed = parse_uuid(value)
        if parsed is None:
            bad.append(str(value))
        else:
            wanted[parsed] = str(value)
    found: set[UUID] = set()
    ids = list(wanted)
    for chunk in chunks(ids, BATCH):
        found.update(
            scope.session.scalars(
                select(User.id).where(
                    User.id.in_(chunk),
                    User.org_id == scope.org_id,
                    User.deprovisioned_at.is_(None),
                )
            )
        )
    missing = [wanted[i] for i in ids if i not in found]
    if missing:
        _refuse_nested_groups(scope, missing)
    if missing or bad:
        shown = ", ".join((bad + missing)[:5])
        raise InvalidChangeError(f"members are not users of this organization: {shown}")
    return found


def _refuse_nested_groups(scope: Scope, missing: list[str]) -> None:
    nested = scope.session.scalars(
        select(Group.id).where(
            Group.org_id == scope.org_id,
            Group.id.in_([UUID(v) for v in missing[:BATCH]]),
        )
    ).all()
    if nested:
        raise InvalidChangeError(
            "nested groups are not supported: members must be users "
            f"(group {nested[0]} given as a member)"
        )


def apply_member_change(scope: Scope, group: Group, change: MemberChange) -> bool:
    """Apply adds/removes; only the users whose membership changes are touched."""
    to_add: set[UUID] = set()
    to_remove: set[UUID] = set()
    if change.replaced is not None:
        target = resolve_members(scope, change.replaced) if change.replaced else set()
        current = set(member_ids(scope, group.id))
        to_add = target - current
        to_remove = current - target
    if change.added:
        added = resolve_members(scope, change.added)
        to_add |= added
        to_remove -= added
    if change.removed:
        removed = {u for u in (parse_uuid(v) for v in change.removed) if u is not None}
        to_remove |= removed
        to_add -= removed
    if to_add:
        to_add -= _present_members(scope, group.id, to_add)
    if to_remove and change.replaced is None:
        to_remove = _present_members(scope, group.id, to_remove)
    if to_add:
        add_members(scope, group, to_add, recompute_access=False)
    if to_remove:
        _remove_members(scope, group, to_remove)
    if to_add or to_remove:
        recompute(scope, to_add | to_remove, reason="membership_changed")
        return True
    return False


def add_members(
    scope: Scope, group: Group, user_ids: set[UUID], recompute_access: bool = True
) -> None:
    """Insert these users' memberships of the group (they are not members yet)."""
    now = utcnow()
    rows = [
        {
            "group_id": group.id,
            "user_id": u,
            "org_id": scope.org_id,
            "source": "scim",
            "created_at": now,
        }
        for u in sorted(user_ids)
    ]
    if rows:
        scope.session.execute(insert(Membership), rows)
        for user_id in sorted(user_ids):
            events.record(
                scope,
                Action.MEMBERSHIP_ADDED,
                Target.GROUP,
                group.id,
                None,
                {GroupKey.USER_ID: str(user_id)},
            )
    if recompute_access and user_ids:
        recompute(scope, user_ids, reason="membership_changed")


def _remove_members(scope: Scope, group: Group, user_ids: set[UUID]) -> None:
    for chunk in chunks(sorted(user_ids), BATCH):
        scope.session.execute(
            delete(Membership).where(Membership.group_id == group.id, Membership.user_id.in_(chunk))
        )
    for user_id in sorted(user_ids):
        events.record(
            scope,
            Action.MEMBERSHIP_REMOVED,
            Target.GROUP,
            group.id,
            {GroupKey.USER_ID: str(user_id)},
            None,
        )


def _present_members(scope: Scope, group_id: UUID, user_ids: Collection[UUID]) -> set[UUID]:
    present: set[UUID] = set()
    for chunk in chunks(sorted(user_ids), BATCH):
        present.update(
            scope.session.scalars(
                select(Membership.user_id).where(
                    Membership.group_id == group_id, Membership.user_id.in_(chunk)
                )
            )
        )
    return present


def member_ids(scope: Scope, group_id: UUID) -> list[UUID]:
    """The group's members."""
    return list(
        scope.session.scalars(select(Membership.user_id).where(Membership.group_id == group_id))
    )


def touch_groups(scope: Scope, group_ids: Iterable[UUID]) -> None:
    """A new version of each of these groups (their members changed), locked in id order."""
    ids = sorted(set(group_ids))
    if len(ids) > 1:
        # Lock in id order first: two deletes of users who share groups would otherwise
        # lock the same rows in different orders and deadlock. One row needs no order.
        scope.lock_groups(Group.id.in_(ids))
    if ids:
        scope.session.execute(
            update(Group)
            .where(Group.id.in_(ids))
            .values(version=Group.version + 1, updated_at=utcnow())
        )
