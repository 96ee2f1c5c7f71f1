"""OpenID Connect routes: the authorization code flow with PKCE.

A login crosses three short steps, and no transaction is ever open during a call to the
identity provider (STYLE.md §5): look the connection up; discover the provider and remember the
request (state, nonce, PKCE verifier); at the callback, take the request back and mark it used
in one unit of work, redeem the code and verify the ID token outside, then `complete_login`
opens its own."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

from flask import Blueprint, redirect, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from app import crypto
from app.db import unit_of_work, utcnow
from app.models import IdpConnection, SsoRequest
from app.web import settings
from sso.connections import CLIENT_SECRET, find_connection, oidc_client, sp_urls
from sso.oidc import (
    AuthorizationResponse,
    AuthorizationStart,
    OidcError,
    OidcSettings,
    PendingLogin,
    finish_login,
    start_authorization,
)
from sso.pages import add_security_headers, error_page, refuse_unstorable_input
from sso.views import complete_login, refuse, safe_return_to

bp = Blueprint("sso_oidc", __name__, url_prefix="/sso")
bp.before_request(refuse_unstorable_input)
bp.after_request(add_security_headers)
log = logging.getLogger(__name__)

REQUEST_LIFETIME = timedelta(minutes=10)
# Used and expired requests are kept a while (a replayed state then reads "already used"),
# then purged as new logins start.
REQUEST_RETENTION = timedelta(hours=1)
# Binds the state to the browser that started the login (RFC 6749 §10.12, login CSRF): a
# callback URL from someone else's sign-in does not carry this browser's cookie.
STATE_COOKIE_PREFIX = "blue_oidc_"

STATE_REFUSALS = {
    "state_missing": "The sign-in response carries no state. Please sign in again.",
    "state_unknown": "This sign-in attempt is unknown here. Please sign in again.",
    "state_reused": "This sign-in response was already used. Please sign in again.",
    "state_expired": "This sign-in attempt took too long and expired. Please sign in again.",
}


@dataclass(frozen=True, slots=True)
class _TakenRequest:
    nonce: str
    code_verifier: str
    return_to: str | None


def _remember(
    session: Session, connection: IdpConnection, start: AuthorizationStart, return_to: str | None
) -> None:
    now = utcnow()
    session.execute(delete(SsoRequest).where(SsoRequest.expires_at < now - REQUEST_RETENTION))
    session.add(
        SsoRequest(
            id=start.state,
            connection_id=connection.id,
            nonce=start.nonce,
            code_verifier=start.code_verifier,
            return_to=return_to,
            created_at=now,
            expires_at=now + REQUEST_LIFETIME,
        )
    )


def _take_request(session: Session, connection: IdpConnection, state: str) -> _TakenRequest | str:
    """The login request this state names, marked used; or why it cannot be used."""
    if not state:
        return "state_missing"
    if len(state) > 128:
        return "state_unknown"
    row = session.get(SsoRequest, state)
    if row is None or row.connection_id != connection.id or not row.nonce or not row.code_verifier:
        return "state_unknown"
    if row.used_at is not None:
        return "state_reused"
    now = utcnow()
    if row.expires_at <= now:
        return "state_expired"
    # The conditional update is the single-use guarantee: of two concurrent callbacks with the
    # same state, only one changes the row.
    taken = session.execute(
        update(SsoRequest)
        .where(SsoRequest.id == row.id, SsoRequest.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return "state_reused"
    return _TakenRequest(row.nonce, row.code_verifier, row.return_to)


def _state_cookie(state: str) -> str:
    return STATE_COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:24]


def _callback_path(connection: IdpConnection) -> str:
    return urlsplit(sp_urls(connection)["redirect_uri"]).path


@bp.get("/oidc/<connection_id>/login")
def oidc_login(connection_id: str) -> ResponseReturnValue:
    """Send the browser to the identity provider: code flow with PKCE S256, state and nonce."""
    with unit_of_work() as session:
        connection = find_connection(session, connection_id, "oidc")
    if connection is None or not connection.is_enabled:
        return error_page(
            "Sign-in unavailable",
            "This sign-in connection does not exist or is switched off.",
            HTTPStatus.NOT_FOUND,
        )
    try:
        config = OidcSettings.from_document(connection.settings)
        client = oidc_client()
        metadata = client.discover(config.issuer)  # a network call: no transaction is open
        start = start_authorization(config, sp_urls(connection)["redirect_uri"], metadata)
    except OidcError as error:
        log.warning("oidc login cannot start", extra={"reason": error.reason})
        return error_page("Sign-in unavailable", error.detail, HTTPStatus.BAD_GATEWAY)
    with unit_of_work() as session:
        _remember(session, connection, start, safe_return_to(request.args.get("return_to")))
    response = redirect(start.url)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        _state_cookie(start.state),
        "1",
        max_age=int(REQUEST_LIFETIME.total_seconds()),
        httponly=True,
        secure=settings().base_url.startswith("https://"),
        # Lax: the provider brings the browser back with a top-level GET, which carries it.
        samesite="Lax",
        path=_callback_path(connection),
    )
    return response


@bp.get("/oidc/<connection_id>/callback")
def oidc_callback(connection_id: str) -> ResponseReturnValue:
    """Finish a login: state, RFC 9207 issuer, code redemption, ID token, then provisioning."""
    state = request.args.get("state", "")
    with unit_of_work() as session:
        connection = find_connection(session, connection_id, "oidc")
        taken = _take_request(session, connection, state) if connection is not None else None
    if connection is None or taken is None:
        return error_page(
            "Sign-in refused", "This sign-in connection does not exist.", HTTPStatus.NOT_FOUND
        )
    cookie = _state_cookie(state)
    response: BaseResponse
    if isinstance(taken, str):
        response = refuse(connection, taken, STATE_REFUSALS[taken])
    elif request.cookies.get(cookie) != "1":
        response = refuse(
            connection,
            "state_browser",
            "This sign-in was started in another browser. Please sign in again.",
        )
    else:
        response = _finish(connection, taken)
    if state:
        response.delete_cookie(cookie, path=_callback_path(connection))
    return response


def _finish(connection: IdpConnection, taken: _TakenRequest) -> BaseResponse:
    try:
        config = OidcSettings.from_document(connection.settings)
        secret = crypto.decrypt(settings().secret_key, connection.encrypted_secrets[CLIENT_SECRET])
    except (OidcError, KeyError, crypto.DecryptionError):
        return refuse(
            connection,
            "connection_settings",
            "This sign-in connection is not set up completely; ask your administrator.",
        )
    pending = PendingLogin(taken.nonce, taken.code_verifier, sp_urls(connection)["redirect_uri"])
    try:
        claims = finish_login(
            oidc_client(), config, secret, AuthorizationResponse.from_params(request.args), pending
        )
    except OidcError as error:
        return refuse(connection, error.reason, error.detail)
    return complete_login(connection.id, claims, taken.return_to)
