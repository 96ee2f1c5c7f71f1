"""SSO login: find or just-in-time create the user, sync the login's groups, check roles."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import or_, select

from app.actions import Action, GroupKey, Target
from app.db import utcnow
from app.errors import LoginRefusedError
from app.models import (
    Group,
    IdpConnection,
    LoginIdentity,
    Membership,
    OrgDomain,
    RoleAssignment,
    User,
    UserSource,
)
from app.provisioning import events
from app.provisioning.access import recompute
from app.provisioning.directory.groups import create_group, touch_groups
from app.provisioning.directory.users import create_user, user_snapshot, user_state
from app.provisioning.scope import Scope, lower_key, parse_uuid
from app.provisioning.specs import GroupSpec, LoginClaims, UserSpec


def login(scope: Scope, connection: IdpConnection, claims: LoginClaims) -> User:
    """Accept an SSO login: find or just-in-time create the user, sync groups, check roles."""
    if connection.org_id != scope.org_id or not connection.is_enabled:
        raise LoginRefusedError("this sign-in connection is not available", "connection")
    identity = scope.session.scalar(
        select(LoginIdentity).where(
            LoginIdentity.connection_id == connection.id,
            LoginIdentity.subject == claims.subject,
        )
    )
    user = scope.session.get(User, identity.user_id) if identity is not None else None
    if identity is None or user is None:
        user = _link_by_email(scope, connection, claims)
        _lock_login_groups(scope, user, claims)
        if user is None:
            user = _create_from_login(scope, connection, claims)
        identity = _link(scope, connection, claims, user)
    else:
        _lock_login_groups(scope, user, claims)
    if user.deprovisioned_at is not None or not user.is_active:
        raise LoginRefusedError("your account is deactivated", "user_deactivated")
    if connection.is_jit_enabled and user.source == UserSource.SSO:
        # A login keeps the names of users it created up to date; SCIM, an import or an admin
        # manage their own users' attributes, and a login's claims never overwrite them.
        _update_from_login(scope, user, claims)
    if scope.organization.sso_manages_groups:
        _sync_groups(scope, connection, user, claims)
    _check_role(scope, user)
    now = utcnow()
    user.last_login_at = now
    identity.last_login_at = now
    events.record(
        scope,
        Action.LOGIN_ACCEPTED,
        Target.USER,
        user.id,
        None,
        {"connection": connection.name, "protocol": connection.protocol},
    )
    scope.session.flush()
    return user


def record_refused_login(
    scope: Scope, connection: IdpConnection | None, reason: str, detail: str
) -> None:
    """Audit a refused login (in its own transaction: the refused one rolled back)."""
    events.record(
        scope,
        Action.LOGIN_REFUSED,
        Target.CONNECTION,
        connection.id if connection is not None else None,
        None,
        {
            "reason": reason,
            "detail": detail,
            "connection": connection.name if connection is not None else None,
        },
    )


def record_test_sign_in(scope: Scope, connection: IdpConnection, claims: LoginClaims) -> None:
    """Audit an admin's test sign-in on a connection: it provisioned no one, changed nothing,
    but who tested which connection, and what the IdP sent, belongs in the trail."""
    events.record(
        scope,
        Action.CONNECTION_TESTED,
        Target.CONNECTION,
        connection.id,
        None,
        {
            "connection": connection.name,
            "subject": claims.subject,
            "email": claims.email,
            "groups": len(claims.groups or ()),
        },
    )


def _link(
    scope: Scope, connection: IdpConnection, claims: LoginClaims, user: User
) -> LoginIdentity:
    """The user's new identity at this connection."""
    identity = LoginIdentity(connection_id=connection.id, subject=claims.subject, user_id=user.id)
    scope.session.add(identity)
    events.record(
        scope,
        Action.LOGIN_LINKED,
        Target.USER,
        user.id,
        None,
        {"connection": connection.name, "subject": claims.subject},
    )
    return identity


def _link_by_email(scope: Scope, connection: IdpConnection, claims: LoginClaims) -> User | None:
    """An existing user linked by email: only at their first login on this connection,
    and only for a verified address in one of the organization's verified domains."""
    if not claims.email or not claims.email_verified or "@" not in claims.email:
        return None
    domain = claims.email.rsplit("@", 1)[1].lower()
    verified = scope.session.scalar(
        select(OrgDomain.domain).where(OrgDomain.org_id == scope.org_id, OrgDomain.domain == domain)
    )
    if verified is None:
        return None
    email = claims.email.lower()
    candidate = scope.session.scalar(
        select(User)
        .where(
            User.org_id == scope.org_id,
            or_(User.user_name_key == email, User.primary_email == email),
        )
        .limit(1)
    )
    if candidate is None:
        return None
    already = scope.session.scalar(
        select(LoginIdentity.id).where(
            LoginIdentity.user_id == candidate.id,
            LoginIdentity.connection_id == connection.id,
        )
    )
    return candidate if already is None else None


