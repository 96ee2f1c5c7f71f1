"""SAML 2.0 logins with real signed responses from a test IdP, through Flask's test client.

Every refusal test checks the error page, the `login.refused` audit event with its reason, and
that no session was opened.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app, crypto
from app.config import Settings
from app.db import utcnow
from app.models import (
    AuditEvent,
    IdpConnection,
    LoginIdentity,
    Membership,
    Organization,
    SsoReplay,
    SsoRequest,
    SsoSession,
    User,
)
from app.provisioning import UserSpec
from sso import saml
from tests.sso.flow import (
    assert_refused,
    handoff_token,
    refusals,
    service_for,
    setup_org,
)
from tests.sso.saml_flow import (
    BLUE_URL,
    OKTA_ATTRIBUTES,
    add_connection,
    connection_row,
    issuer_of,
    post_acs,
    signed_in,
    sp_urls,
    start_login,
    user_named,
)
from tests.sso.saml_idp import (
    DS,
    EMAIL,
    POST_BINDING,
    RESPONDER,
    SAML,
    SAMLP,
    TRANSIENT,
    TestIdp,
    assertion_of,
    decode_redirect,
    encode,
    encrypt_assertion,
    key_pair,
    new_id,
    sign,
)

ACME_IDP = "https://acme.okta.example/app/blue/exk1"
GLOBEX_IDP = "https://globex.okta.example/app/blue/exk2"
ENTRA_IDP = "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/"
MS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
ENTRA_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ENTRA_OVERAGE = "http://schemas.microsoft.com/claims/groups.link"
_NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": DS, "saml": SAML, "samlp": SAMLP}


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp(ACME_IDP, key_pair("acme-idp"))


@pytest.fixture
def acme(session: Session) -> Organization:
    return setup_org(session)


@pytest.fixture
def okta(runner: FlaskCliRunner, tmp_path: Path, acme: Organization, idp: TestIdp) -> str:
    return str(add_connection(runner, tmp_path, idp, "--preset", "okta")["id"])


@pytest.fixture
def idp_initiated(runner: FlaskCliRunner, tmp_path: Path, acme: Organization, idp: TestIdp) -> str:
    document = add_connection(
        runner, tmp_path, idp, "--preset", "okta", "--allow-idp-initiated", "--name", "Okta IdP"
    )
    return str(document["id"])


@pytest.fixture
def encrypted(runner: FlaskCliRunner, tmp_path: Path, acme: Organization, idp: TestIdp) -> str:
    document = add_connection(
        runner, tmp_path, idp, "--preset", "okta", "--encrypt-assertions", "--name", "Encrypted"
    )
    return str(document["id"])


def sp_certificate(session: Session, connection_id: str) -> bytes:
    certificate = connection_row(session, connection_id).settings["sp_certificate"]
    assert isinstance(certificate, str)
    return certificate.encode()


def login(
    app: Flask,
    client: FlaskClient,
    idp: TestIdp,
    connection_id: str,
    attributes: dict[str, list[str]] | None = None,
    **options: Any,
) -> Any:
    """A whole SP-initiated login; returns the ACS response."""
    started = start_login(client, connection_id)
    saml_response = idp.response(
        sp_urls(app, connection_id),
        in_response_to=started.request_id,
        attributes=OKTA_ATTRIBUTES if attributes is None else attributes,
        **options,
    )
    return post_acs(client, connection_id, saml_response, started.relay_state)


def signed_root(idp: TestIdp, app: Flask, connection_id: str, **options: Any) -> Any:
    """A response whose assertion the IdP signed, as XML, for tampering."""
    root = idp.build_response(sp_urls(app, connection_id), attributes=OKTA_ATTRIBUTES, **options)
    sign(assertion_of(root), idp.keys)
    return root


def no_sessions(session: Session) -> bool:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(SsoSession)) == 0


# -------------------------------------------------------------- connection setup (CLI)


def test_add_saml_imports_metadata_and_prints_the_sp_values(
    app: Flask,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
) -> None:
    path = tmp_path / "idp.xml"
    path.write_bytes(idp.metadata())
    result = runner.invoke(
        args=[
            "connection",
            "add-saml",
            "--org",
            "acme",
            "--metadata",
            str(path),
            "--preset",
            "okta",
            "--groups-attribute",
            "memberOf",
        ]
    )
    assert result.exit_code == 0, result.output
    connection = session.scalars(select(IdpConnection)).one()
    sp = sp_urls(app, str(connection.id))
    assert str(connection.id) in result.output
    for value in (sp.acs_url, sp.entity_id, f"http://localhost/sso/saml/{connection.id}/login"):
        assert value in result.output
    assert saml.certificate_fingerprint(idp.keys.cert_b64) in result.output
    assert connection.protocol == "saml" and connection.name == "Okta SAML"
    stored = connection.settings
    assert stored["idp_entity_id"] == ACME_IDP
    assert stored["sso_url"] == idp.sso_url and stored["sso_binding"] == "redirect"
    assert stored["slo_url"] == idp.slo_url
    assert stored["certificates"] == [idp.keys.cert_b64]
    assert stored["name_id_format"] == saml.NAMEID_PERSISTENT
    assert stored["email_attribute"] == "email"
    assert stored["given_name_attribute"] == "firstName"
    assert stored["surname_attribute"] == "lastName"
    assert stored["groups_attribute"] == "memberOf"
    assert stored["want_assertions_signed"] is True
    assert stored["want_response_signed"] is False
    assert stored["allow_idp_initiated"] is False
    assert connection.encrypted_secrets == {}


def test_entra_preset_uses_the_object_id_and_microsoft_claim_names(
    runner: FlaskCliRunner, tmp_path: Path, session: Session, acme: Organization
) -> None:
    entra = TestIdp(ENTRA_IDP, key_pair("entra-idp"))
    document = add_connection(runner, tmp_path, entra, "--preset", "entra", "--no-jit")
    stored = document["settings"]
    assert document["name"] == "Entra ID SAML" and document["jit"] is False
    assert stored["subject_attribute"] == ENTRA_OID
    assert stored["groups_attribute"] == ENTRA_GROUPS
    assert stored["email_attribute"] == f"{MS}/emailaddress"
    assert stored["given_name_attribute"] == f"{MS}/givenname"
    assert stored["surname_attribute"] == f"{MS}/surname"
    assert stored["name_id_format"] == saml.NAMEID_UNSPECIFIED


def test_encrypted_assertions_get_a_key_stored_encrypted_and_signed_metadata(
    app: Flask, client: FlaskClient, session: Session, encrypted: str
) -> None:
    row = connection_row(session, encrypted)
    settings: Settings = app.extensions["settings"]
    token = row.encrypted_secrets["sp_private_key"]
    assert "PRIVATE KEY" not in token and "PRIVATE KEY" not in json.dumps(row.settings)
    assert "BEGIN PRIVATE KEY" in crypto.decrypt(settings.secret_key, token)
    assert row.settings["encrypt_assertions"] is True

    response = client.get(f"/sso/saml/{encrypted}/metadata")
    assert response.status_code == 200
    assert response.content_type.startswith("application/samlmetadata+xml")
    root = etree.fromstring(response.data)
    assert root.xpath("//md:KeyDescriptor[@use='encryption']", namespaces=_NS)
    # Signed with the connection's key: verify it with the published SP certificate.
    signature = root.find(f"{{{DS}}}Signature")
    assert signature is not None
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(
        sp_certificate(session, encrypted), xmlsec.constants.KeyDataFormatCertPem
    )
    xmlsec.tree.add_ids(root, ["ID"])
    context.verify(signature)


def test_sp_metadata_names_the_acs_and_entity_id(
    app: Flask, client: FlaskClient, okta: str
) -> None:
    response = client.get(f"/sso/saml/{okta}/metadata")
    assert response.status_code == 200
    root = etree.fromstring(response.data)
    sp = sp_urls(app, okta)
    assert root.get("entityID") == sp.entity_id
    [acs] = root.xpath("//md:AssertionConsumerService", namespaces=_NS)
    assert acs.get("Location") == sp.acs_url and acs.get("Binding") == POST_BINDING
    [slo] = root.xpath("//md:SingleLogoutService", namespaces=_NS)
    assert slo.get("Location") == sp.slo_url
    assert root.find(f"{{{DS}}}Signature") is None  # no SP key, nothing to sign with
    assert client.get("/sso/saml/not-a-uuid/metadata").status_code == 404


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            b'entityID="&e;"/>',
            "not allowed",
        ),
        (b"<not-metadata/>", "no IdP entity id"),
    ],
)
def test_add_saml_refuses_unusable_metadata(
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    metadata: bytes,
    message: str,
) -> None:
    path = tmp_path / "idp.xml"
    path.write_bytes(metadata)
    result = runner.invoke(
        args=["connection", "add-saml", "--org", "acme", "--metadata", str(path)]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert session.scalar(select(func.count()).select_from(IdpConnection)) == 0


def test_add_saml_refuses_metadata_without_a_certificate(
    runner: FlaskCliRunner, tmp_path: Path, session: Session, acme: Organization, idp: TestIdp
) -> None:
    path = tmp_path / "idp.xml"
    path.write_bytes(idp.metadata(certificates=[]))
    result = runner.invoke(
        args=["connection", "add-saml", "--org", "acme", "--metadata", str(path)]
    )
    assert result.exit_code != 0 and "no signing certificate" in result.output
    assert session.scalar(select(func.count()).select_from(IdpConnection)) == 0


def test_metadata_url_must_be_https(
    runner: FlaskCliRunner, session: Session, acme: Organization
) -> None:
    result = runner.invoke(
        args=[
            "connection",
            "add-saml",
            "--org",
            "acme",
            "--metadata-url",
            "http://idp.example/metadata",
        ]
    )
    assert result.exit_code != 0 and "https" in result.output
    assert session.scalar(select(func.count()).select_from(IdpConnection)) == 0


def test_metadata_is_fetched_before_the_unit_of_work(
    app: Flask,
    runner: FlaskCliRunner,
    session: Session,
    acme: Organization,
    idp: TestIdp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound = app.extensions["sessions"].kw["bind"]
    seen: list[bool] = []

    def fetch(url: str) -> bytes:
        seen.append(bound.in_nested_transaction())
        assert url == "https://acme.okta.example/app/exk1/sso/saml/metadata"
        return idp.metadata()

    monkeypatch.setattr(saml, "fetch_idp_metadata", fetch)
    session.commit()
    result = runner.invoke(
        args=[
            "connection",
            "add-saml",
            "--org",
            "acme",
            "--preset",
            "okta",
            "--metadata-url",
            "https://acme.okta.example/app/exk1/sso/saml/metadata",
        ]
    )
    assert result.exit_code == 0, result.output
    assert seen == [False]


def test_certificate_rollover_with_update_saml(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, session: Session, idp: TestIdp, okta: str
) -> None:
    new_keys = key_pair("acme-idp-2026")
    pem = tmp_path / "new.pem"
    pem.write_bytes(new_keys.cert_pem)
    result = runner.invoke(
        args=[
            "connection",
            "update-saml",
            "--org",
            "acme",
            "--id",
            okta,
            "--add-certificate",
            str(pem),
        ]
    )
    assert result.exit_code == 0, result.output
    assert saml.certificate_fingerprint(new_keys.cert_b64) in result.output
    # During the rollover both the old and the new key are trusted.
    assert login(app, app.test_client(), idp, okta).status_code == 302
    assert login(app, app.test_client(), idp, okta, keys=new_keys).status_code == 302

    old = saml.certificate_fingerprint(idp.keys.cert_b64)
    result = runner.invoke(
        args=[
            "connection",
            "update-saml",
            "--org",
            "acme",
            "--id",
            okta,
            "--remove-certificate",
            old,
        ]
    )
    assert result.exit_code == 0, result.output
    assert connection_row(session, okta).settings["certificates"] == [new_keys.cert_b64]
    response = login(app, app.test_client(), idp, okta)
    assert_refused(response, session, "invalid_signature")

    result = runner.invoke(
        args=[
            "connection",
            "update-saml",
            "--org",
            "acme",
            "--id",
            okta,
            "--remove-certificate",
            saml.certificate_fingerprint(new_keys.cert_b64),
        ]
    )
    assert result.exit_code != 0 and "at least one" in result.output


def test_update_saml_reimports_metadata(
    runner: FlaskCliRunner, tmp_path: Path, session: Session, idp: TestIdp, okta: str
) -> None:
    new_keys = key_pair("acme-idp-2026")
    path = tmp_path / "new.xml"
    path.write_bytes(idp.metadata(certificates=[idp.keys, new_keys], with_slo=False))
    result = runner.invoke(
        args=[
            "connection",
            "update-saml",
            "--org",
            "acme",
            "--id",
            okta,
            "--metadata",
            str(path),
            "--allow-idp-initiated",
            "--signed",
            "both",
        ]
    )
    assert result.exit_code == 0, result.output
    stored = connection_row(session, okta).settings
    assert stored["certificates"] == [idp.keys.cert_b64, new_keys.cert_b64]
    assert stored["slo_url"] is None
    assert stored["allow_idp_initiated"] is True
    assert stored["want_response_signed"] is True and stored["want_assertions_signed"] is True
    assert stored["email_attribute"] == "email"  # the preset's attributes stay


# ------------------------------------------------------------------ successful logins


def test_sp_initiated_login_hands_off_to_blue(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp, okta: str
) -> None:
    service_for(session, acme).set_sso_options(blue_url=BLUE_URL)
    session.commit()
    started = start_login(client, okta, return_to="/projects/42")
    sp = sp_urls(app, okta)

    request = started.request
    assert started.location.startswith(idp.sso_url + "?")
    assert started.relay_state == started.request_id
    assert request.get("Destination") == idp.sso_url
    assert request.get("AssertionConsumerServiceURL") == sp.acs_url
    assert request.get("ProtocolBinding") == POST_BINDING
    assert issuer_of(request) == sp.entity_id
    [policy] = request.xpath("samlp:NameIDPolicy", namespaces=_NS)
    assert policy.get("Format") == saml.NAMEID_PERSISTENT
    # No RequestedAuthnContext: it would lock out users who sign in with MFA or passkeys.
    assert not request.xpath("samlp:RequestedAuthnContext", namespaces=_NS)
    pending = session.get(SsoRequest, started.request_id)
    assert pending is not None and pending.used_at is None
    assert pending.return_to == "/projects/42"
    assert timedelta(minutes=9) < pending.expires_at - utcnow() <= timedelta(minutes=10)

    saml_response = idp.response(sp, in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES)
    response = post_acs(client, okta, saml_response, started.relay_state)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert f'action="{BLUE_URL}"' in body
    assert 'name="return_to" value="/projects/42"' in body
    assert "data-autosubmit" in body and "<script>" not in body  # no inline script (CSP)
    assert "form-action 'self' https://blue.example;" in response.headers["Content-Security-Policy"]
    assert handoff_token(response)
    assert any(c.startswith("blue_sso=") for c in response.headers.getlist("Set-Cookie"))

    document = client.get("/sso/session")
    assert document.status_code == 200 and document.json is not None
    assert document.json["user"]["email"] == "jane@acme.example"
    assert document.json["user"]["name"] == "Jane Doe"
    assert document.json["groups"] == ["Engineering", "Everyone"]
    assert document.json["roles"] == {"*": "team_member"}
    assert document.json["seat"] == "paid"

    session.expire_all()
    used = session.get(SsoRequest, started.request_id)
    assert used is not None and used.used_at is not None
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.subject == "00u1jane"
    replay = session.scalars(select(SsoReplay)).one()
    assert replay.expires_at > utcnow() + timedelta(minutes=4)


def test_login_without_blue_url_redirects_to_the_session(
    app: Flask, client: FlaskClient, idp: TestIdp, okta: str
) -> None:
    response = login(app, client, idp, okta)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/sso/session")
    assert client.get("/sso/session").status_code == 200


@pytest.mark.parametrize("signed", ["response", "both"])
def test_response_signatures_as_configured(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
    signed: str,
) -> None:
    connection = str(
        add_connection(runner, tmp_path, idp, "--preset", "okta", "--signed", signed)["id"]
    )
    assert login(app, client, idp, connection, signed=signed).status_code == 302
    # The IdP signs only the assertion: not what this connection asks for.
    response = login(app, app.test_client(), idp, connection, signed="assertion")
    assert_refused(response, session, "invalid_signature")


def test_post_binding_sends_an_auto_submitted_form(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    acme: Organization,
    idp: TestIdp,
) -> None:
    metadata = idp.metadata(sso_binding=POST_BINDING)
    connection = str(
        add_connection(runner, tmp_path, idp, "--preset", "okta", metadata=metadata)["id"]
    )
    page = client.get(f"/sso/saml/{connection}/login")
    body = page.get_data(as_text=True)
    assert page.status_code == 200, body
    assert f'action="{idp.sso_url}"' in body
    fields = dict(
        (name, value)
        for name, value in (
            (node.get("name"), node.get("value")) for node in etree.HTML(body).iter("input")
        )
    )
    request = etree.fromstring(base64.b64decode(fields["SAMLRequest"]))
    assert fields["RelayState"] == request.get("ID")
    saml_response = idp.response(
        sp_urls(app, connection), in_response_to=request.get("ID"), attributes=OKTA_ATTRIBUTES
    )
    assert post_acs(client, connection, saml_response, fields["RelayState"]).status_code == 302


def test_encrypted_assertion_signs_in(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, encrypted: str
) -> None:
    response = login(app, client, idp, encrypted, encrypt_for=sp_certificate(session, encrypted))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert signed_in(client)


def test_a_return_to_off_blue_is_dropped(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp, okta: str
) -> None:
    service_for(session, acme).set_sso_options(blue_url=BLUE_URL)
    session.commit()
    started = start_login(client, okta, return_to="https://evil.example/steal")
    pending = session.get(SsoRequest, started.request_id)
    assert pending is not None and pending.return_to is None
    saml_response = idp.response(
        sp_urls(app, okta), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(client, okta, saml_response, started.relay_state)
    assert response.status_code == 200
    assert "evil.example" not in response.get_data(as_text=True)
    assert 'name="return_to"' not in response.get_data(as_text=True)


# ---------------------------------------------------------------- IdP-initiated logins


def test_idp_initiated_login_is_refused_unless_allowed(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    saml_response = idp.response(sp_urls(app, okta), attributes=OKTA_ATTRIBUTES)
    response = post_acs(client, okta, saml_response)
    assert_refused(response, session, "idp_initiated_not_allowed")
    assert not signed_in(client) and no_sessions(session)


@pytest.mark.parametrize(
    ("relay_state", "return_to"),
    [("/projects/7", "/projects/7"), ("https://evil.example/", None), ("//evil.example", None)],
)
def test_idp_initiated_relay_state_only_to_blue_paths(
    app: Flask,
    client: FlaskClient,
    session: Session,
    acme: Organization,
    idp: TestIdp,
    idp_initiated: str,
    relay_state: str,
    return_to: str | None,
) -> None:
    service_for(session, acme).set_sso_options(blue_url=BLUE_URL)
    session.commit()
    saml_response = idp.response(sp_urls(app, idp_initiated), attributes=OKTA_ATTRIBUTES)
    response = post_acs(client, idp_initiated, saml_response, relay_state)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert "evil.example" not in body
    if return_to is None:
        assert 'name="return_to"' not in body
    else:
        assert f'name="return_to" value="{return_to}"' in body


def test_a_replayed_assertion_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, idp_initiated: str
) -> None:
    saml_response = idp.response(sp_urls(app, idp_initiated), attributes=OKTA_ATTRIBUTES)
    assert post_acs(client, idp_initiated, saml_response).status_code == 302
    other = app.test_client()
    assert_refused(post_acs(other, idp_initiated, saml_response), session, "replayed_assertion")
    assert not signed_in(other)


# ----------------------------------------------------------- InResponseTo and requests


def test_an_unknown_in_response_to_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    saml_response = idp.response(
        sp_urls(app, okta), in_response_to=new_id(), attributes=OKTA_ATTRIBUTES
    )
    assert_refused(post_acs(client, okta, saml_response), session, "unknown_request")
    assert no_sessions(session)


def test_a_request_id_is_used_once(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    sp = sp_urls(app, okta)
    first = idp.response(sp, in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES)
    assert post_acs(client, okta, first, started.relay_state).status_code == 302
    client.post("/sso/logout")
    # The same response again, and a fresh response to the same request: both refused.
    assert_refused(post_acs(client, okta, first, started.relay_state), session, "request_reused")
    second = idp.response(sp, in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES)
    assert_refused(post_acs(client, okta, second, started.relay_state), session, "request_reused")
    assert not signed_in(client)


def test_an_expired_request_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    pending = session.get(SsoRequest, started.request_id)
    assert pending is not None
    pending.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    saml_response = idp.response(
        sp_urls(app, okta), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(client, okta, saml_response, started.relay_state)
    assert_refused(response, session, "request_expired")
    assert no_sessions(session)


def test_a_response_posted_from_another_browser_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    # Login CSRF: the attacker's own response, posted from the victim's browser.
    started = start_login(client, okta)
    saml_response = idp.response(
        sp_urls(app, okta), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    victim = app.test_client()
    response = post_acs(victim, okta, saml_response, started.relay_state)
    assert_refused(response, session, "request_browser")
    assert not signed_in(victim) and no_sessions(session)


def test_a_relay_state_of_another_request_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    other = start_login(client, okta)
    saml_response = idp.response(
        sp_urls(app, okta), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(client, okta, saml_response, other.relay_state)
    assert_refused(response, session, "relay_state_mismatch")


def test_in_response_to_only_on_the_unsigned_response_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    # The assertion is IdP-initiated; someone added InResponseTo to the unsigned envelope.
    started = start_login(client, okta)
    saml_response = idp.response(
        sp_urls(app, okta),
        in_response_to=None,
        response_in_response_to=started.request_id,
        attributes=OKTA_ATTRIBUTES,
    )
    response = post_acs(client, okta, saml_response, started.relay_state)
    assert_refused(response, session, "in_response_to_mismatch")


# ------------------------------------------------------------- signatures and keys


def test_an_unsigned_response_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    response = login(app, client, idp, okta, signed="none")
    assert_refused(response, session, "invalid_signature")
    assert no_sessions(session)


def test_a_response_signed_with_a_foreign_key_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    # The attacker's certificate travels in the Signature's KeyInfo; only ours may count.
    response = login(app, client, idp, okta, keys=key_pair("attacker"), signed="both")
    assert_refused(response, session, "invalid_signature")
    assert no_sessions(session)


def test_a_tampered_assertion_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    root = signed_root(idp, app, okta, in_response_to=started.request_id)
    name_id = root.find(f".//{{{SAML}}}NameID")
    name_id.text = "00u1admin"
    response = post_acs(client, okta, encode(root), started.relay_state)
    assert_refused(response, session, "invalid_signature")
    assert no_sessions(session)


def _two_assertions(root: Any) -> None:
    # A second, unsigned assertion ahead of the signed one.
    evil = copy.deepcopy(assertion_of(root))
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    evil.set("ID", new_id())
    evil.find(f".//{{{SAML}}}NameID").text = "00u1admin"
    assertion_of(root).addprevious(evil)


def _signed_one_in_extensions(root: Any) -> None:
    # XSW: the signed assertion hidden in Extensions, an evil copy with its ID in its place.
    signed = assertion_of(root)
    evil = copy.deepcopy(signed)
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    evil.find(f".//{{{SAML}}}NameID").text = "00u1admin"
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.find(f"{{{SAML}}}Issuer").addnext(extensions)
    signed.addprevious(evil)
    extensions.append(signed)


def _signed_one_in_advice(root: Any) -> None:
    # XSW: the evil assertion carries the signed original inside its Advice.
    signed = assertion_of(root)
    evil = copy.deepcopy(signed)
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    evil.set("ID", new_id())
    evil.find(f".//{{{SAML}}}NameID").text = "00u1admin"
    advice = etree.Element(f"{{{SAML}}}Advice")
    evil.find(f"{{{SAML}}}Conditions").addnext(advice)
    signed.addprevious(evil)
    advice.append(signed)


def _signature_moved_to_response(root: Any) -> None:
    # XSW: the assertion's signature moved up to the Response, the assertion altered.
    signed = assertion_of(root)
    signature = signed.find(f"{{{DS}}}Signature")
    root.find(f"{{{SAML}}}Issuer").addnext(signature)
    signed.find(f".//{{{SAML}}}NameID").text = "00u1admin"


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (_two_assertions, "wrong_assertion_count"),
        (_signed_one_in_extensions, "invalid_signature"),
        (_signed_one_in_advice, "wrong_assertion_count"),
        (_signature_moved_to_response, "invalid_signature"),
    ],
)
def test_signature_wrapping_is_refused(
    app: Flask,
    client: FlaskClient,
    session: Session,
    idp: TestIdp,
    okta: str,
    attack: Any,
    reason: str,
) -> None:
    started = start_login(client, okta)
    root = signed_root(idp, app, okta, in_response_to=started.request_id)
    attack(root)
    response = post_acs(client, okta, encode(root), started.relay_state)
    assert_refused(response, session, reason)
    assert session.scalar(select(func.count()).select_from(User)) == 0
    assert no_sessions(session)


def test_a_comment_in_the_name_id_is_refused(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
) -> None:
    connection = str(add_connection(runner, tmp_path, idp, "--name-id-format", "email")["id"])
    started = start_login(client, connection)
    # The attacker owns jane@acme.example.evil.example at the IdP and gets it signed; a
    # comment makes a naive parser read jane@acme.example. The signature still verifies
    # (canonicalization drops comments), so only refusing comments stops it.
    root = idp.build_response(
        sp_urls(app, connection),
        name_id="jane@acme.example.evil.example",
        name_id_format=EMAIL,
        in_response_to=started.request_id,
    )
    sign(assertion_of(root), idp.keys)
    name_id = root.find(f".//{{{SAML}}}NameID")
    name_id.text = "jane@acme.example"
    comment = etree.Comment("")
    comment.tail = ".evil.example"
    name_id.append(comment)
    response = post_acs(client, connection, encode(root), started.relay_state)
    assert_refused(response, session, "forbidden_xml")
    assert no_sessions(session)


@pytest.mark.parametrize(
    "doctype",
    [
        b'<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        b'<!DOCTYPE samlp:Response [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]>',
        b'<!DOCTYPE samlp:Response SYSTEM "http://attacker.example/evil.dtd">',
    ],
)
def test_doctype_and_entity_payloads_are_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str, doctype: bytes
) -> None:
    started = start_login(client, okta)
    root = signed_root(idp, app, okta, in_response_to=started.request_id)
    xml = etree.tostring(root)
    payload = b'<?xml version="1.0"?>' + doctype + xml
    response = post_acs(client, okta, base64.b64encode(payload).decode(), started.relay_state)
    assert_refused(response, session, "forbidden_xml")
    assert no_sessions(session)


@pytest.mark.parametrize(
    ("signature_method", "digest_method"),
    [
        (xmlsec.constants.TransformRsaSha1, xmlsec.constants.TransformSha1),
        (xmlsec.constants.TransformRsaSha256, xmlsec.constants.TransformSha1),
        (xmlsec.constants.TransformRsaSha1, xmlsec.constants.TransformSha256),
    ],
)
def test_sha1_is_refused(
    app: Flask,
    client: FlaskClient,
    session: Session,
    idp: TestIdp,
    okta: str,
    signature_method: Any,
    digest_method: Any,
) -> None:
    started = start_login(client, okta)
    root = idp.build_response(
        sp_urls(app, okta), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    sign(assertion_of(root), idp.keys, signature_method, digest_method)
    response = post_acs(client, okta, encode(root), started.relay_state)
    assert_refused(response, session, "deprecated_algorithm")
    assert no_sessions(session)


def test_a_non_success_status_never_signs_in(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    # Even with a valid signed assertion inside.
    response = login(app, client, idp, okta, status=RESPONDER, signed="both")
    assert_refused(response, session, "status_not_success")
    assert no_sessions(session)


def test_exactly_one_assertion(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    sp = sp_urls(app, okta)
    root = signed_root(idp, app, okta, in_response_to=started.request_id)
    second = assertion_of(
        idp.build_response(sp, in_response_to=started.request_id, name_id="00u1other")
    )
    sign(second, idp.keys)
    root.append(second)
    response = post_acs(client, okta, encode(root), started.relay_state)
    assert_refused(response, session, "wrong_assertion_count")


def test_a_connection_without_certificate_fails_closed(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    service_for(session, acme).update_connection(okta, settings={"certificates": []})
    session.commit()
    saml_response = idp.response(
        sp_urls(app, okta), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(client, okta, saml_response, started.relay_state)
    assert_refused(response, session, "no_certificate")
    assert_refused(client.get(f"/sso/saml/{okta}/login"), session, "no_certificate")
    assert no_sessions(session)


# ------------------------------------------------------------ conditions and addresses


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"audience": "https://other.example/sp"}, "wrong_audience"),
        # Audience is required, not only checked when present.
        ({"audience": None}, "wrong_audience"),
        ({"destination": None}, "wrong_destination"),
        ({"destination": "https://other.example/acs"}, "wrong_destination"),
        ({"destination": "{acs}-evil"}, "wrong_destination"),
        ({"recipient": None}, "wrong_recipient"),
        ({"recipient": "https://evil.example/?next={acs}"}, "wrong_recipient"),
        ({"issuer": "https://evil.example/idp"}, "wrong_issuer"),
        (
            {"issuer": "https://evil.example/idp", "response_issuer": None},
            "wrong_issuer",
        ),
        ({"response_issuer": "https://evil.example/idp"}, "wrong_issuer"),
        ({"clock_offset": timedelta(minutes=-20)}, "expired"),
        # Past our 3-minute skew, though within python3-saml's own 5 minutes.
        ({"clock_offset": timedelta(minutes=-9)}, "expired"),
        ({"clock_offset": timedelta(minutes=5)}, "not_yet_valid"),
        ({"clock_offset": timedelta(minutes=10)}, "not_yet_valid"),
    ],
)
def test_conditions_and_addresses_are_enforced(
    app: Flask,
    client: FlaskClient,
    session: Session,
    idp: TestIdp,
    okta: str,
    options: dict[str, Any],
    reason: str,
) -> None:
    acs = sp_urls(app, okta).acs_url
    options = {k: v.format(acs=acs) if isinstance(v, str) else v for k, v in options.items()}
    response = login(app, client, idp, okta, signed="both", **options)
    assert_refused(response, session, reason)
    assert not signed_in(client) and no_sessions(session)


@pytest.mark.parametrize("offset", [timedelta(minutes=2), timedelta(minutes=-2)])
def test_a_small_clock_skew_is_tolerated(
    app: Flask, client: FlaskClient, idp: TestIdp, okta: str, offset: timedelta
) -> None:
    response = login(app, client, idp, okta, clock_offset=offset)
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.mark.parametrize("variant", ["as_posted", "destination_rewritten", "issuer_removed"])
def test_another_organizations_response_is_refused(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    okta: str,
    variant: str,
) -> None:
    setup_org(session, "globex")
    globex_idp = TestIdp(GLOBEX_IDP, key_pair("globex-idp"))
    globex = str(
        add_connection(
            runner, tmp_path, globex_idp, "--preset", "okta", "--allow-idp-initiated", org="globex"
        )["id"]
    )
    options: dict[str, Any] = {}
    if variant != "as_posted":
        options["destination"] = sp_urls(app, okta).acs_url
    if variant == "issuer_removed":
        options["response_issuer"] = None
    # Signed by Globex's IdP for Globex's connection, posted to Acme's ACS.
    saml_response = globex_idp.response(sp_urls(app, globex), attributes=OKTA_ATTRIBUTES, **options)
    expected = {
        "as_posted": "wrong_destination",
        "destination_rewritten": "wrong_issuer",
        "issuer_removed": "invalid_signature",
    }[variant]
    assert_refused(post_acs(client, okta, saml_response), session, expected)
    assert no_sessions(session)


# ---------------------------------------------------------------- encrypted assertions


def test_a_plain_assertion_is_refused_when_encryption_is_required(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, encrypted: str
) -> None:
    assert_refused(login(app, client, idp, encrypted), session, "assertion_not_encrypted")


def test_decryption_and_signature_failures_give_one_error(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, encrypted: str
) -> None:
    sp = sp_urls(app, encrypted)
    certificate = sp_certificate(session, encrypted)
    bodies = []

    # 1. A ciphertext modified in transit.
    started = start_login(client, encrypted)
    root = signed_root(idp, app, encrypted, in_response_to=started.request_id)
    wrapper = encrypt_assertion(root, certificate)
    cipher = wrapper.xpath(
        "xenc:EncryptedData/xenc:CipherData/xenc:CipherValue",
        namespaces={"xenc": "http://www.w3.org/2001/04/xmlenc#"},
    )[0]
    raw = bytearray(base64.b64decode(cipher.text))
    raw[-20] ^= 0x5A
    cipher.text = base64.b64encode(bytes(raw)).decode()
    response = post_acs(client, encrypted, encode(root), started.relay_state)
    bodies.append(assert_refused(response, session, "invalid_signature"))

    # 2. A well-encrypted assertion signed by someone else.
    started = start_login(client, encrypted)
    response = post_acs(
        client,
        encrypted,
        idp.response(
            sp,
            keys=key_pair("attacker"),
            encrypt_for=certificate,
            in_response_to=started.request_id,
            attributes=OKTA_ATTRIBUTES,
        ),
        started.relay_state,
    )
    bodies.append(assert_refused(response, session, "invalid_signature"))

    # 3. Encrypted for another key altogether.
    started = start_login(client, encrypted)
    response = post_acs(
        client,
        encrypted,
        idp.response(
            sp,
            encrypt_for=key_pair("other-sp").cert_pem,
            in_response_to=started.request_id,
            attributes=OKTA_ATTRIBUTES,
        ),
        started.relay_state,
    )
    bodies.append(assert_refused(response, session, "invalid_signature"))
    assert bodies[0] == bodies[1] == bodies[2]
    assert [r["detail"] for r in refusals(session)] == [
        saml.DETAILS[saml.Reason.INVALID_SIGNATURE]
    ] * 3
    assert no_sessions(session)


def test_rsa_1_5_key_transport_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, encrypted: str
) -> None:
    started = start_login(client, encrypted)
    root = signed_root(idp, app, encrypted, in_response_to=started.request_id)
    encrypt_assertion(
        root, sp_certificate(session, encrypted), key_transport=xmlsec.constants.TransformRsaPkcs1
    )
    response = post_acs(client, encrypted, encode(root), started.relay_state)
    assert_refused(response, session, "deprecated_algorithm")


# ---------------------------------------------------------------- audit without secrets


def test_a_refusal_is_audited_without_the_assertions_secrets(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    started = start_login(client, okta)
    saml_response = idp.response(
        sp_urls(app, okta),
        in_response_to=started.request_id,
        attributes=OKTA_ATTRIBUTES,
        audience="https://other.example/sp",
    )
    post_acs(client, okta, saml_response, started.relay_state)
    [refusal] = refusals(session)
    assert refusal["reason"] == "wrong_audience"
    assert refusal["detail"] == saml.DETAILS[saml.Reason.WRONG_AUDIENCE]
    everything = json.dumps(
        [[e.before, e.after] for e in session.scalars(select(AuditEvent))], default=str
    )
    for secret in ("00u1jane", "jane@acme.example", "Jane", saml_response[:40]):
        assert secret not in everything


# ------------------------------------------------------------------- JIT and linking


def test_a_user_without_a_role_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    attributes = {**OKTA_ATTRIBUTES, "groups": ["Marketing"]}
    response = login(app, client, idp, okta, attributes=attributes)
    assert_refused(response, session, "no_role")
    assert no_sessions(session)


def test_a_deactivated_user_is_refused(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp, okta: str
) -> None:
    assert login(app, client, idp, okta).status_code == 302
    user = user_named(session, "jane@acme.example")
    service_for(session, acme).replace_user(
        user.id, UserSpec(user_name=user.user_name, is_active=False)
    )
    session.commit()
    other = app.test_client()
    assert_refused(login(app, other, idp, okta), session, "user_deactivated")
    assert not signed_in(other)


def test_without_jit_an_unknown_user_is_refused(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
) -> None:
    connection = str(add_connection(runner, tmp_path, idp, "--preset", "okta", "--no-jit")["id"])
    assert_refused(login(app, client, idp, connection), session, "not_provisioned")
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_email_links_only_in_a_verified_domain_and_only_at_first_login(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp, okta: str
) -> None:
    service = service_for(session, acme)
    existing = service.create_user(
        UserSpec(
            user_name="jane@acme.example",
            multi_values={"emails": [{"value": "jane@acme.example", "primary": True}]},
        )
    )
    session.commit()
    # Not a verified domain yet: no link, and the name is taken.
    assert_refused(login(app, client, idp, okta), session, "identity_conflict")

    service_for(session, acme).add_domain("acme.example")
    session.commit()
    assert login(app, client, idp, okta).status_code == 302
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.user_id == existing.id and identity.subject == "00u1jane"

    # Another subject claiming the same address later does not take the account over.
    other = app.test_client()
    response = login(app, other, idp, okta, name_id="00u1mallory")
    assert_refused(response, session, "identity_conflict")
    assert session.scalar(select(func.count()).select_from(LoginIdentity)) == 1


def test_a_login_never_overwrites_the_names_scim_manages(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp, okta: str
) -> None:
    service = service_for(session, acme)
    service.add_domain("acme.example")
    managed = service.create_user(
        UserSpec(
            user_name="jane@acme.example",
            attributes={"given_name": "Janet", "family_name": "Doe-Smith"},
            multi_values={"emails": [{"value": "jane@acme.example", "primary": True}]},
        )
    )
    session.commit()
    assert login(app, client, idp, okta).status_code == 302  # claims say Jane Doe
    session.expire_all()
    user = session.get(User, managed.id)
    assert user is not None and user.source == "scim"
    assert (user.given_name, user.family_name) == ("Janet", "Doe-Smith")
    assert user.last_login_at is not None


def test_entra_object_id_subject_groups_and_overage(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
) -> None:
    entra = TestIdp(ENTRA_IDP, key_pair("entra-idp"))
    connection = str(add_connection(runner, tmp_path, entra, "--preset", "entra")["id"])
    claims = {
        ENTRA_OID: ["5f2c3d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f"],
        f"{MS}/emailaddress": ["jane@acme.example"],
        f"{MS}/givenname": ["Jane"],
        f"{MS}/surname": ["Doe"],
        "http://schemas.microsoft.com/identity/claims/displayname": ["Jane Doe (Eng)"],
        ENTRA_GROUPS: ["Engineering"],
    }
    response = login(
        app,
        client,
        entra,
        connection,
        attributes=claims,
        name_id="jane@acme.example",
        name_id_format=EMAIL,
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.subject == "5f2c3d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f"
    first: Any = client.get("/sso/session").json
    assert first["user"]["name"] == "Jane Doe (Eng)"

    # Over 150 groups: Entra sends a link instead of the list; memberships must stay.
    overage = {k: v for k, v in claims.items() if k != ENTRA_GROUPS}
    overage[ENTRA_OVERAGE] = ["https://graph.windows.net/9188040d/users/5f2c/getMemberObjects"]
    second = app.test_client()
    response = login(app, second, entra, connection, attributes=overage)
    assert response.status_code == 302, response.get_data(as_text=True)
    document: Any = second.get("/sso/session").json
    assert document["groups"] == ["Engineering"]
    assert document["roles"] == {"*": "team_member"}
    session.expire_all()
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "login.groups_overage")
        )
        == 1
    )
    assert session.scalar(select(func.count()).select_from(Membership)) == 1


def test_an_email_name_id_is_the_subject_in_lower_case(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
) -> None:
    connection = str(
        add_connection(
            runner, tmp_path, idp, "--groups-attribute", "groups", "--name-id-format", "email"
        )["id"]
    )
    attributes = {"groups": ["Engineering"], "firstName": ["Jane"]}
    response = login(
        app,
        client,
        idp,
        connection,
        attributes=attributes,
        name_id="Jane@Acme.example",
        name_id_format=EMAIL,
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.subject == "jane@acme.example"
    assert user_named(session, "jane@acme.example").primary_email == "jane@acme.example"


def test_a_transient_name_id_is_refused(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, okta: str
) -> None:
    response = login(app, client, idp, okta, name_id="_8d7f6e", name_id_format=TRANSIENT)
    assert_refused(response, session, "transient_subject")


def test_without_a_groups_attribute_memberships_are_left_alone(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
) -> None:
    connection = str(
        add_connection(runner, tmp_path, idp, "--preset", "okta", "--groups-attribute", "")["id"]
    )
    assert connection_row(session, connection).settings["groups_attribute"] is None
    service = service_for(session, acme)
    service.set_default_role("view_only")
    # The user has no mapped group: only the default role, which this organization accepts.
    service.set_sso_options(no_role_policy="default")
    session.commit()
    assert login(app, client, idp, connection).status_code == 302
    assert session.scalar(select(func.count()).select_from(Membership)) == 0


# --------------------------------------------------------------------- single logout


def _logged_in(app: Flask, idp: TestIdp, connection: str) -> FlaskClient:
    browser = app.test_client()
    assert login(app, browser, idp, connection).status_code == 302
    assert signed_in(browser)
    return browser


def test_sp_initiated_logout_ends_the_session_and_tells_the_idp(
    app: Flask, session: Session, idp: TestIdp, okta: str
) -> None:
    browser = _logged_in(app, idp, okta)
    response = browser.get(f"/sso/saml/{okta}/slo", query_string={"return_to": "/bye"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(idp.slo_url + "?")
    params = parse_qs(urlsplit(location).query)
    request = decode_redirect(params["SAMLRequest"][0])
    assert request.tag == f"{{{SAMLP}}}LogoutRequest"
    assert request.find(f"{{{SAML}}}NameID").text == "00u1jane"
    assert params["RelayState"] == [request.get("ID")]
    assert not signed_in(browser)

    answer = idp.logout_response(sp_urls(app, okta), request.get("ID"), params["RelayState"][0])
    done = browser.get(f"/sso/saml/{okta}/slo?{answer}")
    assert done.status_code == 302 and done.headers["Location"] == "/bye"
    # A LogoutResponse is accepted once.
    assert browser.get(f"/sso/saml/{okta}/slo?{answer}").status_code == 400


def test_a_signed_idp_logout_request_ends_every_session_of_the_user(
    app: Flask, session: Session, idp: TestIdp, okta: str
) -> None:
    laptop = _logged_in(app, idp, okta)
    phone = _logged_in(app, idp, okta)
    query = idp.logout_request(sp_urls(app, okta), "00u1jane", relay_state="abc")
    response = app.test_client().get(f"/sso/saml/{okta}/slo?{query}")
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(idp.slo_url + "?")
    params = parse_qs(urlsplit(location).query)
    answer = decode_redirect(params["SAMLResponse"][0])
    assert answer.tag == f"{{{SAMLP}}}LogoutResponse"
    assert params["RelayState"] == ["abc"]
    assert not signed_in(laptop) and not signed_in(phone)


def test_an_unsigned_idp_logout_request_only_ends_this_browser(
    app: Flask, session: Session, idp: TestIdp, okta: str
) -> None:
    laptop = _logged_in(app, idp, okta)
    phone = _logged_in(app, idp, okta)
    query = idp.logout_request(sp_urls(app, okta), "00u1jane", signed=False)
    assert phone.get(f"/sso/saml/{okta}/slo?{query}").status_code == 302
    assert not signed_in(phone)
    assert signed_in(laptop)


@pytest.mark.parametrize("attack", ["foreign_key", "sha1", "tampered"])
def test_a_bad_idp_logout_request_is_refused(
    app: Flask, session: Session, idp: TestIdp, okta: str, attack: str
) -> None:
    laptop = _logged_in(app, idp, okta)
    sp = sp_urls(app, okta)
    if attack == "foreign_key":
        query = idp.logout_request(sp, "00u1jane", keys=key_pair("attacker"))
    elif attack == "sha1":
        query = idp.logout_request(
            sp, "00u1jane", signature_algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        )
    else:
        query = idp.logout_request(sp, "00u1jane", relay_state="a").replace(
            "RelayState=a", "RelayState=b"
        )
    response = app.test_client().get(f"/sso/saml/{okta}/slo?{query}")
    assert response.status_code == 400
    assert signed_in(laptop)


def test_a_signed_idp_logout_request_is_processed_once(
    app: Flask, session: Session, idp: TestIdp, okta: str
) -> None:
    query = idp.logout_request(sp_urls(app, okta), "00u1jane")
    assert app.test_client().get(f"/sso/saml/{okta}/slo?{query}").status_code == 302
    laptop = _logged_in(app, idp, okta)
    assert app.test_client().get(f"/sso/saml/{okta}/slo?{query}").status_code == 400
    assert signed_in(laptop)


def test_an_old_idp_logout_request_is_refused(
    app: Flask, session: Session, idp: TestIdp, okta: str
) -> None:
    laptop = _logged_in(app, idp, okta)
    query = idp.logout_request(sp_urls(app, okta), "00u1jane", clock_offset=timedelta(hours=-1))
    assert app.test_client().get(f"/sso/saml/{okta}/slo?{query}").status_code == 400
    assert signed_in(laptop)


def test_an_idp_logout_request_by_post_with_an_xml_signature(
    app: Flask, session: Session, idp: TestIdp, okta: str
) -> None:
    laptop = _logged_in(app, idp, okta)
    sp = sp_urls(app, okta)
    forged = idp.logout_request_xml(sp, "00u1jane")
    sign(forged, key_pair("attacker"))
    response = app.test_client().post(f"/sso/saml/{okta}/slo", data={"SAMLRequest": encode(forged)})
    assert response.status_code == 400
    assert signed_in(laptop)

    root = idp.logout_request_xml(sp, "00u1jane")
    sign(root, idp.keys)
    response = app.test_client().post(f"/sso/saml/{okta}/slo", data={"SAMLRequest": encode(root)})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(idp.slo_url + "?")
    assert not signed_in(laptop)


def test_signed_authn_requests(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    tmp_path: Path,
    session: Session,
    acme: Organization,
    idp: TestIdp,
) -> None:
    connection = str(
        add_connection(runner, tmp_path, idp, "--preset", "okta", "--sign-requests")["id"]
    )
    started = start_login(client, connection)
    query = urlsplit(started.location).query
    raw = {part.split("=", 1)[0]: part for part in query.split("&")}
    signed_part = "&".join(raw[name] for name in ("SAMLRequest", "RelayState", "SigAlg"))
    params = parse_qs(query)
    assert params["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    # SAML Bindings §3.4.4.1: verify over the parameters exactly as they appear in the URL.
    certificate = x509.load_pem_x509_certificate(sp_certificate(session, connection))
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        base64.b64decode(params["Signature"][0]),
        signed_part.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    metadata = etree.fromstring(client.get(f"/sso/saml/{connection}/metadata").data)
    assert metadata.xpath("//md:KeyDescriptor[@use='signing']", namespaces=_NS)


def test_metadata_with_comments_is_accepted(
    runner: FlaskCliRunner, tmp_path: Path, session: Session, acme: Organization, idp: TestIdp
) -> None:
    metadata = idp.metadata().replace(
        b"<md:IDPSSODescriptor", b"<!-- Shibboleth --><md:IDPSSODescriptor"
    )
    document = add_connection(runner, tmp_path, idp, metadata=metadata)
    assert document["settings"]["idp_entity_id"] == ACME_IDP


@pytest.mark.parametrize(
    "method", [xmlsec.constants.TransformAes256Gcm, xmlsec.constants.TransformAes128Cbc]
)
def test_aes_gcm_and_cbc_encrypted_assertions(
    app: Flask, client: FlaskClient, session: Session, idp: TestIdp, encrypted: str, method: Any
) -> None:
    started = start_login(client, encrypted)
    root = signed_root(idp, app, encrypted, in_response_to=started.request_id)
    encrypt_assertion(root, sp_certificate(session, encrypted), method=method)
    response = post_acs(client, encrypted, encode(root), started.relay_state)
    assert response.status_code == 302, response.get_data(as_text=True)


def test_update_saml_creates_an_sp_key_when_one_is_needed(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    session: Session,
    idp: TestIdp,
    okta: str,
) -> None:
    result = runner.invoke(
        args=["connection", "update-saml", "--org", "acme", "--id", okta, "--encrypt-assertions"]
    )
    assert result.exit_code == 0, result.output
    assert "BEGIN CERTIFICATE" in result.output
    row = connection_row(session, okta)
    assert set(row.encrypted_secrets) == {"sp_private_key"}
    response = login(app, client, idp, okta, encrypt_for=sp_certificate(session, okta))
    assert response.status_code == 302, response.get_data(as_text=True)


# ------------------------------------------------------------------------ concurrency


@pytest.mark.postgresql_only
@pytest.mark.parametrize("flow", ["idp_initiated", "sp_initiated"])
def test_simultaneous_posts_of_one_response_sign_in_once(
    separate_database: Settings, idp: TestIdp, flow: str
) -> None:
    # Gunicorn workers share nothing but the database: of eight simultaneous posts of one
    # response, exactly one signs in, whichever worker gets it.
    app = create_app(separate_database)
    sessions = app.extensions["sessions"]
    try:
        with app.app_context(), sessions() as session:
            organization = setup_org(session, "race")
            metadata = saml.parse_idp_metadata(idp.metadata())
            config = replace(
                saml.SamlSettings.from_metadata(metadata, preset="okta"),
                allow_idp_initiated=True,
            )
            connection_id = str(
                service_for(session, organization)
                .create_connection("Okta", "saml", config.to_json(), {})
                .id
            )
            session.commit()
        sp = sp_urls(app, connection_id)
        browsers = [app.test_client() for _ in range(8)]
        relay_state = None
        options: dict[str, Any] = {}
        if flow == "sp_initiated":
            started = start_login(browsers[0], connection_id)
            # Every post comes from the browser that started the login.
            name, value = started.browser_cookie
            for browser in browsers[1:]:
                browser.set_cookie(name, value, path=urlsplit(sp.acs_url).path)
            relay_state = started.relay_state
            options["in_response_to"] = started.request_id
        saml_response = idp.response(sp, attributes=OKTA_ATTRIBUTES, **options)
        barrier = threading.Barrier(len(browsers))
        statuses: list[int] = []
        errors: list[BaseException] = []

        def post(browser: FlaskClient) -> None:
            try:
                barrier.wait()
                statuses.append(
                    post_acs(browser, connection_id, saml_response, relay_state).status_code
                )
            except BaseException as error:  # re-raised in the test thread
                errors.append(error)

        threads = [threading.Thread(target=post, args=(b,)) for b in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(statuses) == [302] + [403] * (len(browsers) - 1)
        with sessions.begin() as session:
            assert session.scalar(select(func.count()).select_from(SsoSession)) == 1
            reasons = {
                (event.after or {}).get("reason")
                for event in session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "login.refused")
                )
            }
            assert reasons == (
                {"replayed_assertion"} if flow == "idp_initiated" else {"request_reused"}
            )
    finally:
        app.extensions["engine"].dispose()


def test_demo_connection_is_created_once_and_serves_sp_metadata(
    runner: FlaskCliRunner, client: FlaskClient
) -> None:
    assert runner.invoke(args=["org", "create", "Demo", "--slug", "demo"]).exit_code == 0
    first = runner.invoke(args=["connection", "demo", "--org", "demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["connection", "demo", "--org", "demo"])
    assert first.output == second.output
    metadata_url = first.output.splitlines()[0].split()[-1]
    assert "/sso/saml/" in metadata_url and first.output.splitlines()[1].endswith("/login")
    response = client.get(metadata_url.removeprefix("http://localhost"))
    assert response.status_code == 200 and b"EntityDescriptor" in response.data
