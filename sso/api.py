"""SSO connections on the admin JSON API: `/api/v1/connections`.

A connection is shown as `connection_document` (settings, switches and the values to paste into
the IdP; never a secret). SAML connections are built from the IdP's metadata XML and OIDC ones
from the issuer's discovery document, with the same builders as `connection add-saml` and
`add-oidc`.

Adding and changing a connection takes three steps: the token is checked in a short transaction,
then the slow work runs with no transaction open (OIDC discovery over the network, parsing the
metadata, making an SP key), then one unit of work makes the change, which the service audits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any
from uuid import UUID

from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.admin import api
from app.admin.api import ApiError, Context, authenticate, json_body, json_response, run
from app.admin.payloads import Payload, PayloadError
from app.db import unit_of_work
from app.errors import ConflictError, InvalidChangeError
from app.models import IdpConnection, Organization
from app.provisioning import Actor, ProvisioningService
from sso import connection_settings, saml
from sso.connections import connection_document, oidc_client
from sso.oidc import OidcError, OidcSettings

bp = api.api_blueprint("sso_api")

PROTOCOLS = ("saml", "oidc")
SAML_FIELDS = (
    "protocol",
    "metadata_xml",
    "name",
    "preset",
    "groups_attribute",
    "jit",
    "allow_idp_initiated",
    "encrypt_assertions",
)
OIDC_FIELDS = (
    "protocol",
    "issuer",
    "client_id",
    "client_secret",
    "name",
    "groups_claim",
    "scopes",
    "allowed_domains",
    "jit",
    "entra_tenants",
)
EDIT_FIELDS = ("name", "enabled", "jit", "metadata_xml", "client_secret")
# IdpConnection.name is a String(120).
MAX_NAME_LENGTH = 120


# ---------------------------------------------------------------- plumbing


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the bearer token speaks for, kept from the short transaction that checked it."""

    org_id: UUID
    org_slug: str
    actor: Actor


def _caller() -> Caller:
    """Check an admin token that may make changes (401/403/429 otherwise); committed at once."""
    with unit_of_work() as session:
        context = authenticate(session, write=True)
        return Caller(context.organization.id, context.organization.slug, context.service.actor)


def _change(
    caller: Caller,
    operation: Callable[[ProvisioningService], object],
    status: HTTPStatus = HTTPStatus.OK,
) -> ResponseReturnValue:
    """Make the change in one unit of work, acting for the token checked before."""
    with unit_of_work() as session:
        organization = session.get_one(Organization, caller.org_id)
        body = operation(ProvisioningService(session, organization, caller.actor))
    return json_response(body, status)


def _flag(body: Mapping[str, object], name: str, what: str) -> bool | None:
    """A boolean field; None when absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise PayloadError(f"{name} in {what} must be true or false")
    return value


def _name(payload: Payload) -> str | None:
    name = payload.text("name")
    if name is None:
        return None
    if not name.strip():
        raise PayloadError("name must not be empty")
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise PayloadError(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name.strip()


def _metadata(xml: str) -> saml.IdpMetadata:
    """The IdP metadata, parsed (no transaction is open); 400 when it is not usable."""
    try:
        return saml.parse_idp_metadata(xml)
    except saml.SamlError as error:
        detail = error.detail
    except ValueError as error:
        detail = str(error)
    raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_metadata", f"IdP metadata refused: {detail}")


def _name_free(service: ProvisioningService, connection: IdpConnection, name: str) -> None:
    """409 when another connection of the organization already has this name."""
    taken = service.session.scalar(
        select(IdpConnection.id).where(
            IdpConnection.org_id == service.org_id,
            IdpConnection.name == name,
            IdpConnection.id != connection.id,
        )
    )
    if taken is not None:
        raise ConflictError(f"a connection named {name!r} already exists")


# ---------------------------------------------------------- new connections


@dataclass(frozen=True, slots=True)
class NewConnection:
    """A connection ready to store: settings without secrets, secrets already encrypted."""

    name: str
    protocol: str
    settings: dict[str, object]
    secrets: dict[str, str]
    jit: bool


def _new_saml(body: Mapping[str, object], org_slug: str) -> NewConnection:
    """As `connection add-saml`: the IdP's metadata, a preset, the assertion signed."""
    what = "the SAML connection"
    payload = Payload(body, what, SAML_FIELDS)
    name = _name(payload)
    xml = payload.required_text("metadata_xml")
    preset = payload.text("preset")
    if preset is not None and preset not in saml.PRESETS:
        raise PayloadError(f"preset must be one of: {', '.join(sorted(saml.PRESETS))}")
    jit = _flag(body, "jit", what)
    allow_idp_initiated = _flag(body, "allow_idp_initiated", what) or False
    encrypt_assertions = _flag(body, "encrypt_assertions", what) or False
    idp = connection_settings.new_saml_settings(
        _metadata(xml),
        preset=preset,
        attribute_overrides={"groups": payload.text("groups_attribute")},
        allow_idp_initiated=allow_idp_initiated,
        encrypt_assertions=encrypt_assertions,
    )
    idp, secrets = connection_settings.with_sp_key(idp, org_slug)
    return NewConnection(
        name or connection_settings.saml_default_name(preset),
        "saml",
        idp.to_json(),
        secrets or {},
        True if jit is None else jit,
    )


