"""The `blue-provisioning` command line: one module per command group, named after it, and
the helpers every command shares in `app.cli.common`. `create_app()` registers COMMAND_GROUPS."""

from __future__ import annotations

import click

from app.cli import audit, db, demo, org, tokens
from app.cli.common import (
    cli_actor,
    command_unit,
    echo_json,
    echo_rows,
    json_option,
    org_option,
    org_reader,
    org_service,
)

COMMAND_GROUPS: tuple[click.Command, ...] = (
    db.db_cli,
    org.org_cli,
    tokens.token_cli,
    demo.demo_cli,
    audit.audit_cli,
)

__all__ = [
    "COMMAND_GROUPS",
    "cli_actor",
    "command_unit",
    "echo_json",
    "echo_rows",
    "json_option",
    "org_option",
    "org_reader",
    "org_service",
]
