"""The Connections page: SSO connections set up as a guided form, with the values to paste into
Okta or Entra ID, switched on and off, deleted, and tried with a test sign-in. Org admins only:
a reviewer sees neither connections nor tokens (NAV marks the page admin-only).

Reading IdP metadata and OIDC discovery are sso/'s work, reached through the narrow interface
in app/console/sso_setup.py (app/ never imports sso/). A new connection takes two steps, so
that no transaction is open during the network call: build the settings (metadata URL fetched,
issuer discovered), then one unit of work stores them through the provisioning service.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from app.console import bp
from app.console import queries_connections as queries
from app.console.auth import admin, console_actor, console_user
from app.console.sso_setup import (
    NewConnection,
    OidcForm,
    SamlForm,
    SettingsChange,
    SetupRefusedError,
    connection_setup,
)
from app.db import read_only_unit, unit_of_work
from app.errors import ConflictError, NotFoundError, ProvisioningError
from app.models import IdpConnection
from app.provisioning import ProvisioningService

PRESETS = ("okta", "entra")
# Uploads bigger than this are refused before they are read (sso/ caps metadata at 5 MiB).
MAX_METADATA_BYTES = 5 * 1024 * 1024
# What each IdP's admin screen calls the values we show: (IdP, [(its field, our value)]).
IDP_FIELDS: dict[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = {
    "saml": (
        (
            "Okta",
            (
                ("Single sign-on URL", "acs_url"),
                ("Audience URI (SP Entity ID)", "entity_id"),
                ("Single Logout URL (optional)", "slo_url"),
            ),
        ),
        (
            "Entra ID",
            (
                ("Identifier (Entity ID)", "entity_id"),
                ("Reply URL (Assertion Consumer Service URL)", "acs_url"),
                ("Sign on URL", "login_url"),
                ("Logout Url (optional)", "slo_url"),
            ),
        ),
    ),
    "oidc": (
        (
            "Okta",
            (
                ("Sign-in redirect URIs", "redirect_uri"),
                ("Initiate login URI (optional)", "login_url"),
            ),
        ),
        ("Entra ID", (("Redirect URI (platform Web)", "redirect_uri"),)),
    ),
}
SP_LABELS = {
    "entity_id": "SP entity id",
    "acs_url": "Assertion consumer service (ACS) URL",
    "metadata_url": "SP metadata URL",
    "slo_url": "Single logout URL",
    "redirect_uri": "Redirect URI",
    "login_url": "Sign-in URL (starts a login at Blue)",
}


@bp.get("/connections")
@admin
def connections() -> ResponseReturnValue:
    """The organization's SSO connections, and where its tokens and webhooks are."""
    with read_only_unit() as session:
        rows = queries.connections(session, console_user().org_id)
    return render_template("console/connections.html", connections=rows)


# ------------------------------------------------------------------ new connections


@bp.get("/connections/new/saml")
@admin
def new_saml_connection() -> ResponseReturnValue:
    return render_template("console/connections_new_saml.html", form={}, presets=PRESETS)


@bp.post("/connections/new/saml")
@admin
def create_saml_connection() -> ResponseReturnValue:
    """A SAML connection from the IdP's metadata: uploaded, pasted, or fetched from its URL."""
    try:
        form = _saml_form()
        new = connection_setup().new_saml(form, console_user().org_slug)
    except SetupRefusedError as error:
        return _form_refused("console/connections_new_saml.html", error.detail)
    return _store(new, "console/connections_new_saml.html")


@bp.get("/connections/new/oidc")
@admin
def new_oidc_connection() -> ResponseReturnValue:
    return render_template("console/connections_new_oidc.html", form={})


@bp.post("/connections/new/oidc")
@admin
def create_oidc_connection() -> ResponseReturnValue:
    """An OIDC connection from the issuer's discovery document and the client's id and secret."""
    try:
        new = connection_setup().new_oidc(_oidc_form())
    except SetupRefusedError as error:
        return _form_refused("console/connections_new_oidc.html", error.detail)
    return _store(new, "console/connections_new_oidc.html")


def _text(name: str) -> str | None:
    value = (request.form.get(name) or "").strip()
    return value or None


