"""OpenID Connect routes (authorization code flow with PKCE) and `connection add-oidc`.

A login crosses three short steps, and no transaction is ever open during a call to the
identity provider (STYLE.md §5): look the connection up; discover the provider and remember the
request (state, nonce, PKCE verifier); at the callback, take the request back and mark it used
in one unit of work, redeem the code and verify the ID token outside, then `complete_login`
opens its own."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlsplit
from uuid import UUID

import click
from flask import current_app, redirect, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from app import crypto
from app.cli import org_service
from app.db import unit_of_work, utcnow
from app.models import IdpConnection, SsoRequest
from app.web import settings
from sso.cli import connection_cli, connection_document
from sso.oidc import (
    AuthorizationResponse,
    AuthorizationStart,
    OidcClient,
    OidcError,
    OidcSettings,
    PendingLogin,
    finish_login,
    start_authorization,
)
from sso.pages import error_page
from sso.views import bp, complete_login, refuse, safe_return_to, sp_urls

log = logging.getLogger(__name__)

REQUEST_LIFETIME = timedelta(minutes=10)
# Used and expired requests are kept a while (a replayed state then reads "already used"),
# then purged as new logins start.
REQUEST_RETENTION = timedelta(hours=1)
# Binds the state to the browser that started the login (RFC 6749 §10.12, login CSRF): a
# callback URL from someone else's sign-in does not carry this browser's cookie.
STATE_COOKIE_PREFIX = "blue_oidc_"
SECRET_NAME = "client_secret"

STATE_REFUSALS = {
    "state_missing": "The sign-in response carries no state. Please sign in again.",
    "state_unknown": "This sign-in attempt is unknown here. Please sign in again.",
    "state_reused": "This sign-in response was already used. Please sign in again.",
    "state_expired": "This sign-in attempt took too long and expired. Please sign in again.",
}


def oidc_client() -> OidcClient:
    """The application's OIDC client, whose discovery and JWKS caches its requests share."""
    client: OidcClient | None = current_app.extensions.get("oidc_client")
    if client is None:
        # Plain http only to this machine, and never in production (tests run a local provider).
        client = OidcClient(allow_http_loopback=not settings().is_production)
        client = current_app.extensions.setdefault("oidc_client", client)
    return client


@dataclass(frozen=True, slots=True)
class _TakenRequest:
    nonce: str
    code_verifier: str
    return_to: str | None


def _find_connection(session: Session, connection_id: str) -> IdpConnection | None:
    try:
        parsed = UUID(connection_id)
    except ValueError:
        return None
    connection = session.get(IdpConnection, parsed)
    return connection if connection is not None and connection.protocol == "oidc" else None


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
        connection = _find_connection(session, connection_id)
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
        connection = _find_connection(session, connection_id)
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
        secret = crypto.decrypt(settings().secret_key, connection.encrypted_secrets[SECRET_NAME])
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


@connection_cli.command("add-oidc")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--issuer", required=True, help="The provider's issuer URL (discovery base).")
@click.option("--client-id", required=True, help="The application's client id at the provider.")
@click.option(
    "--client-secret",
    prompt=True,
    hide_input=True,
    help="The client secret (prompted for when omitted; stored encrypted).",
)
@click.option("--name", default=None, help="Connection name (default: OIDC <issuer host>).")
@click.option("--groups-claim", default="groups", show_default=True)
@click.option("--scope", "scopes", multiple=True, help="Scope to request (repeatable).")
@click.option(
    "--allowed-domain", "allowed_domains", multiple=True, help="Email domain allowed to sign in."
)
@click.option("--jit/--no-jit", default=True, help="Create unknown users at their first login.")
@click.option(
    "--entra-tenant", "tenants", multiple=True, help="Entra ID tenant id allowed to sign in."
)
@click.option(
    "--subject",
    "subject_mode",
    type=click.Choice(["iss_sub", "tid_oid"]),
    default=None,
    help="What identifies a person (default: tid_oid for Entra ID, iss_sub otherwise).",
)
@click.option(
    "--token-auth",
    "token_auth_method",
    type=click.Choice(["client_secret_basic", "client_secret_post"]),
    default=None,
    help="How to authenticate at the token endpoint (default: what the provider offers).",
)
@click.option("--userinfo/--no-userinfo", default=False, help="Also read the UserInfo endpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def add_oidc(
    slug: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    name: str | None,
    groups_claim: str,
    scopes: tuple[str, ...],
    allowed_domains: tuple[str, ...],
    jit: bool,
    tenants: tuple[str, ...],
    subject_mode: str | None,
    token_auth_method: str | None,
    userinfo: bool,
    as_json: bool,
) -> None:
    """Add an OpenID Connect connection; prints the redirect URI to register at the provider."""
    try:
        config = OidcSettings.build(
            issuer,
            client_id,
            scopes=scopes,
            groups_claim=groups_claim,
            allowed_domains=allowed_domains,
            subject_mode=subject_mode,
            allowed_tenants=tenants,
            token_auth_method=token_auth_method,
            use_userinfo=userinfo,
        )
        # Discovery before the unit of work opens: a network call never holds a transaction.
        metadata = oidc_client().discover(config.issuer, refresh=True)
    except OidcError as error:
        raise click.ClickException(error.detail) from None
    if metadata.is_multi_tenant and not config.allowed_tenants:
        raise click.ClickException(
            "this issuer admits every Entra ID tenant: name the allowed ones with --entra-tenant"
        )
    if userinfo and metadata.userinfo_endpoint is None:
        raise click.ClickException("the provider publishes no UserInfo endpoint")
    if not client_secret:
        raise click.ClickException("a client secret is required")
    encrypted = crypto.encrypt(settings().secret_key, client_secret)
    with org_service(slug) as service:
        connection = service.create_connection(
            name or f"OIDC {urlsplit(config.issuer).hostname}",
            "oidc",
            config.as_document(),
            {SECRET_NAME: encrypted},
            is_jit_enabled=jit,
        )
        document = connection_document(connection)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"created OIDC connection {document['id']} ({document['name']})")
    click.echo(f"    redirect_uri: {document['redirect_uri']}")
    click.echo(f"    login_url: {document['login_url']}")


@connection_cli.command("set-oidc-secret")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--id", "connection_id", required=True, help="The OIDC connection's id.")
@click.option(
    "--client-secret",
    prompt=True,
    hide_input=True,
    help="The new client secret (prompted for when omitted; stored encrypted).",
)
def set_oidc_secret(slug: str, connection_id: str, client_secret: str) -> None:
    """Replace an OIDC connection's client secret (Entra ID secrets expire)."""
    if not client_secret:
        raise click.ClickException("a client secret is required")
    encrypted = crypto.encrypt(settings().secret_key, client_secret)
    with org_service(slug) as service:
        if service.get_connection(connection_id).protocol != "oidc":
            raise click.ClickException("that connection is not an OpenID Connect one")
        service.update_connection(connection_id, encrypted_secrets={SECRET_NAME: encrypted})
    click.echo(f"replaced the client secret of {connection_id}")
