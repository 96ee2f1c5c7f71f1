"""`blue-provisioning connection …` and `handoff …`: every SSO command, for IdP connections and
the keys that sign the hand-off to Blue.

Slow work (reading or downloading metadata, OIDC discovery) happens before a unit of work
opens; the settings themselves are built by `sso.connection_settings`, as the admin API builds
them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app import handoff
from app.cli import cli_actor, org_service
from app.db import unit_of_work
from app.models import IdpConnection
from app.web import settings
from sso import connection_settings, saml
from sso.connections import connection_document, oidc_client
from sso.oidc import OidcError, OidcSettings

connection_cli = AppGroup("connection", help="SSO connections to identity providers.")
handoff_cli = AppGroup("handoff", help="Keys that sign the hand-off to Blue.")


F = TypeVar("F", bound=Callable[..., object])


def _connection_options(command: F) -> F:
    """--org and --id, the options of every command about one connection."""
    command = click.option("--id", "connection_id", required=True)(command)
    return click.option("--org", "slug", required=True)(command)


@connection_cli.command("list")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_connections(slug: str, as_json: bool) -> None:
    """List an organization's connections with the values to paste into the IdP."""
    with org_service(slug) as service:
        session = service.session
        rows = [
            connection_document(c)
            for c in session.scalars(
                select(IdpConnection)
                .where(IdpConnection.org_id == service.org_id)
                .order_by(IdpConnection.name)
            )
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        click.echo(f"{row['id']}  {row['protocol']:<4}  {state:<8}  {row['name']}")
        click.echo(f"    login: {row['login_url']}")
        for key in ("acs_url", "entity_id", "metadata_url", "redirect_uri"):
            if key in row:
                click.echo(f"    {key}: {row[key]}")


@connection_cli.command("show")
@_connection_options
def show_connection(slug: str, connection_id: str) -> None:
    """Show one connection as JSON."""
    with org_service(slug) as service:
        document = connection_document(service.get_connection(connection_id))
    click.echo(json.dumps(document, indent=2))


def _switch(
    slug: str,
    connection_id: str,
    *,
    is_enabled: bool | None = None,
    is_jit_enabled: bool | None = None,
) -> None:
    """Switch logins, or just-in-time provisioning, through a connection; say what was done."""
    with org_service(slug) as service:
        service.update_connection(
            connection_id, is_enabled=is_enabled, is_jit_enabled=is_jit_enabled
        )
    switched_on = is_enabled if is_enabled is not None else is_jit_enabled
    what = "" if is_enabled is not None else "just-in-time provisioning on "
    click.echo(f"{'enabled' if switched_on else 'disabled'} {what}{connection_id}")


@connection_cli.command("enable")
@_connection_options
def enable_connection(slug: str, connection_id: str) -> None:
    """Allow logins through a connection."""
    _switch(slug, connection_id, is_enabled=True)


@connection_cli.command("disable")
@_connection_options
def disable_connection(slug: str, connection_id: str) -> None:
    """Stop logins through a connection."""
    _switch(slug, connection_id, is_enabled=False)


@connection_cli.command("set-jit")
@_connection_options
@click.option("--jit/--no-jit", required=True, help="Create unknown users at their first login.")
def set_jit(slug: str, connection_id: str, jit: bool) -> None:
    """Switch just-in-time provisioning for a connection."""
    _switch(slug, connection_id, is_jit_enabled=jit)


@connection_cli.command("delete")
@_connection_options
def delete_connection(slug: str, connection_id: str) -> None:
    """Delete a connection; its users stay."""
    with org_service(slug) as service:
        service.delete_connection(connection_id)
    click.echo(f"deleted {connection_id}")


# ------------------------------------------------------------------- SAML


def _metadata_options(file_help: str, url_help: str) -> Callable[[F], F]:
    """--metadata FILE and --metadata-url URL, the two ways `_read_metadata` gets IdP metadata."""

    def decorate(command: F) -> F:
        command = click.option("--metadata-url", help=url_help)(command)
        return click.option("--metadata", "metadata_file", type=click.File("rb"), help=file_help)(
            command
        )

    return decorate


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


def _echo_saml_connection(
    document: Mapping[str, object], idp: saml.SamlSettings, as_json: bool
) -> None:
    """The connection as JSON, or the values to paste into the IdP and the certificates."""
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
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
    """The --*-attribute options; the command receives them as `**attributes`."""
    for option in reversed(ATTRIBUTE_OPTIONS):
        command = option(command)
    return command


def _attribute_overrides(attributes: Mapping[str, str | None]) -> dict[str, str | None]:
    """The --*-attribute options by AttributeNames field (`given_name_attribute` → `given_name`)."""
    return {name.removesuffix("_attribute"): value for name, value in attributes.items()}


@connection_cli.command("add-saml")
@click.option("--org", "slug", required=True, help="Organization slug.")
@_metadata_options(
    "IdP metadata XML file; '-' reads it from standard input (paste it).",
    "Download the IdP metadata from this HTTPS URL.",
)
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
    type=click.Choice(connection_settings.SIGNED_CHOICES),
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
    name_id_format: str | None,
    signed: str,
    jit: bool,
    allow_idp_initiated: bool,
    encrypt_assertions: bool,
    sign_requests: bool,
    as_json: bool,
    **attributes: str | None,
) -> None:
    """Add a SAML connection from the IdP's metadata and print the values for the IdP."""
    idp = connection_settings.new_saml_settings(
        _read_metadata(metadata_file, metadata_url),
        preset=preset,
        attribute_overrides=_attribute_overrides(attributes),
        signed=signed,
        allow_idp_initiated=allow_idp_initiated,
        encrypt_assertions=encrypt_assertions,
        sign_requests=sign_requests,
        name_id_format=name_id_format,
    )
    # A key of this connection's own when it needs one: its private half is stored encrypted.
    idp, secrets = connection_settings.with_sp_key(idp, slug)
    with org_service(slug) as service:
        connection = service.create_connection(
            name or connection_settings.saml_default_name(preset),
            "saml",
            idp.to_json(),
            secrets or {},
            is_jit_enabled=jit,
        )
        document = connection_document(connection)
    _echo_saml_connection(document, idp, as_json)


