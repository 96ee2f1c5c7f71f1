"""`blue-provisioning org …`: customer organizations and their verified email domains."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app import organizations, provisioning
from app.cli.common import cli_actor, command_unit, echo_rows, json_option, org_option, org_service
from app.models import OrgDomain, OveragePolicy

org_cli = AppGroup("org", help="Customer organizations.")
domain_cli = AppGroup("domain", help="Verified email domains.")
org_cli.add_command(domain_cli)


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
        organization = provisioning.create_organization(
            session, name, slug, paid_seats, OveragePolicy(policy), actor=cli_actor()
        )
        click.echo(f"created organization {organization.slug} ({organization.id})")


@org_cli.command("list")
@json_option()
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
    echo_rows(
        rows,
        as_json,
        lambda row: (
            f"{row['slug']:<24} {row['name']:<32} tier={row['paid_seat_tier']} "
            f"policy={row['overage_policy']}"
        ),
    )


@org_cli.command("set")
@org_option()
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
@org_option()
@click.argument("domain")
def domain_add(slug: str, domain: str) -> None:
    """Record a verified email domain (finds the organization at sign-in; links first logins)."""
    with org_service(slug) as service:
        row = service.add_domain(domain)
        click.echo(f"{row.domain} verified for {slug}")


@domain_cli.command("remove")
@org_option()
@click.argument("domain")
def domain_remove(slug: str, domain: str) -> None:
    """Forget a verified email domain."""
    with org_service(slug) as service:
        service.remove_domain(domain)
    click.echo(f"{domain} removed from {slug}")


@domain_cli.command("list")
@org_option()
def domain_list(slug: str) -> None:
    """List the organization's verified domains."""
    with org_service(slug) as service:
        for domain in service.session.scalars(
            select(OrgDomain.domain)
            .where(OrgDomain.org_id == service.org_id)
            .order_by(OrgDomain.domain)
        ):
            click.echo(domain)
