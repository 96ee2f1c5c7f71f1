"""`blue-provisioning events`: Blue's event feed, as GET /api/v1/events reads it."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import outbox
from app.cli.common import echo_json, json_option, org_option, org_reader


@click.command("events")
@org_option()
@click.option("--after", default="0", show_default=True, help="Cursor: events after it.")
@click.option(
    "--limit",
    type=click.IntRange(1, outbox.MAX_PAGE),
    default=outbox.DEFAULT_PAGE,
    show_default=True,
)
@json_option(help="Print the page as the API answers it.")
@with_appcontext
def events(slug: str, after: str, limit: int, as_json: bool) -> None:
    """Blue's events for the organization, in commit order, after a cursor."""
    try:
        position = outbox.parse_cursor(after)
    except ValueError:
        raise click.BadParameter("a cursor this feed printed", param_hint="--after") from None
    with org_reader(slug) as (session, organization):
        page = outbox.read_feed(session, organization.id, position, limit)
    if as_json:
        echo_json(
            {"events": page.events, "next_cursor": page.next_cursor, "has_more": page.has_more}
        )
        return
    for item in page.events:
        click.echo(
            f"{item['seq']:>8} {item['timestamp']} {item['type']:<30} "
            f"{item['user_id'] or '-'} {item['id']}"
        )
    more = " (more after it)" if page.has_more else ""
    click.echo(f"next cursor: {page.next_cursor}{more}")
