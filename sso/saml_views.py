"""SAML 2.0 routes and commands: SP metadata, SP- and IdP-initiated login, single logout, and
`connection add-saml` / `connection update-saml`.

Protocol work happens in sso/saml.py; this module keeps the database side: the single-use
request ids (SsoRequest) and the assertion replay cache (SsoReplay), both shared by every
worker through the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import IO, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import click
from flask import Response, jsonify, redirect, render_template_string, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from app import crypto
from app.cli import org_service
from app.db import unit_of_work, utcnow
from app.errors import LoginRefusedError
from app.models import IdpConnection, LoginIdentity, SsoReplay, SsoRequest
from app.provisioning import LoginClaims
from app.web import settings as app_settings
from sso import saml, sessions
from sso.cli import connection_cli, connection_document
from sso.pages import error_page
from sso.views import actor_for, bp, complete_login, refuse, safe_return_to, sp_urls

# How long an SP-initiated login (or logout) may take at the IdP.
REQUEST_LIFETIME = timedelta(minutes=10)
SP_KEY_SECRET = "sp_private_key"

POST_BINDING_PAGE = """{% extends "sso_base.html" %}
{% block title %}Signing you in{% endblock %}
{% block content %}
  <h1>Continuing to your organization's sign-in…</h1>
  <form id="saml" method="post" action="{{ action }}">
    {% for name, value in fields.items() %}
    <input type="hidden" name="{{ name }}" value="{{ value }}">
    {% endfor %}
    <noscript><button type="submit">Continue</button></noscript>
  </form>
  <script>document.getElementById("saml").submit();</script>
{% endblock %}
"""


@dataclass(frozen=True, slots=True)
class SamlConnection:
    """A SAML connection as one request needs it: the row (detached) and its typed settings."""

    row: IdpConnection
    idp: saml.SamlSettings
    sp: saml.ServiceProvider


def _find(session: Session, connection_id: str) -> IdpConnection | None:
    try:
        parsed = UUID(connection_id)
    except ValueError:
        return None
    row = session.get(IdpConnection, parsed)
    return row if row is not None and row.protocol == "saml" else None


def service_provider(row: IdpConnection, idp: saml.SamlSettings) -> saml.ServiceProvider:
    """Our URLs and (decrypted) key for a connection; SamlError if the key cannot be read."""
    urls = sp_urls(row)
    private_key = None
    token = row.encrypted_secrets.get(SP_KEY_SECRET)
    if token:
        try:
            private_key = crypto.decrypt(app_settings().secret_key, token)
        except crypto.DecryptionError:
            raise saml.SamlError(saml.Reason.MISCONFIGURED) from None
    return saml.ServiceProvider(
        entity_id=urls["entity_id"],
        acs_url=urls["acs_url"],
        slo_url=urls["slo_url"],
        private_key=private_key,
        certificate=idp.sp_certificate if private_key else None,
    )


def _open(connection_id: str, for_login: bool = True) -> SamlConnection | BaseResponse:
    """The connection a SAML URL names, or the page that explains why there is none.

    For a login a disabled or broken connection is a refused login (audited); metadata and
    logout work on a disabled connection.
    """
    with unit_of_work() as session:
        row = _find(session, connection_id)
    if row is None:
        return error_page(
            "Sign-in unavailable", "This sign-in connection does not exist.", HTTPStatus.NOT_FOUND
        )
    try:
        try:
            idp = saml.SamlSettings.from_json(row.settings)
        except ValueError:
            raise saml.SamlError(saml.Reason.MISCONFIGURED) from None
        sp = service_provider(row, idp)
    except saml.SamlError as error:
        if for_login:
            return refuse(row, error.reason, error.detail)
        return error_page("Sign-in unavailable", error.detail, HTTPStatus.SERVICE_UNAVAILABLE)
    if for_login and not row.is_enabled:
        return refuse(row, "connection_disabled", "This sign-in connection is disabled.")
    return SamlConnection(row, idp, sp)


def _browser_cookie(request_id: str) -> str:
    # One cookie per login attempt, so that two tabs signing in at once do not collide.
    return "blue_saml_" + hashlib.sha256(request_id.encode()).hexdigest()[:20]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------- routes


@bp.get("/saml/<connection_id>/metadata")
def saml_metadata(connection_id: str) -> ResponseReturnValue:
    """Our SP metadata for the IdP (signed when the connection has an SP key)."""
    connection = _open(connection_id, for_login=False)
    if not isinstance(connection, SamlConnection):
        return connection
    try:
        xml = saml.sp_metadata(connection.idp, connection.sp)
    except saml.SamlError as error:
        return error_page("Metadata unavailable", error.detail, HTTPStatus.SERVICE_UNAVAILABLE)
    response = Response(xml, content_type="application/samlmetadata+xml; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/saml/<connection_id>/login")
def saml_login(connection_id: str) -> ResponseReturnValue:
    """SP-initiated login: store a single-use request and send the browser to the IdP."""
    connection = _open(connection_id)
    if not isinstance(connection, SamlConnection):
        return connection
    try:
        authn = saml.build_authn_request(connection.idp, connection.sp)
    except saml.SamlError as error:
        return refuse(connection.row, error.reason, error.detail)
    browser_secret = secrets.token_urlsafe(32)
    with unit_of_work() as session:
        session.add(
            SsoRequest(
                id=authn.request_id,
                connection_id=connection.row.id,
                # Binds the request to this browser (login CSRF): only its digest is stored.
                nonce=_digest(browser_secret),
                return_to=safe_return_to(request.args.get("return_to")),
                expires_at=utcnow() + REQUEST_LIFETIME,
            )
        )
    response: BaseResponse
    if authn.binding is saml.Binding.POST:
        body = render_template_string(POST_BINDING_PAGE, action=authn.url, fields=authn.form)
        response = Response(body, content_type="text/html; charset=utf-8")
    else:
        response = redirect(authn.url)
    https = connection.sp.acs_url.startswith("https://")
    response.set_cookie(
        _browser_cookie(authn.request_id),
        browser_secret,
        max_age=int(REQUEST_LIFETIME.total_seconds()),
        httponly=True,
        secure=https,
        # The IdP returns with a cross-site POST, which only carries SameSite=None cookies.
        samesite="None" if https else "Lax",
        path=urlsplit(connection.sp.acs_url).path,
    )
    return _no_store(response)


@bp.post("/saml/<connection_id>/acs")
def saml_acs(connection_id: str) -> ResponseReturnValue:
    """The assertion consumer service (HTTP-POST binding): verify, then sign the user in."""
    connection = _open(connection_id)
    if not isinstance(connection, SamlConnection):
        return connection
    try:
        assertion = saml.verify_response(
            connection.idp, connection.sp, request.form.get("SAMLResponse")
        )
        cookie = _browser_cookie(assertion.in_response_to) if assertion.in_response_to else None
        with unit_of_work() as session:
            return_to = _accept(
                session,
                connection,
                assertion,
                request.form.get("RelayState"),
                request.cookies.get(cookie) if cookie else None,
            )
    except saml.SamlError as error:
        return refuse(connection.row, error.reason, error.detail)
    except LoginRefusedError as error:
        return refuse(connection.row, error.reason, error.detail)
    claims = LoginClaims(
        subject=assertion.subject,
        email=assertion.email,
        # The organization's own IdP asserts the address.
        email_verified=assertion.email is not None,
        given_name=assertion.given_name,
        family_name=assertion.family_name,
        display_name=assertion.display_name,
        groups=list(assertion.groups) if assertion.groups is not None else None,
        groups_overage=assertion.groups_overage,
    )
    response = complete_login(connection.row.id, claims, return_to)
    if cookie is not None:
        response.delete_cookie(cookie, path=urlsplit(connection.sp.acs_url).path)
    return _no_store(response)


def _accept(
    session: Session,
    connection: SamlConnection,
    assertion: saml.VerifiedAssertion,
    relay_state: str | None,
    browser_secret: str | None,
) -> str | None:
    """Use up the login's request id and record the assertion id; returns where to go next."""
    now = utcnow()
    if assertion.in_response_to is None:
        if not connection.idp.allow_idp_initiated:
            raise LoginRefusedError(
                "This connection only accepts sign-ins started from Blue. Please start again "
                "from the Blue sign-in page.",
                "idp_initiated_not_allowed",
            )
        # An IdP-initiated RelayState is only a hint: a path on Blue, or nothing.
        return_to = safe_return_to(relay_state)
    else:
        if relay_state is not None and relay_state != assertion.in_response_to:
            raise LoginRefusedError(
                "The sign-in response does not belong to this sign-in attempt.",
                "relay_state_mismatch",
            )
        stored = session.scalar(
            select(SsoRequest)
            .where(
                SsoRequest.id == assertion.in_response_to,
                SsoRequest.connection_id == connection.row.id,
            )
            # Two workers receiving the same response queue here; the second sees used_at.
            .with_for_update()
        )
        if stored is None:
            raise LoginRefusedError(
                "The sign-in response does not answer a sign-in request of this connection.",
                "unknown_request",
            )
        if stored.used_at is not None:
            raise LoginRefusedError(
                "This sign-in response was already used. Please sign in again.",
                "request_reused",
            )
        if stored.expires_at <= now:
            raise LoginRefusedError(
                "The sign-in took too long. Please sign in again.", "request_expired"
            )
        if (
            browser_secret is None
            or stored.nonce is None
            or not hmac.compare_digest(_digest(browser_secret), stored.nonce)
        ):
            raise LoginRefusedError(
                "This sign-in was started in another browser. Please sign in again.",
                "request_browser",
            )
        stored.used_at = now
        return_to = safe_return_to(stored.return_to)
    _record_assertion(session, connection, assertion)
    return return_to


