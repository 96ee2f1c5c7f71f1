"""SAML 2.0 routes: SP metadata, SP- and IdP-initiated login, single logout.

Protocol work happens in the sso/saml/ package; this module keeps the database side: the single-use
request ids (SsoRequest) and the assertion replay cache (SsoReplay), both shared by every
worker through the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, redirect, render_template_string, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from app import crypto
from app.db import unit_of_work, utcnow
from app.errors import LoginRefusedError
from app.models import IdpConnection, LoginIdentity, SsoReplay, SsoRequest
from app.provisioning import LoginClaims
from app.web import settings as app_settings
from sso import saml, sessions
from sso.connections import SP_KEY_SECRET, find_connection, sp_urls
from sso.pages import add_security_headers, allow_form_target, error_page, refuse_unstorable_input
from sso.views import actor_for, complete_login, refuse, safe_return_to

bp = Blueprint("sso_saml", __name__, url_prefix="/sso")
bp.before_request(refuse_unstorable_input)
bp.after_request(add_security_headers)

# How long an SP-initiated login (or logout) may take at the IdP.
REQUEST_LIFETIME = timedelta(minutes=10)

POST_BINDING_PAGE = """{% extends "sso_base.html" %}
{% block title %}Signing you in{% endblock %}
{% block content %}
  <h1>Continuing to your organization's sign-in…</h1>
  <form id="saml" method="post" action="{{ action }}" data-autosubmit>
    {% for name, value in fields.items() %}
    <input type="hidden" name="{{ name }}" value="{{ value }}">
    {% endfor %}
    <noscript><button type="submit">Continue</button></noscript>
  </form>
{% endblock %}
"""


@dataclass(frozen=True, slots=True)
class SamlConnection:
    """A SAML connection as one request needs it: the row (detached) and its typed settings."""

    row: IdpConnection
    idp: saml.SamlSettings
    sp: saml.ServiceProvider


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
        row = find_connection(session, connection_id, "saml")
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
        allow_form_target(authn.url)
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
