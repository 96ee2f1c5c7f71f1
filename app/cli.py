"""The `blue-provisioning` command line: database, organizations, tokens, demo data."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, migrate, organizations
from app.audit import Actor
from app.db import read_only_unit, unit_of_work
from app.errors import ProvisioningError
from app.models import OrgDomain, OveragePolicy
from app.provisioning import ProvisioningService
from app.web import settings

F = TypeVar("F", bound=Callable[..., Any])
DEMO_SLUG = "demo"
DEMO_TOKEN_LABEL = "demo"

db_cli = AppGroup("db", help="Database schema.")
org_cli = AppGroup("org", help="Customer organizations.")
domain_cli = AppGroup("domain", help="Verified email domains.")
org_cli.add_command(domain_cli)
token_cli = AppGroup("token", help="SCIM bearer tokens.")
demo_cli = AppGroup("demo", help="Demo data for local use.")
audit_cli = AppGroup("audit", help="The audit trail.")


@contextmanager
def command_unit() -> Iterator[Session]:
    """One transaction for a command; a refused change prints its reason and exits non-zero."""
    try:
        with unit_of_work() as session:
            yield session
    except ProvisioningError as error:
        raise click.ClickException(error.detail) from None


def cli_actor() -> Actor:
    """The operator running the command, as the audit trail records it."""
    try:
        label = getpass.getuser()
    except (OSError, KeyError, ImportError):
        label = ""
    return Actor(kind="cli", label=label or "cli")


@contextmanager
def org_service(slug: str) -> Iterator[ProvisioningService]:
    """One transaction acting on one organization as the operator."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug)
        yield ProvisioningService(session, organization, cli_actor())


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    migrate.upgrade(settings().database_url)
    click.echo(f"database at revision {migrate.current_head()}")


@org_cli.command("create")
@click.argument("name")
@click.option("--slug", required=True, help="Short unique name used in URLs and commands.")
@click.option("--paid-seats", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--policy",
    type=click.Choice([p.value for p in OveragePolicy]),
    default=OveragePolicy.ALLOW.value,
    show_default=True,
    help="What happens past the paid-seat tier.",
)
def org_create(name: str, slug: str, paid_seats: int, policy: str) -> None:
    """Create an organization."""
    with command_unit() as session:
        organization = organizations.create_organization(
            session, name, slug, paid_seats, OveragePolicy(policy), actor=cli_actor()
        )
        click.echo(f"created organization {organization.slug} ({organization.id})")


@org_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def org_list(as_json: bool) -> None:
    """List organizations."""
    with command_unit() as session:
        rows = [
            {
                "id": str(o.id),
                "slug": o.slug,
                "name": o.name,
                "paid_seat_tier": o.paid_seat_tier,
                "overage_policy": o.overage_policy,
            }
            for o in organizations.list_organizations(session)
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['slug']:<24} {row['name']:<32} tier={row['paid_seat_tier']} "
            f"policy={row['overage_policy']}"
        )


@org_cli.command("set")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--blue-url", default=None, help="Where SSO logins are handed off to Blue.")
@click.option(
    "--sso-groups/--no-sso-groups",
    default=None,
    help="Whether SSO logins replace the user's SSO-sourced groups (off for SCIM-pushed groups).",
)
@click.option(
    "--no-role-policy",
    type=click.Choice(["refuse", "default"]),
    default=None,
    help="A login that leaves the user with no role: refuse it, or give the default role.",
)
def org_set(
    slug: str, blue_url: str | None, sso_groups: bool | None, no_role_policy: str | None
) -> None:
    """Change an organization's SSO settings."""
    with org_service(slug) as service:
        org = service.set_sso_options(blue_url, sso_groups, no_role_policy)
        click.echo(
            f"{org.slug}: blue_url={org.blue_url} sso_groups={org.sso_manages_groups} "
            f"no_role_policy={org.sso_no_role_policy}"
        )


@domain_cli.command("add")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.argument("domain")
def domain_add(slug: str, domain: str) -> None:
    """Record a verified email domain (finds the organization at sign-in; links first logins)."""
    with org_service(slug) as service:
        row = service.add_domain(domain)
        click.echo(f"{row.domain} verified for {slug}")


@domain_cli.command("remove")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.argument("domain")
def domain_remove(slug: str, domain: str) -> None:
    """Forget a verified email domain."""
    with org_service(slug) as service:
        service.remove_domain(domain)
    click.echo(f"{domain} removed from {slug}")


