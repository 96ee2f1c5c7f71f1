"""How an organization signs in: IdP connections, SSO options and verified email domains."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update

from app.actions import Action, Target
from app.db import utcnow
from app.errors import ConflictError, InvalidChangeError, NotFoundError
from app.models import IdpConnection, LoginIdentity, Organization, OrgDomain, SsoSession
from app.provisioning import events
from app.provisioning.scope import Scope

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def create_connection(
    scope: Scope,
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
    _check_connection_name(scope, name)
    connection = IdpConnection(
        org_id=scope.org_id,
        name=name,
        protocol=protocol,
        settings=dict(settings),
        encrypted_secrets=dict(encrypted_secrets),
        is_jit_enabled=is_jit_enabled,
    )
    scope.session.add(connection)
    scope.session.flush()
    after = {
        "name": name,
        "protocol": protocol,
        "settings": dict(settings),
        "jit": is_jit_enabled,
        "secrets": sorted(encrypted_secrets),
    }
    events.record(scope, Action.CONNECTION_CREATED, Target.CONNECTION, connection.id, None, after)
    return connection


def _check_connection_name(scope: Scope, name: str) -> None:
    if not name:
        raise InvalidChangeError("a connection needs a name")
    if len(name) > 120:
        raise InvalidChangeError("a connection name has at most 120 characters")
    taken = scope.session.scalar(
        select(IdpConnection.id).where(
            IdpConnection.org_id == scope.org_id, IdpConnection.name == name
        )
    )
    if taken is not None:
        raise ConflictError(f"a connection named {name!r} already exists")


def get_connection(scope: Scope, connection_id: str | UUID) -> IdpConnection:
    """A connection of this organization, or NotFoundError."""
    return scope.scoped(IdpConnection, connection_id, "connection")


def update_connection(
    scope: Scope,
    connection_id: str | UUID,
    settings: Mapping[str, Any] | None = None,
    encrypted_secrets: Mapping[str, str] | None = None,
    is_enabled: bool | None = None,
    is_jit_enabled: bool | None = None,
    name: str | None = None,
) -> IdpConnection:
    """Change a connection's settings, secrets, name or switches."""
    connection = get_connection(scope, connection_id)
    before = _connection_snapshot(connection)
    new_name = name.strip() if name is not None else ""
    if new_name and new_name != connection.name:
        _check_connection_name(scope, new_name)
    if settings is not None:
        connection.settings = {**connection.settings, **settings}
    if encrypted_secrets is not None:
        _rotate_secrets(scope, connection, encrypted_secrets)
    if is_enabled is not None:
        connection.is_enabled = is_enabled
    if is_jit_enabled is not None:
        connection.is_jit_enabled = is_jit_enabled
    if new_name:
        connection.name = new_name
    after = _connection_snapshot(connection)
    if after != before:
        connection.updated_at = utcnow()
        events.record_changes(
            scope, Action.CONNECTION_UPDATED, Target.CONNECTION, connection.id, before, after
        )
    return connection


def _rotate_secrets(
    scope: Scope, connection: IdpConnection, encrypted_secrets: Mapping[str, str]
) -> None:
    rotated = sorted(
        key
        for key, value in encrypted_secrets.items()
        if connection.encrypted_secrets.get(key) != value
    )
    connection.encrypted_secrets = {**connection.encrypted_secrets, **encrypted_secrets}
    if rotated:
        # Which secrets changed, never their values (encrypted or not).
        events.record(
            scope,
            Action.CONNECTION_SECRET_ROTATED,
            Target.CONNECTION,
            connection.id,
            None,
            {"secrets": rotated},
        )


def delete_connection(scope: Scope, connection_id: str | UUID) -> None:
    """Remove a connection; users keep their records, its logins stop working."""
    connection = get_connection(scope, connection_id)
    events.record(
        scope,
        Action.CONNECTION_DELETED,
        Target.CONNECTION,
        connection.id,
        _connection_snapshot(connection),
        None,
    )
    scope.session.execute(delete(LoginIdentity).where(LoginIdentity.connection_id == connection.id))
    scope.session.execute(
        update(SsoSession)
        .where(SsoSession.connection_id == connection.id, SsoSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    scope.session.delete(connection)
    scope.session.flush()


def _connection_snapshot(connection: IdpConnection) -> dict[str, Any]:
    # Secret names only, never their (encrypted) values.
    return {
        "name": connection.name,
        "enabled": connection.is_enabled,
        "jit": connection.is_jit_enabled,
        "settings": connection.settings,
        "secrets": sorted(connection.encrypted_secrets),
    }


def set_sso_options(
    scope: Scope,
    blue_url: str | None = None,
    manages_groups: bool | None = None,
    no_role_policy: str | None = None,
) -> Organization:
    """Hand-off target and how SSO treats groups and role-less users."""
    org = scope.organization
    before = _sso_options(org)
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
    after = _sso_options(org)
    if after != before:
        events.record_changes(
            scope, Action.ORG_SSO_CHANGED, Target.ORGANIZATION, scope.org_id, before, after
        )
    return org


def _sso_options(org: Organization) -> dict[str, Any]:
    return {
        "blue_url": org.blue_url,
        "sso_manages_groups": org.sso_manages_groups,
        "sso_no_role_policy": org.sso_no_role_policy,
    }


def add_domain(scope: Scope, domain: str) -> OrgDomain:
    """Record a verified email domain of the organization."""
    domain = domain.strip().lower().rstrip(".")
    if not DOMAIN.match(domain):
        raise InvalidChangeError(f"{domain!r} is not a domain name")
    existing = scope.session.get(OrgDomain, domain)
    if existing is not None:
        if existing.org_id == scope.org_id:
            return existing
        raise ConflictError(f"{domain} belongs to another organization")
    row = OrgDomain(domain=domain, org_id=scope.org_id)
    scope.session.add(row)
    scope.session.flush()
    events.record(
        scope, Action.ORG_DOMAIN_ADDED, Target.ORGANIZATION, scope.org_id, None, {"domain": domain}
    )
    return row


def remove_domain(scope: Scope, domain: str) -> None:
    """Forget a verified domain."""
    row = scope.session.get(OrgDomain, domain.strip().lower())
    if row is None or row.org_id != scope.org_id:
        raise NotFoundError(f"domain {domain} not found")
    scope.session.delete(row)
    events.record(
        scope,
        Action.ORG_DOMAIN_REMOVED,
        Target.ORGANIZATION,
        scope.org_id,
        {"domain": row.domain},
        None,
    )
