"""What an SSO connection is to the rest of sso/: how a URL finds it, the names of its stored
secrets, the values an IT admin pastes into the IdP, how admins see it, and the OIDC client its
logins share."""

from __future__ import annotations

from uuid import UUID

from flask import current_app
from sqlalchemy.orm import Session

from app.models import IdpConnection
from app.web import settings
from sso.oidc import OidcClient

# The keys of IdpConnection.encrypted_secrets.
SP_KEY_SECRET = "sp_private_key"
CLIENT_SECRET = "client_secret"


def find_connection(session: Session, connection_id: str, protocol: str) -> IdpConnection | None:
    """The connection a URL names, when it exists and speaks `protocol`; None otherwise."""
    try:
        parsed = UUID(connection_id)
    except ValueError:
        return None
    connection = session.get(IdpConnection, parsed)
    return connection if connection is not None and connection.protocol == protocol else None


def sp_urls(connection: IdpConnection) -> dict[str, str]:
    """The values an IT admin pastes into the IdP for this connection."""
    base = settings().base_url
    cid = connection.id
    urls = {"login_url": f"{base}/sso/{connection.protocol}/{cid}/login"}
    if connection.protocol == "saml":
        urls |= {
            "entity_id": f"{base}/sso/saml/{cid}/metadata",
            "metadata_url": f"{base}/sso/saml/{cid}/metadata",
            "acs_url": f"{base}/sso/saml/{cid}/acs",
            "slo_url": f"{base}/sso/saml/{cid}/slo",
        }
    else:
        urls |= {"redirect_uri": f"{base}/sso/oidc/{cid}/callback"}
    return urls


def connection_document(connection: IdpConnection) -> dict[str, object]:
    """A connection as shown to admins: settings, switches and the SP values; never secrets."""
    return {
        "id": str(connection.id),
        "name": connection.name,
        "protocol": connection.protocol,
        "enabled": connection.is_enabled,
        "jit": connection.is_jit_enabled,
        "settings": connection.settings,
        "secrets": sorted(connection.encrypted_secrets),
        **sp_urls(connection),
    }


def oidc_client() -> OidcClient:
    """The application's OIDC client, whose discovery and JWKS caches its requests share."""
    client: OidcClient | None = current_app.extensions.get("oidc_client")
    if client is None:
        # Plain http only to this machine, and never in production (tests run a local provider).
        client = OidcClient(allow_http_loopback=not settings().is_production)
        client = current_app.extensions.setdefault("oidc_client", client)
    return client
