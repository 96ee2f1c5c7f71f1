"""`blue-provisioning` commands for the audit trail (`audit query`, `audit export`) and the
access-review reports (`report access|changes|renewal|drift`): the API's documents, streamed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.orm import Session

from app import access_review, exports, organizations
from app.access_review import AccessFilters, AuditFilters
from app.cli import echo_json
from app.cli.audit import audit_cli
from app.db import read_only_unit
from app.errors import ProvisioningError
from app.exports import Format
from app.models import Organization
from app.provisioning import Actor, ProvisioningService

F = TypeVar("F", bound=Callable[..., Any])
READER = Actor(kind="cli", label="report")
FORMATS = [f.value for f in Format]
DEFAULT_CHANGE_DAYS = 30

report_cli = AppGroup("report", help="Access-review reports: access, changes, renewal, drift.")


def instant(
    end_of_day: bool = False, as_of: bool = False
) -> Callable[[click.Context, click.Parameter, str | None], datetime | None]:
    """An option callback reading an ISO 8601 date or datetime as a UTC instant."""

    def parse(_: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            if as_of:
                return access_review.parse_as_of(value)
            return access_review.parse_instant(value, end_of_day)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not an ISO 8601 date or datetime", param=param
            ) from None

    return parse


@contextmanager
def org_reader(slug: str) -> Iterator[tuple[Session, Organization]]:
    """A read-only unit of work on one organization; a refusal prints and exits non-zero."""
    try:
        with read_only_unit() as session:
            yield session, organizations.get_organization(session, slug)
    except ProvisioningError as error:
        raise click.ClickException(error.detail) from None


def write(parts: Iterable[str], output: str) -> None:
    """Write the pieces to a file (replaced only once complete) or, for "-", to stdout."""
    with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as target:
        for chunk in exports.chunked(parts):
            target.write(chunk)


def org_option() -> Callable[[F], F]:
    return click.option("--org", "slug", required=True, help="Organization slug.")


def format_option(default: str = Format.JSON.value) -> Callable[[F], F]:
    return click.option(
        "--format", "format_", type=click.Choice(FORMATS), default=default, show_default=True
    )


def output_option() -> Callable[[F], F]:
    return click.option(
        "--output",
        "-o",
        default="-",
        show_default=True,
        help="File to write (written whole or not at all); - for stdout.",
    )


def audit_filter_options(command: F) -> F:
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
    user, group = options["user"], options["group"]
    return AuditFilters(
        since=options["since"],
        until=options["until"],
        actor=options["actor"],
        actor_type=options["actor_type"],
        action=options["action"],
        user_id=access_review.find_user_id(session, organization, user) if user else None,
        group_ids=access_review.find_group_ids(session, organization, group) if group else None,
    )


# ------------------------------------------------------------- audit trail


# Attached to app.cli's `audit` group in init_app: plain commands, so each asks for the
# application context that AppGroup.command would have given it.
@click.command("query")
@org_option()
@audit_filter_options
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", default=None, help="Resume after the page that printed this cursor.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON page.")
@with_appcontext
def audit_query(slug: str, limit: int, cursor: str | None, as_json: bool, **options: Any) -> None:
    """One page of the audit trail, oldest first."""
    with org_reader(slug) as (session, organization):
        filters = audit_filters(session, organization, options)
        try:
            page = access_review.audit_page(session, organization, filters, cursor, limit)
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


@click.command("export")
@org_option()
@audit_filter_options
@format_option(Format.JSONL.value)
@output_option()
@with_appcontext
def audit_export(slug: str, format_: str, output: str, **options: Any) -> None:
    """Every matching event, streamed as JSON Lines, CSV or JSON."""
    with org_reader(slug) as (session, organization):
        filters = audit_filters(session, organization, options)
        events = access_review.audit_events(session, organization, filters)
        write(
            exports.render(Format(format_), events, access_review.AUDIT_COLUMNS, key="events"),
            output,
        )


# ----------------------------------------------------------------- reports


@report_cli.command("access")
@org_option()
@click.option(
    "--as-of",
    callback=instant(as_of=True),
    default=None,
    help="Access as it was then (a date: at the end of that day, UTC); default now.",
)
@click.option("--project", default=None, help="Project key.")
@click.option("--role", default=None, help="Role key or name.")
@click.option("--seat", type=click.Choice(access_review.SEATS), default=None)
@click.option("--status", type=click.Choice(access_review.STATUSES), default=None)
@click.option("--group", default=None, help="Members of this group: id or displayName.")
@click.option(
    "--not-logged-in-days",
    type=click.IntRange(min=0),
    default=None,
    help="Paid seats not used for N days: reclaim candidates.",
)
@click.option(
    "--deactivated-with-role",
    is_flag=True,
    help="Users deactivated in the IdP who still hold a role (should be none).",
)
@format_option()
@output_option()
def report_access(
    slug: str,
    as_of: datetime | None,
    project: str | None,
    role: str | None,
    seat: str | None,
    status: str | None,
    group: str | None,
    not_logged_in_days: int | None,
    deactivated_with_role: bool,
    format_: str,
    output: str,
) -> None:
    """Per user: status, seat, role per project, the groups and rules behind it, last login."""
    with org_reader(slug) as (session, organization):
        service = ProvisioningService(session, organization, READER)
        if group:
            access_review.find_group_ids(session, organization, group, history=as_of is not None)
        filters = AccessFilters(
            project=project,
            role=service.role_key(role) if role else None,
            seat=seat,
            status=status,
            group=group,
            not_logged_in_days=not_logged_in_days,
            deactivated_with_role=deactivated_with_role,
        )
        rows = access_review.access_report(
            session, organization, service.catalogue(), filters, as_of
        )
        head = {"as_of": (as_of or datetime.now(UTC)).isoformat()}
        write(exports.render(Format(format_), rows, access_review.ACCESS_COLUMNS, head), output)


@report_cli.command("changes")
@org_option()
@click.option("--since", callback=instant(), help="From (inclusive); default 30 days ago.")
@click.option(
    "--until",
    callback=instant(end_of_day=True),
    default=None,
    help="Up to (exclusive; a date includes that day); default now.",
)
@format_option()
@output_option()
def report_changes(
    slug: str, since: datetime | None, until: datetime | None, format_: str, output: str
) -> None:
    """Roles granted, changed and revoked, seats gained and released, with who and why."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=DEFAULT_CHANGE_DAYS)
    if until < since:
        raise click.BadParameter("--until must not be before --since", param_hint="--until")
    with org_reader(slug) as (session, organization):
        rows = access_review.change_report(session, organization, since, until)
        head = {"since": since.isoformat(), "until": until.isoformat()}
        write(exports.render(Format(format_), rows, access_review.CHANGE_COLUMNS, head), output)


