"""Test helpers for OIDC logins: organization and connection setup, and the browser's part of
the flow (our login URL, the provider's authorization endpoint, our callback)."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import crypto
from app.config import Settings
from app.models import IdpConnection, Organization
from sso.oidc import OidcSettings
from tests.sso.flow import (
    service_for,
)
from tests.sso.oidc_provider import OidcProvider

BLUE_URL = "https://acme.blue.example"


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
