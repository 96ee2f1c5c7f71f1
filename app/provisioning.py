"""The provisioning service: the one door through which users, groups, memberships, role
assignments, seats and audit events change. It never commits; the caller's unit of work does."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

import licensing
from app.db import utcnow
from app.errors import (
    ConflictError,
    InvalidChangeError,
    NotFoundError,
    PreconditionFailedError,
)
from app.models import (
    AuditEvent,
    CustomRole,
    Group,
    MappingRule,
    Membership,
    Organization,
    RoleAssignment,
    SeatEvent,
    SeatKind,
    User,
    UserSource,
    UserValue,
)

# Plain string attributes of a user, by column name.
USER_STRING_COLUMNS = (
    "display_name",
    "given_name",
    "family_name",
    "middle_name",
    "formatted_name",
    "honorific_prefix",
    "honorific_suffix",
    "nick_name",
    "profile_url",
    "title",
    "user_type",
    "preferred_language",
    "locale",
    "timezone",
    "employee_number",
    "cost_center",
    "organization_name",
    "division",
    "department",
    "manager_id",
)
MULTI_VALUED = ("emails", "phoneNumbers", "addresses", "photos", "roles", "x509Certificates")
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked for a change, as the audit trail records it."""

    kind: str  # scim | sso | cli | console | system
    label: str
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


SYSTEM = Actor(kind="system", label="system")


@dataclass(frozen=True, slots=True)
class UserSpec:
    """The complete desired state of a user's directory attributes (a create or full replace)."""

    user_name: str
    external_id: str | None = None
    is_active: bool = True
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    multi_values: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    extensions: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """The desired state of a group; `member_ids` None leaves members untouched."""

    display_name: str
    external_id: str | None = None
    extensions: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    member_ids: Collection[str] | None = None


@dataclass(frozen=True, slots=True)
class MemberChange:
    """Members to add and remove, applied after an optional full replacement."""

    added: Collection[str] = ()
    removed: Collection[str] = ()
    replaced: Collection[str] | None = None


def _parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _key(value: str | None) -> str | None:
    return value.lower() if value is not None else None


