"""The console's test sign-in: the real SAML or OIDC flow runs against the test IdPs, and on
return nothing is provisioned (no user created or updated, no session, no hand-off); a page
shows what the IdP sent and the mapping rules it would match."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.models import AuditEvent, IdpConnection, Organization, SsoSession, User
from sso.console_setup import TEST_PATH
from tests.console.support import console_link, post_form, sign_in_with_link
from tests.sso import oidc_flow
from tests.sso.flow import setup_org
from tests.sso.oidc_provider import OidcProvider, running_provider
from tests.sso.saml_flow import OKTA_ATTRIBUTES, add_connection, post_acs, sp_urls, start_login
from tests.sso.saml_idp import TestIdp, decode_redirect, key_pair

ACME_IDP = "https://acme.okta.example/app/blue/exk1"


@pytest.fixture
def acme(session: Session) -> Organization:
    return setup_org(session)


@pytest.fixture
def admin(app: Flask, runner: FlaskCliRunner, acme: Organization) -> FlaskClient:
    """A browser signed in to acme's console as org admin."""
    client = app.test_client()
    response = sign_in_with_link(client, console_link(runner, "acme", "it@acme.example"))
    assert response.status_code == 302
    return client


@pytest.fixture
def okta(runner: FlaskCliRunner, tmp_path: Path, acme: Organization) -> tuple[TestIdp, str]:
    idp = TestIdp(ACME_IDP, key_pair("acme-test-sign-in"))
    document = add_connection(runner, tmp_path, idp, "--preset", "okta")
    return idp, str(document["id"])


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as provider:
        yield provider


def nothing_provisioned(session: Session, response: TestResponse) -> None:
    """No user, no session, no session cookie, no login in the audit trail."""
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User)) == 0
    assert session.scalar(select(func.count()).select_from(SsoSession)) == 0
    assert not any(c.startswith("blue_sso") for c in response.headers.getlist("Set-Cookie"))
    logins = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("login.%")))
    assert list(logins) == []


def start_test(admin: FlaskClient, connection_id: str) -> str:
    """Follow the "Test sign-in" link: where the console sends the browser."""
    response = admin.get(f"/console/connections/{connection_id}/test")
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    return_to = parse_qs(urlsplit(location).query)["return_to"][0]
    assert return_to.startswith(TEST_PATH)
    return location


def saml_test_sign_in(
    app: Flask, admin: FlaskClient, okta: tuple[TestIdp, str], attributes: dict[str, list[str]]
) -> TestResponse:
    """The whole SAML flow from the console's button to our ACS."""
    idp, connection_id = okta
    login = admin.get(start_test(admin, connection_id))
    assert login.status_code == 302
    params = parse_qs(urlsplit(login.headers["Location"]).query)
    request_id = str(decode_redirect(params["SAMLRequest"][0]).get("ID"))
    saml_response = idp.response(
        sp_urls(app, connection_id), in_response_to=request_id, attributes=attributes
    )
    return post_acs(admin, connection_id, saml_response, params["RelayState"][0])


def test_saml_test_sign_in_shows_attributes_groups_and_rules_and_provisions_nothing(
    app: Flask, admin: FlaskClient, session: Session, okta: tuple[TestIdp, str]
) -> None:
    response = saml_test_sign_in(app, admin, okta, OKTA_ATTRIBUTES)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert "Nothing was provisioned" in body
    for sent in ("jane@acme.example", "Jane", "Doe", "Engineering", "Everyone"):
        assert sent in body
    assert "displayName = Engineering" in body and "team_member" in body
    assert "Content-Security-Policy" in response.headers
    nothing_provisioned(session, response)
    tested = session.execute(
        select(AuditEvent.actor_type, AuditEvent.actor, AuditEvent.after).where(
            AuditEvent.action == "connection.tested"
        )
    ).one()
    assert tested.actor_type == "console" and tested.actor == "it@acme.example"
    assert tested.after["email"] == "jane@acme.example" and tested.after["groups"] == 2


def test_a_test_sign_in_without_groups_says_so(
    app: Flask, admin: FlaskClient, session: Session, okta: tuple[TestIdp, str]
) -> None:
    attributes = {k: v for k, v in OKTA_ATTRIBUTES.items() if k != "groups"}
    response = saml_test_sign_in(app, admin, okta, attributes)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert "The IdP sent no groups" in body and "No mapping rule matches" in body
    nothing_provisioned(session, response)


def test_a_forged_test_marker_is_refused_and_never_taken_for_a_login(
    app: Flask, client: FlaskClient, session: Session, okta: tuple[TestIdp, str]
) -> None:
    idp, connection_id = okta
    started = start_login(client, connection_id, return_to=f"{TEST_PATH}forged.marker")
    saml_response = idp.response(
        sp_urls(app, connection_id), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(client, connection_id, saml_response, started.relay_state)
    assert response.status_code == 400
    assert "not started from the console" in response.get_data(as_text=True)
    nothing_provisioned(session, response)


def test_a_marker_for_another_connection_is_refused(
    app: Flask,
    admin: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    okta: tuple[TestIdp, str],
) -> None:
    idp, connection_id = okta
    other = TestIdp("https://other.okta.example/app/blue", key_pair("other-test-sign-in"))
    other_id = str(add_connection(runner, tmp_path, other, "--name", "Other")["id"])
    marker = parse_qs(urlsplit(start_test(admin, other_id)).query)["return_to"][0]
    started = start_login(admin, connection_id, return_to=marker)
    saml_response = idp.response(
        sp_urls(app, connection_id), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(admin, connection_id, saml_response, started.relay_state)
    assert response.status_code == 400
    assert "another connection" in response.get_data(as_text=True)
    nothing_provisioned(session, response)


def test_a_switched_off_connection_is_not_tested(
    admin: FlaskClient, session: Session, okta: tuple[TestIdp, str]
) -> None:
    _idp, connection_id = okta
    assert post_form(admin, f"/console/connections/{connection_id}/disable").status_code == 303
    response = admin.get(f"/console/connections/{connection_id}/test")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/console/connections/{connection_id}"


def test_oidc_test_sign_in_shows_claims_and_provisions_nothing(
    app: Flask,
    admin: FlaskClient,
    session: Session,
    acme: Organization,
    provider: OidcProvider,
) -> None:
    connection: IdpConnection = oidc_flow.add_connection(app, session, acme, provider)
    login = admin.get(start_test(admin, str(connection.id)))
    assert login.status_code == 302
    response = oidc_flow.callback(admin, oidc_flow.authorize(login.headers["Location"]))
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    for sent in ("00u-ada", "ada@acme.example", "Ada", "Lovelace", "Engineering"):
        assert sent in body
    assert "displayName = Engineering" in body
    nothing_provisioned(session, response)
