"""`blue-provisioning held …`: changes held by the mass-grant guard, to confirm or discard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import click
from flask.cli import AppGroup

from app.admin import documents, queries
from app.cli.common import echo_json, echo_rows, json_option, org_option, org_service
from app.models import HeldChange
from app.provisioning import ProvisioningService

held_cli = AppGroup("held", help="Changes held by the mass-grant guard.")
# The exit status of `rule add`, `rule edit` and `default-role set` when the guard held the
# change: it is recorded but not in force (1 is a refusal, 2 a usage error).
HELD_EXIT_STATUS = 3


def exit_held(document: dict[str, Any], slug: str, as_json: bool = False) -> NoReturn:
    """Report a change the guard held (its id, why, how to confirm) and exit with
    HELD_EXIT_STATUS; its transaction is already committed."""
    if as_json:
        echo_json({"held": document})
    else:
        click.echo(
            f"held {document['id']}: not in force until confirmed "
            f"({'; '.join(document['reasons'])}); "
            f"confirm with: blue-provisioning held confirm --org {slug} --id {document['id']}"
        )
    raise click.exceptions.Exit(HELD_EXIT_STATUS)


@held_cli.command("list")
@org_option()
@click.option(
    "--status",
    type=click.Choice([*queries.HELD_STATUSES, "all"]),
    default="held",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option()
def held_list(slug: str, status: str, limit: int, as_json: bool) -> None:
    """Held changes, newest first."""
    with org_service(slug) as service:
        rows = [
            documents.held_change(h)
            for h in queries.list_held_changes(
                service.session,
                service.organization,
                None if status == "all" else status,
                limit,
            )
        ]
    echo_rows(
        rows,
        as_json,
        lambda row: (
            f"{row['id']}  {row['status']:<9} {row['kind']:<12} {row['created_at']}  "
            f"{row['user_count']} users, "
            f"{row['new_paid_seats']} new paid seats: {'; '.join(row['reasons'])}"
        ),
    )


@held_cli.command("confirm")
@org_option()
@click.option("--id", "held_id", required=True)
def held_confirm(slug: str, held_id: str) -> None:
    """Apply a held change's grants."""
    _settle(slug, lambda service: service.confirm_held(held_id), f"confirmed held change {held_id}")


@held_cli.command("discard")
@org_option()
@click.option("--id", "held_id", required=True)
def held_discard(slug: str, held_id: str) -> None:
    """Drop a held change's grants."""
    _settle(slug, lambda service: service.discard_held(held_id), f"discarded held change {held_id}")


def _settle(slug: str, decide: Callable[[ProvisioningService], HeldChange], done: str) -> None:
    """Confirm or discard one held change as the operator; print how many users it held."""
    with org_service(slug) as service:
        users = len(decide(service).user_ids)
    click.echo(f"{done} ({users} users)")
