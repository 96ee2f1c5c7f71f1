"""The Connections page: SSO connections from the console's guided forms, the values to paste
into the IdP, switches and deletion; bearer tokens shown once, rotated and revoked; webhook
endpoints. Org admins only, CSRF on every form, another organization's ids answer 404."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import crypto
from app.config import Settings
from app.models import AuditEvent, IdpConnection, Organization, ScimToken, WebhookEndpoint
from app.provisioning import OPERATOR, ProvisioningService, create_token
from tests.console.support import csrf_token, post_form
from tests.sso.oidc_provider import OidcProvider, running_provider
from tests.sso.saml_idp import TestIdp, key_pair

ACME_IDP = "https://acme.okta.example/app/blue/exk1"
SECRET = re.compile(r'id="secret" type="text" value="([^"]+)"')


@pytest.fixture(scope="module")
def idp() -> TestIdp:
    return TestIdp(ACME_IDP, key_pair("acme-console-idp"))


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as provider:
        yield provider


def connection_id_of(response: TestResponse) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    found = re.fullmatch(r"/console/connections/([0-9a-f-]{36})", response.headers["Location"])
    assert found is not None, response.headers["Location"]
    return found.group(1)


def audit_actions(session: Session, organization: Organization) -> list[tuple[str, str, str]]:
    session.expire_all()
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.actor)
        .where(AuditEvent.org_id == organization.id)
        .order_by(AuditEvent.id)
    )
    return [(action, kind, label) for action, kind, label in rows]


def saml_connection(session: Session, organization: Organization, name: str = "Okta") -> str:
    """A connection made directly through the service, for the switch and delete tests."""
    connection = ProvisioningService(session, organization, OPERATOR).create_connection(
        name, "saml", {"idp_entity_id": "https://idp.example"}, {}
    )
    session.commit()
    return str(connection.id)


def scim_status(client: FlaskClient, secret: str) -> int:
    response = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"})
    return response.status_code


# ------------------------------------------------------------------ who may see it


@pytest.mark.parametrize(
    "path", ["/console/connections", "/console/connections/tokens", "/console/connections/webhooks"]
)
def test_connections_pages_are_for_org_admins_only(
    admin: FlaskClient, reviewer: FlaskClient, path: str
) -> None:
    assert admin.get(path).status_code == 200
    assert reviewer.get(path).status_code == 403


def test_the_menu_shows_connections_to_admins_only(
    admin: FlaskClient, reviewer: FlaskClient
) -> None:
    assert 'href="/console/connections"' in admin.get("/console/access").get_data(as_text=True)
    assert 'href="/console/connections"' not in reviewer.get("/console/access").get_data(
        as_text=True
    )


def test_a_reviewer_sees_no_connection_page(
    reviewer: FlaskClient, session: Session, acme: Organization
) -> None:
    connection_id = saml_connection(session, acme)
    assert reviewer.get(f"/console/connections/{connection_id}").status_code == 403


# ------------------------------------------------------------------ new SAML connections


def test_saml_connection_from_pasted_metadata_shows_the_values_for_okta_and_entra(
    admin: FlaskClient, app: Flask, session: Session, acme: Organization, idp: TestIdp
) -> None:
    response = post_form(
        admin,
        "/console/connections/new/saml",
        {"preset": "okta", "metadata_xml": idp.metadata().decode(), "jit": "on"},
    )
    connection_id = connection_id_of(response)
    page = admin.get(f"/console/connections/{connection_id}").get_data(as_text=True)
    base: str = app.extensions["settings"].base_url
    for value in (
        f"{base}/sso/saml/{connection_id}/acs",
        f"{base}/sso/saml/{connection_id}/metadata",
        f"{base}/sso/saml/{connection_id}/login",
    ):
        assert f'value="{value}" readonly' in page
    assert "Single sign-on URL" in page and "Audience URI (SP Entity ID)" in page
    assert "Reply URL (Assertion Consumer Service URL)" in page
    assert 'data-copy="' in page
    assert ACME_IDP in page and "Okta SAML" in page
    row = session.get(IdpConnection, UUID(connection_id))
    assert row is not None and row.org_id == acme.id and row.settings["preset"] == "okta"
    assert ("connection.created", "console", "it@acme.example") in audit_actions(session, acme)


def test_saml_connection_from_an_uploaded_metadata_file(
    admin: FlaskClient, session: Session, acme: Organization, idp: TestIdp
) -> None:
    response = admin.post(
        "/console/connections/new/saml",
        data={
            "csrf_token": csrf_token(admin),
            "name": "Entra ID",
            "preset": "entra",
            "metadata_file": (io.BytesIO(idp.metadata()), "idp.xml"),
        },
        content_type="multipart/form-data",
    )
    connection_id = connection_id_of(response)
    row = session.get(IdpConnection, UUID(connection_id))
    assert row is not None and row.name == "Entra ID" and row.is_jit_enabled is False
    assert row.settings["idp_entity_id"] == ACME_IDP


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"metadata_xml": "<not-metadata/>"}, "IdP metadata refused"),
        ({"metadata_xml": ""}, "give the IdP&#39;s metadata"),
        ({"metadata_url": "http://idp.example/metadata"}, "must use https"),
        ({"metadata_xml": "x", "preset": "ping"}, "preset must be one of"),
    ],
)
def test_unusable_saml_input_is_refused_on_the_form(
    admin: FlaskClient, session: Session, acme: Organization, form: dict[str, str], message: str
) -> None:
    response = post_form(admin, "/console/connections/new/saml", {"name": "Kept", **form})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body and 'value="Kept"' in body
    assert session.scalar(select(IdpConnection.id)) is None


def test_a_taken_connection_name_is_a_conflict(
    admin: FlaskClient, session: Session, acme: Organization, idp: TestIdp
) -> None:
    saml_connection(session, acme, "Okta")
    response = post_form(
        admin,
        "/console/connections/new/saml",
        {"name": "Okta", "metadata_xml": idp.metadata().decode()},
    )
    assert response.status_code == 409
    assert "already exists" in response.get_data(as_text=True)


# ------------------------------------------------------------------ new OIDC connections


def test_oidc_connection_from_the_issuer_stores_the_secret_encrypted(
    admin: FlaskClient,
    app: Flask,
    session: Session,
    acme: Organization,
    provider: OidcProvider,
) -> None:
    response = post_form(
        admin,
        "/console/connections/new/oidc",
        {
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "jit": "on",
        },
    )
    connection_id = connection_id_of(response)
    settings: Settings = app.extensions["settings"]
    page = admin.get(f"/console/connections/{connection_id}").get_data(as_text=True)
    assert f'value="{settings.base_url}/sso/oidc/{connection_id}/callback" readonly' in page
    assert "Sign-in redirect URIs" in page and provider.issuer in page
    assert provider.client_secret not in page
    row = session.get(IdpConnection, UUID(connection_id))
    assert row is not None and row.protocol == "oidc"
    assert row.settings["issuer"] == provider.issuer
    stored = row.encrypted_secrets["client_secret"]
    assert crypto.decrypt(settings.secret_key, stored) == provider.client_secret


def test_no_transaction_is_open_while_the_issuer_is_discovered(
    admin: FlaskClient, app: Flask, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    # Every unit of work is a savepoint on the test's connection (tests/conftest.py).
    bound: Connection = app.extensions["sessions"].kw["bind"]
    seen: list[tuple[str, bool]] = []
    provider.on_request = lambda path: seen.append((path, bound.in_nested_transaction()))
    form = {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    token = csrf_token(admin)
    session.commit()  # the test's own session holds no savepoint during the request
    response = admin.post("/console/connections/new/oidc", data={**form, "csrf_token": token})
    connection_id_of(response)
    assert seen == [("/.well-known/openid-configuration", False)]


def test_an_issuer_without_discovery_is_refused_and_the_secret_not_echoed(
    admin: FlaskClient, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    response = post_form(
        admin,
        "/console/connections/new/oidc",
        {
            "issuer": provider.issuer + "/elsewhere",
            "client_id": "blue",
            "client_secret": "s3cret-value",
        },
    )
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "s3cret-value" not in body and 'value="blue"' in body
    assert session.scalar(select(IdpConnection.id)) is None


# ------------------------------------------------------------------ switches and deletion


def test_switch_off_on_and_delete_a_connection(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    connection_id = saml_connection(session, acme)
    base = f"/console/connections/{connection_id}"
    assert post_form(admin, f"{base}/disable").status_code == 303
    session.expire_all()
    assert session.get_one(IdpConnection, UUID(connection_id)).is_enabled is False
    assert "Switch on" in admin.get(base).get_data(as_text=True)
    assert post_form(admin, f"{base}/enable").status_code == 303
    session.expire_all()
    assert session.get_one(IdpConnection, UUID(connection_id)).is_enabled is True
    response = post_form(admin, f"{base}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/console/connections"
    session.expire_all()
    assert session.get(IdpConnection, UUID(connection_id)) is None
    actions = [a for a, _kind, who in audit_actions(session, acme) if who == "it@acme.example"]
    assert actions[-3:] == ["connection.updated", "connection.updated", "connection.deleted"]


def test_the_jit_switch(admin: FlaskClient, session: Session, acme: Organization) -> None:
    connection_id = saml_connection(session, acme)
    assert post_form(admin, f"/console/connections/{connection_id}/jit").status_code == 303
    session.expire_all()
    assert session.get_one(IdpConnection, UUID(connection_id)).is_jit_enabled is False
    on = post_form(admin, f"/console/connections/{connection_id}/jit", {"jit": "on"})
    assert on.status_code == 303
    session.expire_all()
    assert session.get_one(IdpConnection, UUID(connection_id)).is_jit_enabled is True


def test_reimported_metadata_brings_the_rolled_over_certificate(
    admin: FlaskClient, session: Session, acme: Organization, idp: TestIdp
) -> None:
    created = post_form(
        admin,
        "/console/connections/new/saml",
        {"preset": "okta", "metadata_xml": idp.metadata().decode()},
    )
    connection_id = connection_id_of(created)
    rolled = TestIdp(ACME_IDP, key_pair("acme-console-idp-2027"))
    response = post_form(
        admin,
        f"/console/connections/{connection_id}/metadata",
        {"metadata_xml": rolled.metadata().decode()},
    )
    assert response.status_code == 303
    session.expire_all()
    row = session.get_one(IdpConnection, UUID(connection_id))
    assert row.settings["certificates"] == [rolled.keys.cert_b64]
    assert row.settings["preset"] == "okta"
    refused = post_form(
        admin, f"/console/connections/{connection_id}/metadata", {"metadata_xml": "<x/>"}
    )
    assert refused.status_code == 400 and "IdP metadata refused" in refused.get_data(as_text=True)


def test_a_new_client_secret_replaces_the_old_one(
    admin: FlaskClient, app: Flask, session: Session, acme: Organization
) -> None:
    settings: Settings = app.extensions["settings"]
    service = ProvisioningService(session, acme, OPERATOR)
    oidc = service.create_connection(
        "Entra",
        "oidc",
        {"issuer": "https://login.example/v2.0", "client_id": "blue"},
        {"client_secret": crypto.encrypt(settings.secret_key, "old")},
    )
    saml_id = saml_connection(session, acme)
    session.commit()
    url = f"/console/connections/{oidc.id}/secret"
    assert post_form(admin, url, {"client_secret": "new-secret"}).status_code == 303
    session.expire_all()
    stored = session.get_one(IdpConnection, oidc.id).encrypted_secrets["client_secret"]
    assert crypto.decrypt(settings.secret_key, stored) == "new-secret"
    assert post_form(admin, url, {"client_secret": ""}).status_code == 400
    not_oidc = post_form(admin, f"/console/connections/{saml_id}/secret", {"client_secret": "x"})
    assert not_oidc.status_code == 400
    secret_rotated = [a for a, _k, _w in audit_actions(session, acme)]
    assert "connection.secret_rotated" in secret_rotated


@pytest.mark.parametrize("action", ["enable", "disable", "delete", "jit", "metadata", "secret"])
def test_connection_writes_refuse_reviewers_forms_without_token_and_other_orgs(
    admin: FlaskClient,
    reviewer: FlaskClient,
    session: Session,
    acme: Organization,
    other_org: Organization,
    action: str,
) -> None:
    ours = saml_connection(session, acme)
    theirs = saml_connection(session, other_org)
    assert post_form(reviewer, f"/console/connections/{ours}/{action}").status_code == 403
    assert admin.post(f"/console/connections/{ours}/{action}").status_code == 400
    assert post_form(admin, f"/console/connections/{theirs}/{action}").status_code == 404
    assert post_form(admin, f"/console/connections/not-an-id/{action}").status_code == 404
    assert admin.get(f"/console/connections/{theirs}").status_code == 404
    session.expire_all()
    assert session.get(IdpConnection, UUID(theirs)) is not None
    assert session.get_one(IdpConnection, UUID(ours)).is_enabled is True


def test_test_sign_in_is_for_admins_of_the_connections_organization(
    admin: FlaskClient,
    reviewer: FlaskClient,
    session: Session,
    acme: Organization,
    other_org: Organization,
) -> None:
    ours = saml_connection(session, acme)
    theirs = saml_connection(session, other_org)
    assert reviewer.get(f"/console/connections/{ours}/test").status_code == 403
    assert admin.get(f"/console/connections/{theirs}/test").status_code == 404
    started = admin.get(f"/console/connections/{ours}/test")
    assert started.status_code == 303
    assert started.headers["Location"].startswith(f"http://localhost/sso/saml/{ours}/login?")


def test_new_connection_forms_refuse_reviewers_and_forms_without_token(
    admin: FlaskClient, reviewer: FlaskClient, idp: TestIdp
) -> None:
    form = {"metadata_xml": idp.metadata().decode()}
    assert post_form(reviewer, "/console/connections/new/saml", form).status_code == 403
    assert admin.post("/console/connections/new/saml", data=form).status_code == 400
    assert reviewer.get("/console/connections/new/oidc").status_code == 403
    oidc = {"issuer": "https://idp.example", "client_id": "x", "client_secret": "y"}
    assert post_form(reviewer, "/console/connections/new/oidc", oidc).status_code == 403


# ------------------------------------------------------------------ tokens


def create(admin: FlaskClient, label: str, scope: str = "scim") -> str:
    response = post_form(admin, "/console/connections/tokens", {"label": label, "scope": scope})
    assert response.status_code == 200, response.get_data(as_text=True)
    found = SECRET.search(response.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def test_a_token_is_shown_once_and_works_for_scim(
    admin: FlaskClient, client: FlaskClient, session: Session, acme: Organization
) -> None:
    secret = create(admin, "sync")
    assert secret.startswith("blue_scim_")
    assert scim_status(client, secret) == 200
    listing = admin.get("/console/connections/tokens").get_data(as_text=True)
    assert "sync" in listing and secret not in listing and secret[:14] in listing
    row = session.scalar(select(ScimToken).where(ScimToken.label == "sync"))
    assert row is not None and row.org_id == acme.id and row.last_used_at is not None
    assert secret not in str(audit_actions(session, acme))
    assert ("token.created", "console", "it@acme.example") in audit_actions(session, acme)


def test_rotating_a_token_revokes_the_old_one_at_once(
    admin: FlaskClient, client: FlaskClient, session: Session, acme: Organization
) -> None:
    old = create(admin, "sync", "admin")
    token_id = session.scalar(select(ScimToken.id).where(ScimToken.label == "sync"))
    response = post_form(admin, f"/console/connections/tokens/{token_id}/rotate")
    assert response.status_code == 200
    found = SECRET.search(response.get_data(as_text=True))
    assert found is not None and found.group(1) != old
    session.expire_all()
    rows = {t.label: t for t in session.scalars(select(ScimToken))}
    assert rows["sync"].revoked_at is not None
    assert rows["sync #2"].revoked_at is None and rows["sync #2"].scope == "admin"
    new_id = rows["sync #2"].id
    response = post_form(admin, f"/console/connections/tokens/{new_id}/rotate")
    assert response.status_code == 200
    session.expire_all()
    assert session.scalar(select(ScimToken.id).where(ScimToken.label == "sync #3")) is not None


def test_revoking_a_token_refuses_it_from_then_on(
    admin: FlaskClient, client: FlaskClient, session: Session, acme: Organization
) -> None:
    secret = create(admin, "entra")
    token_id = session.scalar(select(ScimToken.id).where(ScimToken.label == "entra"))
    response = post_form(admin, f"/console/connections/tokens/{token_id}/revoke")
    assert response.status_code == 303
    assert scim_status(client, secret) == 401
    assert "revoked" in admin.get("/console/connections/tokens").get_data(as_text=True)
    assert ("token.revoked", "console", "it@acme.example") in audit_actions(session, acme)


def test_a_taken_or_empty_label_is_refused(admin: FlaskClient) -> None:
    create(admin, "sync")
    taken = post_form(admin, "/console/connections/tokens", {"label": "sync"})
    assert taken.status_code == 409 and "already has a token" in taken.get_data(as_text=True)
    empty = post_form(admin, "/console/connections/tokens", {"label": " "})
    assert empty.status_code == 400
    bad_scope = post_form(admin, "/console/connections/tokens", {"label": "x", "scope": "root"})
    assert bad_scope.status_code == 400


@pytest.mark.parametrize("action", ["rotate", "revoke"])
def test_token_writes_refuse_reviewers_forms_without_token_and_other_orgs(
    admin: FlaskClient,
    reviewer: FlaskClient,
    session: Session,
    acme: Organization,
    other_org: Organization,
    action: str,
) -> None:
    ours = create_token(session, acme, "sync").token.id
    theirs = create_token(session, other_org, "sync").token.id
    session.commit()
    assert post_form(reviewer, f"/console/connections/tokens/{ours}/{action}").status_code == 403
    assert admin.post(f"/console/connections/tokens/{ours}/{action}").status_code == 400
    assert post_form(admin, f"/console/connections/tokens/{theirs}/{action}").status_code == 404
    assert post_form(reviewer, "/console/connections/tokens", {"label": "x"}).status_code == 403
    assert admin.post("/console/connections/tokens", data={"label": "x"}).status_code == 400
    session.expire_all()
    assert all(t.revoked_at is None for t in session.scalars(select(ScimToken)))
    assert session.scalar(select(ScimToken.id).where(ScimToken.label == "x")) is None


# ------------------------------------------------------------------ webhook endpoints


def test_webhook_endpoints_added_paused_and_rotated(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    response = post_form(
        admin, "/console/connections/webhooks", {"url": "https://blue.example/hooks"}
    )
    assert response.status_code == 200
    found = SECRET.search(response.get_data(as_text=True))
    assert found is not None and found.group(1).startswith("whsec_")
    endpoint = session.scalar(select(WebhookEndpoint))
    assert endpoint is not None and endpoint.org_id == acme.id
    base = f"/console/connections/webhooks/{endpoint.id}"
    assert post_form(admin, f"{base}/disable").status_code == 303
    session.expire_all()
    assert session.get_one(WebhookEndpoint, endpoint.id).is_enabled is False
    rotated = post_form(admin, f"{base}/rotate", {"overlap_hours": "1"})
    assert rotated.status_code == 200
    again = SECRET.search(rotated.get_data(as_text=True))
    assert again is not None and again.group(1) != found.group(1)
    page = admin.get("/console/connections/webhooks").get_data(as_text=True)
    assert "https://blue.example/hooks" in page and "previous secret signs until" in page
    assert found.group(1) not in page


def test_webhook_writes_refuse_reviewers_and_other_orgs(
    admin: FlaskClient,
    reviewer: FlaskClient,
    session: Session,
    acme: Organization,
    other_org: Organization,
) -> None:
    theirs = ProvisioningService(session, other_org, OPERATOR).add_webhook(
        "https://globex.example/hooks", "encrypted", production=False
    )
    session.commit()
    url = "/console/connections/webhooks"
    assert post_form(reviewer, url, {"url": "https://x.example"}).status_code == 403
    assert admin.post(url, data={"url": "https://x.example"}).status_code == 400
    for action in ("enable", "disable", "rotate"):
        assert post_form(admin, f"{url}/{theirs.id}/{action}").status_code == 404
    refused = post_form(admin, url, {"url": "ftp://x.example"})
    assert refused.status_code == 400
