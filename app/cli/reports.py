"""`blue-provisioning report …`: the access-review reports (access, changes, renewal, drift),
the API's documents, streamed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
from flask.cli import AppGroup

from app import reporting
from app.cli.common import json_option, org_option, org_reader
from app.cli.streaming import FORMATS, format_option, instant, output_option, write
from app.db import utcnow
from app.provisioning import Actor, ProvisioningService
from app.reporting import AccessFilters, exports
from app.reporting.exports import Format

READER = Actor(kind="cli", label="report")
DEFAULT_CHANGE_DAYS = 30

report_cli = AppGroup("report", help="Access-review reports: access, changes, renewal, drift.")


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
@click.option("--seat", type=click.Choice(reporting.SEATS), default=None)
@click.option("--status", type=click.Choice(reporting.STATUSES), default=None)
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
            reporting.find_group_ids(session, organization, group, history=as_of is not None)
        filters = AccessFilters(
            project=project,
            role=service.role_key(role) if role else None,
            seat=seat,
            status=status,
            group=group,
            not_logged_in_days=not_logged_in_days,
            deactivated_with_role=deactivated_with_role,
        )
        rows = reporting.access_report(session, organization, service.catalogue(), filters, as_of)
        head = {"as_of": (as_of or utcnow()).isoformat()}
        write(exports.render(Format(format_), rows, reporting.ACCESS_COLUMNS, head), output)


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
    until = until or utcnow()
    since = since or until - timedelta(days=DEFAULT_CHANGE_DAYS)
    if until < since:
        raise click.BadParameter("--until must not be before --since", param_hint="--until")
    with org_reader(slug) as (session, organization):
        rows = reporting.change_report(session, organization, since, until)
        head = {"since": since.isoformat(), "until": until.isoformat()}
        write(exports.render(Format(format_), rows, reporting.CHANGE_COLUMNS, head), output)


@report_cli.command("renewal")
@org_option()
@click.option(
    "--reclaim-days",
    type=click.IntRange(0, 3650),
    default=30,
    show_default=True,
    help="A paid seat unused (no login) this long is a reclaim candidate.",
)
@click.option(
    "--grace-days",
    type=click.IntRange(0, 3650),
    default=reporting.DEFAULT_GRACE_DAYS,
    show_default=True,
    help="Users provisioned (or given their paid seat) this recently are not candidates.",
)
@json_option(help="Print the API's JSON document.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default=None,
    help="json: the whole document; csv, jsonl: the monthly series.",
)
@output_option()
def report_renewal(
    slug: str,
    reclaim_days: int,
    grace_days: int,
    as_json: bool,
    format_: str | None,
    output: str,
) -> None:
    """Paid seats by month against the tier of that month, overage and pending users, peak,
    current, reclaimable, renewal forecast."""
    with org_reader(slug) as (session, organization):
        report = reporting.renewal_report(session, organization, reclaim_days, grace_days)
    if as_json or format_ == Format.JSON:
        write([exports.dumps(report) + "\n"], output)
        return
    if format_ is not None:
        rows = reporting.renewal_rows(report)
        write(exports.render(Format(format_), rows, reporting.RENEWAL_COLUMNS), output)
        return
    _echo_renewal(slug, report)


def _echo_renewal(slug: str, report: dict[str, Any]) -> None:
    """The renewal report as lines: contract, seats now, reclaimable, forecast, each month."""
    current = report["current"]
    click.echo(
        f"{slug}: tier {report['tier']} ({report['policy']}), contract "
        f"{report['contract_start']} – {report['contract_end']}"
    )
    click.echo(
        f"now: paid {current['paid']}  free {current['free']}  pending {current['pending']}  "
        f"no role {current['none']}  peak paid {report['peak_paid']}"
    )
    click.echo(
        f"reclaim candidates (paid, no login for {report['reclaim_after_days']} days, "
        f"provisioned over {report['reclaim_grace_days']} days ago): "
        f"{report['reclaim_candidates']}"
    )
    click.echo(f"forecast paid seats at renewal: {report['forecast_paid_at_renewal']}")
    for month in report["months"]:
        use = f"{month['utilisation']:.0%}" if month["utilisation"] is not None else "-"
        click.echo(
            f"  {month['month']}  peak {month['peak_paid']:>6}  end {month['end_paid']:>6}  "
            f"overage {month['overage']:>5}  free {month['end_free']:>6}  "
            f"pending {month['end_pending']:>5}  of {month['tier']} {month['policy']} ({use})"
        )
    for version in report["contract_versions"]:
        click.echo(
            f"contract from {version['effective_at']}: tier {version['tier']} "
            f"({version['policy']}, {version['billing_terms']})"
        )


@report_cli.command("drift")
@org_option()
@format_option()
@output_option()
def report_drift(slug: str, format_: str, output: str) -> None:
    """Users whose roles differ from the current rules; rules whose group no longer exists
    or was renamed."""
    with org_reader(slug) as (session, organization):
        rules = reporting.rule_groups(session, organization)
        users = ProvisioningService(session, organization, READER).drift()
        if format_ == Format.JSON:
            parts = exports.json_document(rules, "users", users)
        else:
            rows = reporting.drift_rows(rules, users)
            parts = exports.render(Format(format_), rows, reporting.DRIFT_COLUMNS)
        write(parts, output)