@report_cli.command("renewal")
@org_option()
@click.option("--reclaim-days", type=click.IntRange(0, 3650), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON document.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default=None,
    help="json: the whole document; csv, jsonl: the monthly series.",
)
@output_option()
def report_renewal(
    slug: str, reclaim_days: int, as_json: bool, format_: str | None, output: str
) -> None:
    """Paid seats by month against the tier, peak, current, reclaimable, renewal forecast."""
    with org_reader(slug) as (session, organization):
        report = access_review.renewal_report(session, organization, reclaim_days)
    if as_json or format_ == Format.JSON:
        write([exports.dumps(report) + "\n"], output)
        return
    if format_ is not None:
        rows = access_review.renewal_rows(report)
        write(exports.render(Format(format_), rows, access_review.RENEWAL_COLUMNS), output)
        return
    current = report["current"]
    click.echo(
        f"{slug}: tier {report['tier']} ({report['policy']}), contract "
        f"{report['contract_start']} – {report['contract_end']}"
    )
    click.echo(
        f"now: paid {current['paid']}  free {current['free']}  pending {current['pending']}  "
        f"peak paid {report['peak_paid']}"
    )
    click.echo(
        f"reclaim candidates (paid, no login for {reclaim_days} days): "
        f"{report['reclaim_candidates']}"
    )
    click.echo(f"forecast paid seats at renewal: {report['forecast_paid_at_renewal']}")
    for month in report["months"]:
        use = f"{month['utilisation']:.0%}" if month["utilisation"] is not None else "-"
        click.echo(
            f"  {month['month']}  peak {month['peak_paid']:>6}  end {month['end_paid']:>6}  "
            f"free {month['end_free']:>6}  of {month['tier']} ({use})"
        )


@report_cli.command("drift")
@org_option()
@format_option()
@output_option()
def report_drift(slug: str, format_: str, output: str) -> None:
    """Users whose roles differ from the current rules; rules whose group no longer exists."""
    with org_reader(slug) as (session, organization):
        missing = access_review.missing_rule_groups(session, organization)
        users = ProvisioningService(session, organization, READER).drift()
        if format_ == Format.JSON:
            parts = exports.json_document({"missing_rule_groups": missing}, "users", users)
        else:
            rows = access_review.drift_rows(missing, users)
            parts = exports.render(Format(format_), rows, access_review.DRIFT_COLUMNS)
        write(parts, output)


def init_app(app: Flask) -> None:
    """Register `report`, and `audit query` / `audit export` beside `audit verify`."""
    audit_cli.add_command(audit_query)
    audit_cli.add_command(audit_export)
    app.cli.add_command(report_cli)
