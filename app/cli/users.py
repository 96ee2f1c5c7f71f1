"""`blue-provisioning user …`: what a user can access, and why."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app import reporting
from app.admin import queries
from app.cli.common import echo_json, json_option, org_option, org_service

user_cli = AppGroup("user", help="What a user can access, and why.")


@user_cli.command("access")
@org_option()
@click.option("--user", "reference", required=True, help="userName (any case) or user id.")
@json_option()
def user_access(slug: str, reference: str, as_json: bool) -> None:
    """Roles per project with the rules and groups behind them, seat, and why it is paid."""
    with org_service(slug) as service:
        user = queries.find_user(service.session, service.organization, reference)
        access = reporting.user_access(
            service.session, service.organization, service.catalogue(), user
        )
    if as_json:
        echo_json(access)
        return
    state = "active" if access["active"] else "inactive"
    pending = " (pending a paid seat)" if access["pending"] else ""
    click.echo(f"{access['userName']} ({access['id']}), {state}, seat {access['seat']}{pending}")
    for role in access["roles"]:
        click.echo(f"  {role['project']}: {role['role_name']}{' (paid)' if role['paid'] else ''}")
        for source in role["source"]:
            if source.get("default_role"):
                click.echo("    from the organization's default role")
            else:
                click.echo(f"    from group {source['group']!r} via rule {source['rule']}")
