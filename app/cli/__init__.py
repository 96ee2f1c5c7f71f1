"""The `blue-provisioning` command line: one module per command group, named after it, and
the helpers every command shares in `app.cli.common`. `create_app()` registers COMMAND_GROUPS."""

from __future__ import annotations

import click

from app.cli import (
    audit,
    console,
    contract,
    db,
    default_role,
    demo,
    dry_run,
    events,
    guard,
    held,
    imports,
    org,
    projects,
    reports,
    roles,
    rules,
    seats,
    tokens,
    users,
    webhooks,
    worker,
)
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
    rules.rule_cli,
    seats.seats_cli,
    contract.contract_cli,
    guard.guard_cli,
    users.user_cli,
    projects.project_cli,
    roles.role_cli,
    default_role.default_role_cli,
    held.held_cli,
    dry_run.dry_run,
    reports.report_cli,
    webhooks.webhook_cli,
    worker.worker_command,
    events.events,
    console.console_cli,
    imports.import_cli,
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
