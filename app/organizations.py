"""Organizations and their tokens, looked up (a token on every request); they are created and
revoked through the provisioning package (app/provisioning/organizations.py)."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session, joinedload

from app import ratelimit
from app.db import utcnow
from app.errors import NotFoundError
from app.models import Organization, ScimToken

# Each scope's tokens start with their own prefix, so a secret found in a log or a
# repository tells what it opens (and secret scanners can match it); tokens issued before
# prefixes were per scope all start with blue_scim_, and keep working.
TOKEN_PREFIX = "blue_scim_"
SCOPE_PREFIXES = {"scim": TOKEN_PREFIX, "admin": "blue_admin_", "events": "blue_events_"}
TOKEN_PREFIXES = tuple(SCOPE_PREFIXES.values())
# A token that expires within this long is listed with a warning.
EXPIRY_WARNING = timedelta(days=14)
# Recording every use would turn each SCIM read into a write on one hot row; a minute is
# precise enough for "is this token still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Built once: every SCIM request runs one of these, and building a statement costs about as
# much as running it.
_TOKEN_BY_HASH = select(ScimToken).where(ScimToken.token_hash == bindparam("digest"))
_TOKEN_AND_ORGANIZATION_BY_HASH = _TOKEN_BY_HASH.options(joinedload(ScimToken.organization))


def get_organization(session: Session, slug: str) -> Organization:
    """The organization with this slug, or NotFoundError."""
    organization = session.scalar(select(Organization).where(Organization.slug == slug))
    if organization is None:
        raise NotFoundError(f"no organization with slug {slug!r}")
    return organization


def list_organizations(session: Session) -> Sequence[Organization]:
    """Every organization, by slug."""
    return session.scalars(select(Organization).order_by(Organization.slug)).all()


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token: what the database keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: ScimToken
    secret: str


class TokenScope(StrEnum):
    """What a token may do: provision through /scim/v2 (scim), configure and read through
    /api/v1 (admin), or only read Blue's event feed, /api/v1/events (events)."""

    SCIM = "scim"
    ADMIN = "admin"
    EVENTS = "events"


def expiry_warning(token: ScimToken) -> str | None:
    """ "expired" or "expires in N days" for a live token near its end; None otherwise."""
    if token.expires_at is None or token.revoked_at is not None:
        return None
    left = token.expires_at - utcnow()
    if left <= timedelta(0):
        return "expired"
    if left > EXPIRY_WARNING:
        return None
    days = math.ceil(left / timedelta(days=1))
    return "expires within a day" if days <= 1 else f"expires in {days} days"


def list_tokens(session: Session, organization: Organization | None = None) -> Sequence[ScimToken]:
    """Tokens (never their secrets), newest first, optionally of one organization."""
    query = select(ScimToken).join(ScimToken.organization)
    if organization is not None:
        query = query.where(ScimToken.org_id == organization.id)
    return session.scalars(query.order_by(Organization.slug, ScimToken.created_at.desc())).all()


def authenticate_token(
    session: Session, presented: str, with_organization: bool = True
) -> ScimToken | None:
    """The live token matching the presented secret, or None; records when it was last used.

    The organization's row comes in the same query unless the caller will not need it (a
    read answers from the token's `org_id` alone).
    """
    if not presented.startswith(TOKEN_PREFIXES):
        return None
    digest = hash_token(presented)
    query = _TOKEN_AND_ORGANIZATION_BY_HASH if with_organization else _TOKEN_BY_HASH
    token = session.scalar(query, {"digest": digest})
    # The lookup is by a hash of the secret; compare_digest keeps the final check constant-time.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
    return token


class TokenRefusal(StrEnum):
    """Why a bearer token was not accepted; each adapter words it in its own protocol."""

    MISSING = "missing"
    INVALID = "invalid"
    WRONG_SCOPE = "wrong_scope"
    READ_ONLY = "read_only"
    RATE_LIMITED = "rate_limited"


class TokenRefusedError(Exception):
    """A request's bearer token was refused; `retry_after` is set when it was rate limited."""

    def __init__(self, refusal: TokenRefusal, retry_after: int | None = None) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.retry_after = retry_after


def authorize_bearer(
    session: Session,
    engine: Engine,
    authorization: str,
    scope: TokenScope | Collection[TokenScope],
    rate_limit: int,
    write: bool = False,
    with_organization: bool = True,
) -> ScimToken:
    """The live token of an `Authorization: Bearer` header, of this scope (or one of these),
    within its rate limit, or TokenRefusedError. `write` refuses a read-only token."""
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise TokenRefusedError(TokenRefusal.MISSING)
    token = authenticate_token(session, secret.strip(), with_organization=with_organization)
    if token is None:
        raise TokenRefusedError(TokenRefusal.INVALID)
    allowed = {scope} if isinstance(scope, TokenScope) else scope
    if token.scope not in allowed:
        raise TokenRefusedError(TokenRefusal.WRONG_SCOPE)
    if write and token.is_read_only:
        raise TokenRefusedError(TokenRefusal.READ_ONLY)
    wait = ratelimit.retry_after(engine, session, str(token.id), rate_limit)
    if wait is not None:
        raise TokenRefusedError(TokenRefusal.RATE_LIMITED, wait)
    return token
