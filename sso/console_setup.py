"""The console's Connections page, sso/'s side of it (app.console.sso_setup names the interface;
create_app() registers `ConsoleSetup`): new connections from the admin's form with the same
builders as `connection add-saml` / `add-oidc` and /api/v1/connections, what a connection is set
to, and the test sign-in.

A test sign-in is our ordinary login URL whose `return_to` is `/sso/test-sign-in/<marker>`: the
marker is signed (itsdangerous) and short-lived, names the connection and the admin, and is
kept in the login request's `return_to` like any other. `complete_login` hands such a return
to `tested_sign_in_page` before it provisions anything: no user is created or updated, no session is
opened, and the page shows what the IdP sent and which mapping rules it would match. A
`return_to` of that shape with a bad marker is refused, never taken for a real login.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import urlencode
from uuid import UUID

from flask import Response, render_template, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from app.console.queries_connections import matched_rules
from app.console.sso_setup import (
    NewConnection,
    OidcForm,
    SamlForm,
    SettingsChange,
    SetupFact,
    SetupRefusedError,
)
from app.db import unit_of_work
from app.logs import current_request_id
from app.models import IdpConnection
from app.provisioning import Actor, LoginClaims, ProvisioningService
from app.web import settings
from sso import connection_settings, saml
from sso.connections import CLIENT_SECRET, SP_KEY_SECRET, oidc_client, sp_urls
from sso.oidc import OidcError, OidcSettings
from sso.pages import error_page

log = logging.getLogger(__name__)

TEST_PATH = "/sso/test-sign-in/"
# Long enough to sign in at the IdP (a login request itself lives 10 minutes).
TEST_MAX_AGE_SECONDS = 15 * 60
_SALT = "blue.console.test-sign-in"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt=_SALT)


class ConsoleSetup:
    """The SSO adapter's implementation of app.console.sso_setup.ConnectionSetup."""

    def new_saml(self, form: SamlForm, org_slug: str) -> NewConnection:
        if form.preset is not None and form.preset not in saml.PRESETS:
            raise SetupRefusedError(f"preset must be one of: {', '.join(sorted(saml.PRESETS))}")
        metadata = _read_metadata(form)
        idp = connection_settings.new_saml_settings(
            metadata, preset=form.preset, attribute_overrides={"groups": form.groups_attribute}
        )
        idp, secrets = connection_settings.with_sp_key(idp, org_slug)
        return NewConnection(
            form.name or connection_settings.saml_default_name(form.preset),
            "saml",
            idp.to_json(),
            secrets or {},
            form.jit,
        )

    def new_oidc(self, form: OidcForm) -> NewConnection:
        if not form.client_secret:
            raise SetupRefusedError("a client secret is required")
        try:
            config = OidcSettings.build(
                form.issuer,
                form.client_id,
                groups_claim=form.groups_claim,
                allowed_tenants=form.entra_tenants,
            )
            metadata = oidc_client().discover(config.issuer, refresh=True)
        except OidcError as error:
            raise SetupRefusedError(error.detail) from None
        if connection_settings.admits_every_tenant(metadata, config):
            raise SetupRefusedError(
                "this issuer admits every Entra ID tenant: name the allowed tenant ids"
            )
        return NewConnection(
            form.name or connection_settings.oidc_default_name(config),
            "oidc",
            config.as_document(),
            connection_settings.encrypted_client_secret(form.client_secret),
            form.jit,
        )

    def fetch_metadata(self, xml: bytes | None, url: str | None) -> bytes:
        return _fetched(xml, url)

    def reimported_saml(
        self, connection: IdpConnection, xml: bytes, org_slug: str
    ) -> SettingsChange:
        if connection.protocol != "saml":
            raise SetupRefusedError("metadata only applies to SAML connections")
        metadata = _parsed(xml)
        try:
            idp = saml.SamlSettings.from_json(connection.settings)
        except ValueError as error:
            raise SetupRefusedError(f"the stored SAML settings are unusable: {error}") from None
        # As `connection update-saml --metadata`: an SP key made if the IdP now wants one.
        idp, secrets = connection_settings.with_sp_key(
            idp.with_metadata(metadata), org_slug, connection.encrypted_secrets
        )
        return SettingsChange(idp.to_json(), secrets)

    def oidc_client_secret(self, client_secret: str) -> SettingsChange:
        if not client_secret:
            raise SetupRefusedError("a client secret is required")
        return SettingsChange(None, connection_settings.encrypted_client_secret(client_secret))

    def sp_values(self, connection: IdpConnection) -> dict[str, str]:
        return sp_urls(connection)

    def facts(self, connection: IdpConnection) -> list[SetupFact]:
        try:
            if connection.protocol == "saml":
                return _saml_facts(connection)
            return _oidc_facts(connection)
        except (ValueError, OidcError):
            return [SetupFact("Settings", "unreadable: set the connection up again")]

    def test_sign_in_url(self, connection: IdpConnection, requested_by: str) -> str:
        marker = _serializer().dumps({"connection": str(connection.id), "by": requested_by})
        login = sp_urls(connection)["login_url"]
        return f"{login}?{urlencode({'return_to': TEST_PATH + marker})}"