def _new_oidc(body: Mapping[str, object]) -> NewConnection:
    """As `connection add-oidc`: settings checked and the issuer discovered, no transaction open."""
    what = "the OIDC connection"
    payload = Payload(body, what, OIDC_FIELDS)
    name = _name(payload)
    issuer = payload.required_text("issuer")
    client_id = payload.required_text("client_id")
    client_secret = payload.required_text("client_secret")
    jit = _flag(body, "jit", what)
    try:
        config = OidcSettings.build(
            issuer,
            client_id,
            scopes=payload.texts("scopes") or (),
            groups_claim=payload.text("groups_claim"),
            allowed_domains=payload.texts("allowed_domains") or (),
            allowed_tenants=payload.texts("entra_tenants") or (),
        )
    except OidcError as error:
        raise PayloadError(error.detail) from None
    try:
        metadata = oidc_client().discover(config.issuer, refresh=True)
    except OidcError as error:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "discovery_failed",
            f"the issuer's discovery document cannot be used: {error.detail}",
        ) from None
    if connection_settings.admits_every_tenant(metadata, config):
        raise PayloadError(
            "this issuer admits every Entra ID tenant: name the allowed ones in entra_tenants"
        )
    return NewConnection(
        name or connection_settings.oidc_default_name(config),
        "oidc",
        config.as_document(),
        connection_settings.encrypted_client_secret(client_secret),
        True if jit is None else jit,
    )


# ------------------------------------------------------------------ changes


@dataclass(frozen=True, slots=True)
class ConnectionEdit:
    """A PATCH body, checked: None leaves a value as it is."""

    name: str | None
    enabled: bool | None
    jit: bool | None
    metadata: saml.IdpMetadata | None
    # The connection's secrets with the new client secret, encrypted.
    client_secrets: dict[str, str] | None


def _edit(body: Any) -> ConnectionEdit:
    """A PATCH body (JSON, as the admin API reads it) checked into a ConnectionEdit."""
    what = "the connection change"
    payload = Payload(body, what, EDIT_FIELDS)
    xml = payload.text("metadata_xml")
    client_secret = payload.text("client_secret")
    if client_secret is not None and not client_secret:
        raise PayloadError("client_secret must not be empty")
    edit = ConnectionEdit(
        name=_name(payload),
        enabled=_flag(body, "enabled", what),
        jit=_flag(body, "jit", what),
        metadata=None,
        client_secrets=None,
    )
    if xml is not None:
        edit = replace(edit, metadata=_metadata(xml))
    if client_secret is not None:
        edit = replace(
            edit, client_secrets=connection_settings.encrypted_client_secret(client_secret)
        )
    return edit