def _record_assertion(
    session: Session, connection: SamlConnection, assertion: saml.VerifiedAssertion
) -> None:
    """Keep the assertion id until it expires; a second use is a replay."""
    if not _remember(session, connection, assertion.assertion_id, assertion.keep_until):
        raise LoginRefusedError(
            "This sign-in response was already used. Please sign in again.", "replayed_assertion"
        )


def _remember(
    session: Session, connection: SamlConnection, message_id: str, until: datetime
) -> bool:
    """Record a message id in the replay cache; False if it is already there."""
    session.execute(
        delete(SsoReplay).where(
            SsoReplay.connection_id == connection.row.id, SsoReplay.expires_at < utcnow()
        )
    )
    if session.get(SsoReplay, (connection.row.id, message_id)) is not None:
        return False
    try:
        # The primary key decides between concurrent workers.
        with session.begin_nested():
            session.add(
                SsoReplay(
                    connection_id=connection.row.id, assertion_id=message_id, expires_at=until
                )
            )
    except IntegrityError:
        return False
    return True


@bp.route("/saml/<connection_id>/slo", methods=["GET", "POST"])
def saml_slo(connection_id: str) -> ResponseReturnValue:
    """Single logout: the IdP's LogoutRequest or LogoutResponse, or our own sign-out."""
    connection = _open(connection_id, for_login=False)
    if not isinstance(connection, SamlConnection):
        return connection
    if request.method == "GET":
        binding, values = saml.Binding.REDIRECT, request.args.to_dict()
    else:
        binding, values = saml.Binding.POST, request.form.to_dict()
    message = saml.LogoutMessage(binding, values, request.query_string.decode("utf-8", "replace"))
    if "SAMLRequest" in values:
        return _no_store(_idp_logout(connection, message))
    if "SAMLResponse" in values:
        return _no_store(_logout_answered(connection, message))
    return _no_store(_sp_logout(connection))