def _saml_form() -> SamlForm:
    upload = request.files.get("metadata_file")
    xml = _read_upload(upload) if upload is not None and upload.filename else None
    if xml is None:
        pasted = _text("metadata_xml")
        xml = pasted.encode() if pasted else None
    return SamlForm(
        name=_text("name"),
        preset=_text("preset"),
        metadata_xml=xml,
        metadata_url=_text("metadata_url"),
        groups_attribute=_text("groups_attribute"),
        jit=request.form.get("jit") == "on",
    )


def _read_upload(upload: FileStorage) -> bytes:
    data = upload.stream.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise SetupRefusedError("the metadata file is too large")
    return data


def _oidc_form() -> OidcForm:
    tenants = (request.form.get("entra_tenants") or "").replace(",", " ").split()
    return OidcForm(
        name=_text("name"),
        issuer=_text("issuer") or "",
        client_id=_text("client_id") or "",
        client_secret=(request.form.get("client_secret") or "").strip(),
        groups_claim=_text("groups_claim"),
        entra_tenants=tuple(tenants),
        jit=request.form.get("jit") == "on",
    )


def _form_refused(
    template: str, detail: str, status: int = HTTPStatus.BAD_REQUEST
) -> ResponseReturnValue:
    """The form again with what was typed (never the client secret) and why it was refused."""
    form = {k: v for k, v in request.form.items() if k not in ("client_secret", "csrf_token")}
    body = render_template(template, form=form, presets=PRESETS, error=detail)
    return body, status


def _store(new: NewConnection, template: str) -> ResponseReturnValue:
    """Store the built connection through the provisioning service, in one unit of work."""
    user = console_user()
    try:
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            created = service.create_connection(
                new.name, new.protocol, new.settings, new.secrets, is_jit_enabled=new.jit
            )
            connection_id = created.id
    except ConflictError as error:
        return _form_refused(template, error.detail, HTTPStatus.CONFLICT)
    except ProvisioningError as error:
        return _form_refused(template, error.detail)
    flash(f"Connection {new.name} created. Paste the values below into your IdP.", "info")
    return redirect(
        url_for("console.connection", connection_id=connection_id), HTTPStatus.SEE_OTHER
    )


# ------------------------------------------------------------------ one connection


@bp.get("/connections/<connection_id>")
@admin
def connection(connection_id: str) -> ResponseReturnValue:
    """A connection: what it is set to, the values for the IdP, its switches, a test sign-in."""
    return _connection_page(connection_id)


def _connection_page(
    connection_id: str, error: str | None = None, status: int = HTTPStatus.OK
) -> ResponseReturnValue:
    setup = connection_setup()
    with read_only_unit() as session:
        row = queries.connection(session, console_user().org_id, connection_id)
        if row is None:
            abort(404)
        values = setup.sp_values(row)
        protocol = row.protocol
        page = {
            "id": row.id,
            "name": row.name,
            "protocol": protocol,
            "is_enabled": row.is_enabled,
            "is_jit_enabled": row.is_jit_enabled,
            "facts": setup.facts(row),
        }
    shown = [(key, SP_LABELS[key], value) for key, value in values.items() if key in SP_LABELS]
    body = render_template(
        "console/connection.html",
        connection=page,
        sp_values=shown,
        idp_fields=[
            (idp, [(field, key, values[key]) for field, key in fields if key in values])
            for idp, fields in IDP_FIELDS[protocol]
        ],
        error=error,
    )
    return body, status


def _switch(connection_id: str, message: str, is_enabled: bool) -> ResponseReturnValue:
    """Switch a connection on or off through the provisioning service."""
    user = console_user()
    try:
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            service.update_connection(connection_id, is_enabled=is_enabled)
    except NotFoundError:
        abort(404)
    flash(message, "info")
    return redirect(
        url_for("console.connection", connection_id=connection_id), HTTPStatus.SEE_OTHER
    )


@bp.post("/connections/<connection_id>/enable")
@admin
def enable_connection(connection_id: str) -> ResponseReturnValue:
    return _switch(connection_id, "The connection is on: people can sign in.", True)


@bp.post("/connections/<connection_id>/disable")
@admin
def disable_connection(connection_id: str) -> ResponseReturnValue:
    return _switch(connection_id, "The connection is off: its sign-ins are refused.", False)


