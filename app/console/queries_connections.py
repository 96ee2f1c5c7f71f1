"""Reads for the Connections page: SSO connections, bearer tokens, webhook endpoints, and
which mapping rules a test sign-in's groups would match. Reads only, scoped by organization."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import licensing
from app.models import Group, IdpConnection, MappingRule, ScimToken, WebhookEndpoint
from app.organizations import expiry_warning
from app.provisioning.scope import licensing_rule, parse_uuid


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    id: UUID
    name: str
    protocol: str
    is_enabled: bool
    is_jit_enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: UUID
    label: str
    prefix: str
    scope: str
    is_read_only: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    warning: str | None  # "expires in 3 days", "expired"


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: UUID
    url: str
    event_types: tuple[str, ...] | None
    is_enabled: bool
    previous_secret_until: datetime | None


@dataclass(frozen=True, slots=True)
class MatchedRule:
    """A mapping rule that a group of a test sign-in would match."""

    group_value: str
    match: str
    rule_value: str
    role_key: str
    project_key: str


def connections(session: Session, org_id: UUID) -> list[ConnectionRow]:
    """The organization's SSO connections, by name."""
    rows = session.scalars(
        select(IdpConnection)
        .where(IdpConnection.org_id == org_id)
        .order_by(IdpConnection.name, IdpConnection.id)
    )
    return [
        ConnectionRow(r.id, r.name, r.protocol, r.is_enabled, r.is_jit_enabled, r.created_at)
        for r in rows
    ]


def connection(session: Session, org_id: UUID, connection_id: str) -> IdpConnection | None:
    """One of the organization's connections; None for another organization's or a bad id."""
    parsed = parse_uuid(connection_id)
    row = session.get(IdpConnection, parsed) if parsed is not None else None
    return row if row is not None and row.org_id == org_id else None


def tokens(session: Session, org_id: UUID) -> list[TokenRow]:
    """The organization's bearer tokens (never their secrets): live ones first, newest first."""
    rows = session.scalars(
        select(ScimToken)
        .where(ScimToken.org_id == org_id)
        .order_by(ScimToken.revoked_at.is_not(None), ScimToken.created_at.desc())
    )
    return [
        TokenRow(
            r.id,
            r.label,
            r.prefix,
            r.scope,
            r.is_read_only,
            r.created_at,
            r.last_used_at,
            r.revoked_at,
            r.expires_at,
            expiry_warning(r),
        )
        for r in rows
    ]


def token(session: Session, org_id: UUID, token_id: str) -> ScimToken | None:
    """One of the organization's tokens; None for another organization's or a bad id."""
    parsed = parse_uuid(token_id)
    row = session.get(ScimToken, parsed) if parsed is not None else None
    return row if row is not None and row.org_id == org_id else None


def token_labels(session: Session, org_id: UUID) -> set[str]:
    """Every label the organization's tokens use, revoked ones too (labels stay unique)."""
    return set(session.scalars(select(ScimToken.label).where(ScimToken.org_id == org_id)))


def webhooks(session: Session, org_id: UUID) -> list[WebhookRow]:
    """The organization's webhook endpoints (never their secrets)."""
    rows = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == org_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return [
        WebhookRow(
            r.id,
            r.url,
            tuple(r.event_types) if r.event_types is not None else None,
            r.is_enabled,
            r.previous_secret_until,
        )
        for r in rows
    ]


def matched_rules(session: Session, org_id: UUID, values: Iterable[str]) -> list[MatchedRule]:
    """The mapping rules the groups a login names would match, as the login would find (or
    create) those groups: by externalId or name, case-insensitively."""
    rules = [
        (row, licensing_rule(row))
        for row in session.scalars(select(MappingRule).where(MappingRule.org_id == org_id))
    ]
    found: list[MatchedRule] = []
    for value in dict.fromkeys(v.strip() for v in values if v and v.strip()):
        group = _group_ref(session, org_id, value)
        for row, rule in rules:
            matches = rule.matches(group) if group.group_id else rule.binds_to(group)
            if matches:
                found.append(
                    MatchedRule(value, row.match, row.group_value, row.role_key, row.project_key)
                )
    return found


def _group_ref(session: Session, org_id: UUID, value: str) -> licensing.GroupRef:
    """The group a login's value names, or the one it would create (no id yet)."""
    group = session.scalar(
        select(Group)
        .where(
            Group.org_id == org_id,
            or_(Group.external_id == value, Group.display_name_key == value.lower()),
        )
        .limit(1)
    )
    if group is None:
        external_id = value if parse_uuid(value) is not None else None
        return licensing.GroupRef("", external_id, value)
    return licensing.GroupRef(str(group.id), group.external_id, group.display_name)
