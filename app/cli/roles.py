"""`blue-provisioning role …`: the role catalogue and the organization's custom roles."""

from __future__ import annotations

from collections.abc import Sequence

import click
from flask.cli import AppGroup

from app.admin import changes, documents, queries
from app.cli.common import Row, echo_rows, json_option, nothing_to_change, org_option, org_service

role_cli = AppGroup("role", help="The role catalogue and custom roles.")


@role_cli.command("add")
@org_option()
@click.option("--slug", "role_slug", required=True, help="lowercase-with-hyphens")
@click.option("--name", required=True)
@click.option("--rank", type=int, required=True, help="1..999; built-ins are 100..500.")
@click.option("--description", default="")
@click.option("--permission", "permissions", multiple=True, help="Repeat for each one.")
def role_add(
    slug: str,
    role_slug: str,
    name: str,
    rank: int,
    description: str,
    permissions: Sequence[str],
) -> None:
    """Add a custom role (always paid); prints its key."""
    with org_service(slug) as service:
        key = service.create_custom_role(role_slug, name, rank, description, permissions).key
    click.echo(key)


@role_cli.command("edit")
@org_option()
@click.option("--key", required=True, help="custom:<slug> or <slug>")
@click.option("--name", default=None)
@click.option("--rank", type=int, default=None)
@click.option("--description", default=None)
@click.option("--permission", "permissions", multiple=True, help="Replaces all permissions.")
def role_edit(
    slug: str,
    key: str,
    name: str | None,
    rank: int | None,
    description: str | None,
    permissions: Sequence[str],
) -> None:
    """Change a custom role; a new rank re-resolves everyone its rules reach."""
    edit = changes.CustomRoleEdit(key, name, rank, description, tuple(permissions) or None)
    if edit == changes.CustomRoleEdit(key):
        raise nothing_to_change()
    with org_service(slug) as service:
        edit.apply(service)
    click.echo(f"updated role {changes.custom_role_key(key)}")


@role_cli.command("list")
@org_option()
@click.option("--custom", is_flag=True, help="Only custom roles, with their details.")
@json_option()
def role_list(slug: str, custom: bool, as_json: bool) -> None:
    """The role catalogue, highest rank first."""
    with org_service(slug) as service:
        if custom:
            rows = [
                documents.custom_role(r)
                for r in queries.list_custom_roles(service.session, service.organization)
            ]
        else:
            rows = documents.catalogue(service.catalogue())
    echo_rows(rows, as_json, _role_line)


def _role_line(row: Row) -> str:
    kind = "paid" if row["paid"] else "free"
    return f"{row['rank']:>4}  {row['key']:<24} {row['name']} ({kind})"


@role_cli.command("remove")
@org_option()
@click.option("--key", required=True, help="custom:<slug> or <slug>")
def role_remove(slug: str, key: str) -> None:
    """Remove a custom role that no rule and no default refers to."""
    key = changes.custom_role_key(key)
    with org_service(slug) as service:
        service.delete_custom_role(key)
    click.echo(f"removed role {key}")