def _signed_out(return_to: str | None, idp_url: str | None = None) -> BaseResponse:
    """Our session cookie goes; the browser goes on to the IdP's sign-out URL when there is
    one, else back to `return_to`, else it gets a plain answer."""
    target = idp_url or return_to
    response = redirect(target) if target else jsonify({"status": "signed out"})
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


def _sp_logout(connection: SamlConnection) -> BaseResponse:
    """End this browser's session, then ask the IdP to end its own (when it has an SLO URL)."""
    cookie = request.cookies.get(sessions.COOKIE)
    return_to = safe_return_to(request.args.get("return_to"))
    logout: saml.LogoutRedirect | None = None
    with unit_of_work() as session:
        current = sessions.current(session, cookie)
        name_id = None
        if current is not None and current.connection_id == connection.row.id:
            name_id = session.scalar(
                select(LoginIdentity.subject).where(
                    LoginIdentity.connection_id == connection.row.id,
                    LoginIdentity.user_id == current.user_id,
                )
            )
        sessions.end(session, cookie, actor_for(connection.row))
        # The IdP knows the user by NameID; a subject taken from an attribute is not one.
        if name_id and connection.idp.attributes.subject is None:
            try:
                logout = saml.build_logout_request(connection.idp, connection.sp, name_id)
            except saml.SamlError:
                logout = None
            if logout is not None and logout.request_id is not None:
                session.add(
                    SsoRequest(
                        id=logout.request_id,
                        connection_id=connection.row.id,
                        return_to=return_to,
                        expires_at=utcnow() + REQUEST_LIFETIME,
                    )
                )
    return _signed_out(return_to, logout.url if logout is not None else None)


