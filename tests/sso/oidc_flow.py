"""Test helpers for OIDC logins: organization and connection setup, and the browser's part of
the flow (our login URL, the provider's authorization endpoint, our callback)."""

from __future__ import annotations

import http.client
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import crypto, organizations
from app.audit import Actor
from app.config import Settings
from app.models import AuditEvent, IdpConnection, Organization
from app.provisioning import ProvisioningService, RuleSpec
from sso.oidc import OidcSettings
from tests.sso.oidc_provider import OidcProvider

ACTOR = Actor(kind="cli", label="test")
BLUE_URL = "https://acme.blue.example"


def setup_org(session: Session, slug: str = "acme") -> Organization:
    """An organization whose Engineering group members are team members everywhere."""
    organization = organizations.create_organization(session, slug.title(), slug, 100)
    service_for(session, organization).create_rule(
        RuleSpec("displayName", "Engineering", "team_member")
    )
    session.commit()
    return organization


def service_for(session: Session, organization: Organization) -> ProvisioningService:
    return ProvisioningService(session, organization, ACTOR)


def add_connection(
    app: Flask,
    session: Session,
    organization: Organization,
    provider: OidcProvider,
    name: str = "Okta",
    jit: bool = True,
    **options: Any,
) -> IdpConnection:
    """An OIDC connection to the provider, registered there with its redirect URI."""
    settings: Settings = app.extensions["settings"]
    config = OidcSettings.build(provider.issuer, provider.client_id, **options)
    secret = crypto.encrypt(settings.secret_key, provider.client_secret)
    connection = service_for(session, organization).create_connection(
        name, "oidc", config.as_document(), {"client_secret": secret}, is_jit_enabled=jit
    )
    session.commit()
    provider.redirect_uris.add(f"{settings.base_url}/sso/oidc/{connection.id}/callback")
    return connection


def start(client: FlaskClient, connection: IdpConnection, return_to: str | None = None) -> str:
    """Our login endpoint: the provider's authorization URL it redirects to."""
    query = {"return_to": return_to} if return_to else {}
    response = client.get(f"/sso/oidc/{connection.id}/login", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def authorize(url: str) -> str:
    """The provider's authorization endpoint, over HTTP: where it sends the browser back."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 302, response.status
    location = response.getheader("Location")
    assert location is not None
    return location


def callback(client: FlaskClient, url: str) -> TestResponse:
    """Our callback, as the browser follows the provider's redirect."""
    return client.get(url)


def login(client: FlaskClient, connection: IdpConnection) -> TestResponse:
    """A whole login through the provider; the browser's cookies stay in `client`."""
    return callback(client, authorize(start(client, connection)))


def handoff_token(response: TestResponse) -> str:
    """The token in the hand-off page's auto-submitted form."""
    body = response.get_data(as_text=True)
    match = re.search(r'name="token" value="([^"]+)"', body)
    assert match is not None, body
    return match.group(1)


def refusals(session: Session) -> list[dict[str, Any]]:
    """The recorded login.refused events, oldest first."""
    session.expire_all()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "login.refused").order_by(AuditEvent.id)
    )
    return [dict(event.after or {}) for event in events]


def assert_refused(response: TestResponse, session: Session, reason: str) -> str:
    """The browser got the error page and the audit trail says why; returns the page."""
    body = response.get_data(as_text=True)
    assert response.status_code == 403, body
    assert "Sign-in refused" in body
    recorded = refusals(session)
    assert recorded, "no login.refused event"
    assert recorded[-1]["reason"] == reason, recorded[-1]
    cookies = response.headers.getlist("Set-Cookie")
    assert not any(cookie.startswith("blue_sso=") for cookie in cookies)
    return body
