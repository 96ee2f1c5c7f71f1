"""Users of the directory: create (or relink), replace, deactivate, reactivate, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, case, delete, func, insert, or_, select, update

from app.actions import Action, OutboxKey, UserKey
from app.db import utcnow
from app.errors import ConflictError, InvalidChangeError
from app.models import Membership, SeatKind, SsoSession, User, UserSource, UserValue
from app.provisioning import console, events
from app.provisioning.access import recompute
from app.provisioning.directory.groups import touch_groups
from app.provisioning.scope import Scope, lower_key
from app.provisioning.specs import MULTI_VALUED, USER_STRING_COLUMNS, UserSpec

# Built once: every create runs it (building a statement costs about as much as running it).
# It finds the holder of the userName first, then the holders of the externalId, live ones
# first, then the most recently deprovisioned (a create without an externalId binds NULL,
# which matches no one). One user holds a userName and live users hold an externalId once,
# so a handful of rows answers every question a create asks.
_USER_BY_NAME_OR_EXTERNAL_ID = (
    select(User)
    .where(
        User.org_id == bindparam("org_id"),
        or_(
            User.user_name_key == bindparam("key"),
            User.external_id == bindparam("external_id"),
        ),
    )
    .order_by(
        case((User.user_name_key == bindparam("key"), 0), else_=1),
        User.deprovisioned_at.is_not(None),
        User.deprovisioned_at.desc(),
    )
    .limit(4)
)


def get_user(scope: Scope, user_id: str | UUID) -> User:
    """A live (not deprovisioned) user of this organization, or NotFoundError."""
    return scope.scoped(User, user_id, "user", lambda user: user.deprovisioned_at is None)


def count_users(scope: Scope) -> int:
    """Live users of the organization."""
    return (
        scope.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.org_id == scope.org_id, User.deprovisioned_at.is_(None))
        )
        or 0
    )


def create_user(scope: Scope, spec: UserSpec, source: UserSource = UserSource.SCIM) -> User:
    """Create a user, or relink a deprovisioned one with the same userName or externalId.

    The userName and, among live users, the externalId are unique (409 otherwise). A
    deprovisioned holder of the userName is relinked, whatever its externalId was; without
    one, the most recently deprovisioned holder of the externalId is.
    """
    check_user_spec(spec)
    key = spec.user_name.lower()
    candidates = scope.session.scalars(
        _USER_BY_NAME_OR_EXTERNAL_ID,
        {"org_id": scope.org_id, "key": key, "external_id": spec.external_id},
    ).all()
    existing = next((u for u in candidates if u.user_name_key == key), None)
    if existing is not None and not existing.is_deprovisioned:
        raise ConflictError(f"userName {spec.user_name!r} is already taken")
    _check_external_id_free(spec, [u for u in candidates if u is not existing])
    if existing is None and candidates:
        existing = candidates[0]
    if existing is not None:
        return _relink(scope, existing, spec)
    user = User(org_id=scope.org_id, source=source, seat=SeatKind.NONE)
    _write_user(scope, user, spec, is_new=True)
    scope.session.add(user)
    scope.session.flush()
    _write_values(scope, user, spec.multi_values)
    events.record_user(
        scope, Action.USER_CREATED, user.id, None, user_snapshot(user), user_state(user, False)
    )
    if scope.organization.default_role_key is not None:
        # A new user belongs to no group yet: only a default role can give them access.
        recompute(scope, [user.id], reason="user_created")
    return user


def _check_external_id_free(spec: UserSpec, others: Sequence[User]) -> None:
    """ConflictError when another live user holds the externalId: two live users with one
    externalId would make the IdP's next lookup by it ambiguous."""
    if any(u.external_id == spec.external_id and not u.is_deprovisioned for u in others):
        raise ConflictError(f"externalId {spec.external_id!r} is already taken")


