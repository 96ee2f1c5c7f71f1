"""`blue-provisioning console …`: first access to the admin console, and who may use it."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.cli.common import org_option, org_service
from app.models import Group
from app.provisioning.console import LINK_LIFETIME, ConsoleRole
from app.web import settings

console_cli = AppGroup("console", help="The admin console: bootstrap links and access.")


@console_cli.command("link")
@org_option()
@click.option("--email", required=True, help="Who signs in with the link (as org admin).")
def console_link(slug: str, email: str) -> None:
    """Print a one-time sign-in link for first setup, alone on the last line. It works once
    and expires in 15 minutes; creating and using it are audited."""
    with org_service(slug) as service:
        secret = service.create_console_link(email)
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    click.echo(f"Console sign-in link for {email} ({slug}); works once, for {minutes} minutes:")
    click.echo(f"{settings().base_url.rstrip('/')}/console/link/{secret}")


@console_cli.command("grant")
@org_option()
@click.option("--group", "group_name", required=True, help="The IdP group's display name.")
@click.option(
    "--role",
    type=click.Choice([*(r.value for r in ConsoleRole), "none"]),
    required=True,
    help="admin: everything; reviewer: read-only; none: take the grant away.",
)
def console_grant(slug: str, group_name: str, role: str) -> None:
    """Let members of an IdP group sign in to the console through the organization's SSO."""
    with org_service(slug) as service:
        group_id = service.session.scalar(
            select(Group.id).where(
                Group.org_id == service.org_id, Group.display_name_key == group_name.lower()
            )
        )
        if group_id is None:
            raise click.ClickException(f"no group named {group_name!r}")
        service.grant_console_role(group_id, None if role == "none" else ConsoleRole(role))
    click.echo(f"members of {group_name!r} now have console role: {role}")
