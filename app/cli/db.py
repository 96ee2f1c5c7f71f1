"""`blue-provisioning db …`: the database schema."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app import migrate
from app.web import settings

db_cli = AppGroup("db", help="Database schema.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    migrate.upgrade(settings().database_url)
    click.echo(f"database at revision {migrate.current_head()}")