def _idp_logout(connection: SamlConnection, received: saml.LogoutMessage) -> BaseResponse:
    """The IdP asks us to end a user's sessions: a signed request ends all of them, an
    unsigned one only this browser's (no more than /sso/logout would)."""
    try:
        message = saml.verify_logout_request(connection.idp, connection.sp, received)
    except saml.SamlError as error:
        return error_page("Sign-out refused", error.detail, HTTPStatus.BAD_REQUEST)
    cookie = request.cookies.get(sessions.COOKIE)
    with unit_of_work() as session:
        # A signed request is processed once ("logout:" keeps it apart from assertion ids).
        if message.is_signed and not _remember(
            session, connection, f"logout:{message.request_id}", message.keep_until
        ):
            return error_page(
                "Sign-out refused",
                "This sign-out request was already processed.",
                HTTPStatus.BAD_REQUEST,
            )
        current = sessions.current(session, cookie)
        if current is not None and current.connection_id == connection.row.id:
            sessions.end(session, cookie, actor_for(connection.row))
        if message.is_signed and message.name_id:
            subject = saml.subject_for_name_id(
                connection.idp, message.name_id, message.name_id_format
            )
            user_id = None
            if subject is not None:
                user_id = session.scalar(
                    select(LoginIdentity.user_id).where(
                        LoginIdentity.connection_id == connection.row.id,
                        LoginIdentity.subject == subject,
                    )
                )
            if user_id is not None:
                sessions.end_for_user(session, user_id, actor_for(connection.row))
    try:
        answer = saml.build_logout_response(
            connection.idp, connection.sp, message.request_id, message.relay_state
        )
    except saml.SamlError:
        answer = None
    return _signed_out(None, answer.url if answer is not None else None)


def _logout_answered(connection: SamlConnection, received: saml.LogoutMessage) -> BaseResponse:
    """The IdP's LogoutResponse to our request: the local session is already over."""
    try:
        in_response_to = saml.verify_logout_response(connection.idp, connection.sp, received)
    except saml.SamlError as error:
        return error_page("Sign-out not confirmed", error.detail, HTTPStatus.BAD_REQUEST)
    with unit_of_work() as session:
        stored = session.scalar(
            select(SsoRequest)
            .where(
                SsoRequest.id == in_response_to,
                SsoRequest.connection_id == connection.row.id,
            )
            .with_for_update()
        )
        if stored is None or stored.used_at is not None or stored.expires_at <= utcnow():
            return error_page(
                "Sign-out not confirmed",
                "The sign-out response does not answer a sign-out request.",
                HTTPStatus.BAD_REQUEST,
            )
        stored.used_at = utcnow()
        return_to = safe_return_to(stored.return_to)
    return _signed_out(return_to)


# ----------------------------------------------------------------- commands


def _read_metadata(metadata_file: IO[bytes] | None, metadata_url: str | None) -> saml.IdpMetadata:
    """Read (or download) and parse IdP metadata; call before opening a unit of work."""
    try:
        if metadata_file is not None:
            xml = metadata_file.read()
        elif metadata_url is not None:
            xml = saml.fetch_idp_metadata(metadata_url)
        else:
            raise click.UsageError("give --metadata FILE or --metadata-url URL")
        return saml.parse_idp_metadata(xml)
    except saml.SamlError as error:
        raise click.ClickException(f"IdP metadata refused: {error.detail}") from None
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _attribute_names(
    base: saml.AttributeNames, overrides: dict[str, str | None]
) -> saml.AttributeNames:
    """The preset's attribute names with the ones given on the command line ('' clears one)."""
    names = base
    for key, value in overrides.items():
        if value is not None:
            names = replace(names, **{key: value.strip() or None})
    return names


def _signing(idp: saml.SamlSettings, signed: str) -> saml.SamlSettings:
    return replace(
        idp,
        want_assertions_signed=signed in ("assertion", "both"),
        want_response_signed=signed in ("response", "both"),
    )


