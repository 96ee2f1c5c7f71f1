"""The `blue-provisioning` console command: builds the app, then runs its CLI."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from app import create_app
from app.config import ConfigurationError


def _create_app_for_cli() -> Flask:
    try:
        return create_app()
    except ConfigurationError as error:
        click.echo(f"configuration error: {error}", err=True)
        sys.exit(2)


main = FlaskGroup(
    name="blue-provisioning",
    help="Blue identity provisioning service.",
    create_app=_create_app_for_cli,
    load_dotenv=False,
    set_debug_flag=False,
)