@domain_cli.command("list")
@click.option("--org", "slug", required=True, help="Organization slug.")
def domain_list(slug: str) -> None:
    """List the organization's verified domains."""
    with org_service(slug) as service:
        for domain in service.session.scalars(
            select(OrgDomain.domain)
            .where(OrgDomain.org_id == service.org_id)
            .order_by(OrgDomain.domain)
        ):
            click.echo(domain)


@token_cli.command("create")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--label", required=True, help="What the token is for, e.g. okta.")
@click.option("--read-only", is_flag=True, help="Reads only: every change answers 403.")
@click.option(
    "--scope",
    type=click.Choice([s.value for s in organizations.TokenScope]),
    default=organizations.TokenScope.SCIM.value,
    show_default=True,
    help="scim: for the IdP's provisioning; admin: for the /api/v1 admin API.",
)
def token_create(slug: str, label: str, read_only: bool, scope: str) -> None:
    """Issue a token; it is printed once, alone on the last line."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug)
        issued = organizations.create_token(
            session,
            organization,
            label,
            read_only,
            organizations.TokenScope(scope),
            actor=cli_actor(),
        )
    click.echo(f"{scope} token {label!r} for {slug}; store it now, it is not shown again:")
    click.echo(issued.secret)


@token_cli.command("list")
@click.option("--org", "slug", default=None, help="Only this organization's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_list(slug: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug) if slug else None
        rows = [
            {
                "org": t.organization.slug,
                "label": t.label,
                "prefix": t.prefix,
                "read_only": t.is_read_only,
                "scope": t.scope,
                "created_at": t.created_at.isoformat(),
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t in organizations.list_tokens(session, organization)
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        click.echo(
            f"{row['org']:<20} {row['label']:<20} {row['prefix']}… {state:<8} "
            f"last used {row['last_used_at'] or 'never'}"
        )


@token_cli.command("revoke")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--label", required=True, help="The token's label.")
def token_revoke(slug: str, label: str) -> None:
    """Revoke a token; requests using it are refused from now on."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug)
        organizations.revoke_token(session, organization, label, actor=cli_actor())
    click.echo(f"revoked token {label!r} of {slug}")


@demo_cli.command("seed")
@click.option("--token-file", type=click.Path(path_type=Path), default=Path("var/demo-token"))
def demo_seed(token_file: Path) -> None:
    """Create the demo organization and a SCIM token unless they exist; print how to connect."""
    with command_unit() as session:
        try:
            organization = organizations.get_organization(session, DEMO_SLUG)
        except ProvisioningError:
            organization = organizations.create_organization(
                session, "Demo Organization", DEMO_SLUG, paid_seats=25
            )
        saved = token_file.read_text().strip() if token_file.exists() else ""
        token = organizations.authenticate_token(session, saved) if saved else None
        if token is None or token.org_id != organization.id:
            # The secret is unrecoverable by design; a lost demo token is rotated.
            label = DEMO_TOKEN_LABEL
            taken = {t.label for t in organizations.list_tokens(session, organization)}
            if label in taken:
                organizations.revoke_token(session, organization, label)
                label = f"{DEMO_TOKEN_LABEL}-{len(taken) + 1}"
            saved = organizations.create_token(session, organization, label).secret
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(saved + "\n")
            token_file.chmod(0o600)
    base_url = settings().base_url
    click.echo(f"demo organization: {DEMO_SLUG}")
    click.echo(f"SCIM base URL:     {base_url}/scim/v2")
    click.echo(f"SCIM token:        {saved}")


@audit_cli.command("verify")
@click.option("--org", "slug", required=True, help="Organization slug.")
def audit_verify(slug: str) -> None:
    """Check the organization's audit hash chain; exit 1 at the first broken link."""
    # One snapshot: an event committed meanwhile must not look like a gap in the chain.
    with read_only_unit() as session:
        try:
            organization = organizations.get_organization(session, slug)
        except ProvisioningError as error:
            raise click.ClickException(error.detail) from None
        result = audit.verify(session, organization.id)
    if result.is_ok:
        click.echo(f"OK: {result.count} events, head {result.head_hash or '(empty)'}")
        return
    click.echo(
        f"BROKEN at event #{result.broken_at}: {result.problem} "
        f"({result.count} events verified before it)"
    )
    sys.exit(1)


def init_app(app: Flask) -> None:
    """Register the command groups on the application."""
    for group in (db_cli, org_cli, token_cli, demo_cli, audit_cli):
        app.cli.add_command(group)