def _create_from_login(scope: Scope, connection: IdpConnection, claims: LoginClaims) -> User:
    if not connection.is_jit_enabled:
        raise LoginRefusedError(
            "your account has not been provisioned in Blue yet", "not_provisioned"
        )
    user_name = claims.email or claims.subject
    taken = scope.session.scalar(
        select(User).where(User.org_id == scope.org_id, User.user_name_key == user_name.lower())
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
    return create_user(scope, spec, source=UserSource.SSO)


def _update_from_login(scope: Scope, user: User, claims: LoginClaims) -> None:
    before, state_before = user_snapshot(user), user_state(user)
    for column, value in _login_attributes(claims).items():
        if value is not None:
            setattr(user, column, value)
    user.display_name_key = lower_key(user.display_name)
    after = user_snapshot(user)
    if after != before:
        user.version += 1
        user.updated_at = utcnow()
        state = user_state(user)
        changed_state = state if state != state_before else None
        events.record_user(scope, Action.USER_UPDATED, user.id, before, after, changed_state, True)


def _login_attributes(claims: LoginClaims) -> dict[str, str | None]:
    display = claims.display_name or " ".join(
        p for p in (claims.given_name, claims.family_name) if p
    )
    return {
        "given_name": claims.given_name,
        "family_name": claims.family_name,
        "display_name": display or None,
    }


def _check_role(scope: Scope, user: User) -> None:
    """LoginRefusedError unless the user has a role the organization lets in."""
    # Empty sources mark the organization's default role: under "refuse" only a role from
    # a mapping rule lets the user in; under "default" the default role does too.
    sources = scope.session.scalars(
        select(RoleAssignment.sources).where(RoleAssignment.user_id == user.id)
    ).all()
    allowed = any(sources) or (bool(sources) and scope.organization.sso_no_role_policy == "default")
    if not allowed:
        raise LoginRefusedError("you have no role in Blue; ask your administrator", "no_role")


def _lock_login_groups(scope: Scope, user: User | None, claims: LoginClaims) -> None:
    """Lock, in id order, the existing groups a login's sync may change: those it names and
    the user's own SSO groups. This comes before the login writes anything (the user's row,
    a just-in-time user and their seat), as the scope's lock order has it."""
    values = claims.groups if scope.organization.sso_manages_groups else None
    if values is None or claims.groups_overage:
        return
    names = [v.strip() for v in values if v and v.strip()]
    named = or_(
        Group.external_id.in_(names), Group.display_name_key.in_([n.lower() for n in names])
    )
    if user is not None:
        own = select(Membership.group_id).where(
            Membership.user_id == user.id, Membership.source == UserSource.SSO
        )
        named = or_(named, Group.id.in_(own))
    scope.lock_groups(named)


def _sync_groups(scope: Scope, connection: IdpConnection, user: User, claims: LoginClaims) -> None:
    """The login's group claim replaces the user's SSO memberships."""
    if claims.groups_overage:
        # Entra ID replaced the claim by a link: that is "too many to list", never
        # "no groups"; memberships stay as they are until SCIM pushes them.
        user.groups_overage_at = utcnow()
        events.record(
            scope,
            Action.LOGIN_GROUPS_OVERAGE,
            Target.USER,
            user.id,
            None,
            {"connection": connection.name},
        )
    elif claims.groups is not None:
        user.groups_overage_at = None
        _set_sso_memberships(scope, user, claims.groups)


def _set_sso_memberships(scope: Scope, user: User, values: Sequence[str]) -> None:
    """The login's groups replace the user's SSO-sourced memberships (SCIM ones stay)."""
    wanted = _groups_named(scope, values)
    current = {
        m.group_id: m
        for m in scope.session.scalars(select(Membership).where(Membership.user_id == user.id))
    }
    added = [gid for gid in wanted if gid not in current]
    removed = [
        gid for gid, m in current.items() if m.source == UserSource.SSO and gid not in wanted
    ]
    now = utcnow()
    payload = {GroupKey.USER_ID: str(user.id), "source": "sso"}
    for group_id in added:
        scope.session.add(
            Membership(
                group_id=group_id,
                user_id=user.id,
                org_id=scope.org_id,
                source=UserSource.SSO,
                created_at=now,
            )
        )
        events.record(scope, Action.MEMBERSHIP_ADDED, Target.GROUP, group_id, None, payload)
    for group_id in removed:
        scope.session.delete(current[group_id])
        events.record(scope, Action.MEMBERSHIP_REMOVED, Target.GROUP, group_id, payload, None)
    if added or removed:
        scope.session.flush()
        touch_groups(scope, [*added, *removed])
        recompute(scope, [user.id], reason="sso_groups_changed")


def _groups_named(scope: Scope, values: Sequence[str]) -> dict[UUID, str]:
    """The groups a login names, by externalId or name; one it names first is created."""
    wanted: dict[UUID, str] = {}
    for value in dict.fromkeys(v.strip() for v in values if v and v.strip()):
        group = scope.session.scalar(
            select(Group)
            .where(
                Group.org_id == scope.org_id,
                or_(Group.external_id == value, Group.display_name_key == value.lower()),
            )
            .limit(1)
        )
        if group is None:
            group = create_group(
                scope,
                GroupSpec(
                    display_name=value,
                    external_id=value if parse_uuid(value) is not None else None,
                ),
            )
        wanted[group.id] = value
    return wanted
