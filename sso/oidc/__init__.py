"""OpenID Connect relying party: a typed wrapper over Authlib and joserfc.

The one place Authlib's and joserfc's loosely typed values (and `Any`) appear: callers get
dataclasses and `LoginClaims`, or an `OidcError` that says why a login is refused. One module per
capability: `settings` (what a connection stores), `discovery` (the provider's document),
`client` (discovery and JWKS caches, token endpoint, UserInfo, ID token signature), `flow` (the
authorization code flow with PKCE), `tokens` (validating what the provider sends), over
`transport` (JSON over https).
"""

from sso.oidc.client import OidcClient
from sso.oidc.discovery import ProviderMetadata
from sso.oidc.flow import (
    AuthorizationResponse,
    AuthorizationStart,
    PendingLogin,
    finish_login,
    start_authorization,
)
from sso.oidc.settings import OidcError, OidcSettings, SubjectMode
from sso.oidc.tokens import login_claims

__all__ = [
    "AuthorizationResponse",
    "AuthorizationStart",
    "OidcClient",
    "OidcError",
    "OidcSettings",
    "PendingLogin",
    "ProviderMetadata",
    "SubjectMode",
    "finish_login",
    "login_claims",
    "start_authorization",
]
