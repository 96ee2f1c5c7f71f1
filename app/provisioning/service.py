"""The provisioning service: the one door through which users, groups, memberships, role
assignments, seats and audit events change. It never commits; the caller's unit of work does."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar, TypeVarTuple, cast
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

import licensing
from app import audit
from app.audit import Actor as Actor
from app.db import bulk_insert, in_ids, utcnow
from app.errors import (
    ConflictError,
    InvalidChangeError,
    LoginRefusedError,
    NotFoundError,
    PreconditionFailedError,
)
from app.models import (
    CustomRole,
    Group,
    HeldChange,
    IdpConnection,
    LoginIdentity,
    MappingRule,
    Membership,
    Organization,
    OrgDomain,
    Project,
    RoleAssignment,
    SeatEvent,
    SeatKind,
    SsoSession,
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
Scoped = TypeVar("Scoped", User, Group, IdpConnection, MappingRule, HeldChange)
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
# The roles of an organization without custom roles.
BUILT_IN_CATALOGUE = licensing.RoleCatalogue(())
# Queued audit rows that trigger a bulk write: COPY is cheap per row, dear per statement.
WRITE_BATCH = 10_000
# Users planned per round trip once a change is large (ids travel as one array parameter).
PLAN_BATCH = 5_000
# What recomputing a user's access reads: no JSON attributes to decode for 50,000 users.
PLAN_COLUMNS = (
    User.id,
    User.user_name,
    User.is_active,
    User.deprovisioned_at,
    User.seat,
    User.pending_since,
)
PROJECT_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


SYSTEM = Actor(kind="system", label="system")


@dataclass(frozen=True, slots=True)
class UserSpec:
    """The complete desired state of a user's directory attributes (a create or full replace)."""

    user_name: str
    external_id: str | None = None
    # None: not given. A new user starts active; a replace keeps the current state, so a
    # PUT or PATCH that omits or removes "active" never reactivates a deactivated user.
    is_active: bool | None = None
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
class LoginClaims:
    """What an IdP asserted at login, already verified by the SSO adapter."""

    subject: str
    email: str | None = None
    email_verified: bool = False
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    # None: the IdP sent no group claim (or none is configured); memberships stay.
    groups: Sequence[str] | None = None
    groups_overage: bool = False


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """Members of the group matched by `match`/`group_value` get `role_key` in `project_key`."""

    match: str
    group_value: str
    role_key: str
    project_key: str = "*"
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ContractSpec:
    paid_seat_tier: int
    policy: str = "allow"
    billing_terms: str = "annual"
    starts_on: date | None = None
    ends_on: date | None = None


@dataclass(frozen=True, slots=True)
class MemberChange:
    """Members to add and remove, applied after an optional full replacement."""

    added: Collection[str] = ()
    removed: Collection[str] = ()
    replaced: Collection[str] | None = None


