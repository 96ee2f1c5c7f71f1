"""`blue-provisioning webhook …`: an organization's webhook endpoints, their deliveries and
replays. Secrets are shown once, alone on the last line, when made (add, rotate-secret)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from app import crypto
from app.admin import documents
from app.cli.common import Row, echo_rows, json_option, org_option, org_service
from app.config import Settings
from app.delivery import new_secret

webhook_cli = AppGroup("webhook", help="Webhook endpoints: where Blue hears of every change.")
DEFAULT_OVERLAP_HOURS = 24


def _settings() -> Settings:
    settings: Settings = current_app.extensions["settings"]
    return settings


def _encrypted_new_secret() -> tuple[str, str]:
    secret = new_secret()
    return secret, crypto.encrypt(_settings().secret_key, secret)


@webhook_cli.command("add")
@org_option()
@click.option("--url", required=True, help="https URL (http only to localhost in development).")
@click.option("--events", help="Only these event types, comma-separated (user.*: a prefix).")
def webhook_add(slug: str, url: str, events: str | None) -> None:
    """Add an endpoint; its signing secret is printed once, alone on the last line."""
    secret, encrypted = _encrypted_new_secret()
    types = events.split(",") if events is not None else None
    with org_service(slug) as service:
        endpoint = service.add_webhook(url, encrypted, types, production=_settings().is_production)
        endpoint_id = endpoint.id
    click.echo(f"webhook {endpoint_id} of {slug} → {url}")
    click.echo("signing secret (Standard Webhooks); store it now, it is not shown again:")
    click.echo(secret)


@webhook_cli.command("list")
@org_option()
@json_option()
def webhook_list(slug: str, as_json: bool) -> None:
    """List the organization's endpoints."""
    with org_service(slug) as service:
        rows = [documents.webhook(e) for e in service.list_webhooks()]
    echo_rows(rows, as_json, _endpoint_line)


def _endpoint_line(row: Row) -> str:
    state = "enabled" if row["enabled"] else "disabled"
    events = ",".join(row["events"]) if row["events"] else "all events"
    return f"{row['id']}  {state:<8}  {row['url']}  ({events})"


@webhook_cli.command("disable")
@org_option()
@click.argument("webhook_id")
def webhook_disable(slug: str, webhook_id: str) -> None:
    """Pause an endpoint: its events wait, delivered once it is enabled again."""
    _switch(slug, webhook_id, enabled=False)


@webhook_cli.command("enable")
@org_option()
@click.argument("webhook_id")
def webhook_enable(slug: str, webhook_id: str) -> None:
    """Resume a paused endpoint."""
    _switch(slug, webhook_id, enabled=True)


def _switch(slug: str, webhook_id: str, enabled: bool) -> None:
    with org_service(slug) as service:
        service.set_webhook_enabled(webhook_id, enabled)
    click.echo(f"{'enabled' if enabled else 'disabled'} webhook {webhook_id}")


@webhook_cli.command("rotate-secret")
@org_option()
@click.argument("webhook_id")
@click.option(
    "--overlap-hours",
    type=click.IntRange(min=0),
    default=DEFAULT_OVERLAP_HOURS,
    show_default=True,
    help="How long the current secret keeps signing too (0: stop at once).",
)
def webhook_rotate_secret(slug: str, webhook_id: str, overlap_hours: int) -> None:
    """Sign with a new secret, printed once, alone on the last line."""
    secret, encrypted = _encrypted_new_secret()
    with org_service(slug) as service:
        service.rotate_webhook_secret(webhook_id, encrypted, timedelta(hours=overlap_hours))
    click.echo(f"webhook {webhook_id}: the previous secret signs too for {overlap_hours} h")
    click.echo("new signing secret; store it now, it is not shown again:")
    click.echo(secret)


@webhook_cli.command("delete")
@org_option()
@click.argument("webhook_id")
def webhook_delete(slug: str, webhook_id: str) -> None:
    """Remove an endpoint and its queue."""
    with org_service(slug) as service:
        service.delete_webhook(webhook_id)
    click.echo(f"deleted webhook {webhook_id}")


@webhook_cli.command("deliveries")
@org_option()
@click.option("--failed", is_flag=True, help="Only dead deliveries and those being retried.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option()
def webhook_deliveries(slug: str, failed: bool, limit: int, as_json: bool) -> None:
    """The latest deliveries, newest first."""
    with org_service(slug) as service:
        rows = [documents.delivery(v) for v in service.list_deliveries(failed=failed, limit=limit)]
    echo_rows(rows, as_json, _delivery_line)


def _delivery_line(row: Row) -> str:
    status = row["last_status"] if row["last_status"] is not None else "-"
    error = f"  {row['last_error']}" if row["last_error"] and row["state"] != "delivered" else ""
    return (
        f"{row['event_id']}  {row['type']:<20} {row['state']:<9} "
        f"attempts {row['attempts']} last {status}{error}"
    )


@webhook_cli.command("replay")
@org_option()
@click.option("--event", "event_id", help="Deliver this event again (its id).")
@click.option("--dead", is_flag=True, help="Deliver every dead delivery again.")
def webhook_replay(slug: str, event_id: str | None, dead: bool) -> None:
    """Queue deliveries again: one event's, or every dead one."""
    if (event_id is None) == (not dead):
        raise click.UsageError("give either --event ID or --dead")
    with org_service(slug) as service:
        count = service.replay_event(event_id) if event_id is not None else service.replay_dead()
    click.echo(f"queued {count} deliveries again")
