"""`blue-provisioning connection …` and `handoff …`: IdP connections and hand-off keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app import handoff
from app.cli import cli_actor, org_service
from app.db import unit_of_work
from app.models import IdpConnection
from app.web import settings
from sso import saml
from sso.views import sp_urls

connection_cli = AppGroup("connection", help="SSO connections to identity providers.")
handoff_cli = AppGroup("handoff", help="Keys that sign the hand-off to Blue.")


def connection_document(connection: IdpConnection) -> dict[str, Any]:
    """A connection as shown to admins: settings, switches and the SP values; never secrets."""
    return {
        "id": str(connection.id),
        "name": connection.name,
        "protocol": connection.protocol,
        "enabled": connection.is_enabled,
        "jit": connection.is_jit_enabled,
        "settings": connection.settings,
        "secrets": sorted(connection.encrypted_secrets),
        **sp_urls(connection),
    }


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
@click.option("--org", "slug", required=True)
@click.option("--id", "connection_id", required=True)
def show_connection(slug: str, connection_id: str) -> None:
    """Show one connection as JSON."""
    with org_service(slug) as service:
        document = connection_document(service.get_connection(connection_id))
    click.echo(json.dumps(document, indent=2))


def _switch(
    slug: str,
    connection_id: str,
    is_enabled: bool | None = None,
    is_jit_enabled: bool | None = None,
) -> None:
    with org_service(slug) as service:
        service.update_connection(
            connection_id, is_enabled=is_enabled, is_jit_enabled=is_jit_enabled
        )


@connection_cli.command("enable")
@click.option("--org", "slug", required=True)
@click.option("--id", "connection_id", required=True)
def enable_connection(slug: str, connection_id: str) -> None:
    """Allow logins through a connection."""
    _switch(slug, connection_id, is_enabled=True)
    click.echo(f"enabled {connection_id}")


@connection_cli.command("disable")
@click.option("--org", "slug", required=True)
@click.option("--id", "connection_id", required=True)
def disable_connection(slug: str, connection_id: str) -> None:
    """Stop logins through a connection."""
    _switch(slug, connection_id, is_enabled=False)
    click.echo(f"disabled {connection_id}")


@connection_cli.command("set-jit")
@click.option("--org", "slug", required=True)
@click.option("--id", "connection_id", required=True)
@click.option("--jit/--no-jit", required=True, help="Create unknown users at their first login.")
def set_jit(slug: str, connection_id: str, jit: bool) -> None:
    """Switch just-in-time provisioning for a connection."""
    _switch(slug, connection_id, is_jit_enabled=jit)
    click.echo(f"{'enabled' if jit else 'disabled'} just-in-time provisioning on {connection_id}")


@connection_cli.command("delete")
@click.option("--org", "slug", required=True)
@click.option("--id", "connection_id", required=True)
def delete_connection(slug: str, connection_id: str) -> None:
    """Delete a connection; its users stay."""
    with org_service(slug) as service:
        service.delete_connection(connection_id)
    click.echo(f"deleted {connection_id}")


@handoff_cli.command("rotate-key")
def rotate_key() -> None:
    """Start a new hand-off signing key; the old one stays published until its tokens expire."""
    with unit_of_work() as session:
        row = handoff.rotate(session, settings().secret_key, cli_actor())
        kid = row.kid
    click.echo(f"new signing key {kid}")


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