@dataclass(slots=True)
class AccessWrites:
    """Rows queued by `_apply_access`, written together by `_write_access`."""

    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[tuple[RoleAssignment, dict[str, Any]]] = field(default_factory=list)
    deleted: list[RoleAssignment] = field(default_factory=list)
    seat_events: list[dict[str, Any]] = field(default_factory=list)
    seats: list[tuple[UserState, SeatKind, datetime | None]] = field(default_factory=list)
    audit_rows: list[audit.EventRow] = field(default_factory=list)
    payloads: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def shared(self, key: tuple[Any, ...], value: _T) -> _T:
        """`value`, or the equal one queued earlier under `key`: 50,000 users granted the same
        role by the same rule share one payload, which is serialized once."""
        found: _T = self.payloads.setdefault(key, value)
        return found

    def audit(
        self,
        action: str,
        user_id: UUID,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        self.audit_rows.append(audit.EventRow(action, "user", str(user_id), before, after))

    @property
    def size(self) -> int:
        return len(self.audit_rows)

    def clear(self) -> None:
        self.inserted.clear()
        self.updated.clear()
        self.deleted.clear()
        self.seat_events.clear()
        self.seats.clear()
        self.audit_rows.clear()
        self.payloads.clear()


class UserState(NamedTuple):
    """What recomputing access reads of a user: a row, not an ORM object (50,000 of them,
    hence a tuple, which is built several times faster than a frozen dataclass)."""

    id: UUID
    user_name: str
    is_active: bool
    deprovisioned_at: datetime | None
    seat: str
    pending_since: datetime | None


@dataclass(frozen=True, slots=True)
class AccessPlan:
    """One user's current assignments and the ones the rules now give them."""

    user: UserState
    groups: Sequence[licensing.GroupRef]
    current: Mapping[str, RoleAssignment]
    desired: Mapping[str, licensing.Assignment]
    is_active: bool

    def access_before(self, catalogue: licensing.RoleCatalogue) -> licensing.UserAccess:
        return licensing.UserAccess(
            str(self.user.id),
            self.user.is_active and self.user.deprovisioned_at is None,
            {p: a.role_key for p, a in self.current.items()},
            licensing.Seat(self.user.seat),
            self.user.pending_since is not None,
        )

    def access_desired(self, catalogue: licensing.RoleCatalogue) -> licensing.UserAccess:
        roles = [catalogue.get(a.role_key) for a in self.desired.values()]
        return licensing.UserAccess(
            str(self.user.id),
            self.is_active,
            {p: a.role_key for p, a in self.desired.items()},
            licensing.classify_seat(self.is_active, roles),
            False,
        )


def _parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _key(value: str | None) -> str | None:
    return value.lower() if value is not None else None


# Built once: every create runs it (building a statement costs about as much as running it).
# A create without an externalId binds NULL, which matches no one.
_USER_BY_NAME_OR_DELETED_EXTERNAL_ID = (
    select(User)
    .where(
        User.org_id == bindparam("org_id"),
        or_(
            User.user_name_key == bindparam("key"),
            and_(User.external_id == bindparam("external_id"), User.deprovisioned_at.is_not(None)),
        ),
    )
    .limit(2)
)


class ProvisioningService:
    """Operations on one organization's directory, on behalf of one actor."""

    def __init__(self, session: Session, organization: Organization | UUID, actor: Actor) -> None:
        self.session = session
        if isinstance(organization, Organization):
            self._organization: Organization | None = organization
            self.org_id = organization.id
        else:
            self._organization = None
            self.org_id = organization
        self.actor = actor
        self._rules: list[licensing.MappingRule] | None = None
        self._catalogue: licensing.RoleCatalogue | None = None
        self._resolver: licensing.RoleResolver | None = None
        self._org_locked = False
        self._contract_cache: tuple[tuple[Any, ...], licensing.Contract] | None = None
        # Set during a dry run: each affected user's access before and after.
        self._recording: dict[str, licensing.UserAccess] | None = None
        self._recorded_after: dict[str, licensing.UserAccess] = {}

    @property
    def organization(self) -> Organization:
        """The organization's row, read when first needed: a SCIM lookup never needs it."""
        if self._organization is None:
            found = self.session.get(Organization, self.org_id)
            if found is None:
                raise NotFoundError(f"organization {self.org_id} not found")
            self._organization = found
        return self._organization

    def _scoped(
        self,
        model: type[Scoped],
        row_id: str | UUID,
        label: str,
        keep: Callable[[Scoped], bool] | None = None,
        lock: bool = False,
    ) -> Scoped:
        """A row of this organization by id, or NotFoundError: another organization's rows
        are indistinguishable from missing ones. A row this transaction already loaded is
        not read again (a SCIM request checks the user, then changes it), unless `lock` asks
        for it locked (FOR NO KEY UPDATE) and read afresh."""
        parsed = row_id if isinstance(row_id, UUID) else _parse_uuid(row_id)
        row = None
        if parsed is not None:
            row = self.session.get(
                model,
                parsed,
                with_for_update={"key_share": True} if lock else None,
                populate_existing=lock,
            )
        if row is None or row.org_id != self.org_id or (keep is not None and not keep(row)):
            raise NotFoundError(f"{label} {row_id} not found")
        return row

    # ----------------------------------------------------------------- users

    def get_user(self, user_id: str | UUID) -> User:
        """A live (not deprovisioned) user of this organization, or NotFoundError."""
        return self._scoped(User, user_id, "user", lambda user: user.deprovisioned_at is None)

    def create_user(self, spec: UserSpec, source: UserSource = UserSource.SCIM) -> User:
        """Create a user, or relink a deprovisioned one with the same userName or externalId."""
        self._check_user_spec(spec)
        key = spec.user_name.lower()
        # One query finds both a holder of the userName and a deleted user to relink by
        # externalId; the userName match wins.
        candidates = self.session.scalars(
            _USER_BY_NAME_OR_DELETED_EXTERNAL_ID,
            {"org_id": self.org_id, "key": key, "external_id": spec.external_id},
        ).all()
        existing = next((u for u in candidates if u.user_name_key == key), None)
        if existing is not None and not existing.is_deprovisioned:
            raise ConflictError(f"userName {spec.user_name!r} is already taken")
        if existing is None and candidates:
            existing = candidates[0]
        if existing is not None:
            # RFC 7644 leaves re-creation open; we relink so the person keeps their history.
            before = self._user_snapshot(existing)
            existing.deprovisioned_at = None
            self._write_user(existing, spec)
            # A create: active unless the IdP says otherwise.
            existing.is_active = spec.is_active if spec.is_active is not None else True
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
        if self.organization.default_role_key is not None:
            # A new user belongs to no group yet: only a default role can give them access.
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
        if spec.is_active is not None and spec.is_active != was_active:
            # (De)activation changes the seat: the seat counter before this user's row.
            self._lock_seats_if_in_play()
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
            if not user.is_active:
                self._end_sessions(user.id)
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
        # Locks in the order every path takes them: group rows, the seat counter, then
        # memberships and users' rows (a member change locks its group, then grants; a
        # promotion holds the counter, then updates users). Any other order deadlocks
        # against a change of one of these groups or a promotion of this user
        # (test_parallel_deletes_and_member_changes_in_shared_groups_never_deadlock).
        # Where no one can hold a seat, no other path writes this user's row after locking
        # a group: the user goes first, and the groups (one may have 50,000 members, and
        # every delete of a member waits for its row) stay locked only for the commit.
        seats_in_play = self._seats_in_play()
        if seats_in_play:
            self._touch_groups(group_ids)
            self._lock_organization()
            self._delete_memberships(user.id, group_ids)
        user.is_active = False
        user.deprovisioned_at = utcnow()
        user.version += 1
        user.updated_at = user.deprovisioned_at
        after = self._user_snapshot(user) | {"groups_left": sorted(str(g) for g in group_ids)}
        self._audit("user.deleted", "user", user.id, before, after)
        self._end_sessions(user.id)
        self._recompute([user.id], reason="user_deleted")
        if not seats_in_play:
            self._touch_groups(group_ids)
            self._delete_memberships(user.id, group_ids)

    def _delete_memberships(self, user_id: UUID, group_ids: Sequence[UUID]) -> None:
        if group_ids:
            self.session.execute(delete(Membership).where(Membership.user_id == user_id))

    def _end_sessions(self, user_id: UUID) -> None:
        """A deprovisioned user's SSO sessions end now, whoever deprovisioned them."""
        self.session.execute(
            update(SsoSession)
            .where(SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )

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
        if spec.is_active is not None:
            user.is_active = spec.is_active
        elif is_new:
            user.is_active = True
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
        return self._scoped(Group, group_id, "group")

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
        # Locked first, as every path locks group rows before the organization's seat counter
        # (which granting a seat takes): the other order deadlocks against a member's delete.
        # Read under the lock, the version is never reused by two concurrent changes.
        group = self._scoped(Group, group_id, "group", lock=True)
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

    def lock_groups(self, group_ids: Iterable[str | UUID]) -> None:
        """Lock these groups of the organization in id order, ahead of a batch of changes to
        them in one transaction (SCIM /Bulk). Changed in the batch's order, they would be locked
        in that order and deadlock against a batch in another. Other ids are left to the
        changes themselves to refuse."""
        parsed = (i if isinstance(i, UUID) else _parse_uuid(i) for i in group_ids)
        ids = sorted({i for i in parsed if i is not None})
        if ids:
            self._lock_groups(Group.id.in_(ids))

    def _lock_groups(self, condition: ColumnElement[bool]) -> None:
        """Lock the organization's groups that match, in id order (FOR NO KEY UPDATE)."""
        self.session.execute(
            select(Group.id)
            .where(Group.org_id == self.org_id, condition)
            .order_by(Group.id)
            .with_for_update(key_share=True)
        )

    def _touch_groups(self, group_ids: Iterable[UUID]) -> None:
        ids = sorted(set(group_ids))
        if len(ids) > 1:
            # Lock in id order first: two deletes of users who share groups would otherwise
            # lock the same rows in different orders and deadlock. One row needs no order.
            self._lock_groups(Group.id.in_(ids))
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
            self._rules = [_rule(r) for r in rows]
        return self._rules

    def catalogue(self) -> licensing.RoleCatalogue:
        """The organization's roles: the built-ins plus its custom roles."""
        if self._catalogue is None:
            self._catalogue = licensing.RoleCatalogue(self._custom_roles())
        return self._catalogue

    def resolver(self) -> licensing.RoleResolver:
        """Roles from groups under the current rules, catalogue and default role."""
        rules, catalogue = self._load_rules(), self.catalogue()
        default_role = self.organization.default_role_key
        if self._resolver is None or not self._resolver.is_for(rules, catalogue, default_role):
            self._resolver = licensing.RoleResolver(rules, catalogue, default_role)
        return self._resolver

    def _contract(self) -> licensing.Contract:
        org = self.organization
        key = (
            org.paid_seat_tier,
            org.contract_starts_on,
            org.contract_ends_on,
            org.billing_terms,
            org.overage_policy,
        )
        if self._contract_cache is not None and self._contract_cache[0] == key:
            return self._contract_cache[1]
        contract = licensing.Contract(
            paid_seat_tier=org.paid_seat_tier,
            starts_on=org.contract_starts_on,
            ends_on=org.contract_ends_on,
            billing_terms=licensing.BillingTerms(org.billing_terms),
            policy=licensing.OveragePolicy(org.overage_policy),
        )
        self._contract_cache = (key, contract)
        return contract

    def _lock_organization(self) -> None:
        # Lock the organization row first: two concurrent IdP requests could otherwise both
        # take the last paid seat. FOR NO KEY UPDATE, because every audit, seat and role row
        # inserted before this point holds a KEY SHARE lock on the same row through its
        # foreign key, and FOR UPDATE would deadlock against those. SQLite's BEGIN IMMEDIATE
        # already serializes writers.
        if not self._org_locked:
            self.session.refresh(self.organization, with_for_update={"key_share": True})
            self._org_locked = True

    def _seats_in_play(self) -> bool:
        """Whether anyone in the organization can hold a seat: it has rules, a default role
        or a paid seat in use. Where no one can, there is no seat to race for."""
        org = self.organization
        return (
            bool(self._load_rules())
            or org.default_role_key is not None
            or (org.paid_seat_count > 0)
        )

    def _lock_seats_if_in_play(self) -> None:
        """Lock the seat counter unless no one can hold a seat: then deletes and
        deactivations need not wait for each other. A first rule created during such a
        delete is caught by `_write_seats`, which gives seats to live users only."""
        if self._seats_in_play():
            self._lock_organization()

    def _recompute(self, user_ids: Iterable[UUID], reason: str, guard: bool = True) -> None:
        """Recompute roles and seats of exactly these users, in this transaction.

        Grants of a change too large for the mass-grant guard are held for an admin; its
        revocations always apply at once.
        """
        ids = sorted(set(user_ids), key=attrgetter("int"))  # UUID order, sorted in C
        if not ids:
            return
        # Seats and pending marks change only under the seat counter's lock: take it before
        # reading them, or a promotion committed meanwhile goes unseen and the count drifts.
        self._lock_seats_if_in_play()
        plans = self._plan(ids)
        if guard:
            plans = self._guard(plans, reason)
        freed = False
        writes = AccessWrites()
        for plan in plans:
            freed = self._apply_access(plan, reason, writes) or freed
            if writes.size >= WRITE_BATCH:
                self._write_access(writes)
        self._write_access(writes)
        self.session.flush()
        if freed:
            self._promote_pending()

    def _plan(self, ids: Sequence[UUID]) -> list[AccessPlan]:
        """Each user's current and desired roles, loaded a batch at a time."""
        # Rules and roles are read only when someone is active: deprovisioning needs neither.
        resolver: licensing.RoleResolver | None = None
        plans: list[AccessPlan] = []
        refs: dict[UUID, licensing.GroupRef] = {}
        size = BATCH if len(ids) <= BATCH else PLAN_BATCH
        for chunk in _chunks(ids, size):
            users = self._user_states(chunk)
            if resolver is None and any(
                u.is_active and u.deprovisioned_at is None for u in users.values()
            ):
                resolver = self.resolver()
            groups: dict[UUID, list[licensing.GroupRef]] = defaultdict(list)
            if resolver is not None and resolver.rules:
                for user_id, group_id, external_id, display_name in self._rows(
                    select(Membership.user_id, Group.id, Group.external_id, Group.display_name)
                    .join(Group, Group.id == Membership.group_id)
                    .where(in_ids(self.session, Membership.user_id, chunk))
                ):
                    # One GroupRef per group, shared by its members.
                    ref = refs.get(group_id)
                    if ref is None:
                        ref = refs[group_id] = licensing.GroupRef(
                            str(group_id), external_id, display_name
                        )
                    groups[user_id].append(ref)
            current: dict[UUID, dict[str, RoleAssignment]] = defaultdict(dict)
            for assignment in self.session.scalars(
                select(RoleAssignment).where(in_ids(self.session, RoleAssignment.user_id, chunk))
            ):
                current[assignment.user_id][assignment.project_key] = assignment
            for user_id in chunk:
                user = users.get(user_id)
                if user is None:
                    continue
                is_active = user.is_active and user.deprovisioned_at is None
                user_groups = groups[user_id]
                desired = (
                    resolver.effective_roles(user_groups)
                    if is_active and resolver is not None
                    else {}
                )
                plans.append(AccessPlan(user, user_groups, current[user_id], desired, is_active))
        return plans

    def _user_states(self, ids: Sequence[UUID]) -> dict[UUID, UserState]:
        """What recomputing reads of these users, read now: under the seat counter's lock, not
        from objects this request loaded before taking it (a promotion may have come between).
        """
        return {
            row.id: UserState._make(row)
            for row in self._rows(
                select(*PLAN_COLUMNS).where(
                    in_ids(self.session, User.id, ids), User.org_id == self.org_id
                )
            )
        }

    def _rows(self, statement: Select[*_Ts]) -> Result[*_Ts]:
        """Rows of a query of plain columns, without the ORM's per-row processing (50,000
        rows in a rule change); the session is flushed first, as its own queries do."""
        self.session.flush()
        return self.session.connection().execute(statement)

    def _guard(self, plans: list[AccessPlan], reason: str) -> list[AccessPlan]:
        """Hold the grants of a change over the organization's mass-grant thresholds."""
        org = self.organization
        thresholds = licensing.GuardThresholds(
            max_new_paid_seats=org.guard_max_new_paid_seats,
            max_new_paid_share=org.guard_max_new_paid_share,
            max_new_project_admins=org.guard_max_new_project_admins,
        )
        # Skip the bookkeeping when no threshold can be crossed: a change cannot grant more
        # seats or admin roles than it has users.
        reach = len(plans)
        if (
            reach <= thresholds.max_new_paid_seats
            and reach <= thresholds.max_new_project_admins
            and (
                reach <= thresholds.share_floor
                or reach
                <= thresholds.max_new_paid_share * self._active_users_for_share(reach, thresholds)
            )
        ):
            return plans
        catalogue = self.catalogue()
        before = {str(p.user.id): p.access_before(catalogue) for p in plans}
        after = {str(p.user.id): p.access_desired(catalogue) for p in plans}
        split = licensing.split_change(before, after, catalogue)
        active = self._active_users_for_share(len(split.new_paid_seat_user_ids), thresholds)
        decision = licensing.evaluate_guard(split, active, thresholds)
        if not decision.is_held:
            return plans
        granted = sorted({c.user_id for c in split.grants} | set(split.new_paid_seat_user_ids))
        held = HeldChange(
            org_id=self.org_id,
            reason=reason,
            cause=f"{self.actor.kind}:{self.actor.label}",
            reasons=list(decision.reasons),
            user_ids=granted,
            new_paid_seats=decision.new_paid_seats,
            new_project_admins=decision.new_project_admins,
        )
        self.session.add(held)
        self.session.flush()
        self._audit(
            "change.held",
            "held_change",
            held.id,
            None,
            {"reason": reason, "reasons": list(decision.reasons), "users": len(granted)},
        )
        if self._recording is not None:
            # A dry run shows the grants themselves; the held-change row says they would wait.
            return plans
        kept: list[AccessPlan] = []
        for plan in plans:
            safe = split.assignments_after_revocations(before[str(plan.user.id)])
            desired = {
                project: plan.current[project].as_assignment()
                if project in plan.current and plan.current[project].role_key == role_key
                else plan.desired.get(project) or licensing.Assignment(project, role_key, ())
                for project, role_key in safe.items()
            }
            kept.append(replace(plan, desired=desired))
        return kept

    def _active_users_for_share(self, new_paid: int, thresholds: licensing.GuardThresholds) -> int:
        """Active users, counted only as far as the share threshold can tell.

        The share rule holds a change when new_paid / active > the share limit, that is when
        fewer than new_paid / limit users are active: counting up to that bound answers it
        exactly, so a change of 50 members reads at most a few hundred rows, not the whole
        directory. Below the bound the count is exact (the held change's reason shows it).
        """
        if new_paid <= thresholds.share_floor:
            return 0  # the share rule cannot apply; evaluate_guard does not look at the count
        share = thresholds.max_new_paid_share
        bound = int(new_paid / share) + 1 if share > 0 else None
        live = (
            select(User.id)
            .where(
                User.org_id == self.org_id,
                User.is_active.is_(True),
                User.deprovisioned_at.is_(None),
            )
            .limit(bound)
            .subquery()
        )
        return self.session.scalar(select(func.count()).select_from(live)) or 0

    def _apply_access(self, plan: AccessPlan, reason: str, writes: AccessWrites) -> bool:
        """Decide one user's assignments and seat and queue the rows that record them.

        Returns True when a paid seat was released. Rows are written in bulk by
        `_write_access`: a rule change can touch 50,000 users in one transaction.
        """
        user, current, desired = plan.user, plan.current, plan.desired
        # A user losing all access needs no role lookups: spare reading the custom roles.
        catalogue = (
            self.catalogue() if desired or self._recording is not None else BUILT_IN_CATALOGUE
        )
        wants_paid = any(catalogue.get(a.role_key).is_paid for a in desired.values())
        holds_paid = user.seat == SeatKind.PAID
        if wants_paid or holds_paid:
            self._lock_organization()
        contract = self._contract()
        # The free fallback only matters when `hold` would keep this user off a paid seat.
        may_hold = (
            wants_paid
            and not holds_paid
            and contract.policy is licensing.OveragePolicy.HOLD
            and self.organization.paid_seat_count + 1 > contract.paid_seat_tier
        )
        decision = licensing.decide_seat(
            desired,
            self.resolver().free_fallback_roles(plan.groups) if may_hold else {},
            catalogue,
            is_active=plan.is_active,
            holds_paid_seat=holds_paid,
            paid_seats_in_use=self.organization.paid_seat_count - (1 if holds_paid else 0),
            contract=contract,
        )
        if self._recording is not None:
            self._recording.setdefault(str(user.id), plan.access_before(catalogue))
        now = utcnow()
        for project, assignment in current.items():
            if project not in decision.assignments:
                writes.deleted.append(assignment)
                writes.audit(
                    "role.revoked",
                    user.id,
                    {
                        "project": project,
                        "role": assignment.role_key,
                        "sources": assignment.sources,
                    },
                    writes.shared(("revoked", reason), {"reason": reason}),
                )
        for project, wanted in decision.assignments.items():
            sources = writes.shared(
                ("sources", wanted.sources),
                [{"rule_id": s.rule_id, "group_id": s.group_id} for s in wanted.sources],
            )
            existing = current.get(project)
            after = writes.shared(
                ("assigned", project, wanted.role_key, wanted.sources, reason),
                {"project": project, "role": wanted.role_key, "sources": sources, "reason": reason},
            )
            if existing is None:
                writes.inserted.append(
                    {
                        "org_id": self.org_id,
                        "user_id": user.id,
                        "project_key": project,
                        "role_key": wanted.role_key,
                        "sources": sources,
                        "granted_at": now,
                    }
                )
                writes.audit("role.granted", user.id, None, after)
            elif existing.role_key != wanted.role_key or existing.sources != sources:
                before = {
                    "project": project,
                    "role": existing.role_key,
                    "sources": existing.sources,
                }
                writes.updated.append(
                    (
                        existing,
                        {
                            "id": existing.id,
                            "role_key": wanted.role_key,
                            "sources": sources,
                            "granted_at": now
                            if existing.role_key != wanted.role_key
                            else existing.granted_at,
                        },
                    )
                )
                writes.audit("role.changed", user.id, before, after)
        new_seat = SeatKind(decision.seat.value)
        was_pending = user.pending_since is not None
        pending_since = user.pending_since
        if decision.is_pending and not was_pending:
            pending_since = now
        elif not decision.is_pending and was_pending:
            pending_since = None
        if new_seat != user.seat or pending_since != user.pending_since:
            writes.seats.append((user, new_seat, pending_since))
        if new_seat != user.seat or decision.is_pending != was_pending:
            writes.seat_events.append(
                {
                    "org_id": self.org_id,
                    "user_id": user.id,
                    "from_seat": user.seat,
                    "to_seat": new_seat,
                    "is_pending": decision.is_pending,
                    "reason": reason,
                    "cause": f"{self.actor.kind}:{self.actor.label}",
                    "at": now,
                }
            )
            writes.audit(
                "seat.changed",
                user.id,
                writes.shared(
                    ("seat before", user.seat, was_pending),
                    {"seat": user.seat, "pending": was_pending},
                ),
                writes.shared(
                    ("seat after", new_seat, decision.is_pending, decision.is_overage, reason),
                    {
                        "seat": new_seat.value,
                        "pending": decision.is_pending,
                        "overage": decision.is_overage,
                        "reason": reason,
                    },
                ),
            )
        released = holds_paid and new_seat != SeatKind.PAID
        if new_seat == SeatKind.PAID and not holds_paid:
            self.organization.paid_seat_count += 1
        elif released:
            self.organization.paid_seat_count -= 1
        if self._recording is not None:
            self._recorded_after[str(user.id)] = licensing.UserAccess(
                str(user.id),
                plan.is_active,
                {p: a.role_key for p, a in decision.assignments.items()},
                decision.seat,
                decision.is_pending,
            )
        return released

    def _write_seats(self, seats: Sequence[tuple[UserState, SeatKind, datetime | None]]) -> None:
        """Set users' seats with one UPDATE per distinct value, not one per user."""
        by_value: dict[tuple[str, datetime | None], list[UserState]] = defaultdict(list)
        for user, new_seat, new_pending_since in seats:
            by_value[(new_seat.value, new_pending_since)].append(user)
        for (seat, pending_since), users in by_value.items():
            for chunk in _chunks(users, WRITE_BATCH):
                statement = update(User).where(in_ids(self.session, User.id, [u.id for u in chunk]))
                if seat != SeatKind.NONE:
                    # A seat goes to live users only: one deactivated or deleted by a request
                    # that did not wait for the seat counter (see _lock_seats_if_in_play)
                    # makes this change fail rather than seat someone who has left.
                    statement = statement.where(
                        User.is_active.is_(True), User.deprovisioned_at.is_(None)
                    )
                result = cast(
                    CursorResult[Any],
                    self.session.execute(
                        statement.values(seat=seat, pending_since=pending_since).execution_options(
                            synchronize_session=False
                        ),
                    ),
                )
                if seat != SeatKind.NONE and result.rowcount != len(chunk):
                    raise ConflictError(
                        "users were deactivated or deleted while this change was applied; try again"
                    )
                for user in chunk:
                    # The row is written; keep a loaded object true without dirtying it.
                    loaded = self.session.identity_map.get(identity_key(User, user.id))
                    if loaded is not None:
                        set_committed_value(loaded, "seat", seat)
                        set_committed_value(loaded, "pending_since", pending_since)

    def _write_access(self, writes: AccessWrites) -> None:
        """Write the queued assignment, seat-ledger and audit rows with a few bulk statements."""
        if writes.deleted:
            ids = [a.id for a in writes.deleted]
            for chunk in _chunks(ids, BATCH):
                self.session.execute(delete(RoleAssignment).where(RoleAssignment.id.in_(chunk)))
            for assignment in writes.deleted:
                self.session.expunge(assignment)
        if writes.updated:
            self.session.execute(update(RoleAssignment), [row for _, row in writes.updated])
            for assignment, _ in writes.updated:
                self.session.expire(assignment)
        bulk_insert(self.session, RoleAssignment, writes.inserted)
        bulk_insert(self.session, SeatEvent, writes.seat_events)
        self._write_seats(writes.seats)
        if writes.audit_rows:
            audit.append_many(self.session, self.org_id, self.actor, writes.audit_rows)
        writes.clear()

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

    # ------------------------------------------------------------ SSO login

    def login(self, connection: IdpConnection, claims: LoginClaims) -> User:
        """Accept an SSO login: find or just-in-time create the user, sync groups, check roles."""
        if connection.org_id != self.org_id or not connection.is_enabled:
            raise LoginRefusedError("this sign-in connection is not available", "connection")
        identity = self.session.scalar(
            select(LoginIdentity).where(
                LoginIdentity.connection_id == connection.id,
                LoginIdentity.subject == claims.subject,
            )
        )
        user = self.session.get(User, identity.user_id) if identity is not None else None
        is_linked = identity is not None and user is not None
        if not is_linked:
            user = self._link_by_email(connection, claims)
        synced = claims.groups if self.organization.sso_manages_groups else None
        if synced is not None and not claims.groups_overage:
            self._lock_login_groups(user, synced)
        # (`identity is None or user is None` says no more than `not is_linked`, to mypy.)
        if not is_linked or identity is None or user is None:
            if user is None:
                user = self._create_from_login(connection, claims)
            identity = LoginIdentity(
                connection_id=connection.id, subject=claims.subject, user_id=user.id
            )
            self.session.add(identity)
            self._audit(
                "login.linked",
                "user",
                user.id,
                None,
                {"connection": connection.name, "subject": claims.subject},
            )
        if user.deprovisioned_at is not None or not user.is_active:
            raise LoginRefusedError("your account is deactivated", "user_deactivated")
        if connection.is_jit_enabled:
            self._update_from_login(user, claims)
        if self.organization.sso_manages_groups:
            if claims.groups_overage:
                # Entra ID replaced the claim by a link: that is "too many to list", never
                # "no groups"; memberships stay as they are until SCIM pushes them.
                user.groups_overage_at = utcnow()
                self._audit(
                    "login.groups_overage", "user", user.id, None, {"connection": connection.name}
                )
            elif claims.groups is not None:
                user.groups_overage_at = None
                self._set_sso_memberships(user, claims.groups)
        # Empty sources mark the organization's default role: under "refuse" only a role from
        # a mapping rule lets the user in; under "default" the default role does too.
        sources = self.session.scalars(
            select(RoleAssignment.sources).where(RoleAssignment.user_id == user.id)
        ).all()
        allowed = any(sources) or (
            bool(sources) and self.organization.sso_no_role_policy == "default"
        )
        if not allowed:
            raise LoginRefusedError("you have no role in Blue; ask your administrator", "no_role")
        now = utcnow()
        user.last_login_at = now
        identity.last_login_at = now
        self._audit(
            "login.accepted",
            "user",
            user.id,
            None,
            {"connection": connection.name, "protocol": connection.protocol},
        )
        self.session.flush()
        return user

    def record_refused_login(
        self, connection: IdpConnection | None, reason: str, detail: str
    ) -> None:
        """Audit a refused login (in its own transaction: the refused one rolled back)."""
        self._audit(
            "login.refused",
            "connection",
            connection.id if connection is not None else None,
            None,
            {
                "reason": reason,
                "detail": detail,
                "connection": connection.name if connection is not None else None,
            },
        )

    def _link_by_email(self, connection: IdpConnection, claims: LoginClaims) -> User | None:
        """An existing user linked by email: only at their first login on this connection,
        and only for a verified address in one of the organization's verified domains."""
        if not claims.email or not claims.email_verified or "@" not in claims.email:
            return None
        domain = claims.email.rsplit("@", 1)[1].lower()
        verified = self.session.scalar(
            select(OrgDomain.domain).where(
                OrgDomain.org_id == self.org_id, OrgDomain.domain == domain
            )
        )
        if verified is None:
            return None
        email = claims.email.lower()
        candidate = self.session.scalar(
            select(User)
            .where(
                User.org_id == self.org_id,
                or_(User.user_name_key == email, User.primary_email == email),
            )
            .limit(1)
        )
        if candidate is None:
            return None
        already = self.session.scalar(
            select(LoginIdentity.id).where(
                LoginIdentity.user_id == candidate.id,
                LoginIdentity.connection_id == connection.id,
            )
        )
        return candidate if already is None else None

    def _create_from_login(self, connection: IdpConnection, claims: LoginClaims) -> User:
        if not connection.is_jit_enabled:
            raise LoginRefusedError(
                "your account has not been provisioned in Blue yet", "not_provisioned"
            )
        user_name = claims.email or claims.subject
        taken = self.session.scalar(
            select(User).where(User.org_id == self.org_id, User.user_name_key == user_name.lower())
        )
        if taken is not None:
            # A deleted user is not brought back by a login, and a live one is reached only
            # through its own identity or a verified-domain email link.
            reason = "user_deactivated" if taken.deprovisioned_at else "identity_conflict"
            raise LoginRefusedError("this account cannot sign in here", reason)
        emails = [{"value": claims.email, "type": "work", "primary": True}] if claims.email else []
        spec = UserSpec(
            user_name=user_name,
            attributes=_login_attributes(claims),
            multi_values={"emails": emails},
        )
        return self.create_user(spec, source=UserSource.SSO)

    def _update_from_login(self, user: User, claims: LoginClaims) -> None:
        before = self._user_snapshot(user)
        for column, value in _login_attributes(claims).items():
            if value is not None:
                setattr(user, column, value)
        user.display_name_key = _key(user.display_name)
        after = self._user_snapshot(user)
        if after != before:
            user.version += 1
            user.updated_at = utcnow()
            self._audit("user.updated", "user", user.id, *_changed(before, after))

    def _lock_login_groups(self, user: User | None, values: Sequence[str]) -> None:
        """Lock, in id order, the existing groups a login's sync may change: those it names and
        the user's own SSO groups. This comes before the login writes anything (the user's row,
        a just-in-time user and their seat): a SCIM member change locks its group before the
        users' rows, and the other order would deadlock against it."""
        names = [v.strip() for v in values if v and v.strip()]
        named = or_(
            Group.external_id.in_(names), Group.display_name_key.in_([n.lower() for n in names])
        )
        if user is not None:
            own = select(Membership.group_id).where(
                Membership.user_id == user.id, Membership.source == UserSource.SSO
            )
            named = or_(named, Group.id.in_(own))
        self._lock_groups(named)

    def _set_sso_memberships(self, user: User, values: Sequence[str]) -> None:
        """The login's groups replace the user's SSO-sourced memberships (SCIM ones stay)."""
        wanted: dict[UUID, str] = {}
        for value in dict.fromkeys(v.strip() for v in values if v and v.strip()):
            group = self.session.scalar(
                select(Group)
                .where(
                    Group.org_id == self.org_id,
                    or_(Group.external_id == value, Group.display_name_key == value.lower()),
                )
                .limit(1)
            )
            if group is None:
                group = self.create_group(
                    GroupSpec(
                        display_name=value,
                        external_id=value if _parse_uuid(value) is not None else None,
                    )
                )
            wanted[group.id] = value
        current = {
            m.group_id: m
            for m in self.session.scalars(select(Membership).where(Membership.user_id == user.id))
        }
        added = [gid for gid in wanted if gid not in current]
        removed = [
            gid for gid, m in current.items() if m.source == UserSource.SSO and gid not in wanted
        ]
        now = utcnow()
        for group_id in added:
            self.session.add(
                Membership(
                    group_id=group_id,
                    user_id=user.id,
                    org_id=self.org_id,
                    source=UserSource.SSO,
                    created_at=now,
                )
            )
            self._audit(
                "membership.added",
                "group",
                group_id,
                None,
                {"user_id": str(user.id), "source": "sso"},
            )
        for group_id in removed:
            self.session.delete(current[group_id])
            self._audit(
                "membership.removed",
                "group",
                group_id,
                {"user_id": str(user.id), "source": "sso"},
                None,
            )
        if added or removed:
            self.session.flush()
            self._touch_groups([*added, *removed])
            self._recompute([user.id], reason="sso_groups_changed")

    # ------------------------------------------------------- SSO settings

    def create_connection(
        self,
        name: str,
        protocol: str,
        settings: Mapping[str, Any],
        encrypted_secrets: Mapping[str, str],
        is_jit_enabled: bool = True,
    ) -> IdpConnection:
        """Add an IdP connection; secrets arrive already encrypted (app/crypto.py)."""
        name = name.strip()
        if protocol not in ("saml", "oidc"):
            raise InvalidChangeError("protocol must be saml or oidc")
        self._check_connection_name(name)
        connection = IdpConnection(
            org_id=self.org_id,
            name=name,
            protocol=protocol,
            settings=dict(settings),
            encrypted_secrets=dict(encrypted_secrets),
            is_jit_enabled=is_jit_enabled,
        )
        self.session.add(connection)
        self.session.flush()
        self._audit(
            "connection.created",
            "connection",
            connection.id,
            None,
            {
                "name": name,
                "protocol": protocol,
                "settings": dict(settings),
                "jit": is_jit_enabled,
                "secrets": sorted(encrypted_secrets),
            },
        )
        return connection

    def _check_connection_name(self, name: str) -> None:
        if not name:
            raise InvalidChangeError("a connection needs a name")
        if len(name) > 120:
            raise InvalidChangeError("a connection name has at most 120 characters")
        taken = self.session.scalar(
            select(IdpConnection.id).where(
                IdpConnection.org_id == self.org_id, IdpConnection.name == name
            )
        )
        if taken is not None:
            raise ConflictError(f"a connection named {name!r} already exists")

    def get_connection(self, connection_id: str | UUID) -> IdpConnection:
        """A connection of this organization, or NotFoundError."""
        return self._scoped(IdpConnection, connection_id, "connection")

    def update_connection(
        self,
        connection_id: str | UUID,
        settings: Mapping[str, Any] | None = None,
        encrypted_secrets: Mapping[str, str] | None = None,
        is_enabled: bool | None = None,
        is_jit_enabled: bool | None = None,
        name: str | None = None,
    ) -> IdpConnection:
        """Change a connection's settings, secrets, name or switches."""
        connection = self.get_connection(connection_id)
        before = _connection_snapshot(connection)
        if name is not None and name.strip() and name.strip() != connection.name:
            self._check_connection_name(name.strip())
        if settings is not None:
            connection.settings = {**connection.settings, **settings}
        if encrypted_secrets is not None:
            rotated = sorted(
                key
                for key, value in encrypted_secrets.items()
                if connection.encrypted_secrets.get(key) != value
            )
            connection.encrypted_secrets = {**connection.encrypted_secrets, **encrypted_secrets}
            if rotated:
                # Which secrets changed, never their values (encrypted or not).
                self._audit(
                    "connection.secret_rotated",
                    "connection",
                    connection.id,
                    None,
                    {"secrets": rotated},
                )
        if is_enabled is not None:
            connection.is_enabled = is_enabled
        if is_jit_enabled is not None:
            connection.is_jit_enabled = is_jit_enabled
        if name is not None and name.strip():
            connection.name = name.strip()
        after = _connection_snapshot(connection)
        if after != before:
            connection.updated_at = utcnow()
            self._audit("connection.updated", "connection", connection.id, *_changed(before, after))
        return connection

    def delete_connection(self, connection_id: str | UUID) -> None:
        """Remove a connection; users keep their records, its logins stop working."""
        connection = self.get_connection(connection_id)
        self._audit(
            "connection.deleted",
            "connection",
            connection.id,
            _connection_snapshot(connection),
            None,
        )
        self.session.execute(
            delete(LoginIdentity).where(LoginIdentity.connection_id == connection.id)
        )
        self.session.execute(
            update(SsoSession)
            .where(SsoSession.connection_id == connection.id, SsoSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )
        self.session.delete(connection)
        self.session.flush()

    def set_sso_options(
        self,
        blue_url: str | None = None,
        manages_groups: bool | None = None,
        no_role_policy: str | None = None,
    ) -> Organization:
        """Hand-off target and how SSO treats groups and role-less users."""
        org = self.organization
        before = {
            "blue_url": org.blue_url,
            "sso_manages_groups": org.sso_manages_groups,
            "sso_no_role_policy": org.sso_no_role_policy,
        }
        if blue_url is not None:
            if not blue_url.startswith(("https://", "http://")):
                raise InvalidChangeError("the Blue URL must be an absolute http(s) URL")
            org.blue_url = blue_url.rstrip("/")
        if manages_groups is not None:
            org.sso_manages_groups = manages_groups
        if no_role_policy is not None:
            if no_role_policy not in ("refuse", "default"):
                raise InvalidChangeError("no-role policy must be refuse or default")
            org.sso_no_role_policy = no_role_policy
        after = {
            "blue_url": org.blue_url,
            "sso_manages_groups": org.sso_manages_groups,
            "sso_no_role_policy": org.sso_no_role_policy,
        }
        if after != before:
            self._audit("org.sso_changed", "organization", self.org_id, *_changed(before, after))
        return org

    def add_domain(self, domain: str) -> OrgDomain:
        """Record a verified email domain of the organization."""
        domain = domain.strip().lower().rstrip(".")
        if not DOMAIN.match(domain):
            raise InvalidChangeError(f"{domain!r} is not a domain name")
        existing = self.session.get(OrgDomain, domain)
        if existing is not None:
            if existing.org_id == self.org_id:
                return existing
            raise ConflictError(f"{domain} belongs to another organization")
        row = OrgDomain(domain=domain, org_id=self.org_id)
        self.session.add(row)
        self.session.flush()
        self._audit("org.domain_added", "organization", self.org_id, None, {"domain": domain})
        return row

    def remove_domain(self, domain: str) -> None:
        """Forget a verified domain."""
        row = self.session.get(OrgDomain, domain.strip().lower())
        if row is None or row.org_id != self.org_id:
            raise NotFoundError(f"domain {domain} not found")
        self.session.delete(row)
        self._audit("org.domain_removed", "organization", self.org_id, {"domain": row.domain}, None)

    # ------------------------------------------------ projects and roles

    def create_project(self, key: str, name: str) -> Project:
        """Add a Blue project that rules may target."""
        if not PROJECT_KEY.match(key):
            raise InvalidChangeError(
                f"project key {key!r} must be 1-64 letters, digits, '-', '_' or '.'"
            )
        if self._find_project(key) is not None:
            raise ConflictError(f"project {key!r} already exists")
        project = Project(org_id=self.org_id, key=key, name=name.strip() or key)
        self.session.add(project)
        self.session.flush()
        self._audit(
            "project.created", "project", project.id, None, {"key": key, "name": project.name}
        )
        return project

    def rename_project(self, key: str, name: str) -> Project:
        """Change a project's display name."""
        project = self._get_project(key)
        before = {"name": project.name}
        project.name = name.strip() or key
        if project.name != before["name"]:
            self._audit("project.updated", "project", project.id, before, {"name": project.name})
        return project

    def delete_project(self, key: str) -> None:
        """Remove a project no rule targets any more."""
        project = self._get_project(key)
        if any(rule.project == key for rule in self._load_rules()):
            raise ConflictError(f"project {key!r} is used by mapping rules; delete them first")
        self._audit("project.deleted", "project", project.id, {"key": key}, None)
        self.session.delete(project)

    def _find_project(self, key: str) -> Project | None:
        return self.session.scalar(
            select(Project).where(Project.org_id == self.org_id, Project.key == key)
        )

    def _get_project(self, key: str) -> Project:
        project = self._find_project(key)
        if project is None:
            raise NotFoundError(f"project {key!r} not found")
        return project

    def create_custom_role(
        self,
        slug: str,
        name: str,
        rank: int,
        description: str = "",
        permissions: Sequence[str] = (),
    ) -> CustomRole:
        """Add a custom user role (always paid), ranked among the built-in roles."""
        role = self._checked_role(slug, name, rank, description, permissions)
        row = CustomRole(
            org_id=self.org_id,
            key=role.key,
            name=role.name,
            description=role.description,
            permissions=list(role.permissions),
            rank=role.rank,
        )
        self.session.add(row)
        self.session.flush()
        self._catalogue = None
        self._audit("custom_role.created", "custom_role", row.id, None, _role_snapshot(row))
        return row

    def update_custom_role(
        self,
        key: str,
        name: str | None = None,
        rank: int | None = None,
        description: str | None = None,
        permissions: Sequence[str] | None = None,
    ) -> CustomRole:
        """Change a custom role; a new rank re-resolves everyone its rules reach."""
        row = self._get_custom_role(key)
        before = _role_snapshot(row)
        role = self._checked_role(
            row.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
            name if name is not None else row.name,
            rank if rank is not None else row.rank,
            description if description is not None else row.description,
            permissions if permissions is not None else row.permissions,
            replacing=row.key,
        )
        row.name, row.rank = role.name, role.rank
        row.description, row.permissions = role.description, list(role.permissions)
        self._catalogue = None
        after = _role_snapshot(row)
        if after != before:
            self._audit("custom_role.updated", "custom_role", row.id, *_changed(before, after))
        if before["rank"] != after["rank"]:
            rules = [r for r in self._load_rules() if r.role_key == row.key]
            self._recompute(self._users_matching(rules), reason="custom_role_changed")
        return row

    def delete_custom_role(self, key: str) -> None:
        """Remove a custom role that no rule and no default refers to."""
        key = self._custom_key(key)
        row = self._get_custom_role(key)
        if any(rule.role_key == key for rule in self._load_rules()):
            raise ConflictError(f"custom role {key!r} is used by mapping rules; delete them first")
        if self.organization.default_role_key == key:
            raise ConflictError(f"custom role {key!r} is the default role; change that first")
        self._audit("custom_role.deleted", "custom_role", row.id, _role_snapshot(row), None)
        self.session.delete(row)
        self._catalogue = None

    def _checked_role(
        self,
        slug: str,
        name: str,
        rank: int,
        description: str,
        permissions: Sequence[str],
        replacing: str | None = None,
    ) -> licensing.CustomRole:
        try:
            role = licensing.CustomRole(
                slug=slug,
                name=name,
                rank=rank,
                description=description,
                permissions=tuple(permissions),
            )
            others = [r for r in self._custom_roles() if r.key != replacing]
            licensing.RoleCatalogue([*others, role])
        except licensing.LicensingError as error:
            raise InvalidChangeError(str(error)) from None
        return role

    def _custom_roles(self) -> list[licensing.CustomRole]:
        rows = self.session.scalars(select(CustomRole).where(CustomRole.org_id == self.org_id))
        return [
            licensing.CustomRole(
                slug=r.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
                name=r.name,
                description=r.description,
                permissions=tuple(r.permissions),
                rank=r.rank,
            )
            for r in rows
        ]

    @staticmethod
    def _custom_key(key: str) -> str:
        """`lead` and `custom:lead` name the same custom role."""
        prefix = licensing.CUSTOM_KEY_PREFIX
        return key if key.startswith(prefix) else prefix + key

    def _get_custom_role(self, key: str) -> CustomRole:
        key = self._custom_key(key)
        row = self.session.scalar(
            select(CustomRole).where(CustomRole.org_id == self.org_id, CustomRole.key == key)
        )
        if row is None:
            raise NotFoundError(f"custom role {key!r} not found")
        return row

    def role_key(self, role: str) -> str:
        """A role given by key or by (case-insensitive) name, as its key."""
        catalogue = self.catalogue()
        found = catalogue.find(role)
        if found is None:
            try:
                found = catalogue.by_name(role)
            except licensing.LicensingError:
                names = ", ".join(r.name for r in catalogue.roles)
                raise InvalidChangeError(f"unknown role {role!r}; roles are: {names}") from None
        return found.key

    # ------------------------------------------------------- mapping rules

    def create_rule(self, spec: RuleSpec) -> MappingRule:
        """Add a mapping rule and give its groups' members their new roles."""
        self._check_rule(spec)
        row = MappingRule(org_id=self.org_id)
        self._write_rule(row, spec)
        self.session.add(row)
        self.session.flush()
        self._rules = None
        self._audit("rule.created", "rule", row.id, None, _rule_snapshot(row))
        self._recompute(self._users_matching([_rule(row)]), reason="rule_created")
        return row

    def update_rule(self, rule_id: str | UUID, spec: RuleSpec) -> MappingRule:
        """Change a rule; users matched before or after are re-resolved."""
        row = self._get_rule(rule_id)
        self._check_rule(spec)
        old = _rule(row)
        before = _rule_snapshot(row)
        self._write_rule(row, spec)
        self._rules = None
        after = _rule_snapshot(row)
        if after == before:
            return row
        self._audit("rule.updated", "rule", row.id, *_changed(before, after))
        self._recompute(self._users_matching([old, _rule(row)]), reason="rule_changed")
        return row

    def delete_rule(self, rule_id: str | UUID) -> None:
        """Remove a rule; its users lose what only it granted, at once."""
        row = self._get_rule(rule_id)
        old = _rule(row)
        self._audit("rule.deleted", "rule", row.id, _rule_snapshot(row), None)
        self.session.delete(row)
        self.session.flush()
        self._rules = None
        self._recompute(self._users_matching([old]), reason="rule_deleted")

    def _check_rule(self, spec: RuleSpec) -> None:
        try:
            licensing.GroupMatch(spec.match)
        except ValueError:
            kinds = ", ".join(m.value for m in licensing.GroupMatch)
            raise InvalidChangeError(f"match must be one of: {kinds}") from None
        if not spec.group_value.strip():
            raise InvalidChangeError("the rule needs a group")
        if self.catalogue().find(spec.role_key) is None:
            raise InvalidChangeError(f"unknown role {spec.role_key!r}")
        if (
            spec.project_key != licensing.ALL_PROJECTS
            and self._find_project(spec.project_key) is None
        ):
            raise InvalidChangeError(
                f"unknown project {spec.project_key!r}; create it first or use '*'"
            )

    @staticmethod
    def _write_rule(row: MappingRule, spec: RuleSpec) -> None:
        row.match = spec.match
        row.group_value = spec.group_value.strip()
        row.group_key = (
            row.group_value.lower()
            if spec.match == licensing.GroupMatch.DISPLAY_NAME
            else row.group_value
        )
        row.role_key = spec.role_key
        row.project_key = spec.project_key
        row.priority = spec.priority

    def _get_rule(self, rule_id: str | UUID) -> MappingRule:
        return self._scoped(MappingRule, rule_id, "mapping rule")

    def _users_matching(self, rules: Iterable[licensing.MappingRule]) -> list[UUID]:
        """Members of every group these rules select: the users a rule change can affect."""
        conditions = []
        for rule in rules:
            if rule.match is licensing.GroupMatch.ID:
                parsed = _parse_uuid(rule.group_value)
                if parsed is not None:
                    conditions.append(Group.id == parsed)
            elif rule.match is licensing.GroupMatch.EXTERNAL_ID:
                conditions.append(Group.external_id == rule.group_value)
            else:
                conditions.append(Group.display_name_key == rule.group_value.lower())
        if not conditions:
            return []
        group_ids = select(Group.id).where(Group.org_id == self.org_id, or_(*conditions))
        return list(
            self.session.scalars(
                select(Membership.user_id).where(Membership.group_id.in_(group_ids)).distinct()
            )
        )

    # ------------------------------------------------ organization settings

    def set_default_role(self, role_key: str | None) -> None:
        """The role for users in no mapped group (None: no role)."""
        if role_key is not None and self.catalogue().find(role_key) is None:
            raise InvalidChangeError(f"unknown role {role_key!r}")
        before = self.organization.default_role_key
        if before == role_key:
            return
        self.organization.default_role_key = role_key
        self._audit(
            "org.default_role_changed",
            "organization",
            self.org_id,
            {"default_role": before},
            {"default_role": role_key},
        )
        # Only users whom no rule reaches can be affected.
        matched = set(self._users_matching(self._load_rules()))
        live = self.session.scalars(
            select(User.id).where(User.org_id == self.org_id, User.deprovisioned_at.is_(None))
        )
        self._recompute([u for u in live if u not in matched], reason="default_role_changed")

    def set_contract(self, spec: ContractSpec) -> Organization:
        """Change the contract; a larger tier (or `allow`) promotes pending users at once."""
        org = self.organization
        try:
            licensing.Contract(
                paid_seat_tier=spec.paid_seat_tier,
                starts_on=spec.starts_on,
                ends_on=spec.ends_on,
                billing_terms=licensing.BillingTerms(spec.billing_terms),
                policy=licensing.OveragePolicy(spec.policy),
            )
        except (licensing.LicensingError, ValueError) as error:
            raise InvalidChangeError(str(error)) from None
        self._lock_organization()
        before = _contract_snapshot(org)
        org.paid_seat_tier = spec.paid_seat_tier
        org.overage_policy = spec.policy
        org.billing_terms = spec.billing_terms
        org.contract_starts_on = spec.starts_on
        org.contract_ends_on = spec.ends_on
        after = _contract_snapshot(org)
        if after != before:
            self._audit(
                "org.contract_changed", "organization", self.org_id, *_changed(before, after)
            )
        if org.overage_policy == licensing.OveragePolicy.ALLOW:
            waiting = self.session.scalars(
                select(User.id).where(User.org_id == self.org_id, User.pending_since.is_not(None))
            ).all()
            self._recompute(waiting, reason="contract_changed")
        else:
            self._promote_pending()
        return org

    def set_guard_thresholds(
        self, max_new_paid_seats: int, max_new_paid_share: float, max_new_project_admins: int
    ) -> None:
        """Configure the mass-grant guard."""
        try:
            licensing.GuardThresholds(
                max_new_paid_seats, max_new_paid_share, max_new_project_admins
            )
        except licensing.LicensingError as error:
            raise InvalidChangeError(str(error)) from None
        org = self.organization
        before = _guard_snapshot(org)
        org.guard_max_new_paid_seats = max_new_paid_seats
        org.guard_max_new_paid_share = max_new_paid_share
        org.guard_max_new_project_admins = max_new_project_admins
        after = _guard_snapshot(org)
        if after != before:
            self._audit("org.guard_changed", "organization", self.org_id, before, after)

    # ------------------------------------------------ held changes, dry run

    def confirm_held(self, held_id: str | UUID) -> HeldChange:
        """Apply a held change's grants, as the users' groups and rules stand now."""
        held = self._get_held(held_id)
        held.status, held.decided_at = "confirmed", utcnow()
        held.decided_by = f"{self.actor.kind}:{self.actor.label}"
        self._audit(
            "change.confirmed", "held_change", held.id, {"status": "held"}, {"status": "confirmed"}
        )
        self._recompute(
            [UUID(u) for u in held.user_ids], reason="held_change_confirmed", guard=False
        )
        return held

    def discard_held(self, held_id: str | UUID) -> HeldChange:
        """Drop a held change's grants; the users keep the access they had."""
        held = self._get_held(held_id)
        held.status, held.decided_at = "discarded", utcnow()
        held.decided_by = f"{self.actor.kind}:{self.actor.label}"
        self._audit(
            "change.discarded", "held_change", held.id, {"status": "held"}, {"status": "discarded"}
        )
        return held

    def _get_held(self, held_id: str | UUID) -> HeldChange:
        held = self._scoped(HeldChange, held_id, "held change")
        if held.status != "held":
            raise ConflictError(f"held change {held_id} was already {held.status}")
        return held

    def dry_run(self, change: Callable[[ProvisioningService], object]) -> licensing.DryRunResult:
        """What `change` would do to roles and seats, computed in a savepoint rolled back after."""
        totals = self.seat_totals()
        savepoint = self.session.begin_nested()
        self._recording, self._recorded_after = {}, {}
        try:
            change(self)
            before, after = self._recording, self._recorded_after
        finally:
            self._recording = None
            savepoint.rollback()
            self._rules, self._catalogue, self._org_locked = None, None, False
            self.session.expire_all()
        return licensing.diff_access(before, after, totals)

    def drift(self) -> Iterator[dict[str, Any]]:
        """Users whose stored roles differ from what the current rules give them, in batches."""
        held_users = {
            user_id
            for ids in self.session.scalars(
                select(HeldChange.user_ids).where(
                    HeldChange.org_id == self.org_id, HeldChange.status == "held"
                )
            )
            for user_id in ids
        }
        last: UUID | None = None
        while True:
            query = select(User.id).where(User.org_id == self.org_id).order_by(User.id).limit(BATCH)
            if last is not None:
                query = query.where(User.id > last)
            ids = list(self.session.scalars(query))
            if not ids:
                return
            last = ids[-1]
            plans = self._plan(ids)
            for plan in plans:
                current = {p: a.role_key for p, a in plan.current.items()}
                expected = {p: a.role_key for p, a in plan.desired.items()}
                if current == expected:
                    continue
                user_id = str(plan.user.id)
                if plan.user.pending_since is not None:
                    why = "pending a paid seat (overage policy hold)"
                elif user_id in held_users:
                    why = "grants held by the mass-grant guard"
                else:
                    why = "roles differ from the current rules"
                yield {
                    "user_id": user_id,
                    "userName": plan.user.user_name,
                    "current": current,
                    "expected": expected,
                    "explanation": why,
                }
            # Keep memory flat across an organization of 100,000 users.
            for plan in plans:
                for assignment in plan.current.values():
                    self.session.expunge(assignment)

    def seat_totals(self) -> licensing.SeatTotals:
        """Paid, free and pending users right now."""
        rows = self.session.execute(
            select(User.seat, User.pending_since.is_not(None), func.count())
            .where(User.org_id == self.org_id, User.deprovisioned_at.is_(None))
            .group_by(User.seat, User.pending_since.is_not(None))
        ).all()
        paid = sum(n for seat, _, n in rows if seat == SeatKind.PAID)
        free = sum(n for seat, _, n in rows if seat == SeatKind.FREE)
        pending = sum(n for _, is_pending, n in rows if is_pending)
        return licensing.SeatTotals(paid=paid, free=free, pending=pending)

    # ----------------------------------------------------------------- audit

    def _audit(
        self,
        action: str,
        target_type: str,
        target_id: UUID | str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        audit.append(
            self.session, self.org_id, self.actor, action, target_type, target_id, before, after
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


def _connection_snapshot(connection: IdpConnection) -> dict[str, Any]:
    # Secret names only, never their (encrypted) values.
    return {
        "name": connection.name,
        "enabled": connection.is_enabled,
        "jit": connection.is_jit_enabled,
        "settings": connection.settings,
        "secrets": sorted(connection.encrypted_secrets),
    }


def _login_attributes(claims: LoginClaims) -> dict[str, str | None]:
    display = claims.display_name or " ".join(
        p for p in (claims.given_name, claims.family_name) if p
    )
    return {
        "given_name": claims.given_name,
        "family_name": claims.family_name,
        "display_name": display or None,
    }


def _rule(row: MappingRule) -> licensing.MappingRule:
    return licensing.MappingRule(
        rule_id=str(row.id),
        match=licensing.GroupMatch(row.match),
        group_value=row.group_value,
        role_key=row.role_key,
        project=row.project_key,
        priority=row.priority,
    )


def _rule_snapshot(row: MappingRule) -> dict[str, Any]:
    return {
        "match": row.match,
        "group": row.group_value,
        "role": row.role_key,
        "project": row.project_key,
        "priority": row.priority,
    }


def _role_snapshot(row: CustomRole) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "rank": row.rank,
        "description": row.description,
        "permissions": list(row.permissions),
    }


def _contract_snapshot(org: Organization) -> dict[str, Any]:
    return {
        "paid_seat_tier": org.paid_seat_tier,
        "policy": org.overage_policy,
        "billing_terms": org.billing_terms,
        "starts_on": org.contract_starts_on.isoformat() if org.contract_starts_on else None,
        "ends_on": org.contract_ends_on.isoformat() if org.contract_ends_on else None,
    }


def _guard_snapshot(org: Organization) -> dict[str, Any]:
    return {
        "max_new_paid_seats": org.guard_max_new_paid_seats,
        "max_new_paid_share": org.guard_max_new_paid_share,
        "max_new_project_admins": org.guard_max_new_project_admins,
    }


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
