"""`blue-provisioning audit …`: the audit trail: verify its hash chain, query it, export it."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from app import audit, reporting
from app.cli.common import F, echo_json, json_option, org_option, org_reader
from app.cli.streaming import format_option, instant, output_option, write
from app.models import Organization
from app.reporting import AuditFilters, exports
from app.reporting.exports import Format

audit_cli = AppGroup("audit", help="The audit trail.")


def audit_filter_options(command: F) -> F:
    """The options that narrow the audit trail, shared by `audit query` and `audit export`."""
    options = [
        click.option("--since", callback=instant(), help="From (inclusive), ISO 8601."),
        click.option(
            "--until",
            callback=instant(end_of_day=True),
            default=None,
            help="Up to (exclusive); a date includes that day.",
        ),
        click.option("--actor", default=None, help="Who: a token label, connection, operator."),
        click.option("--actor-type", default=None, help="scim, sso, api, cli, console or system."),
        click.option("--action", default=None, help="Exact, or a prefix such as 'role.'."),
        click.option("--user", default=None, help="Events about a user: id or userName."),
        click.option("--group", default=None, help="Events about a group: id or displayName."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def audit_filters(
    session: Session, organization: Organization, options: dict[str, Any]
) -> AuditFilters:
    """The filters the options of `audit_filter_options` ask for; a user or group by name."""
    user, group = options["user"], options["group"]
    return AuditFilters(
        since=options["since"],
        until=options["until"],
        actor=options["actor"],
        actor_type=options["actor_type"],
        action=options["action"],
        user_id=reporting.find_user_id(session, organization, user) if user else None,
        group_ids=reporting.find_group_ids(session, organization, group) if group else None,
    )


@audit_cli.command("verify")
@org_option()
def audit_verify(slug: str) -> None:
    """Check the organization's audit hash chain; exit 1 at the first broken link."""
    # One snapshot: an event committed meanwhile must not look like a gap in the chain.
    with org_reader(slug) as (session, organization):
        result = audit.verify(session, organization.id)
    if result.is_ok:
        click.echo(f"OK: {result.count} events, head {result.head_hash or '(empty)'}")
        return
    click.echo(
        f"BROKEN at event #{result.broken_at}: {result.problem} "
        f"({result.count} events verified before it)"
    )
    sys.exit(1)


@audit_cli.command("query")
@org_option()
@audit_filter_options
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", default=None, help="Resume after the page that printed this cursor.")
@json_option(help="Print the API's JSON page.")
def audit_query(slug: str, limit: int, cursor: str | None, as_json: bool, **options: Any) -> None:
    """One page of the audit trail, oldest first."""
    with org_reader(slug) as (session, organization):
        filters = audit_filters(session, organization, options)
        try:
            page = reporting.audit_page(session, organization, filters, cursor, limit)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--cursor") from None
    if as_json:
        echo_json(page)
        return
    for event in page["events"]:
        click.echo(
            f"{event['seq']:>7}  {event['at']}  {event['actor_type']}:{event['actor']}  "
            f"{event['action']}  {event['target_type']} {event['target_id'] or ''}".rstrip()
        )
    if page["has_more"]:
        click.echo(f"more: --cursor {page['next_cursor']}", err=True)


@audit_cli.command("export")
@org_option()
@audit_filter_options
@format_option(Format.JSONL.value)
@output_option()
def audit_export(slug: str, format_: str, output: str, **options: Any) -> None:
    """Every matching event, streamed as JSON Lines, CSV or JSON."""
    with org_reader(slug) as (session, organization):
        filters = audit_filters(session, organization, options)
        events = reporting.audit_events(session, organization, filters)
        write(
            exports.render(Format(format_), events, reporting.AUDIT_COLUMNS, key="events"),
            output,
        )