def _read_metadata(form: SamlForm) -> saml.IdpMetadata:
    """The IdP's metadata from the upload, the pasted XML or its URL (fetched here: the
    console calls this with no transaction open)."""
    return _parsed(_fetched(form.metadata_xml, form.metadata_url))


def _fetched(xml: bytes | None, url: str | None) -> bytes:
    if xml:
        return xml
    if not url:
        raise SetupRefusedError("give the IdP's metadata: upload it, paste it or its URL")
    try:
        return saml.fetch_idp_metadata(url)
    except ValueError as error:
        raise SetupRefusedError(f"IdP metadata refused: {error}") from None


def _parsed(xml: bytes) -> saml.IdpMetadata:
    try:
        return saml.parse_idp_metadata(xml)
    except saml.SamlError as error:
        raise SetupRefusedError(f"IdP metadata refused: {error.detail}") from None
    except ValueError as error:
        raise SetupRefusedError(f"IdP metadata refused: {error}") from None


def _saml_facts(connection: IdpConnection) -> list[SetupFact]:
    idp = saml.SamlSettings.from_json(connection.settings)
    names = idp.attributes
    facts = [
        SetupFact("IdP entity id", idp.idp_entity_id),
        SetupFact("IdP sign-in URL", f"{idp.sso_url} ({idp.sso_binding.name.lower()} binding)"),
        SetupFact("Preset", idp.preset or "none"),
        SetupFact("Email attribute", names.email or "not read"),
        SetupFact("Groups attribute", names.groups or "not read"),
        SetupFact("Signatures required", _signatures(idp)),
        SetupFact("Sign-ins started at the IdP", "accepted" if idp.allow_idp_initiated else "no"),
    ]
    for certificate in idp.certificates:
        expires = saml.certificate_expires_at(certificate).date().isoformat()
        fingerprint = saml.certificate_fingerprint(certificate)
        facts.append(SetupFact("IdP certificate", f"{fingerprint} (expires {expires})"))
    if SP_KEY_SECRET in connection.encrypted_secrets:
        facts.append(SetupFact("SP key", "stored encrypted"))
    return facts


def _signatures(idp: saml.SamlSettings) -> str:
    signed = [
        what
        for what, wanted in (
            ("assertion", idp.want_assertions_signed),
            ("response", idp.want_response_signed),
        )
        if wanted
    ]
    return " and ".join(signed) or "none"


def _oidc_facts(connection: IdpConnection) -> list[SetupFact]:
    config = OidcSettings.from_document(connection.settings)
    has_secret = CLIENT_SECRET in connection.encrypted_secrets
    return [
        SetupFact("Issuer", config.issuer),
        SetupFact("Client id", config.client_id),
        SetupFact("Client secret", "stored encrypted" if has_secret else "missing"),
        SetupFact("Scopes", " ".join(config.scopes)),
        SetupFact("Groups claim", config.groups_claim),
        SetupFact("Allowed email domains", ", ".join(config.allowed_domains) or "any"),
        SetupFact("Allowed Entra ID tenants", ", ".join(config.allowed_tenants) or "any"),
    ]


# ------------------------------------------------------------------ test sign-in


def is_test_sign_in(return_to: str | None) -> bool:
    """Whether a login's return marks it a test sign-in (then nothing may be provisioned)."""
    return return_to is not None and return_to.startswith(TEST_PATH)


def tested_sign_in_page(connection_id: UUID, claims: LoginClaims, return_to: str) -> BaseResponse:
    """The test sign-in's page: what the IdP sent and the rules it would match. It changes
    nothing but the audit trail, which records the test as the admin who started it."""
    marker = return_to.removeprefix(TEST_PATH)
    try:
        payload = _serializer().loads(marker, max_age=TEST_MAX_AGE_SECONDS)
    except SignatureExpired:
        return _refused("The test sign-in expired. Start it again from the console.")
    except BadSignature:
        return _refused("This test sign-in was not started from the console.")
    if not isinstance(payload, dict) or payload.get("connection") != str(connection_id):
        return _refused("This test sign-in was started for another connection.")
    by = str(payload.get("by") or "")
    with unit_of_work() as session:
        connection = session.get(IdpConnection, connection_id)
        if connection is None:
            return _refused("This sign-in connection no longer exists.")
        rules = matched_rules(session, connection.org_id, claims.groups or ())
        name, protocol = connection.name, connection.protocol
        ProvisioningService(session, connection.org_id, actor_for_test(by)).record_test_sign_in(
            connection, claims
        )
    log.info("test sign-in", extra={"connection": str(connection_id)})
    body = render_template(
        "console/connection_test.html",
        connection_id=connection_id,
        connection_name=name,
        protocol=protocol,
        claims=claims,
        rules=rules,
        requested_by=by,
    )
    # The sign-in blueprints add the HTML security headers (sso/pages.py), as to every page.
    response = Response(body, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def actor_for_test(by: str) -> Actor:
    """The console user who started the test (named in the signed marker), with the browser."""
    return Actor(
        kind="console",
        label=by or "console",
        request_id=current_request_id(),
        source_ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def _refused(detail: str) -> BaseResponse:
    return error_page("Test sign-in refused", detail, HTTPStatus.BAD_REQUEST)