def _read_certificates(files: tuple[IO[str], ...]) -> tuple[str, ...]:
    """The IdP certificates to trust as well, from the --add-certificate PEM files."""
    try:
        return tuple(saml.normalize_certificate(f.read()) for f in files)
    except ValueError as error:
        raise click.ClickException(f"--add-certificate: {error}") from None


def _stored_saml_settings(connection: IdpConnection, connection_id: str) -> saml.SamlSettings:
    """A connection's SAML settings as stored; a ClickException when they cannot be used."""
    if connection.protocol != "saml":
        raise click.ClickException(f"connection {connection_id} is not a SAML connection")
    try:
        return saml.SamlSettings.from_json(connection.settings)
    except ValueError as error:
        raise click.ClickException(f"stored settings are unusable: {error}") from None


@connection_cli.command("update-saml")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--id", "connection_id", required=True, help="Connection id.")
@_metadata_options(
    "New IdP metadata XML file ('-' for standard input): endpoints and certificates.",
    "Download new IdP metadata from this HTTPS URL.",
)
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
@click.option("--signed", type=click.Choice(connection_settings.SIGNED_CHOICES))
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
    signed: str | None,
    allow_idp_initiated: bool | None,
    encrypt_assertions: bool | None,
    sign_requests: bool | None,
    as_json: bool,
    **attributes: str | None,
) -> None:
    """Change a SAML connection: fresh metadata, certificate rollover, attributes, switches."""
    has_metadata = metadata_file is not None or metadata_url is not None
    change = connection_settings.SamlChange(
        metadata=_read_metadata(metadata_file, metadata_url) if has_metadata else None,
        added_certificates=_read_certificates(added_files),
        removed_fingerprints=frozenset(connection_settings.fingerprint_key(r) for r in removed),
        attribute_overrides=_attribute_overrides(attributes),
        signed=signed,
        allow_idp_initiated=allow_idp_initiated,
        encrypt_assertions=encrypt_assertions,
        sign_requests=sign_requests,
    )
    with org_service(slug) as service:
        connection = service.get_connection(connection_id)
        try:
            idp = connection_settings.changed_saml_settings(
                _stored_saml_settings(connection, connection_id), change
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        idp, secrets = connection_settings.with_sp_key(idp, slug, connection.encrypted_secrets)
        connection = service.update_connection(
            connection.id, settings=idp.to_json(), encrypted_secrets=secrets
        )
        document = connection_document(connection)
    _echo_saml_connection(document, idp, as_json)


# ------------------------------------------------------------------- OIDC


def _discovered(config: OidcSettings, userinfo: bool) -> None:
    """Check that the provider is usable for this connection; a network call, so call it before
    the unit of work opens (a network call never holds a transaction)."""
    try:
        metadata = oidc_client().discover(config.issuer, refresh=True)
    except OidcError as error:
        raise click.ClickException(error.detail) from None
    if connection_settings.admits_every_tenant(metadata, config):
        raise click.ClickException(
            "this issuer admits every Entra ID tenant: name the allowed ones with --entra-tenant"
        )
    if userinfo and metadata.userinfo_endpoint is None:
        raise click.ClickException("the provider publishes no UserInfo endpoint")


def _client_secrets(client_secret: str) -> dict[str, str]:
    """The connection's secrets with this client secret, encrypted; it may not be empty."""
    if not client_secret:
        raise click.ClickException("a client secret is required")
    return connection_settings.encrypted_client_secret(client_secret)


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
    except OidcError as error:
        raise click.ClickException(error.detail) from None
    _discovered(config, userinfo)
    secrets = _client_secrets(client_secret)
    with org_service(slug) as service:
        connection = service.create_connection(
            name or connection_settings.oidc_default_name(config),
            "oidc",
            config.as_document(),
            secrets,
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
    secrets = _client_secrets(client_secret)
    with org_service(slug) as service:
        if service.get_connection(connection_id).protocol != "oidc":
            raise click.ClickException("that connection is not an OpenID Connect one")
        service.update_connection(connection_id, encrypted_secrets=secrets)
    click.echo(f"replaced the client secret of {connection_id}")


# ------------------------------------------------------------------- demo


DEMO_METADATA = Path(__file__).with_name("demo-idp-metadata.xml")
DEMO_CONNECTION = "Demo IdP (replace with yours)"


@connection_cli.command("demo")
@click.option("--org", "slug", default="demo", show_default=True, help="Organization slug.")
def demo_connection(slug: str) -> None:
    """Give the demo organization a SAML connection (a stand-in IdP) and print its SP URLs."""
    idp = saml.SamlSettings.from_metadata(
        saml.parse_idp_metadata(DEMO_METADATA.read_bytes()), preset="okta"
    )
    with org_service(slug) as service:
        connection = service.session.scalar(
            select(IdpConnection).where(
                IdpConnection.org_id == service.org_id, IdpConnection.name == DEMO_CONNECTION
            )
        )
        if connection is None:
            connection = service.create_connection(DEMO_CONNECTION, "saml", idp.to_json(), {})
        document = connection_document(connection)
    click.echo(f"SAML SP metadata:  {document['metadata_url']}")
    click.echo(f"SSO login URL:     {document['login_url']}")
    click.echo(
        "The demo connection points at a stand-in IdP; give it yours with: blue-provisioning "
        f"connection update-saml --org {slug} --id {document['id']} --metadata your-idp.xml"
    )


@handoff_cli.command("rotate-key")
def rotate_key() -> None:
    """Start a new hand-off signing key; the old one stays published until its tokens expire."""
    with unit_of_work() as session:
        row = handoff.rotate(session, settings().secret_key, cli_actor())
        kid = row.kid
    click.echo(f"new signing key {kid}")