def _relink(scope: Scope, existing: User, spec: UserSpec) -> User:
    """Bring a deprovisioned user back: RFC 7644 leaves re-creation open, and a relink lets
    the person keep their history."""
    before = user_snapshot(existing)
    existing.deprovisioned_at = None
    _write_user(scope, existing, spec)
    # A create: active unless the IdP says otherwise.
    existing.is_active = spec.is_active if spec.is_active is not None else True
    existing.created_at = existing.created_at or utcnow()
    events.record_user(
        scope,
        Action.USER_RELINKED,
        existing.id,
        before,
        user_snapshot(existing),
        user_state(existing, relinked=True),
    )
    recompute(scope, [existing.id], reason="user_relinked")
    return existing


def replace_user(
    scope: Scope, user_id: str | UUID, spec: UserSpec, expected_version: int | None = None
) -> User:
    """Replace a user's attributes; `active` false deactivates, true reactivates."""
    user = get_user(scope, user_id)
    scope.check_version(user.version, expected_version)
    check_user_spec(spec)
    key = spec.user_name.lower()
    if key != user.user_name_key:
        taken = scope.session.scalar(
            select(User.id).where(User.org_id == scope.org_id, User.user_name_key == key)
        )
        if taken is not None:
            raise ConflictError(f"userName {spec.user_name!r} is already taken")
    if spec.external_id is not None and spec.external_id != user.external_id:
        holders = scope.session.scalars(
            select(User).where(
                User.org_id == scope.org_id,
                User.external_id == spec.external_id,
                User.deprovisioned_at.is_(None),
            )
        ).all()
        _check_external_id_free(spec, holders)
    before, state_before = user_snapshot(user), user_state(user)
    was_active = user.is_active
    if spec.is_active is not None and spec.is_active != was_active:
        # (De)activation changes the seat: the seat counter before this user's row.
        scope.lock_seats_if_in_play()
    _write_user(scope, user, spec)
    after = user_snapshot(user)
    if after == before:
        return user
    user.version += 1
    user.updated_at = utcnow()
    if was_active and not user.is_active:
        action = Action.USER_DEACTIVATED
    elif not was_active and user.is_active:
        action = Action.USER_REACTIVATED
    else:
        action = Action.USER_UPDATED
    state = user_state(user)
    events.record_user(
        scope, action, user.id, before, after, state if state != state_before else None, True
    )
    if was_active != user.is_active:
        if not user.is_active:
            end_sessions(scope, user.id)
        recompute(scope, [user.id], reason=action.removeprefix("user."))
    return user


def delete_user(scope: Scope, user_id: str | UUID, expected_version: int | None = None) -> None:
    """Deprovision: roles, seat and memberships released; the record and history stay."""
    user = get_user(scope, user_id)
    scope.check_version(user.version, expected_version)
    before = user_snapshot(user)
    group_ids = scope.session.scalars(
        select(Membership.group_id).where(Membership.user_id == user.id)
    ).all()
    # In the scope's lock order: group rows, the seat counter, then memberships and users'
    # rows. Where no one can hold a seat, no other path writes this user's row after locking
    # a group: the user goes first, and the groups (one may have 50,000 members, and every
    # delete of a member waits for its row) stay locked only for the commit.
    seats_in_play = scope.seats_in_play()
    if seats_in_play:
        touch_groups(scope, group_ids)
        scope.lock_organization()
        _delete_memberships(scope, user.id, group_ids)
    user.is_active = False
    user.deprovisioned_at = utcnow()
    user.version += 1
    user.updated_at = user.deprovisioned_at
    after = user_snapshot(user) | {UserKey.GROUPS_LEFT: sorted(str(g) for g in group_ids)}
    events.record_user(scope, Action.USER_DELETED, user.id, before, after, user_state(user))
    end_sessions(scope, user.id)
    recompute(scope, [user.id], reason="user_deleted")
    if not seats_in_play:
        touch_groups(scope, group_ids)
        _delete_memberships(scope, user.id, group_ids)