def _echo_connection(document: dict[str, object], idp: saml.SamlSettings) -> None:
    click.echo(f"SAML connection {document['id']} ({document['name']})")
    click.echo("Paste these into the identity provider:")
    for key in ("acs_url", "entity_id", "metadata_url", "login_url", "slo_url"):
        click.echo(f"  {key + ':':<14}{document[key]}")
    click.echo("IdP signing certificates:")
    for certificate in idp.certificates:
        expires = saml.certificate_expires_at(certificate).date().isoformat()
        click.echo(f"  {saml.certificate_fingerprint(certificate)}  (expires {expires})")
    if idp.sp_certificate:
        click.echo("SP certificate (upload it to the IdP for encryption and signed requests):")
        click.echo(idp.sp_certificate.rstrip())


F = TypeVar("F", bound=Callable[..., object])

ATTRIBUTE_OPTIONS = [
    click.option("--email-attribute", help="Attribute with the email address."),
    click.option("--given-name-attribute", help="Attribute with the given name."),
    click.option("--surname-attribute", help="Attribute with the surname."),
    click.option("--groups-attribute", help="Attribute with the groups ('' for none)."),
    click.option(
        "--subject-attribute", help="Attribute with a stable user id, instead of the NameID."
    ),
]


def _attribute_options(command: F) -> F:
    for option in reversed(ATTRIBUTE_OPTIONS):
        command = option(command)
    return command


@connection_cli.command("add-saml")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.File("rb"),
    help="IdP metadata XML file; '-' reads it from standard input (paste it).",
)
@click.option("--metadata-url", help="Download the IdP metadata from this HTTPS URL.")
@click.option("--name", help="Connection name (default: from the preset).")
@click.option("--preset", type=click.Choice(sorted(saml.PRESETS)), help="IdP attribute names.")
@_attribute_options
@click.option(
    "--name-id-format",
    type=click.Choice(sorted(saml.NAME_ID_FORMATS)),
    help="NameID format to request (default: persistent when the IdP offers it).",
)
@click.option(
    "--signed",
    type=click.Choice(["assertion", "response", "both"]),
    default="assertion",
    show_default=True,
    help="Which signatures the IdP must send.",
)
@click.option("--jit/--no-jit", default=True, show_default=True, help="Create unknown users.")
@click.option("--allow-idp-initiated", is_flag=True, help="Accept logins started at the IdP.")
@click.option("--encrypt-assertions", is_flag=True, help="Require encrypted assertions.")
@click.option(
    "--sign-requests",
    is_flag=True,
    help="Sign AuthnRequests (logout messages are signed whenever there is an SP key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def add_saml(
    slug: str,
    metadata_file: IO[bytes] | None,
    metadata_url: str | None,
    name: str | None,
    preset: str | None,
    email_attribute: str | None,
    given_name_attribute: str | None,
    surname_attribute: str | None,
    groups_attribute: str | None,
    subject_attribute: str | None,
    name_id_format: str | None,
    signed: str,
    jit: bool,
    allow_idp_initiated: bool,
    encrypt_assertions: bool,
    sign_requests: bool,
    as_json: bool,
) -> None:
    """Add a SAML connection from the IdP's metadata and print the values for the IdP."""
    metadata = _read_metadata(metadata_file, metadata_url)
    base = saml.PRESETS[preset] if preset else saml.AttributeNames()
    names = _attribute_names(
        base,
        {
            "email": email_attribute,
            "given_name": given_name_attribute,
            "surname": surname_attribute,
            "groups": groups_attribute,
            "subject": subject_attribute,
        },
    )
    idp = saml.SamlSettings.from_metadata(metadata, preset=preset, attributes=names)
    idp = _signing(replace(idp, allow_idp_initiated=allow_idp_initiated), signed)
    if name_id_format is not None:
        idp = replace(idp, name_id_format=saml.NAME_ID_FORMATS[name_id_format])
    secrets: dict[str, str] = {}
    idp = replace(
        idp,
        encrypt_assertions=encrypt_assertions,
        sign_requests=sign_requests or idp.sign_requests,
    )
    if idp.encrypt_assertions or idp.sign_requests:
        # A key of this connection's own: its private half is stored encrypted only.
        key_pem, certificate_pem = saml.generate_sp_key_pair(f"blue-sso-{slug}")
        idp = replace(idp, sp_certificate=certificate_pem)
        secrets[SP_KEY_SECRET] = crypto.encrypt(app_settings().secret_key, key_pem)
    default_name = {"okta": "Okta SAML", "entra": "Entra ID SAML"}.get(preset or "", "SAML")
    with org_service(slug) as service:
        connection = service.create_connection(
            name or default_name, "saml", idp.to_json(), secrets, is_jit_enabled=jit
        )
        document = connection_document(connection)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    _echo_connection(document, idp)


