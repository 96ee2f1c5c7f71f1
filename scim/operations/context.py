"""Who is calling: the bearer token's organization as a service context, and what an operation
answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import organizations
from app.config import Settings
from app.provisioning import Actor, ProvisioningService
from scim.errors import ScimError


@dataclass(frozen=True, slots=True)
class Context:
    """One request's caller: its session, its organization's service and its settings."""

    session: Session
    service: ProvisioningService
    settings: Settings
    base_url: str
    is_read_only: bool = False
    token_id: UUID | None = None

    def require_write(self) -> None:
        """403 for a read-only token (RFC 7644 §3.12: not permitted by this authorization)."""
        if self.is_read_only:
            raise ScimError(HTTPStatus.FORBIDDEN, "this SCIM token is read-only")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an operation answers: a JSON body (None for none), a status and headers."""

    body: Any
    status: int = HTTPStatus.OK
    headers: Mapping[str, str] = field(default_factory=dict)


def authenticate(
    session: Session,
    engine: Engine,
    authorization: str,
    settings: Settings,
    base_url: str,
    request_id: str | None = None,
    source_ip: str | None = None,
    user_agent: str | None = None,
    reads_only: bool = False,
) -> Context:
    """The bearer token's organization as a service context, or 401."""
    try:
        token = organizations.authorize_bearer(
            session,
            engine,
            authorization,
            organizations.TokenScope.SCIM,
            settings.scim_rate_limit,
            with_organization=not reads_only,
        )
    except organizations.TokenRefusedError as refused:
        raise token_error(refused, settings.scim_rate_limit) from None
    actor = Actor(
        kind="scim",
        label=token.label,
        request_id=request_id,
        source_ip=source_ip,
        user_agent=user_agent,
    )
    service = ProvisioningService(
        session, token.org_id if reads_only else token.organization, actor
    )
    return Context(
        session=session,
        service=service,
        settings=settings,
        base_url=base_url,
        is_read_only=token.is_read_only,
        token_id=token.id,
    )


def token_error(refused: organizations.TokenRefusedError, rate_limit: int) -> ScimError:
    """A refused bearer token as SCIM words it (RFC 6750 challenges on 401)."""
    match refused.refusal:
        case organizations.TokenRefusal.MISSING:
            challenge = {"WWW-Authenticate": 'Bearer realm="scim"'}
            return ScimError(
                HTTPStatus.UNAUTHORIZED, "a bearer token is required", headers=challenge
            )
        case organizations.TokenRefusal.INVALID:
            challenge = {"WWW-Authenticate": 'Bearer realm="scim", error="invalid_token"'}
            return ScimError(
                HTTPStatus.UNAUTHORIZED, "the bearer token is invalid or revoked", headers=challenge
            )
        case organizations.TokenRefusal.RATE_LIMITED:
            return ScimError(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"more than {rate_limit} requests a minute with this token",
                headers={"Retry-After": str(refused.retry_after)},
            )
    return ScimError(
        HTTPStatus.FORBIDDEN,
        "this token is not for SCIM (its scope is the admin API or the event feed)",
    )