@bp.post("/connections/<connection_id>/jit")
@admin
def set_connection_jit(connection_id: str) -> ResponseReturnValue:
    """Whether people unknown to Blue are created at their first sign-in."""
    jit = request.form.get("jit") == "on"
    message = "Unknown people are created at their first sign-in."
    return _update(connection_id, message if jit else "Unknown people are refused.", jit=jit)


@bp.post("/connections/<connection_id>/metadata")
@admin
def reimport_connection_metadata(connection_id: str) -> ResponseReturnValue:
    """Fresh IdP metadata for a SAML connection (new endpoints or signing certificates)."""
    org_slug = console_user().org_slug
    try:
        upload = request.files.get("metadata_file")
        xml = _read_upload(upload) if upload is not None and upload.filename else None
        pasted = _text("metadata_xml")
        xml = xml or (pasted.encode() if pasted else None)
        # Fetched now, before the unit of work opens: no transaction waits on the network.
        fetched = connection_setup().fetch_metadata(xml, _text("metadata_url"))
    except SetupRefusedError as error:
        return _connection_page(connection_id, error.detail, HTTPStatus.BAD_REQUEST)
    return _update(
        connection_id,
        "The IdP's metadata is imported: endpoints and certificates are current.",
        build=lambda row: connection_setup().reimported_saml(row, fetched, org_slug),
    )


@bp.post("/connections/<connection_id>/secret")
@admin
def replace_connection_secret(connection_id: str) -> ResponseReturnValue:
    """A new OIDC client secret (the IdP's expire); the old one is no longer used."""
    secret = (request.form.get("client_secret") or "").strip()
    return _update(
        connection_id,
        "The new client secret is stored; sign-ins use it from now on.",
        build=lambda row: _oidc_only(row, secret),
    )


def _oidc_only(row: IdpConnection, secret: str) -> SettingsChange:
    if row.protocol != "oidc":
        raise SetupRefusedError("a client secret only applies to OIDC connections")
    return connection_setup().oidc_client_secret(secret)


def _update(
    connection_id: str,
    message: str,
    build: Callable[[IdpConnection], SettingsChange] | None = None,
    jit: bool | None = None,
) -> ResponseReturnValue:
    """Change a connection in one unit of work: `build` reads the stored connection and makes
    its new settings or secrets (no network: anything to fetch was fetched before)."""
    user = console_user()
    try:
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            row = service.get_connection(connection_id)
            change = build(row) if build is not None else SettingsChange(None, None)
            service.update_connection(
                row.id,
                settings=change.settings,
                encrypted_secrets=change.secrets,
                is_jit_enabled=jit,
            )
    except NotFoundError:
        abort(404)
    except (SetupRefusedError, ProvisioningError) as error:
        return _connection_page(connection_id, error.detail, HTTPStatus.BAD_REQUEST)
    flash(message, "info")
    return redirect(
        url_for("console.connection", connection_id=connection_id), HTTPStatus.SEE_OTHER
    )


@bp.post("/connections/<connection_id>/delete")
@admin
def delete_connection(connection_id: str) -> ResponseReturnValue:
    """Delete a connection: its sign-ins and sessions end; users keep their records."""
    user = console_user()
    try:
        with unit_of_work() as session:
            ProvisioningService(session, user.org_id, console_actor()).delete_connection(
                connection_id
            )
    except NotFoundError:
        abort(404)
    flash("The connection is deleted.", "info")
    return redirect(url_for("console.connections"), HTTPStatus.SEE_OTHER)


@bp.get("/connections/<connection_id>/test")
@admin
def test_sign_in(connection_id: str) -> ResponseReturnValue:
    """Start a test sign-in: the SSO flow runs, nothing is provisioned, a page shows what the
    IdP sent. The connection must be on (its login refuses otherwise). A link, not a form:
    the CSP's form-action 'self' would stop a form's redirect on its way to the IdP; and it
    changes nothing (the login request is written by the login URL, as for any login)."""
    user = console_user()
    with read_only_unit() as session:
        row = queries.connection(session, user.org_id, connection_id)
        if row is None:
            abort(404)
        if not row.is_enabled:
            flash("Switch the connection on before testing it.", "error")
            back = url_for("console.connection", connection_id=connection_id)
            return redirect(back, HTTPStatus.SEE_OTHER)
        target = connection_setup().test_sign_in_url(row, user.email)
    return redirect(target, HTTPStatus.SEE_OTHER)