class ProvisioningService:
    """Operations on one organization's directory, on behalf of one actor."""

    def __init__(self, session: Session, organization: Organization, actor: Actor) -> None:
        self.session = session
        self.organization = organization
        self.org_id = organization.id
        self.actor = actor
        self._rules: list[licensing.MappingRule] | None = None
        self._catalogue: licensing.RoleCatalogue | None = None
        self._org_locked = False

    # ----------------------------------------------------------------- users

    def get_user(self, user_id: str | UUID) -> User:
        """A live (not deprovisioned) user of this organization, or NotFoundError."""
        parsed = user_id if isinstance(user_id, UUID) else _parse_uuid(user_id)
        user = None
        if parsed is not None:
            user = self.session.scalar(
                select(User).where(
                    User.id == parsed, User.org_id == self.org_id, User.deprovisioned_at.is_(None)
                )
            )
        if user is None:
            raise NotFoundError(f"user {user_id} not found")
        return user

    def create_user(self, spec: UserSpec, source: UserSource = UserSource.SCIM) -> User:
        """Create a user, or relink a deprovisioned one with the same userName or externalId."""
        self._check_user_spec(spec)
        key = spec.user_name.lower()
        existing = self.session.scalar(
            select(User).where(User.org_id == self.org_id, User.user_name_key == key)
        )
        if existing is not None and not existing.is_deprovisioned:
            raise ConflictError(f"userName {spec.user_name!r} is already taken")
        if existing is None and spec.external_id is not None:
            existing = self.session.scalar(
                select(User)
                .where(
                    User.org_id == self.org_id,
                    User.external_id == spec.external_id,
                    User.deprovisioned_at.is_not(None),
                )
                .limit(1)
            )
        if existing is not None:
            # RFC 7644 leaves re-creation open; we relink so the person keeps their history.
            before = self._user_snapshot(existing)
            existing.deprovisioned_at = None
            self._write_user(existing, spec)
            existing.created_at = existing.created_at or utcnow()
            self._audit("user.relinked", "user", existing.id, before, self._user_snapshot(existing))
            self._recompute([existing.id], reason="user_relinked")
            return existing
        user = User(org_id=self.org_id, source=source, seat=SeatKind.NONE)
        self._write_user(user, spec, is_new=True)
        self.session.add(user)
        self.session.flush()
        self._write_values(user, spec.multi_values)
        self._audit("user.created", "user", user.id, None, self._user_snapshot(user))
        self._recompute([user.id], reason="user_created")
        return user

    def replace_user(
        self, user_id: str | UUID, spec: UserSpec, expected_version: int | None = None
    ) -> User:
        """Replace a user's attributes; `active` false deactivates, true reactivates."""
        user = self.get_user(user_id)
        self._check_version(user.version, expected_version)
        self._check_user_spec(spec)
        key = spec.user_name.lower()
        if key != user.user_name_key:
            taken = self.session.scalar(
                select(User.id).where(User.org_id == self.org_id, User.user_name_key == key)
            )
            if taken is not None:
                raise ConflictError(f"userName {spec.user_name!r} is already taken")
        before = self._user_snapshot(user)
        was_active = user.is_active
        self._write_user(user, spec)
        after = self._user_snapshot(user)
        if after == before:
            return user
        user.version += 1
        user.updated_at = utcnow()
        if was_active and not user.is_active:
            action = "user.deactivated"
        elif not was_active and user.is_active:
            action = "user.reactivated"
        else:
            action = "user.updated"
        self._audit(action, "user", user.id, *_changed(before, after))
        if was_active != user.is_active:
            self._recompute([user.id], reason=action.removeprefix("user."))
        return user

    def delete_user(self, user_id: str | UUID, expected_version: int | None = None) -> None:
        """Deprovision: roles, seat and memberships released; the record and history stay."""
        user = self.get_user(user_id)
        self._check_version(user.version, expected_version)
        before = self._user_snapshot(user)
        group_ids = self.session.scalars(
            select(Membership.group_id).where(Membership.user_id == user.id)
        ).all()
        if group_ids:
            self.session.execute(delete(Membership).where(Membership.user_id == user.id))
            self._touch_groups(group_ids)
        user.is_active = False
        user.deprovisioned_at = utcnow()
        user.version += 1
        user.updated_at = user.deprovisioned_at
        after = self._user_snapshot(user) | {"groups_left": sorted(str(g) for g in group_ids)}
        self._audit("user.deleted", "user", user.id, before, after)
        self._recompute([user.id], reason="user_deleted")

    def _check_user_spec(self, spec: UserSpec) -> None:
        if not spec.user_name or not spec.user_name.strip():
            raise InvalidChangeError("userName is required")
        if len(spec.user_name) > 256:
            raise InvalidChangeError("userName is longer than 256 characters")
        unknown = set(spec.attributes) - set(USER_STRING_COLUMNS)
        if unknown:
            raise InvalidChangeError(f"unknown user attributes: {', '.join(sorted(unknown))}")

    def _write_user(self, user: User, spec: UserSpec, is_new: bool = False) -> None:
        user.user_name = spec.user_name
        user.user_name_key = spec.user_name.lower()
        user.external_id = spec.external_id
        user.is_active = spec.is_active
        for column in USER_STRING_COLUMNS:
            setattr(user, column, spec.attributes.get(column))
        user.display_name_key = _key(user.display_name)
        multi = {k: v for k, v in spec.multi_values.items() if k in MULTI_VALUED and v}
        user.primary_email = _primary_value(multi.get("emails", []))
        changed_values = is_new or multi != (user.multi_values or {})
        user.multi_values = multi
        user.extensions = {k: v for k, v in spec.extensions.items() if v}
        if changed_values and not is_new:
            self.session.execute(delete(UserValue).where(UserValue.user_id == user.id))
            self._write_values(user, multi)

    def _write_values(self, user: User, multi_values: Mapping[str, list[dict[str, Any]]]) -> None:
        rows = []
        for attribute, values in multi_values.items():
            for item in values:
                value = item.get("value")
                if attribute == "addresses":
                    value = item.get("formatted") or item.get("streetAddress")
                text = None if value is None else str(value)[:1024]
                rows.append(
                    {
                        "org_id": self.org_id,
                        "user_id": user.id,
                        "attribute": attribute,
                        "value": text,
                        "value_key": _key(text),
                        "display": item.get("display"),
                        "type": item.get("type"),
                        "is_primary": item.get("primary") is True,
                    }
                )
        if rows:
            self.session.execute(insert(UserValue), rows)

    def _user_snapshot(self, user: User) -> dict[str, Any]:
        snapshot: dict[str, Any] = {
            "user_name": user.user_name,
            "external_id": user.external_id,
            "active": user.is_active,
        }
        for column in USER_STRING_COLUMNS:
            value = getattr(user, column)
            if value is not None:
                snapshot[column] = value
        if user.multi_values:
            snapshot["multi_values"] = user.multi_values
        if user.extensions:
            snapshot["extensions"] = user.extensions
        return snapshot

    # ---------------------------------------------------------------- groups

    def get_group(self, group_id: str | UUID) -> Group:
        """A group of this organization, or NotFoundError."""
        parsed = group_id if isinstance(group_id, UUID) else _parse_uuid(group_id)
        group = None
        if parsed is not None:
            group = self.session.scalar(
                select(Group).where(Group.id == parsed, Group.org_id == self.org_id)
            )
        if group is None:
            raise NotFoundError(f"group {group_id} not found")
        return group

    def create_group(self, spec: GroupSpec) -> Group:
        """Create a group with its members."""
        self._check_group_name(spec.display_name)
        group = Group(
            org_id=self.org_id,
            display_name=spec.display_name,
            display_name_key=spec.display_name.lower(),
            external_id=spec.external_id,
            extensions={k: v for k, v in spec.extensions.items() if v},
        )
        self.session.add(group)
        self.session.flush()
        self._audit(
            "group.created",
            "group",
            group.id,
            None,
            {"display_name": group.display_name, "external_id": group.external_id},
        )
        if spec.member_ids:
            self._add_members(group, self._resolve_members(spec.member_ids))
        return group

    def replace_group(
        self, group_id: str | UUID, spec: GroupSpec, expected_version: int | None = None
    ) -> Group:
        """Replace a group's attributes and, when given, its whole member list."""
        change = MemberChange(replaced=spec.member_ids) if spec.member_ids is not None else None
        return self.update_group(group_id, spec, change, expected_version)

    def update_group(
        self,
        group_id: str | UUID,
        spec: GroupSpec,
        members: MemberChange | None = None,
        expected_version: int | None = None,
    ) -> Group:
        """Change a group's attributes and apply member additions/removals, atomically."""
        group = self.get_group(group_id)
        self._check_version(group.version, expected_version)
        before = {"display_name": group.display_name, "external_id": group.external_id}
        if spec.display_name != group.display_name:
            self._check_group_name(spec.display_name, exclude=group.id)
        renamed = spec.display_name.lower() != group.display_name_key
        identity_changed = renamed or spec.external_id != group.external_id
        group.display_name = spec.display_name
        group.display_name_key = spec.display_name.lower()
        group.external_id = spec.external_id
        group.extensions = {k: v for k, v in spec.extensions.items() if v}
        after = {"display_name": group.display_name, "external_id": group.external_id}
        changed = after != before
        if changed:
            self._audit("group.updated", "group", group.id, *_changed(before, after))
        if members is not None:
            changed = self._apply_member_change(group, members) or changed
        if changed:
            group.version += 1
            group.updated_at = utcnow()
        if identity_changed and self._rules_touch_group(before, after):
            # Rules match by displayName or externalId: every member may gain or lose roles.
            self._recompute(self._member_ids(group.id), reason="group_renamed")
        return group

    def delete_group(self, group_id: str | UUID, expected_version: int | None = None) -> None:
        """Delete a group; its members lose what it granted."""
        group = self.get_group(group_id)
        self._check_version(group.version, expected_version)
        member_ids = self._member_ids(group.id)
        self.session.execute(delete(Membership).where(Membership.group_id == group.id))
        self._audit(
            "group.deleted",
            "group",
            group.id,
            {
                "display_name": group.display_name,
                "external_id": group.external_id,
                "member_count": len(member_ids),
            },
            None,
        )
        self.session.delete(group)
        self.session.flush()
        self._recompute(member_ids, reason="group_deleted")

    def _check_group_name(self, display_name: str, exclude: UUID | None = None) -> None:
        if not display_name or not display_name.strip():
            raise InvalidChangeError("displayName is required")
        query = select(Group.id).where(
            Group.org_id == self.org_id, Group.display_name_key == display_name.lower()
        )
        if exclude is not None:
            query = query.where(Group.id != exclude)
        if self.session.scalar(query) is not None:
            raise ConflictError(f"a group named {display_name!r} already exists")

    def _resolve_members(self, values: Iterable[str]) -> set[UUID]:
        """Member values → live users of this organization; refuses groups and unknown ids."""
        wanted: dict[UUID, str] = {}
        bad: list[str] = []
        for value in values:
            parsed = _parse_uuid(value)
            if parsed is None:
                bad.append(str(value))
            else:
                wanted[parsed] = str(value)
        found: set[UUID] = set()
        ids = list(wanted)
        for chunk in _chunks(ids, BATCH):
            found.update(
                self.session.scalars(
                    select(User.id).where(
                        User.id.in_(chunk),
                        User.org_id == self.org_id,
                        User.deprovisioned_at.is_(None),
                    )
                )
            )
        missing = [wanted[i] for i in ids if i not in found]
        if missing:
            nested = self.session.scalars(
                select(Group.id).where(
                    Group.org_id == self.org_id,
                    Group.id.in_([UUID(v) for v in missing[:BATCH]]),
                )
            ).all()
            if nested:
                raise InvalidChangeError(
                    "nested groups are not supported: members must be users "
                    f"(group {nested[0]} given as a member)"
                )
        if missing or bad:
            shown = ", ".join((bad + missing)[:5])
            raise InvalidChangeError(f"members are not users of this organization: {shown}")
        return found

    def _apply_member_change(self, group: Group, change: MemberChange) -> bool:
        """Apply adds/removes; only the users whose membership changes are touched."""
        to_add: set[UUID] = set()
        to_remove: set[UUID] = set()
        if change.replaced is not None:
            target = self._resolve_members(change.replaced) if change.replaced else set()
            current = set(self._member_ids(group.id))
            to_add = target - current
            to_remove = current - target
        if change.added:
            added = self._resolve_members(change.added)
            to_add |= added
            to_remove -= added
        if change.removed:
            removed = {u for u in (_parse_uuid(v) for v in change.removed) if u is not None}
            to_remove |= removed
            to_add -= removed
        if to_add:
            present = self._present_members(group.id, to_add)
            to_add -= present
        if to_remove and change.replaced is None:
            to_remove = self._present_members(group.id, to_remove)
        if to_add:
            self._add_members(group, to_add, recompute=False)
        if to_remove:
            for chunk in _chunks(sorted(to_remove), BATCH):
                self.session.execute(
                    delete(Membership).where(
                        Membership.group_id == group.id, Membership.user_id.in_(chunk)
                    )
                )
            for user_id in sorted(to_remove):
                self._audit(
                    "membership.removed", "group", group.id, {"user_id": str(user_id)}, None
                )
        if to_add or to_remove:
            self._recompute(to_add | to_remove, reason="membership_changed")
            return True
        return False

    def _add_members(self, group: Group, user_ids: set[UUID], recompute: bool = True) -> None:
        now = utcnow()
        rows = [
            {
                "group_id": group.id,
                "user_id": u,
                "org_id": self.org_id,
                "source": "scim",
                "created_at": now,
            }
            for u in sorted(user_ids)
        ]
        if rows:
            self.session.execute(insert(Membership), rows)
            for user_id in sorted(user_ids):
                self._audit("membership.added", "group", group.id, None, {"user_id": str(user_id)})
        if recompute and user_ids:
            self._recompute(user_ids, reason="membership_changed")

    def _present_members(self, group_id: UUID, user_ids: Collection[UUID]) -> set[UUID]:
        present: set[UUID] = set()
        for chunk in _chunks(sorted(user_ids), BATCH):
            present.update(
                self.session.scalars(
                    select(Membership.user_id).where(
                        Membership.group_id == group_id, Membership.user_id.in_(chunk)
                    )
                )
            )
        return present

    def _member_ids(self, group_id: UUID) -> list[UUID]:
        return list(
            self.session.scalars(select(Membership.user_id).where(Membership.group_id == group_id))
        )

    def _touch_groups(self, group_ids: Iterable[UUID]) -> None:
        ids = list(group_ids)
        if ids:
            self.session.execute(
                update(Group)
                .where(Group.id.in_(ids))
                .values(version=Group.version + 1, updated_at=utcnow())
            )

    def _rules_touch_group(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
        names = {str(v).lower() for v in (before["display_name"], after["display_name"]) if v}
        external = {v for v in (before["external_id"], after["external_id"]) if v}
        for rule in self._load_rules():
            if (
                rule.match is licensing.GroupMatch.DISPLAY_NAME
                and rule.group_value.lower() in names
            ):
                return True
            if rule.match is licensing.GroupMatch.EXTERNAL_ID and rule.group_value in external:
                return True
        return False

    # ------------------------------------------------------ roles and seats

    def _load_rules(self) -> list[licensing.MappingRule]:
        if self._rules is None:
            rows = self.session.scalars(
                select(MappingRule).where(MappingRule.org_id == self.org_id)
            ).all()
            self._rules = [
                licensing.MappingRule(
                    rule_id=str(r.id),
                    match=licensing.GroupMatch(r.match),
                    group_value=r.group_value,
                    role_key=r.role_key,
                    project=r.project_key,
                    priority=r.priority,
                )
                for r in rows
            ]
        return self._rules

    def catalogue(self) -> licensing.RoleCatalogue:
        """The organization's roles: the built-ins plus its custom roles."""
        if self._catalogue is None:
            rows = self.session.scalars(
                select(CustomRole).where(CustomRole.org_id == self.org_id)
            ).all()
            self._catalogue = licensing.RoleCatalogue(
                licensing.CustomRole(
                    slug=r.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
                    name=r.name,
                    description=r.description,
                    permissions=tuple(r.permissions),
                    rank=r.rank,
                )
                for r in rows
            )
        return self._catalogue

    def _contract(self) -> licensing.Contract:
        org = self.organization
        return licensing.Contract(
            paid_seat_tier=org.paid_seat_tier,
            starts_on=org.contract_starts_on,
            ends_on=org.contract_ends_on,
            billing_terms=licensing.BillingTerms(org.billing_terms),
            policy=licensing.OveragePolicy(org.overage_policy),
        )

    def _lock_organization(self) -> None:
        # Lock the organization row first: two concurrent IdP requests could otherwise both
        # take the last paid seat. SQLite's BEGIN IMMEDIATE already serializes writers.
        if not self._org_locked:
            self.session.refresh(self.organization, with_for_update=True)
            self._org_locked = True

    def _recompute(self, user_ids: Iterable[UUID], reason: str) -> None:
        """Recompute roles and seats of exactly these users, in this transaction."""
        ids = sorted(set(user_ids))
        rules = self._load_rules()
        catalogue = self.catalogue()
        default_role = self.organization.default_role_key
        freed = False
        for chunk in _chunks(ids, BATCH):
            users = {
                u.id: u
                for u in self.session.scalars(
                    select(User).where(User.id.in_(chunk), User.org_id == self.org_id)
                )
            }
            groups: dict[UUID, list[licensing.GroupRef]] = defaultdict(list)
            if rules:
                for user_id, group_id, external_id, display_name in self.session.execute(
                    select(Membership.user_id, Group.id, Group.external_id, Group.display_name)
                    .join(Group, Group.id == Membership.group_id)
                    .where(Membership.user_id.in_(chunk))
                ):
                    groups[user_id].append(
                        licensing.GroupRef(str(group_id), external_id, display_name)
                    )
            current: dict[UUID, dict[str, RoleAssignment]] = defaultdict(dict)
            for assignment in self.session.scalars(
                select(RoleAssignment).where(RoleAssignment.user_id.in_(chunk))
            ):
                current[assignment.user_id][assignment.project_key] = assignment
            for user_id in chunk:
                user = users.get(user_id)
                if user is None:
                    continue
                freed = (
                    self._apply_access(
                        user,
                        groups[user_id],
                        current[user_id],
                        rules,
                        catalogue,
                        default_role,
                        reason,
                    )
                    or freed
                )
        if freed:
            self._promote_pending()

    def _apply_access(
        self,
        user: User,
        groups: Sequence[licensing.GroupRef],
        current: dict[str, RoleAssignment],
        rules: Sequence[licensing.MappingRule],
        catalogue: licensing.RoleCatalogue,
        default_role: str | None,
        reason: str,
    ) -> bool:
        """Write one user's new assignments and seat; True when a paid seat was released."""
        is_active = user.is_active and user.deprovisioned_at is None
        desired = (
            licensing.effective_roles(groups, rules, catalogue, default_role) if is_active else {}
        )
        wants_paid = any(catalogue.get(a.role_key).is_paid for a in desired.values())
        holds_paid = user.seat == SeatKind.PAID
        if wants_paid or holds_paid:
            self._lock_organization()
        decision = licensing.decide_seat(
            desired,
            licensing.free_fallback_roles(groups, rules, catalogue, default_role)
            if wants_paid
            else {},
            catalogue,
            is_active=is_active,
            holds_paid_seat=holds_paid,
            paid_seats_in_use=self.organization.paid_seat_count - (1 if holds_paid else 0),
            contract=self._contract(),
        )
        now = utcnow()
        for project, assignment in current.items():
            if project not in decision.assignments:
                self._audit(
                    "role.revoked",
                    "user",
                    user.id,
                    {"project": project, "role": assignment.role_key},
                    None,
                )
                self.session.delete(assignment)
        for project, wanted in decision.assignments.items():
            sources = [{"rule_id": s.rule_id, "group_id": s.group_id} for s in wanted.sources]
            existing = current.get(project)
            if existing is None:
                self.session.add(
                    RoleAssignment(
                        org_id=self.org_id,
                        user_id=user.id,
                        project_key=project,
                        role_key=wanted.role_key,
                        sources=sources,
                        granted_at=now,
                    )
                )
                self._audit(
                    "role.granted",
                    "user",
                    user.id,
                    None,
                    {"project": project, "role": wanted.role_key, "sources": sources},
                )
            elif existing.role_key != wanted.role_key or existing.sources != sources:
                before = {
                    "project": project,
                    "role": existing.role_key,
                    "sources": existing.sources,
                }
                if existing.role_key != wanted.role_key:
                    existing.granted_at = now
                existing.role_key = wanted.role_key
                existing.sources = sources
                self._audit(
                    "role.changed",
                    "user",
                    user.id,
                    before,
                    {"project": project, "role": wanted.role_key, "sources": sources},
                )
        new_seat = SeatKind(decision.seat.value)
        was_pending = user.pending_since is not None
        if decision.is_pending and not was_pending:
            user.pending_since = now
        elif not decision.is_pending and was_pending:
            user.pending_since = None
        if new_seat != user.seat or decision.is_pending != was_pending:
            self.session.add(
                SeatEvent(
                    org_id=self.org_id,
                    user_id=user.id,
                    from_seat=user.seat,
                    to_seat=new_seat,
                    is_pending=decision.is_pending,
                    reason=reason,
                    cause=f"{self.actor.kind}:{self.actor.label}",
                    at=now,
                )
            )
            self._audit(
                "seat.changed",
                "user",
                user.id,
                {"seat": user.seat, "pending": was_pending},
                {
                    "seat": new_seat.value,
                    "pending": decision.is_pending,
                    "overage": decision.is_overage,
                },
            )
        released = holds_paid and new_seat != SeatKind.PAID
        if new_seat == SeatKind.PAID and not holds_paid:
            self.organization.paid_seat_count += 1
        elif released:
            self.organization.paid_seat_count -= 1
        user.seat = new_seat
        self.session.flush()
        return released

    def _promote_pending(self) -> None:
        """Give freed paid seats to pending users, longest waiting first."""
        self._lock_organization()
        free = self._contract().free_paid_seats(self.organization.paid_seat_count)
        if free <= 0:
            return
        waiting = self.session.execute(
            select(User.id, User.pending_since)
            .where(User.org_id == self.org_id, User.pending_since.is_not(None))
            .order_by(User.pending_since, User.id)
            .limit(free)
        ).all()
        order = licensing.promotion_order(
            [licensing.PendingUser(str(i), since) for i, since in waiting if since], free
        )
        if order:
            self._recompute([UUID(i) for i in order], reason="promoted")

    # ----------------------------------------------------------------- audit

    def _audit(
        self,
        action: str,
        target_type: str,
        target_id: UUID | str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        self.session.add(
            AuditEvent(
                org_id=self.org_id,
                actor_type=self.actor.kind,
                actor=self.actor.label,
                action=action,
                target_type=target_type,
                target_id=str(target_id) if target_id is not None else None,
                before=dict(before) if before is not None else None,
                after=dict(after) if after is not None else None,
                request_id=self.actor.request_id,
                source_ip=self.actor.source_ip,
                user_agent=self.actor.user_agent,
            )
        )

    @staticmethod
    def _check_version(current: int, expected: int | None) -> None:
        if expected is not None and expected != current:
            raise PreconditionFailedError(
                f"resource is at version {current}, not the expected {expected}"
            )

    def count_users(self) -> int:
        """Live users of the organization."""
        return (
            self.session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.org_id == self.org_id, User.deprovisioned_at.is_(None))
            )
            or 0
        )


def _changed(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = set(before) | set(after)
    changed = {k for k in keys if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


def _primary_value(values: Sequence[Mapping[str, Any]]) -> str | None:
    for item in values:
        if item.get("primary") is True and item.get("value"):
            return str(item["value"]).lower()
    for item in values:
        if item.get("value"):
            return str(item["value"]).lower()
    return None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
