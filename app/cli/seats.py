"""`blue-provisioning seats …`: paid, free and pending seats, their history and the queue."""

from __future__ import annotations

from datetime import date, datetime

import click
from flask.cli import AppGroup, with_appcontext

from app import reporting
from app.admin import payloads
from app.cli.common import DATE, echo_json, echo_rows, json_option, org_option, org_service
from app.db import utcnow


@click.group("seats", cls=AppGroup, invoke_without_command=True)
@org_option(required=False)
@json_option()
@with_appcontext
@click.pass_context
def seats_cli(context: click.Context, slug: str | None, as_json: bool) -> None:
    """Active users by seat (paid, free, pending, no role: each once) against the tier."""
    if context.invoked_subcommand is not None:
        return
    if slug is None:
        raise click.UsageError("Missing option '--org'.")
    with org_service(slug) as service:
        summary = reporting.seat_summary(service.session, service.organization).as_json()
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"tier {summary['tier']}  paid {summary['paid']}  free {summary['free']}  "
        f"pending {summary['pending']}  no role {summary['none']}  active {summary['active']}  "
        f"overage {summary['overage']}  policy {summary['policy']}"
    )


def _inherited_slug(context: click.Context, slug: str | None) -> str:
    """`seats --org acme history` and `seats history --org acme` both work."""
    parent = context.parent.params.get("slug") if context.parent is not None else None
    chosen = slug or parent
    if not chosen:
        raise click.UsageError("Missing option '--org'.")
    return str(chosen)


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@seats_cli.command("history")
@org_option(required=False)
@click.option("--start", type=DATE, default=None, help="First day (default: 30 days ago).")
@click.option("--end", type=DATE, default=None, help="Last day (default and at most: today, UTC).")
@json_option()
@click.pass_context
def seats_history(
    context: click.Context,
    slug: str | None,
    start: datetime | None,
    end: datetime | None,
    as_json: bool,
) -> None:
    """Paid, free and pending users at the end of each day up to today, from the ledger."""
    slug = _inherited_slug(context, slug)
    with org_service(slug) as service:
        today = utcnow().date()
        first, last = payloads.seat_period(_day(start), _day(end), today)
        history = reporting.seat_history(service.session, service.organization, first, last)
    if as_json:
        echo_json(history)
        return
    click.echo(
        f"tier {history['tier']}  peak paid {history['peak_paid']}  "
        f"average paid {history['average_paid']}"
    )
    for day in history["series"]:
        click.echo(
            f"{day['date']}  paid {day['paid']:>6}  free {day['free']:>6}  "
            f"pending {day['pending']:>6}"
        )


@seats_cli.command("pending")
@org_option(required=False)
@json_option()
@click.pass_context
def seats_pending(context: click.Context, slug: str | None, as_json: bool) -> None:
    """Users waiting for a paid seat, in promotion order."""
    slug = _inherited_slug(context, slug)
    with org_service(slug) as service:
        rows = reporting.pending_users(service.session, service.organization)
    echo_rows(rows, as_json, lambda row: f"{row['pending_since']}  {row['userName']}  {row['id']}")
