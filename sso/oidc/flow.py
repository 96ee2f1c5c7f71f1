"""The authorization code flow with PKCE: the request that starts a login and the callback
that finishes it, down to the verified claims."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from app.provisioning import LoginClaims
from sso.oidc.client import OidcClient
from sso.oidc.discovery import ProviderMetadata
from sso.oidc.settings import OidcError, OidcSettings
from sso.oidc.tokens import ID_TOKEN_ONLY, check_response_issuer, login_claims


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """A new authorization request: what to remember (state, nonce, verifier) and where to go."""

    state: str
    nonce: str
    code_verifier: str
    url: str


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """The query parameters the provider sent the browser back with."""

    code: str | None = None
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Self:
        return cls(
            code=params.get("code") or None,
            iss=params.get("iss"),
            error=params.get("error") or None,
            error_description=params.get("error_description") or None,
        )


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the login's start remembered, taken back (once) at the callback."""

    nonce: str
    code_verifier: str
    redirect_uri: str


def start_authorization(
    settings: OidcSettings, redirect_uri: str, metadata: ProviderMetadata
) -> AuthorizationStart:
    """An authorization code request with PKCE S256 (RFC 7636), state and nonce."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 §4.1 wants 43-128
    challenge: str = create_s256_code_challenge(verifier)
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(settings.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    endpoint = metadata.authorization_endpoint
    separator = "&" if urlsplit(endpoint).query else "?"
    return AuthorizationStart(state, nonce, verifier, endpoint + separator + urlencode(params))


def finish_login(
    client: OidcClient,
    settings: OidcSettings,
    client_secret: str,
    response: AuthorizationResponse,
    pending: PendingLogin,
) -> LoginClaims:
    """Check the authorization response, redeem the code, verify the ID token (and UserInfo)
    and return the verified claims a login is made of."""
    metadata = client.discover(settings.issuer)
    check_response_issuer(metadata, settings, response.iss)
    if response.error is not None:
        shown = response.error
        if response.error_description:
            shown += f": {response.error_description[:300]}"
        raise OidcError("idp_error", f"The identity provider answered with an error ({shown}).")
    if not response.code:
        raise OidcError("code_missing", "The identity provider sent no authorization code.")
    id_token, access_token = client.redeem_code(
        metadata,
        settings,
        client_secret,
        response.code,
        pending.redirect_uri,
        pending.code_verifier,
    )
    claims = client.verify_id_token(metadata, settings, id_token, pending.nonce)
    if settings.use_userinfo:
        if access_token is None or metadata.userinfo_endpoint is None:
            raise OidcError("userinfo", "The identity provider offers no UserInfo endpoint.")
        extra = client.userinfo(metadata.userinfo_endpoint, access_token)
        # OIDC Core §5.3.2: the UserInfo response is about the ID token's subject, or no one.
        sub = extra.get("sub")
        if not isinstance(sub, str) or not hmac.compare_digest(
            sub.encode(), str(claims["sub"]).encode()
        ):
            raise OidcError(
                "userinfo_sub", "The identity provider's UserInfo is about someone else."
            )
        claims = {**claims, **{k: v for k, v in extra.items() if k not in ID_TOKEN_ONLY}}
    return login_claims(settings, claims)
