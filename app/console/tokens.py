"""The Connections page's bearer tokens and webhook endpoints. Org admins only.

A token's secret, and a webhook's signing secret, are shown once, on the page that answers the
POST that made them (no redirect: the secret never goes into a URL, a flash message or the
session cookie), and never again: only the token's hash is stored.

Rotating a token issues a new one and revokes the old one at once, in one transaction: the
service keeps no grace period for bearer tokens (webhook secrets do have one: the previous
secret keeps signing for the overlap chosen). A rotated token's label gets a number (`okta #2`)
because labels stay unique, revoked tokens included.
"""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app import crypto
from app.console import bp
from app.console import queries_connections as queries
from app.console.auth import admin, console_actor, console_user
from app.db import read_only_unit, unit_of_work
from app.delivery import new_secret
from app.errors import ConflictError, NotFoundError, ProvisioningError
from app.models import Organization
from app.organizations import TokenScope
from app.provisioning import ProvisioningService, create_token, revoke_token
from app.web import settings

# ScimToken.label is a String(100).
MAX_LABEL = 100
NUMBERED = re.compile(r" #\d+$")
OVERLAP_CHOICES = (0, 1, 24, 72, 168)
DEFAULT_OVERLAP_HOURS = 24


def _tokens_page(error: str | None = None, status: int = HTTPStatus.OK) -> ResponseReturnValue:
    with read_only_unit() as session:
        rows = queries.tokens(session, console_user().org_id)
    body = render_template(
        "console/tokens.html",
        tokens=rows,
        scopes=list(TokenScope),
        scim_url=f"{settings().base_url}/scim/v2",
        error=error,
    )
    return body, status


@bp.get("/connections/tokens")
@admin
def tokens() -> ResponseReturnValue:
    """Bearer tokens: SCIM for the IdP, admin for /api/v1, events for Blue's feed."""
    return _tokens_page()


@bp.post("/connections/tokens")
@admin
def create_console_token() -> ResponseReturnValue:
    """Issue a token and show its secret, once."""
    user = console_user()
    label = (request.form.get("label") or "").strip()
    scope_value = request.form.get("scope") or TokenScope.SCIM.value
    if scope_value not in set(TokenScope):
        return _tokens_page("Choose scim, admin or events.", HTTPStatus.BAD_REQUEST)
    days_value = (request.form.get("expires_in_days") or "").strip()
    if days_value and not days_value.isdigit():
        return _tokens_page("Expires after: a number of days.", HTTPStatus.BAD_REQUEST)
    try:
        with unit_of_work() as session:
            organization = session.get_one(Organization, user.org_id)
            issued = create_token(
                session,
                organization,
                label,
                is_read_only=request.form.get("read_only") == "on",
                scope=TokenScope(scope_value),
                actor=console_actor(),
                expires_in_days=int(days_value) if days_value else None,
            )
            label, secret, scope = issued.token.label, issued.secret, issued.token.scope
    except ConflictError as error:
        return _tokens_page(error.detail, HTTPStatus.CONFLICT)
    except ProvisioningError as error:
        return _tokens_page(error.detail, HTTPStatus.BAD_REQUEST)
    return _secret_page(f"Token {label}", secret, scope=scope)


def _secret_page(title: str, secret: str, *, scope: str | None = None) -> ResponseReturnValue:
    """The one page that ever shows this secret."""
    return render_template(
        "console/tokens_secret.html",
        title=title,
        secret=secret,
        scope=scope,
        scim_url=f"{settings().base_url}/scim/v2",
    )