def _reimported(
    connection: IdpConnection, metadata: saml.IdpMetadata, org_slug: str
) -> tuple[dict[str, object], dict[str, str] | None]:
    """As `connection update-saml --metadata`: fresh endpoints and certificates; an SP key
    made when the connection now needs one and has none."""
    try:
        idp = saml.SamlSettings.from_json(connection.settings)
    except ValueError as error:
        raise InvalidChangeError(f"the stored SAML settings are unusable: {error}") from None
    idp, secrets = connection_settings.with_sp_key(
        idp.with_metadata(metadata), org_slug, connection.encrypted_secrets
    )
    return idp.to_json(), secrets


def _apply(
    service: ProvisioningService, connection_id: str, edit: ConnectionEdit, org_slug: str
) -> dict[str, object]:
    connection = service.get_connection(connection_id)
    settings: dict[str, object] | None = None
    secrets: dict[str, str] | None = None
    if edit.metadata is not None:
        if connection.protocol != "saml":
            raise PayloadError("metadata_xml only applies to SAML connections")
        settings, secrets = _reimported(connection, edit.metadata, org_slug)
    if edit.client_secrets is not None:
        if connection.protocol != "oidc":
            raise PayloadError("client_secret only applies to OIDC connections")
        secrets = edit.client_secrets
    if edit.name is not None:
        _name_free(service, connection, edit.name)
    connection = service.update_connection(
        connection.id,
        settings=settings,
        encrypted_secrets=secrets,
        is_enabled=edit.enabled,
        is_jit_enabled=edit.jit,
        name=edit.name,
    )
    return connection_document(connection)


# ------------------------------------------------------------------- routes


@bp.get("/connections")
def list_connections() -> ResponseReturnValue:
    def listing(c: Context) -> object:
        rows = c.session.scalars(
            select(IdpConnection)
            .where(IdpConnection.org_id == c.organization.id)
            .order_by(IdpConnection.name, IdpConnection.id)
        )
        return {"connections": [connection_document(row) for row in rows]}

    return run(listing)


@bp.post("/connections")
def create_connection() -> ResponseReturnValue:
    caller = _caller()
    body = json_body()
    if not isinstance(body, dict):
        raise PayloadError("the connection must be a JSON object")
    protocol = body.get("protocol")
    if protocol not in PROTOCOLS:
        raise PayloadError('the connection needs protocol: "saml" or "oidc"')
    new = _new_saml(body, caller.org_slug) if protocol == "saml" else _new_oidc(body)

    def create(service: ProvisioningService) -> object:
        connection = service.create_connection(
            new.name, new.protocol, new.settings, new.secrets, is_jit_enabled=new.jit
        )
        return connection_document(connection)

    return _change(caller, create, HTTPStatus.CREATED)


@bp.get("/connections/<connection_id>")
def get_connection(connection_id: str) -> ResponseReturnValue:
    return run(lambda c: connection_document(c.service.get_connection(connection_id)))


@bp.patch("/connections/<connection_id>")
def patch_connection(connection_id: str) -> ResponseReturnValue:
    caller = _caller()
    edit = _edit(json_body())
    return _change(caller, lambda service: _apply(service, connection_id, edit, caller.org_slug))


@bp.delete("/connections/<connection_id>")
def delete_connection(connection_id: str) -> ResponseReturnValue:
    return run(
        lambda c: c.service.delete_connection(connection_id),
        write=True,
        status=HTTPStatus.NO_CONTENT,
    )


@bp.post("/connections/<connection_id>/enable")
def enable_connection(connection_id: str) -> ResponseReturnValue:
    return run(
        lambda c: connection_document(c.service.update_connection(connection_id, is_enabled=True)),
        write=True,
    )


@bp.post("/connections/<connection_id>/disable")
def disable_connection(connection_id: str) -> ResponseReturnValue:
    return run(
        lambda c: connection_document(c.service.update_connection(connection_id, is_enabled=False)),
        write=True,
    )
