"""`blue-provisioning guard …`: the mass-grant guard's thresholds."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.admin import changes, documents
from app.admin.changes import GuardInput
from app.cli.common import echo_json, nothing_to_change, org_option, org_service

guard_cli = AppGroup("guard", help="Mass-grant guard thresholds.")


@guard_cli.command("set")
@org_option()
@click.option("--max-new-paid-seats", type=int, default=None)
@click.option("--max-new-paid-share", type=float, default=None, help="0..1")
@click.option("--max-new-project-admins", type=int, default=None)
@click.option(
    "--window-minutes", type=int, default=None, help="The sliding window; 0 turns it off."
)
@click.option(
    "--max-new-paid-seats-in-window",
    type=int,
    default=None,
    help="New paid seats allowed within the window, over any number of requests.",
)
def guard_set(
    slug: str,
    max_new_paid_seats: int | None,
    max_new_paid_share: float | None,
    max_new_project_admins: int | None,
    window_minutes: int | None,
    max_new_paid_seats_in_window: int | None,
) -> None:
    """Change the mass-grant guard thresholds; options left out keep their value."""
    guard = GuardInput(
        max_new_paid_seats,
        max_new_paid_share,
        max_new_project_admins,
        window_minutes,
        max_new_paid_seats_in_window,
    )
    if guard == GuardInput():
        raise nothing_to_change()
    with org_service(slug) as service:
        document = documents.guard(changes.set_guard_thresholds(service, guard))
    echo_json(document)