def rotated_label(label: str, taken: set[str]) -> str:
    """The next free numbered label for a rotated token: `okta` → `okta #2` → `okta #3`."""
    base = NUMBERED.sub("", label)
    number = 2
    while True:
        suffix = f" #{number}"
        candidate = base[: MAX_LABEL - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


@bp.post("/connections/tokens/<token_id>/rotate")
@admin
def rotate_console_token(token_id: str) -> ResponseReturnValue:
    """A new token with the old one's scope; the old one is revoked at once (no grace period)."""
    user = console_user()
    actor = console_actor()
    with unit_of_work() as session:
        old = queries.token(session, user.org_id, token_id)
        if old is None:
            abort(404)
        if old.revoked_at is not None:
            flash(f"Token {old.label} is revoked: create a new one instead.", "error")
            return redirect(url_for("console.tokens"), HTTPStatus.SEE_OTHER)
        organization = session.get_one(Organization, user.org_id)
        label = rotated_label(old.label, queries.token_labels(session, user.org_id))
        # The new token lives as long as the old one was meant to.
        days = (old.expires_at - old.created_at).days if old.expires_at else None
        issued = create_token(
            session, organization, label, old.is_read_only, TokenScope(old.scope), actor, days
        )
        revoke_token(session, organization, old.label, actor)
        old_label, secret, scope = old.label, issued.secret, issued.token.scope
    flash(f"Token {old_label} is revoked; its replacement is {label}.", "info")
    return _secret_page(f"Token {label}", secret, scope=scope)


@bp.post("/connections/tokens/<token_id>/revoke")
@admin
def revoke_console_token(token_id: str) -> ResponseReturnValue:
    """Revoke a token: requests using it are refused from now on."""
    user = console_user()
    with unit_of_work() as session:
        old = queries.token(session, user.org_id, token_id)
        if old is None:
            abort(404)
        organization = session.get_one(Organization, user.org_id)
        revoke_token(session, organization, old.label, console_actor())
        label = old.label
    flash(f"Token {label} is revoked.", "info")
    return redirect(url_for("console.tokens"), HTTPStatus.SEE_OTHER)


# ------------------------------------------------------------------ webhook endpoints


def _webhooks_page(error: str | None = None, status: int = HTTPStatus.OK) -> ResponseReturnValue:
    with read_only_unit() as session:
        rows = queries.webhooks(session, console_user().org_id)
    body = render_template(
        "console/tokens_webhooks.html", webhooks=rows, overlaps=OVERLAP_CHOICES, error=error
    )
    return body, status


@bp.get("/connections/webhooks")
@admin
def webhooks() -> ResponseReturnValue:
    """Where Blue's events go, signed per Standard Webhooks."""
    return _webhooks_page()


def _encrypted_secret() -> tuple[str, str]:
    secret = new_secret()
    return secret, crypto.encrypt(settings().secret_key, secret)


@bp.post("/connections/webhooks")
@admin
def add_console_webhook() -> ResponseReturnValue:
    """Add an endpoint and show its signing secret, once."""
    user = console_user()
    url = (request.form.get("url") or "").strip()
    events = (request.form.get("events") or "").replace(",", " ").split()
    secret, encrypted = _encrypted_secret()
    try:
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            service.add_webhook(url, encrypted, events or None, production=settings().is_production)
    except ProvisioningError as error:
        return _webhooks_page(error.detail, HTTPStatus.BAD_REQUEST)
    return _secret_page(f"Webhook {url}", secret)


def _webhook_change(webhook_id: str, message: str, enabled: bool) -> ResponseReturnValue:
    user = console_user()
    try:
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            service.set_webhook_enabled(webhook_id, enabled)
    except NotFoundError:
        abort(404)
    flash(message, "info")
    return redirect(url_for("console.webhooks"), HTTPStatus.SEE_OTHER)


@bp.post("/connections/webhooks/<webhook_id>/enable")
@admin
def enable_console_webhook(webhook_id: str) -> ResponseReturnValue:
    return _webhook_change(webhook_id, "The endpoint receives events again.", True)


@bp.post("/connections/webhooks/<webhook_id>/disable")
@admin
def disable_console_webhook(webhook_id: str) -> ResponseReturnValue:
    return _webhook_change(webhook_id, "The endpoint is paused: its events wait.", False)


@bp.post("/connections/webhooks/<webhook_id>/rotate")
@admin
def rotate_console_webhook(webhook_id: str) -> ResponseReturnValue:
    """A new signing secret; the previous one keeps signing for the overlap chosen."""
    user = console_user()
    hours = request.form.get("overlap_hours", type=int)
    if hours not in OVERLAP_CHOICES:
        hours = DEFAULT_OVERLAP_HOURS
    secret, encrypted = _encrypted_secret()
    try:
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            endpoint = service.rotate_webhook_secret(webhook_id, encrypted, timedelta(hours=hours))
            url = endpoint.url
    except NotFoundError:
        abort(404)
    return _secret_page(f"Webhook {url}", secret)
