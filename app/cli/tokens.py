"""`blue-provisioning token …`: SCIM and admin API bearer tokens."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app import organizations, provisioning
from app.cli.common import Row, cli_actor, command_unit, echo_rows, json_option, org_option

token_cli = AppGroup("token", help="SCIM bearer tokens.")


@token_cli.command("create")
@org_option()
@click.option("--label", required=True, help="What the token is for, e.g. okta.")
@click.option("--read-only", is_flag=True, help="Reads only: every change answers 403.")
@click.option(
    "--scope",
    type=click.Choice([s.value for s in organizations.TokenScope]),
    default=organizations.TokenScope.SCIM.value,
    show_default=True,
    help="scim: for the IdP's provisioning; admin: for the /api/v1 admin API; "
    "events: only Blue's event feed, /api/v1/events.",
)
@click.option(
    "--expires-in-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Expire the token after this many days (default: never; revoke it when done).",
)
def token_create(
    slug: str, label: str, read_only: bool, scope: str, expires_in_days: int | None
) -> None:
    """Issue a token; it is printed once, alone on the last line."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug)
        issued = provisioning.create_token(
            session,
            organization,
            label,
            read_only,
            organizations.TokenScope(scope),
            actor=cli_actor(),
            expires_in_days=expires_in_days,
        )
    click.echo(f"{scope} token {label!r} for {slug}; store it now, it is not shown again:")
    click.echo(issued.secret)


@token_cli.command("list")
@org_option(required=False, help="Only this organization's tokens.")
@json_option()
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
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "warning": organizations.expiry_warning(t),
            }
            for t in organizations.list_tokens(session, organization)
        ]
    echo_rows(rows, as_json, _token_line)


def _token_line(row: Row) -> str:
    state = "revoked" if row["revoked_at"] else "active"
    expiry = f"  expires {row['expires_at']}" if row["expires_at"] else ""
    warning = f"  ! {row['warning']}" if row["warning"] else ""
    return (
        f"{row['org']:<20} {row['label']:<20} {row['prefix']}… {state:<8} "
        f"last used {row['last_used_at'] or 'never'}{expiry}{warning}"
    )


@token_cli.command("revoke")
@org_option()
@click.option("--label", required=True, help="The token's label.")
def token_revoke(slug: str, label: str) -> None:
    """Revoke a token; requests using it are refused from now on."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug)
        provisioning.revoke_token(session, organization, label, actor=cli_actor())
    click.echo(f"revoked token {label!r} of {slug}")