@connection_cli.command("update-saml")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--id", "connection_id", required=True, help="Connection id.")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.File("rb"),
    help="New IdP metadata XML file ('-' for standard input): endpoints and certificates.",
)
@click.option("--metadata-url", help="Download new IdP metadata from this HTTPS URL.")
@click.option(
    "--add-certificate",
    "added_files",
    type=click.File("r"),
    multiple=True,
    help="PEM file of an IdP signing certificate to trust as well (rollover).",
)
@click.option(
    "--remove-certificate",
    "removed",
    multiple=True,
    help="SHA-256 fingerprint of a certificate to stop trusting.",
)
@_attribute_options
@click.option("--signed", type=click.Choice(["assertion", "response", "both"]))
@click.option("--allow-idp-initiated/--no-allow-idp-initiated", default=None)
@click.option("--encrypt-assertions/--no-encrypt-assertions", default=None)
@click.option("--sign-requests/--no-sign-requests", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def update_saml(
    slug: str,
    connection_id: str,
    metadata_file: IO[bytes] | None,
    metadata_url: str | None,
    added_files: tuple[IO[str], ...],
    removed: tuple[str, ...],
    email_attribute: str | None,
    given_name_attribute: str | None,
    surname_attribute: str | None,
    groups_attribute: str | None,
    subject_attribute: str | None,
    signed: str | None,
    allow_idp_initiated: bool | None,
    encrypt_assertions: bool | None,
    sign_requests: bool | None,
    as_json: bool,
) -> None:
    """Change a SAML connection: fresh metadata, certificate rollover, attributes, switches."""
    metadata = None
    if metadata_file is not None or metadata_url is not None:
        metadata = _read_metadata(metadata_file, metadata_url)
    try:
        added = [saml.normalize_certificate(f.read()) for f in added_files]
    except ValueError as error:
        raise click.ClickException(f"--add-certificate: {error}") from None
    unwanted = {r.replace(":", "").strip().upper() for r in removed}
    with org_service(slug) as service:
        connection = service.get_connection(connection_id)
        if connection.protocol != "saml":
            raise click.ClickException(f"connection {connection_id} is not a SAML connection")
        try:
            idp = saml.SamlSettings.from_json(connection.settings)
        except ValueError as error:
            raise click.ClickException(f"stored settings are unusable: {error}") from None
        if metadata is not None:
            idp = idp.with_metadata(metadata)
        certificates = [
            c
            for c in dict.fromkeys([*idp.certificates, *added])
            if saml.certificate_fingerprint(c).replace(":", "") not in unwanted
        ]
        if not certificates:
            raise click.ClickException("a SAML connection needs at least one IdP certificate")
        names = _attribute_names(
            idp.attributes,
            {
                "email": email_attribute,
                "given_name": given_name_attribute,
                "surname": surname_attribute,
                "groups": groups_attribute,
                "subject": subject_attribute,
            },
        )
        idp = replace(idp, certificates=tuple(certificates), attributes=names)
        if signed is not None:
            idp = _signing(idp, signed)
        if allow_idp_initiated is not None:
            idp = replace(idp, allow_idp_initiated=allow_idp_initiated)
        if encrypt_assertions is not None:
            idp = replace(idp, encrypt_assertions=encrypt_assertions)
        if sign_requests is not None:
            idp = replace(idp, sign_requests=sign_requests)
        secrets: dict[str, str] | None = None
        if (idp.encrypt_assertions or idp.sign_requests) and (
            SP_KEY_SECRET not in connection.encrypted_secrets or not idp.sp_certificate
        ):
            key_pem, certificate_pem = saml.generate_sp_key_pair(f"blue-sso-{slug}")
            idp = replace(idp, sp_certificate=certificate_pem)
            secrets = {SP_KEY_SECRET: crypto.encrypt(app_settings().secret_key, key_pem)}
        connection = service.update_connection(
            connection.id, settings=idp.to_json(), encrypted_secrets=secrets
        )
        document = connection_document(connection)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    _echo_connection(document, idp)
