"""`blue-provisioning default-role …`: the role of users whom no mapping rule reaches."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.admin import changes, documents
from app.cli.common import echo_json, json_option, org_option, org_service
from app.cli.held import exit_held

default_role_cli = AppGroup("default-role", help="The role of users in no mapped group.")


@default_role_cli.command("set")
@org_option()
@click.option("--role", default=None, help="Role key or name.")
@click.option("--none", "no_role", is_flag=True, help="Users in no mapped group get no role.")
def default_role_set(slug: str, role: str | None, no_role: bool) -> None:
    """Set the role of users whom no rule reaches. When the mass-grant guard holds its
    grants the change is staged (the previous default role stays): prints `held <id>: …`
    and exits with status 3."""
    if (role is None) == (not no_role):
        raise click.UsageError("give exactly one of --role or --none")
    with org_service(slug) as service:
        key, held = changes.set_default_role(service, None if no_role else role)
        document = documents.held_change(held) if held is not None else None
    if document is not None:
        exit_held(document, slug)
    click.echo(f"default role: {key or 'none'}")


@default_role_cli.command("show")
@org_option()
@json_option()
def default_role_show(slug: str, as_json: bool) -> None:
    """Show the default role."""
    with org_service(slug) as service:
        document = documents.default_role(service.organization, service.catalogue())
    if as_json:
        echo_json(document)
        return
    click.echo(f"default role: {document['role_name'] or 'none'}")
