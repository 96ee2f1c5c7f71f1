"""`blue-provisioning audit …`: the audit trail: verify its hash chain, query it, export it."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app import audit
from app.cli.common import org_option, org_reader

audit_cli = AppGroup("audit", help="The audit trail.")


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
