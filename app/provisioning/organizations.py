"""Organizations and their bearer tokens, as operators create them and issue or revoke tokens.
(Looking them up, and authenticating a request's token, is app/organizations.py.)"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.actions import Action, Target
from app.audit import Actor
from app.db import utcnow
from app.errors import ConflictError, InvalidChangeError, NotFoundError
from app.models import Organization, OveragePolicy, ScimToken
from app.organizations import SCOPE_PREFIXES, IssuedToken, TokenScope, hash_token
from app.provisioning import events
from app.provisioning.contract import add_contract_version
from app.provisioning.scope import Scope

# Changes made from the command line by whoever runs it.
OPERATOR = Actor(kind="cli", label="operator")
MAX_TOKEN_DAYS = 3650
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def create_organization(
    session: Session,
    name: str,
    slug: str,
    paid_seats: int = 0,
    policy: OveragePolicy = OveragePolicy.ALLOW,
    actor: Actor = OPERATOR,
) -> Organization:
    """Create an organization; a taken or malformed slug is refused."""
    name = name.strip()
    if not name:
        raise InvalidChangeError("organization name must not be empty")
    if not SLUG.match(slug):
        raise InvalidChangeError(
            f"slug {slug!r} must be lowercase letters, digits and inner hyphens (1-63 chars)"
        )
    if paid_seats < 0:
        raise InvalidChangeError("paid seats must be zero or more")
    if session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise ConflictError(f"an organization with slug {slug!r} already exists")
    organization = Organization(
        name=name, slug=slug, paid_seat_tier=paid_seats, overage_policy=policy
    )
    session.add(organization)
    session.flush()
    add_contract_version(session, organization, organization.created_at)
    events.record(
        Scope(session, organization, actor),
        Action.ORG_CREATED,
        Target.ORGANIZATION,
        organization.id,
        None,
        {"name": name, "slug": slug, "paid_seat_tier": paid_seats, "policy": str(policy)},
    )
    return organization


def create_token(
    session: Session,
    organization: Organization,
    label: str,
    is_read_only: bool = False,
    scope: TokenScope = TokenScope.SCIM,
    actor: Actor = OPERATOR,
    expires_in_days: int | None = None,
) -> IssuedToken:
    """Issue a bearer token, valid until revoked or for `expires_in_days`; the secret is
    returned once and only its hash is stored."""
    label = label.strip()
    if not label:
        raise InvalidChangeError("token label must not be empty")
    taken = session.scalar(
        select(ScimToken.id).where(ScimToken.org_id == organization.id, ScimToken.label == label)
    )
    if taken is not None:
        raise ConflictError(f"organization {organization.slug!r} already has a token {label!r}")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise InvalidChangeError(f"a token expires in 1 to {MAX_TOKEN_DAYS} days")
    prefix = SCOPE_PREFIXES[scope]
    secret = prefix + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ScimToken(
        org_id=organization.id,
        label=label,
        token_hash=hash_token(secret),
        prefix=secret[: len(prefix) + 4],
        is_read_only=is_read_only,
        scope=scope,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    # The label, prefix and scope only: the secret and its hash never enter the trail.
    events.record(
        Scope(session, organization, actor),
        Action.TOKEN_CREATED,
        Target.TOKEN,
        token.id,
        None,
        {
            "label": label,
            "prefix": token.prefix,
            "scope": str(scope),
            "read_only": is_read_only,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return IssuedToken(token=token, secret=secret)


def revoke_token(
    session: Session, organization: Organization, label: str, actor: Actor = OPERATOR
) -> ScimToken:
    """Revoke a token by label; it stops working at once."""
    token = session.scalar(
        select(ScimToken).where(ScimToken.org_id == organization.id, ScimToken.label == label)
    )
    if token is None:
        raise NotFoundError(f"organization {organization.slug!r} has no token {label!r}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        events.record(
            Scope(session, organization, actor),
            Action.TOKEN_REVOKED,
            Target.TOKEN,
            token.id,
            {"label": label, "prefix": token.prefix},
            None,
        )
    return token
