"""`blue-provisioning project …`: the Blue projects that mapping rules can target."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.admin import documents, queries
from app.cli.common import echo_rows, json_option, org_option, org_service

project_cli = AppGroup("project", help="Blue projects that rules can target.")


@project_cli.command("add")
@org_option()
@click.option("--key", required=True, help="The project's key in Blue.")
@click.option("--name", default=None, help="Display name (default: the key).")
def project_add(slug: str, key: str, name: str | None) -> None:
    """Add a project that rules can target."""
    with org_service(slug) as service:
        service.create_project(key, name or key)
    click.echo(f"added project {key}")


@project_cli.command("list")
@org_option()
@json_option()
def project_list(slug: str, as_json: bool) -> None:
    """List projects."""
    with org_service(slug) as service:
        rows = [
            documents.project(p)
            for p in queries.list_projects(service.session, service.organization)
        ]
    echo_rows(rows, as_json, lambda row: f"{row['key']:<24} {row['name']}")


@project_cli.command("rename")
@org_option()
@click.option("--key", required=True)
@click.option("--name", required=True)
def project_rename(slug: str, key: str, name: str) -> None:
    """Change a project's display name."""
    with org_service(slug) as service:
        service.rename_project(key, name)
    click.echo(f"renamed project {key}")


@project_cli.command("remove")
@org_option()
@click.option("--key", required=True)
def project_remove(slug: str, key: str) -> None:
    """Remove a project that no rule targets."""
    with org_service(slug) as service:
        service.delete_project(key)
    click.echo(f"removed project {key}")
