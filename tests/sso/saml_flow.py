"""Test helpers for SAML logins: organization and connection setup, and the browser's part of
the flow (our login URL with its AuthnRequest, the POST to our ACS, the error page)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.config import Settings
from app.models import IdpConnection, User
from tests.sso.saml_idp import SAML, SAMLP, ServiceProviderUrls, TestIdp, decode_redirect

BLUE_URL = "https://blue.example/sso/handoff"
OKTA_ATTRIBUTES = {
    "email": ["jane@acme.example"],
    "firstName": ["Jane"],
    "lastName": ["Doe"],
    "groups": ["Engineering", "Everyone"],
}


def add_connection(
    runner: FlaskCliRunner,
    tmp_path: Path,
    idp: TestIdp,
    *options: str,
    org: str = "acme",
    metadata: bytes | None = None,
) -> dict[str, Any]:
    """`connection add-saml` with the IdP's metadata file; returns the connection as JSON."""
    path = tmp_path / f"idp-{abs(hash((idp.entity_id, options)))}.xml"
    path.write_bytes(metadata if metadata is not None else idp.metadata())
    result = runner.invoke(
        args=["connection", "add-saml", "--org", org, "--metadata", str(path), "--json", *options]
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def sp_urls(app: Flask, connection_id: str) -> ServiceProviderUrls:
    settings: Settings = app.extensions["settings"]
    return ServiceProviderUrls.for_connection(settings.base_url, connection_id)


def connection_row(session: Session, connection_id: str) -> IdpConnection:
    session.expire_all()
    row = session.get(IdpConnection, UUID(connection_id))
    assert row is not None
    return row


@dataclass(frozen=True, slots=True)
class Started:
    """An SP-initiated login as the browser saw it: the AuthnRequest and its RelayState."""

    request_id: str
    relay_state: str
    request: Any
    location: str
    # The cookie that binds the login to this browser: (name, value).
    browser_cookie: tuple[str, str]


def start_login(client: FlaskClient, connection_id: str, return_to: str | None = None) -> Started:
    """Our login URL: decode the AuthnRequest the browser is redirected to the IdP with."""
    query = {"return_to": return_to} if return_to is not None else {}
    response = client.get(f"/sso/saml/{connection_id}/login", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    params = parse_qs(urlsplit(location).query)
    request = decode_redirect(params["SAMLRequest"][0])
    assert request.tag == f"{{{SAMLP}}}AuthnRequest"
    [cookie] = [
        c.split(";", 1)[0].split("=", 1)
        for c in response.headers.getlist("Set-Cookie")
        if c.startswith("blue_saml_")
    ]
    return Started(
        str(request.get("ID")), params["RelayState"][0], request, location, (cookie[0], cookie[1])
    )


def post_acs(
    client: FlaskClient, connection_id: str, saml_response: str, relay_state: str | None = None
) -> TestResponse:
    """The IdP's auto-submitted form, posted by the browser to our ACS."""
    form = {"SAMLResponse": saml_response}
    if relay_state is not None:
        form["RelayState"] = relay_state
    return client.post(f"/sso/saml/{connection_id}/acs", data=form)


def issuer_of(request: Any) -> str:
    issuer = request.find(f"{{{SAML}}}Issuer")
    assert issuer is not None
    return str(issuer.text)


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/sso/session")
    assert response.status_code in (200, 401)
    return response.status_code == 200


def user_named(session: Session, user_name: str) -> User:
    session.expire_all()
    user = session.scalar(select(User).where(User.user_name_key == user_name.lower()))
    assert user is not None
    return user
