"""Reads the console's own pages need: sign-in connections and console grants. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ConsoleGrant, Group, IdpConnection, Organization, OrgDomain


@dataclass(frozen=True, slots=True)
class SignInOption:
    name: str
    protocol: str
    login_path: str


@dataclass(frozen=True, slots=True)
class Grant:
    group_id: UUID
    group_name: str
    role: str


def sign_in_options(session: Session, org_or_email: str) -> list[SignInOption]:
    """The enabled SSO connections of the organization an email's domain or a slug names;
    each signs in to the console by returning to /console/sso."""
    value = org_or_email.strip().lower()
    if "@" in value:
        domain = session.get(OrgDomain, value.rsplit("@", 1)[1])
        org_id = domain.org_id if domain is not None else None
    else:
        org_id = session.scalar(select(Organization.id).where(Organization.slug == value))
    if org_id is None:
        return []
    connections = session.scalars(
        select(IdpConnection)
        .where(IdpConnection.org_id == org_id, IdpConnection.is_enabled)
        .order_by(IdpConnection.name)
    )
    return [
        SignInOption(c.name, c.protocol, f"/sso/{c.protocol}/{c.id}/login?return_to=/console/sso")
        for c in connections
    ]


def grants(session: Session, org_id: UUID) -> list[Grant]:
    """The groups whose members may use the console, by group name."""
    rows = session.execute(
        select(Group.id, Group.display_name, ConsoleGrant.role)
        .join(ConsoleGrant, ConsoleGrant.group_id == Group.id)
        .where(ConsoleGrant.org_id == org_id)
        .order_by(Group.display_name_key)
    )
    return [Grant(group_id, name, role) for group_id, name, role in rows]


def group_named(session: Session, org_id: UUID, name: str) -> UUID | None:
    """The organization's group with this display name (case-insensitive), if any."""
    return session.scalar(
        select(Group.id).where(Group.org_id == org_id, Group.display_name_key == name.lower())
    )
