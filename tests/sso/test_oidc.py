"""OpenID Connect logins, run for real against a local OpenID provider over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from app import crypto
from app.db import utcnow
from app.models import IdpConnection, LoginIdentity, Organization, SsoRequest, User
from app.provisioning import UserSpec
from sso import sessions as sso_sessions
from sso.oidc import OidcClient, OidcError
from tests.sso.flow import (
    assert_refused,
    handoff_token,
    refusals,
    service_for,
    setup_org,
)
from tests.sso.oidc_flow import (
    BLUE_URL,
    add_connection,
    authorize,
    callback,
    login,
    start,
)
from tests.sso.oidc_provider import REMOVE, OidcProvider, running_provider, s256

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def acme(session: Session) -> Organization:
    return setup_org(session)


@pytest.fixture
def okta(app: Flask, session: Session, acme: Organization, provider: OidcProvider) -> IdpConnection:
    return add_connection(app, session, acme, provider)


def user_named(session: Session, user_name: str) -> User:
    session.expire_all()
    user = session.scalar(select(User).where(User.user_name_key == user_name.lower()))
    assert user is not None
    return user


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/sso/session")
    assert response.status_code in (200, 401)
    return response.status_code == 200


# ------------------------------------------------------------------ connection setup (CLI)


def test_add_oidc_discovers_the_provider_and_stores_the_secret_encrypted(
    runner: FlaskCliRunner, app: Flask, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    result = runner.invoke(
        args=[
            "connection", "add-oidc", "--org", "acme", "--issuer", provider.issuer,
            "--client-id", provider.client_id, "--client-secret", provider.client_secret,
            "--name", "Okta", "--allowed-domain", "Acme.Example", "--scope", "openid email",
            "--groups-claim", "groups", "--no-jit",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    connection = session.scalars(select(IdpConnection)).one()
    assert f"created OIDC connection {connection.id} (Okta)" in result.output
    assert f"redirect_uri: http://localhost/sso/oidc/{connection.id}/callback" in result.output
    assert f"login_url: http://localhost/sso/oidc/{connection.id}/login" in result.output
    assert connection.protocol == "oidc" and not connection.is_jit_enabled
    assert connection.settings["issuer"] == provider.issuer
    assert connection.settings["scopes"] == ["openid", "email"]
    assert connection.settings["allowed_domains"] == ["acme.example"]
    assert connection.settings["subject_mode"] == "iss_sub"
    stored = connection.encrypted_secrets["client_secret"]
    assert provider.client_secret not in json.dumps(connection.settings) + stored
    assert crypto.decrypt(app.extensions["settings"].secret_key, stored) == provider.client_secret


def test_set_oidc_secret_replaces_the_secret_logins_use(
    runner: FlaskCliRunner,
    client: FlaskClient,
    session: Session,
    okta: IdpConnection,
    provider: OidcProvider,
) -> None:
    provider.client_secret = "rotated-secret-4567"
    assert_refused(login(client, okta), session, "token_exchange")
    args = ["connection", "set-oidc-secret", "--org", "acme", "--id", str(okta.id)]
    result = runner.invoke(args=[*args, "--client-secret", "rotated-secret-4567"])
    assert result.exit_code == 0, result.output
    assert login(client, okta).status_code == 302


def test_add_oidc_refuses_an_issuer_whose_discovery_names_another(
    runner: FlaskCliRunner, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    provider.discovery_changes = {"issuer": "https://impostor.example"}
    result = runner.invoke(
        args=[
            "connection", "add-oidc", "--org", "acme", "--issuer", provider.issuer,
            "--client-id", "x", "--client-secret", "y",
        ]
    )  # fmt: skip
    assert result.exit_code != 0
    assert "impostor.example" in result.output
    assert session.scalar(select(func.count()).select_from(IdpConnection)) == 0


def test_add_oidc_for_entra_multi_tenant_requires_allowed_tenants(
    runner: FlaskCliRunner, session: Session, acme: Organization
) -> None:
    with running_provider(multi_tenant=True) as entra:
        base = ["connection", "add-oidc", "--org", "acme", "--issuer", entra.issuer]
        base += ["--client-id", entra.client_id, "--client-secret", entra.client_secret]
        refused = runner.invoke(args=base)
        assert refused.exit_code != 0
        assert "--entra-tenant" in refused.output
        accepted = runner.invoke(args=[*base, "--entra-tenant", TENANT, "--subject", "tid_oid"])
        assert accepted.exit_code == 0, accepted.output
    connection = session.scalars(select(IdpConnection)).one()
    assert connection.settings["allowed_tenants"] == [TENANT]
    assert connection.settings["subject_mode"] == "tid_oid"


# ---------------------------------------------------------------------------- happy path


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_login_hands_off_to_blue_and_opens_a_session(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, alg: str
) -> None:
    service_for(session, acme).set_sso_options(blue_url=BLUE_URL)
    session.commit()
    with running_provider(alg=alg) as provider:
        connection = add_connection(app, session, acme, provider)
        url = start(client, connection, return_to="/projects/42")
        params = parse_qs(urlsplit(url).query)
        pending = session.get(SsoRequest, params["state"][0])
        assert pending is not None and pending.code_verifier and pending.nonce
        # PKCE S256 always, with the verifier kept server-side; state and nonce remembered.
        assert params["code_challenge_method"] == ["S256"]
        assert params["code_challenge"] == [s256(pending.code_verifier)]
        assert params["nonce"] == [pending.nonce]
        assert params["scope"] == ["openid email profile"]
        assert timedelta(minutes=9) < pending.expires_at - utcnow() <= timedelta(minutes=10)
        response = callback(client, authorize(url))
        [token_request] = provider.token_requests
    assert response.status_code == 200, response.get_data(as_text=True)
    assert token_request["code_verifier"] == pending.code_verifier
    assert token_request["auth_method"] == "client_secret_basic"
    body = response.get_data(as_text=True)
    assert f'action="{BLUE_URL}"' in body
    assert 'name="return_to" value="/projects/42"' in body
    token = handoff_token(response)
    published: Any = client.get("/.well-known/jwks.json").json
    keys = KeySet.import_key_set(published)
    claims = jwt.decode(token, keys, algorithms=["ES256"]).claims
    assert claims["aud"] == BLUE_URL and claims["org"] == "acme"
    assert claims["email"] == "ada@acme.example"
    assert claims["roles"] == {"*": "team_member"} and claims["seat"] == "paid"

    document = client.get("/sso/session")
    assert document.status_code == 200
    assert document.json is not None
    assert document.json["groups"] == ["Engineering"]
    assert document.json["roles"] == {"*": "team_member"}
    assert document.json["seat"] == "paid"
    assert document.json["user"]["email"] == "ada@acme.example"
    assert document.json["user"]["name"] == "Ada Lovelace"
    session.expire_all()
    used = session.get(SsoRequest, pending.id)
    assert used is not None and used.used_at is not None
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.subject == f"{provider.root}|00u-ada"


def test_no_transaction_is_open_while_the_provider_is_called(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    connection = add_connection(app, session, acme, provider, use_userinfo=True)
    session.commit()  # the test's own session holds no savepoint during the login
    # Every unit of work is a savepoint on the test's connection (tests/conftest.py).
    bound: Connection = app.extensions["sessions"].kw["bind"]
    seen: list[tuple[str, bool]] = []
    provider.on_request = lambda path: seen.append((path, bound.in_nested_transaction()))
    assert login(client, connection).status_code == 302
    assert {path for path, _ in seen} == {
        "/.well-known/openid-configuration",
        "/authorize",
        "/token",
        "/jwks",
        "/userinfo",
    }
    assert [path for path, in_transaction in seen if in_transaction] == []


def test_return_to_stays_on_blue(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        url = start(client, okta, return_to=target)
        pending = session.get(SsoRequest, parse_qs(urlsplit(url).query)["state"][0])
        assert pending is not None and pending.return_to is None


def test_plain_http_providers_are_refused_outside_loopback_development(
    provider: OidcProvider,
) -> None:
    with pytest.raises(OidcError) as refused:
        OidcClient(allow_http_loopback=False).discover(provider.issuer)
    assert refused.value.reason == "discovery"
    with pytest.raises(OidcError):
        OidcClient(allow_http_loopback=True).discover("http://192.0.2.1/issuer")
    assert OidcClient(allow_http_loopback=True).discover(provider.issuer).issuer == provider.root


def test_login_without_blue_url_redirects_to_the_session(
    client: FlaskClient, okta: IdpConnection
) -> None:
    response = login(client, okta)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sso/session")
    assert signed_in(client)


def test_client_secret_post_when_the_provider_only_offers_it(
    app: Flask, client: FlaskClient, session: Session, acme: Organization
) -> None:
    with running_provider(auth_methods=("client_secret_post",)) as provider:
        connection = add_connection(app, session, acme, provider)
        assert login(client, connection).status_code == 302
        assert provider.token_requests[-1]["auth_method"] == "client_secret_post"
        assert provider.token_requests[-1]["client_secret"] == provider.client_secret


def test_login_url_of_an_unknown_connection_is_not_found(client: FlaskClient) -> None:
    response = client.get("/sso/oidc/2f1c1c8e-7d59-4a8e-9c8e-1f1a2b3c4d5e/login")
    assert response.status_code == 404
    assert client.get("/sso/oidc/not-a-uuid/login").status_code == 404


# ------------------------------------------------------------------------------- state


def test_callback_without_state_is_refused(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    returned = authorize(start(client, okta))
    parts = urlsplit(returned)
    query = {k: v for k, v in parse_qs(parts.query).items() if k != "state"}
    stripped = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    assert_refused(callback(client, stripped), session, "state_missing")
    assert not signed_in(client)


def test_callback_with_an_unknown_state_is_refused(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    returned = authorize(start(client, okta))
    forged = returned.replace("state=", "state=forged")
    assert_refused(callback(client, forged), session, "state_unknown")


def test_a_callback_is_used_once(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    returned = authorize(start(client, okta))
    assert callback(client, returned).status_code == 302
    client.post("/sso/logout")
    assert_refused(callback(client, returned), session, "state_reused")
    assert not signed_in(client)


def test_an_expired_login_request_is_refused(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    returned = authorize(start(client, okta))
    state = parse_qs(urlsplit(returned).query)["state"][0]
    pending = session.get(SsoRequest, state)
    assert pending is not None
    pending.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert_refused(callback(client, returned), session, "state_expired")


def test_a_callback_in_another_browser_is_refused(
    app: Flask, client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    # Login CSRF: an attacker's own callback URL sent to a victim must not sign the victim in.
    returned = authorize(start(client, okta))
    victim = app.test_client()
    assert_refused(callback(victim, returned), session, "state_browser")
    assert not signed_in(victim)


# -------------------------------------------------------------- authorization response


def test_the_provider_refuses_authorization_without_pkce(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    url = start(client, okta)
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qs(parts.query).items() if not k.startswith("code_challenge")}
    returned = authorize(urlunsplit(parts._replace(query=urlencode(query, doseq=True))))
    assert "error=invalid_request" in returned
    page = assert_refused(callback(client, returned), session, "idp_error")
    assert "invalid_request" in page and "PKCE with S256 is required" in page
    assert provider.token_requests == []


def test_a_wrong_pkce_verifier_is_refused_by_the_token_endpoint(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    returned = authorize(start(client, okta))
    pending = session.get(SsoRequest, parse_qs(urlsplit(returned).query)["state"][0])
    assert pending is not None
    pending.code_verifier = "x" * 64
    session.commit()
    assert_refused(callback(client, returned), session, "token_exchange")
    assert provider.token_requests[-1]["code_verifier"] == "x" * 64


def test_an_error_response_is_shown(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    returned = authorize(start(client, okta))
    state = parse_qs(urlsplit(returned).query)["state"][0]
    query = urlencode(
        {"error": "access_denied", "error_description": "<b>not assigned</b>", "state": state}
    )
    response = callback(client, f"/sso/oidc/{okta.id}/callback?{query}")
    page = assert_refused(response, session, "idp_error")
    assert "access_denied: &lt;b&gt;not assigned&lt;/b&gt;" in page


def test_rfc9207_issuer_mismatch_is_refused(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    provider.iss_parameter = "https://attacker.example"
    assert_refused(login(client, okta), session, "iss_parameter")
    assert provider.token_requests == []  # the code never reaches the wrong token endpoint


def test_rfc9207_issuer_is_required_when_the_provider_promises_it(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    provider.discovery_changes = {"authorization_response_iss_parameter_supported": True}
    assert_refused(login(client, okta), session, "iss_parameter")
    provider.iss_parameter = True
    assert login(client, okta).status_code == 302


# ----------------------------------------------------------------------------- ID token


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"nonce": "another-attempt"}, "id_token_nonce"),
        ({"nonce": REMOVE}, "id_token_nonce"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "id_token_expired"),
        ({"iat": int(time.time()) + 3600}, "id_token_not_yet_valid"),
        ({"nbf": int(time.time()) + 3600}, "id_token_not_yet_valid"),
        ({"exp": REMOVE}, "id_token_invalid"),
        ({"iss": "https://attacker.example"}, "id_token_issuer"),
        ({"aud": "another-app"}, "id_token_audience"),
        ({"aud": ["another-app", "a-third-app"]}, "id_token_audience"),
        ({"aud": ["blue-provisioning-app", "another-app"]}, "id_token_azp"),
        (
            {"aud": ["blue-provisioning-app", "another-app"], "azp": "another-app"},
            "id_token_azp",
        ),
        ({"azp": "another-app"}, "id_token_azp"),
    ],
    ids=[
        "wrong-nonce",
        "no-nonce",
        "expired",
        "issued-in-future",
        "not-yet-valid",
        "no-exp",
        "wrong-iss",
        "wrong-aud",
        "other-auds",
        "several-aud-without-azp",
        "several-aud-other-azp",
        "other-azp",
    ],
)
def test_an_invalid_id_token_is_refused(
    client: FlaskClient,
    session: Session,
    okta: IdpConnection,
    provider: OidcProvider,
    changes: dict[str, object],
    reason: str,
) -> None:
    provider.id_token_changes = changes
    assert_refused(login(client, okta), session, reason)
    assert not signed_in(client)
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_several_audiences_with_our_azp_are_accepted(
    client: FlaskClient, okta: IdpConnection, provider: OidcProvider
) -> None:
    provider.id_token_changes = {
        "aud": [provider.client_id, "another-app"],
        "azp": provider.client_id,
    }
    assert login(client, okta).status_code == 302


def test_small_clock_skew_is_tolerated(
    client: FlaskClient, okta: IdpConnection, provider: OidcProvider
) -> None:
    provider.id_token_changes = {"iat": int(time.time()) + 20, "nbf": int(time.time()) + 20}
    assert login(client, okta).status_code == 302


@pytest.mark.parametrize("signing", ["none", "hs256_public"])
def test_unsigned_and_key_confusion_tokens_are_refused(
    client: FlaskClient,
    session: Session,
    okta: IdpConnection,
    provider: OidcProvider,
    signing: str,
) -> None:
    provider.signing = signing
    assert_refused(login(client, okta), session, "id_token_alg")


def test_a_rotated_provider_key_is_fetched_once(
    client: FlaskClient, okta: IdpConnection, provider: OidcProvider
) -> None:
    assert login(client, okta).status_code == 302
    assert login(client, okta).status_code == 302
    assert provider.jwks_requests == 1  # cached
    provider.rotate_key()
    client.post("/sso/logout")
    assert login(client, okta).status_code == 302
    assert provider.jwks_requests == 2


def test_a_key_unknown_even_after_refresh_is_refused(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    assert login(client, okta).status_code == 302
    client.post("/sso/logout")
    provider.signing = "unpublished"
    assert_refused(login(client, okta), session, "id_token_unknown_key")
    assert provider.jwks_requests == 2  # the cached set, then one refresh
    # Another unknown kid right after does not make the service fetch again.
    assert_refused(login(client, okta), session, "id_token_unknown_key")
    assert provider.jwks_requests == 2


def test_a_tampered_signature_is_refused(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    original = provider.sign

    def tampered(claims: dict[str, object]) -> str:
        header, payload, signature = original(claims).split(".")
        return f"{header}.{original({**claims, 'sub': 'someone-else'}).split('.')[1]}.{signature}"

    provider.sign = tampered  # type: ignore[method-assign]
    assert_refused(login(client, okta), session, "id_token_signature")


# ----------------------------------------------------------------------------- UserInfo


def test_userinfo_about_another_subject_is_refused(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    connection = add_connection(app, session, acme, provider, use_userinfo=True)
    provider.userinfo_changes = {"sub": "00u-mallory", "email": "mallory@acme.example"}
    assert_refused(login(client, connection), session, "userinfo_sub")


def test_userinfo_adds_claims_the_id_token_lacks(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    connection = add_connection(app, session, acme, provider, use_userinfo=True)
    provider.id_token_changes = {"groups": REMOVE, "name": REMOVE}
    assert login(client, connection).status_code == 302
    document = client.get("/sso/session").json
    assert document is not None
    assert document["groups"] == ["Engineering"]
    assert document["user"]["name"] == "Ada Lovelace"


# ------------------------------------------------------------------------ who may sign in


def test_an_unverified_email_never_links_to_an_existing_user(
    client: FlaskClient,
    session: Session,
    acme: Organization,
    okta: IdpConnection,
    provider: OidcProvider,
) -> None:
    service = service_for(session, acme)
    service.add_domain("acme.example")
    existing = service.create_user(
        UserSpec(
            user_name="ada@acme.example",
            multi_values={"emails": [{"value": "ada@acme.example", "primary": True}]},
        )
    )
    session.commit()
    provider.user["email_verified"] = False
    assert_refused(login(client, okta), session, "identity_conflict")
    assert session.scalar(select(func.count()).select_from(LoginIdentity)) == 0
    provider.user["email_verified"] = "false"
    assert_refused(login(client, okta), session, "identity_conflict")
    # The same login with a verified address links to the existing record.
    provider.user["email_verified"] = True
    assert login(client, okta).status_code == 302
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.user_id == existing.id


def test_an_email_domain_not_allowed_is_refused(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, provider: OidcProvider
) -> None:
    connection = add_connection(app, session, acme, provider, allowed_domains=["acme.example"])
    provider.user["email"] = "ada@evil.example"
    assert_refused(login(client, connection), session, "email_domain")
    provider.user.pop("email")
    assert_refused(login(client, connection), session, "email_domain")
    provider.user["email"] = "ada@ACME.example"
    assert login(client, connection).status_code == 302


def test_a_deactivated_user_is_refused(
    client: FlaskClient, session: Session, acme: Organization, okta: IdpConnection
) -> None:
    assert login(client, okta).status_code == 302
    user = user_named(session, "ada@acme.example")
    service_for(session, acme).replace_user(
        user.id, UserSpec(user_name=user.user_name, is_active=False)
    )
    session.commit()
    fresh = client.application.test_client()
    assert_refused(login(fresh, okta), session, "user_deactivated")
    assert not signed_in(fresh)


def test_a_disabled_connection_refuses_logins_in_flight(
    client: FlaskClient, session: Session, acme: Organization, okta: IdpConnection
) -> None:
    returned = authorize(start(client, okta))
    service_for(session, acme).update_connection(okta.id, is_enabled=False)
    session.commit()
    assert_refused(callback(client, returned), session, "connection")


# -------------------------------------------------------------------- Entra ID specifics


@pytest.fixture
def entra() -> Iterator[OidcProvider]:
    with running_provider(multi_tenant=True) as entra:
        entra.user = {
            "sub": "pairwise-sub-for-this-app",
            "tid": TENANT,
            "oid": "0b6ed9fa-4cd3-4f5c-8a7d-1a2b3c4d5e6f",
            "email": "grace@acme.example",
            "name": "Grace Hopper",
            "preferred_username": "grace@acme.example",
            "groups": ["Engineering"],
        }
        yield entra


@pytest.fixture
def entra_connection(
    app: Flask, session: Session, acme: Organization, entra: OidcProvider
) -> IdpConnection:
    return add_connection(
        app, session, acme, entra, name="Entra ID", allowed_tenants=[TENANT], subject_mode="tid_oid"
    )


def test_entra_group_overage_keeps_memberships(
    client: FlaskClient,
    session: Session,
    entra: OidcProvider,
    entra_connection: IdpConnection,
) -> None:
    assert login(client, entra_connection).status_code == 302
    identity = session.scalars(select(LoginIdentity)).one()
    assert identity.subject == f"{TENANT}|{entra.user['oid']}"
    client.post("/sso/logout")
    # More than 200 groups: Entra ID drops the claim and points at Microsoft Graph instead.
    entra.id_token_changes = {
        "groups": REMOVE,
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {
            "src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}
        },
    }
    assert login(client, entra_connection).status_code == 302
    document = client.get("/sso/session").json
    assert document is not None
    assert document["groups"] == ["Engineering"]
    assert document["roles"] == {"*": "team_member"}
    user = user_named(session, "grace@acme.example")
    assert user.groups_overage_at is not None


def test_entra_hasgroups_indicator_is_an_overage_too(
    client: FlaskClient, session: Session, entra: OidcProvider, entra_connection: IdpConnection
) -> None:
    assert login(client, entra_connection).status_code == 302
    client.post("/sso/logout")
    entra.id_token_changes = {"groups": REMOVE, "hasgroups": True}
    assert login(client, entra_connection).status_code == 302
    assert user_named(session, "grace@acme.example").groups_overage_at is not None


def test_entra_links_an_existing_user_only_with_a_domain_verified_email(
    client: FlaskClient,
    session: Session,
    acme: Organization,
    entra: OidcProvider,
    entra_connection: IdpConnection,
) -> None:
    service = service_for(session, acme)
    service.add_domain("acme.example")
    existing = service.create_user(UserSpec(user_name="grace@acme.example"))
    session.commit()
    # Entra ID sends no email_verified: an email alone never links.
    assert_refused(login(client, entra_connection), session, "identity_conflict")
    entra.user["xms_edov"] = True
    assert login(client, entra_connection).status_code == 302
    assert session.scalars(select(LoginIdentity)).one().user_id == existing.id


def test_entra_tenant_outside_the_allowlist_is_refused(
    client: FlaskClient, session: Session, entra: OidcProvider, entra_connection: IdpConnection
) -> None:
    entra.user["tid"] = OTHER_TENANT
    assert_refused(login(client, entra_connection), session, "tenant_not_allowed")


def test_entra_multi_tenant_without_an_allowlist_admits_no_tenant(
    app: Flask, client: FlaskClient, session: Session, acme: Organization, entra: OidcProvider
) -> None:
    connection = add_connection(app, session, acme, entra, name="Any tenant")
    assert_refused(login(client, connection), session, "tenant_not_allowed")


def test_entra_issuer_must_match_the_token_tenant(
    client: FlaskClient, session: Session, entra: OidcProvider, entra_connection: IdpConnection
) -> None:
    # An allowed tid inside a token issued by another tenant's issuer.
    entra.id_token_changes = {"iss": f"{entra.root}/{OTHER_TENANT}/v2.0"}
    assert_refused(login(client, entra_connection), session, "id_token_issuer")


# ------------------------------------------------------------------------- the session


def test_scim_deactivation_ends_the_session(
    client: FlaskClient, session: Session, acme: Organization, okta: IdpConnection
) -> None:
    assert login(client, okta).status_code == 302
    assert signed_in(client)
    user = user_named(session, "ada@acme.example")
    service_for(session, acme).replace_user(
        user.id, UserSpec(user_name=user.user_name, is_active=False)
    )
    session.commit()
    assert client.get("/sso/session").status_code == 401


def test_looking_up_a_session_writes_nothing(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    # A user made inactive without their sessions ended (only the door ends them): the
    # lookup refuses the session, and leaves the row as it found it.
    assert login(client, okta).status_code == 302
    cookie = client.get_cookie(sso_sessions.COOKIE)
    assert cookie is not None
    user = user_named(session, "ada@acme.example")
    user.is_active = False
    session.flush()
    assert sso_sessions.current(session, cookie.value) is None
    assert not session.dirty


def test_scim_delete_ends_the_session(
    client: FlaskClient, session: Session, acme: Organization, okta: IdpConnection
) -> None:
    assert login(client, okta).status_code == 302
    user = user_named(session, "ada@acme.example")
    service_for(session, acme).delete_user(user.id)
    session.commit()
    assert client.get("/sso/session").status_code == 401


def test_logout_ends_the_session(client: FlaskClient, okta: IdpConnection) -> None:
    assert login(client, okta).status_code == 302
    assert signed_in(client)
    assert client.post("/sso/logout").status_code == 200
    assert not signed_in(client)


def test_every_refusal_is_audited_with_its_connection(
    client: FlaskClient, session: Session, okta: IdpConnection, provider: OidcProvider
) -> None:
    provider.id_token_changes = {"aud": "another-app"}
    login(client, okta)
    [event] = refusals(session)
    assert event["connection"] == "Okta"
    assert event["detail"] == "The ID token was issued to another application."


def test_logout_ends_the_session_and_is_audited(
    client: FlaskClient, session: Session, okta: IdpConnection
) -> None:
    from app.models import AuditEvent

    assert login(client, okta).status_code == 302
    assert signed_in(client)
    assert client.post("/sso/logout").status_code == 200
    assert not signed_in(client)
    ended = session.scalars(select(AuditEvent).where(AuditEvent.action == "session.ended")).all()
    assert [e.after for e in ended] == [{"reason": "logout"}]
