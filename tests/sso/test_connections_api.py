"""SSO connections on the admin JSON API (/api/v1/connections), through the test client: SAML
from a test IdP's metadata, OIDC against the real local provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from app import crypto, organizations, provisioning
from app.models import AuditEvent, IdpConnection, Organization
from sso.oidc import OidcClient, ProviderMetadata
from tests.app.test_admin_api import Api, assert_error
from tests.sso.flow import (
    assert_refused,
    setup_org,
)
from tests.sso.oidc_flow import (
    login,
)
from tests.sso.oidc_provider import OidcProvider, running_provider
from tests.sso.saml_idp import TestIdp, key_pair
from tests.support import admin_token, make_org

ACME_IDP = "https://acme.okta.example/app/blue/exk1"
BASE = "http://localhost"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp(ACME_IDP, key_pair("acme-idp"))


@pytest.fixture
def acme(session: Session) -> Organization:
    return setup_org(session)


@pytest.fixture
def api(client: FlaskClient, session: Session, acme: Organization) -> Api:
    return Api(client, admin_token(session, acme))


@pytest.fixture
def other_api(client: FlaskClient, session: Session) -> Api:
    return Api(client, admin_token(session, make_org(session, "globex")[0]))


def saml_body(idp: TestIdp, **fields: Any) -> dict[str, Any]:
    return {"protocol": "saml", "metadata_xml": idp.metadata().decode(), **fields}


def oidc_body(provider: OidcProvider, **fields: Any) -> dict[str, Any]:
    return {
        "protocol": "oidc",
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        **fields,
    }


def row(session: Session, document: dict[str, Any]) -> IdpConnection:
    session.expire_all()
    connection = session.get(IdpConnection, UUID(document["id"]))
    assert connection is not None
    return connection


def connections(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(IdpConnection)) or 0


def events(session: Session, action: str | None = None) -> list[AuditEvent]:
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.target_type == "connection")
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query.order_by(AuditEvent.id)))


def assert_no_secrets(session: Session, *secrets: str) -> None:
    """Neither the audit trail nor the given values contain a secret or a private key."""
    trail = json.dumps([[e.before, e.after] for e in events(session)])
    for connection in session.scalars(select(IdpConnection)):
        secrets += tuple(connection.encrypted_secrets.values())
    assert "PRIVATE KEY" not in trail
    for secret in secrets:
        assert secret not in trail


# -------------------------------------------------------------------- SAML


def test_saml_connection_from_metadata_with_the_values_for_the_idp(
    api: Api, session: Session, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp, preset="okta"), 201)
    cid = created["id"]
    assert created["name"] == "Okta SAML"
    assert (created["protocol"], created["enabled"], created["jit"]) == ("saml", True, True)
    assert created["acs_url"] == f"{BASE}/sso/saml/{cid}/acs"
    assert created["entity_id"] == created["metadata_url"] == f"{BASE}/sso/saml/{cid}/metadata"
    assert created["login_url"] == f"{BASE}/sso/saml/{cid}/login"
    settings = created["settings"]
    assert settings["idp_entity_id"] == ACME_IDP
    assert settings["sso_url"] == idp.sso_url
    assert settings["groups_attribute"] == "groups"
    assert settings["want_assertions_signed"] is True
    assert created["secrets"] == []
    assert api.ok("GET", f"/connections/{cid}") == created
    assert api.ok("GET", "/connections") == {"connections": [created]}
    [event] = events(session, "connection.created")
    assert (event.actor_type, event.actor, event.target_id) == ("api", "admin", cid)
    assert event.after is not None and event.after["protocol"] == "saml"


def test_saml_options_and_encrypted_assertions_get_an_sp_key_that_is_never_shown(
    api: Api, client: FlaskClient, session: Session, idp: TestIdp
) -> None:
    body = saml_body(
        idp,
        name="Okta (encrypted)",
        groups_attribute="memberOf",
        jit=False,
        allow_idp_initiated=True,
        encrypt_assertions=True,
    )
    created = api.ok("POST", "/connections", body, 201)
    assert created["name"] == "Okta (encrypted)" and created["jit"] is False
    settings = created["settings"]
    assert settings["groups_attribute"] == "memberOf"
    assert settings["allow_idp_initiated"] is True and settings["encrypt_assertions"] is True
    assert "BEGIN CERTIFICATE" in settings["sp_certificate"]
    assert created["secrets"] == ["sp_private_key"]
    assert "PRIVATE KEY" not in json.dumps(created)
    stored = row(session, created).encrypted_secrets["sp_private_key"]
    secret_key = client.application.extensions["settings"].secret_key
    assert "PRIVATE KEY" in crypto.decrypt(secret_key, stored)
    # The SP metadata the IdP reads offers the certificate for encryption.
    metadata = client.get(created["metadata_url"].removeprefix(BASE))
    assert metadata.status_code == 200
    certificate = "".join(settings["sp_certificate"].strip().splitlines()[1:-1])
    assert certificate in metadata.get_data(as_text=True)
    assert_no_secrets(session)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"protocol": "saml", "metadata_xml": "<EntityDescriptor"}, "invalid_metadata"),
        ({"protocol": "saml", "metadata_xml": "<a/>"}, "invalid_metadata"),
        ({"protocol": "saml"}, "invalid_request"),
        ({"protocol": "saml", "metadata_xml": "<a/>", "color": "blue"}, "invalid_request"),
        ({"protocol": "ldap"}, "invalid_request"),
        ({"metadata_xml": "<a/>"}, "invalid_request"),
        ([], "invalid_request"),
    ],
)
def test_unusable_saml_input_is_refused(api: Api, session: Session, body: Any, code: str) -> None:
    assert_error(api.post("/connections", body), 400, code)
    assert connections(session) == 0


def test_saml_option_types_and_preset_are_checked(api: Api, session: Session, idp: TestIdp) -> None:
    for fields in ({"preset": "ping"}, {"jit": "yes"}, {"encrypt_assertions": 1}, {"name": " "}):
        assert_error(api.post("/connections", saml_body(idp, **fields)), 400)
    assert connections(session) == 0


def test_saml_metadata_reimport_takes_the_new_certificate(
    api: Api, session: Session, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp, preset="okta"), 201)
    rolled = TestIdp(ACME_IDP, key_pair("acme-idp-2024"))
    patch = {"metadata_xml": rolled.metadata().decode()}
    updated = api.ok("PATCH", f"/connections/{created['id']}", patch)
    assert updated["settings"]["certificates"] != created["settings"]["certificates"]
    assert rolled.keys.cert_b64 in updated["settings"]["certificates"][0].replace("\n", "")
    assert updated["settings"]["groups_attribute"] == "groups"  # the rest is kept
    [event] = events(session, "connection.updated")
    assert event.before is not None and event.after is not None
    assert set(event.after["settings"]) >= {"certificates"}
    assert_error(
        api.patch(f"/connections/{created['id']}", {"metadata_xml": "nope"}),
        400,
        "invalid_metadata",
    )
    assert_error(api.patch(f"/connections/{created['id']}", {"client_secret": "s3cret"}), 400)


def test_reimporting_metadata_that_wants_signed_requests_makes_an_sp_key(
    api: Api, session: Session, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp), 201)
    assert created["secrets"] == []
    patch = {"metadata_xml": idp.metadata(want_signed_requests=True).decode()}
    updated = api.ok("PATCH", f"/connections/{created['id']}", patch)
    assert updated["settings"]["sign_requests"] is True
    assert updated["secrets"] == ["sp_private_key"]
    assert updated["settings"]["sp_certificate"]
    assert_no_secrets(session)


# -------------------------------------------------------------------- OIDC


def test_oidc_connection_discovers_the_issuer_and_keeps_the_secret_encrypted(
    app: Flask, api: Api, session: Session, provider: OidcProvider
) -> None:
    body = oidc_body(
        provider,
        name="Okta OIDC",
        groups_claim="roles",
        scopes=["openid", "email"],
        allowed_domains=["Acme.Example"],
        jit=False,
    )
    created = api.ok("POST", "/connections", body, 201)
    cid = created["id"]
    assert (created["name"], created["protocol"], created["jit"]) == ("Okta OIDC", "oidc", False)
    assert created["redirect_uri"] == f"{BASE}/sso/oidc/{cid}/callback"
    assert created["login_url"] == f"{BASE}/sso/oidc/{cid}/login"
    settings = created["settings"]
    assert settings["issuer"] == provider.issuer
    assert settings["client_id"] == provider.client_id
    assert settings["scopes"] == ["openid", "email"]
    assert settings["allowed_domains"] == ["acme.example"]
    assert settings["groups_claim"] == "roles"
    assert created["secrets"] == ["client_secret"]
    assert provider.client_secret not in json.dumps(created)
    stored = row(session, created).encrypted_secrets["client_secret"]
    secret_key = app.extensions["settings"].secret_key
    assert crypto.decrypt(secret_key, stored) == provider.client_secret
    assert events(session, "connection.created")
    assert_no_secrets(session, provider.client_secret)


def test_oidc_discovery_runs_with_no_transaction_open(
    app: Flask, api: Api, session: Session, provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test's connection: each unit of work of the request is a savepoint on it.
    bind = app.extensions["sessions"].kw["bind"]
    assert isinstance(bind, Connection)
    session.commit()
    seen: list[bool] = []
    discover = OidcClient.discover

    def watched(client: OidcClient, issuer: str, refresh: bool = False) -> ProviderMetadata:
        seen.append(bind.in_nested_transaction())
        return discover(client, issuer, refresh)

    monkeypatch.setattr(OidcClient, "discover", watched)
    api.ok("POST", "/connections", oidc_body(provider), 201)
    assert seen == [False]


def test_oidc_defaults_name_and_jit(api: Api, provider: OidcProvider) -> None:
    created = api.ok("POST", "/connections", oidc_body(provider), 201)
    assert created["name"] == "OIDC 127.0.0.1"
    assert created["jit"] is True and created["enabled"] is True


def test_unreachable_or_wrong_issuer_is_refused(
    api: Api, session: Session, provider: OidcProvider
) -> None:
    unreachable = oidc_body(provider, issuer="http://127.0.0.1:1/nothing")
    assert "cannot be reached" in assert_error(
        api.post("/connections", unreachable), 400, "discovery_failed"
    )
    provider.discovery_changes = {"issuer": "https://impostor.example"}
    assert_error(api.post("/connections", oidc_body(provider)), 400, "discovery_failed")
    provider.discovery_changes = {}
    assert_error(api.post("/connections", oidc_body(provider, issuer="ftp://x")), 400)
    assert_error(api.post("/connections", oidc_body(provider, client_secret="")), 400)
    assert_error(api.post("/connections", oidc_body(provider, scopes="openid")), 400)
    assert_error(api.post("/connections", oidc_body(provider, userinfo=True)), 400)
    assert connections(session) == 0


def test_entra_multi_tenant_issuer_needs_allowed_tenants(api: Api, session: Session) -> None:
    with running_provider(multi_tenant=True) as entra:
        detail = assert_error(api.post("/connections", oidc_body(entra)), 400)
        assert "entra_tenants" in detail
        tenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
        body = oidc_body(entra, entra_tenants=[tenant])
        created = api.ok("POST", "/connections", body, 201)
    assert created["settings"]["allowed_tenants"] == [tenant]


def test_client_secret_rotation_is_what_logins_use(
    api: Api, client: FlaskClient, session: Session, provider: OidcProvider
) -> None:
    created = api.ok("POST", "/connections", oidc_body(provider, name="Okta"), 201)
    provider.redirect_uris.add(created["redirect_uri"])
    connection = row(session, created)
    assert login(client, connection).status_code == 302
    provider.client_secret = "rotated-secret-4567"
    assert_refused(login(client, connection), session, "token_exchange")
    patch = {"client_secret": "rotated-secret-4567"}
    updated = api.ok("PATCH", f"/connections/{created['id']}", patch)
    assert "rotated-secret-4567" not in json.dumps(updated)
    assert login(client, connection).status_code == 302
    assert_error(api.patch(f"/connections/{created['id']}", {"metadata_xml": "<a/>"}), 400)
    assert_error(api.patch(f"/connections/{created['id']}", {"client_secret": ""}), 400)
    assert_no_secrets(session, "rotated-secret-4567", provider.client_secret)


# ------------------------------------------------------- changes and deletion


def test_duplicate_names_conflict(api: Api, session: Session, idp: TestIdp) -> None:
    first = api.ok("POST", "/connections", saml_body(idp, name="Okta"), 201)
    assert_error(api.post("/connections", saml_body(idp, name="Okta")), 409, "conflict")
    second = api.ok("POST", "/connections", saml_body(idp, name="Backup"), 201)
    assert_error(api.patch(f"/connections/{second['id']}", {"name": "Okta"}), 409, "conflict")
    assert api.ok("PATCH", f"/connections/{first['id']}", {"name": "Okta"})["name"] == "Okta"
    assert connections(session) == 2


def test_patch_renames_and_switches_and_is_audited(
    api: Api, session: Session, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp), 201)
    path = f"/connections/{created['id']}"
    updated = api.ok("PATCH", path, {"name": " Okta EU ", "enabled": False, "jit": False})
    assert (updated["name"], updated["enabled"], updated["jit"]) == ("Okta EU", False, False)
    assert api.ok("GET", path) == updated
    [event] = events(session, "connection.updated")
    assert event.before == {"name": "SAML", "enabled": True, "jit": True}
    assert event.after == {"name": "Okta EU", "enabled": False, "jit": False}
    assert (event.actor_type, event.actor) == ("api", "admin")
    refused: list[Any] = [
        {"protocol": "oidc"},
        {"enabled": "no"},
        {"name": ""},
        {"name": "x" * 121},
    ]
    for body in [*refused, []]:
        assert_error(api.patch(path, body), 400)
    assert_error(api.request("PATCH", path, raw="{"), 400, "invalid_json")


def test_enable_and_disable(api: Api, session: Session, idp: TestIdp) -> None:
    created = api.ok("POST", "/connections", saml_body(idp), 201)
    path = f"/connections/{created['id']}"
    assert api.ok("POST", f"{path}/disable")["enabled"] is False
    assert row(session, created).is_enabled is False
    assert api.ok("POST", f"{path}/enable")["enabled"] is True
    assert row(session, created).is_enabled is True
    assert len(events(session, "connection.updated")) == 2


def test_delete_removes_the_connection_and_is_audited(
    api: Api, session: Session, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp, encrypt_assertions=True), 201)
    path = f"/connections/{created['id']}"
    response = api.delete(path)
    assert response.status_code == 204 and response.get_data() == b""
    assert_error(api.get(path), 404, "not_found")
    assert_error(api.delete(path), 404, "not_found")
    assert api.ok("GET", "/connections") == {"connections": []}
    [event] = events(session, "connection.deleted")
    assert event.before is not None and event.before["secrets"] == ["sp_private_key"]
    assert event.after is None
    assert_no_secrets(session)


def test_unknown_ids_are_not_found(api: Api) -> None:
    for path in ("/connections/not-a-uuid", "/connections/00000000-0000-0000-0000-000000000000"):
        assert_error(api.get(path), 404, "not_found")
        assert_error(api.patch(path, {"jit": True}), 404, "not_found")
        assert_error(api.post(f"{path}/enable"), 404, "not_found")


# ------------------------------------------------------------ authorization


def test_another_organizations_connection_is_not_found(
    api: Api, other_api: Api, session: Session, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp), 201)
    path = f"/connections/{created['id']}"
    assert other_api.ok("GET", "/connections") == {"connections": []}
    assert_error(other_api.get(path), 404, "not_found")
    assert_error(other_api.patch(path, {"enabled": False}), 404, "not_found")
    assert_error(other_api.post(f"{path}/disable"), 404, "not_found")
    assert_error(other_api.delete(path), 404, "not_found")
    assert api.ok("GET", path) == created
    assert len(events(session)) == 1


def test_scim_token_and_missing_token_are_refused(
    client: FlaskClient, session: Session, acme: Organization, idp: TestIdp
) -> None:
    scim_secret = provisioning.create_token(session, acme, "okta").secret
    session.commit()
    scim = Api(client, scim_secret)
    assert_error(scim.get("/connections"), 403, "forbidden")
    assert_error(scim.post("/connections", saml_body(idp)), 403, "forbidden")
    assert_error(Api(client, None).get("/connections"), 401, "unauthorized")
    assert_error(Api(client, None).post("/connections", saml_body(idp)), 401, "unauthorized")
    assert connections(session) == 0


def test_read_only_admin_token_reads_but_may_not_change(
    api: Api, client: FlaskClient, session: Session, acme: Organization, idp: TestIdp
) -> None:
    created = api.ok("POST", "/connections", saml_body(idp), 201)
    path = f"/connections/{created['id']}"
    secret = provisioning.create_token(
        session, acme, "audit", True, organizations.TokenScope.ADMIN
    ).secret
    session.commit()
    reader = Api(client, secret)
    assert reader.ok("GET", "/connections") == {"connections": [created]}
    assert reader.ok("GET", path) == created
    for method, url, body in [
        ("POST", "/connections", saml_body(idp, name="Other")),
        ("POST", "/connections", {"protocol": "oidc"}),
        ("PATCH", path, {"enabled": False}),
        ("POST", f"{path}/disable", None),
        ("POST", f"{path}/enable", None),
        ("DELETE", path, None),
    ]:
        assert_error(reader.request(method, url, body), 403, "forbidden")
    assert connections(session) == 1
    assert len(events(session)) == 1


def test_secret_rotation_is_audited_without_the_secret(session: Session) -> None:
    from app.errors import ConflictError
    from app.provisioning import Actor, ProvisioningService

    org = provisioning.create_organization(session, "Rot", "rot")
    service = ProvisioningService(session, org, Actor(kind="cli", label="t"))
    connection = service.create_connection("IdP", "oidc", {}, {"client_secret": "enc-1"})
    service.update_connection(connection.id, encrypted_secrets={"client_secret": "enc-2"})
    service.update_connection(connection.id, encrypted_secrets={"client_secret": "enc-2"})
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "connection.secret_rotated")
    ).all()
    assert [e.after for e in events] == [{"secrets": ["client_secret"]}]
    other = service.create_connection("Other", "oidc", {}, {})
    with pytest.raises(ConflictError):
        service.update_connection(other.id, name="IdP")