def _delete_memberships(scope: Scope, user_id: UUID, group_ids: Sequence[UUID]) -> None:
    if group_ids:
        scope.session.execute(delete(Membership).where(Membership.user_id == user_id))


def end_sessions(scope: Scope, user_id: UUID) -> None:
    """A deprovisioned user's SSO and console sessions end now, whoever deprovisioned them."""
    console.end_user_sessions(scope.session, user_id)
    scope.session.execute(
        update(SsoSession)
        .where(SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def check_user_spec(spec: UserSpec) -> None:
    """InvalidChangeError for a userName or attributes the directory cannot hold."""
    if not spec.user_name or not spec.user_name.strip():
        raise InvalidChangeError("userName is required")
    if len(spec.user_name) > 256:
        raise InvalidChangeError("userName is longer than 256 characters")
    unknown = set(spec.attributes) - set(USER_STRING_COLUMNS)
    if unknown:
        raise InvalidChangeError(f"unknown user attributes: {', '.join(sorted(unknown))}")


def _write_user(scope: Scope, user: User, spec: UserSpec, is_new: bool = False) -> None:
    user.user_name = spec.user_name
    user.user_name_key = spec.user_name.lower()
    user.external_id = spec.external_id
    if spec.is_active is not None:
        user.is_active = spec.is_active
    elif is_new:
        user.is_active = True
    for column in USER_STRING_COLUMNS:
        setattr(user, column, spec.attributes.get(column))
    user.display_name_key = lower_key(user.display_name)
    multi = {k: v for k, v in spec.multi_values.items() if k in MULTI_VALUED and v}
    user.primary_email = _primary_value(multi.get("emails", []))
    changed_values = is_new or multi != (user.multi_values or {})
    user.multi_values = multi
    user.extensions = {k: v for k, v in spec.extensions.items() if v}
    if changed_values and not is_new:
        scope.session.execute(delete(UserValue).where(UserValue.user_id == user.id))
        _write_values(scope, user, multi)


def _write_values(
    scope: Scope, user: User, multi_values: Mapping[str, list[dict[str, Any]]]
) -> None:
    """The rows that index a user's multi-valued attributes (emails, phone numbers, …)."""
    rows = []
    for attribute, values in multi_values.items():
        for item in values:
            value = item.get("value")
            if attribute == "addresses":
                value = item.get("formatted") or item.get("streetAddress")
            text = None if value is None else str(value)[:1024]
            rows.append(
                {
                    "org_id": scope.org_id,
                    "user_id": user.id,
                    "attribute": attribute,
                    "value": text,
                    "value_key": lower_key(text),
                    "display": item.get("display"),
                    "type": item.get("type"),
                    "is_primary": item.get("primary") is True,
                }
            )
    if rows:
        scope.session.execute(insert(UserValue), rows)


def user_snapshot(user: User) -> dict[str, Any]:
    """A user's directory attributes as the audit trail records them."""
    snapshot: dict[str, Any] = {
        UserKey.USER_NAME: user.user_name,
        "external_id": user.external_id,
        UserKey.ACTIVE: user.is_active,
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


def user_state(user: User, relinked: bool | None = None) -> dict[str, Any]:
    """A user's state as Blue's events carry it (app.actions.OutboxType); `relinked` only
    in user.provisioned."""
    state: dict[str, Any] = {
        UserKey.USER_NAME: user.user_name,
        "external_id": user.external_id,
        OutboxKey.EMAIL: user.primary_email,
        "display_name": user.display_name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        UserKey.ACTIVE: user.is_active,
        OutboxKey.DELETED: user.deprovisioned_at is not None,
        OutboxKey.SOURCE: str(user.source),
    }
    if relinked is not None:
        state[OutboxKey.RELINKED] = relinked
    return state


def _primary_value(values: Sequence[Mapping[str, Any]]) -> str | None:
    for item in values:
        if item.get("primary") is True and item.get("value"):
            return str(item["value"]).lower()
    for item in values:
        if item.get("value"):
            return str(item["value"]).lower()
    return None
