"""`blue-provisioning demo …`: demo data for local use."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app import organizations, provisioning
from app.cli.common import command_unit
from app.errors import ProvisioningError
from app.web import settings

DEMO_SLUG = "demo"
DEMO_TOKEN_LABEL = "demo"

demo_cli = AppGroup("demo", help="Demo data for local use.")


@demo_cli.command("seed")
@click.option("--token-file", type=click.Path(path_type=Path), default=Path("var/demo-token"))
def demo_seed(token_file: Path) -> None:
    """Create the demo organization and a SCIM token unless they exist; print how to connect."""
    with command_unit() as session:
        try:
            organization = organizations.get_organization(session, DEMO_SLUG)
        except ProvisioningError:
            organization = provisioning.create_organization(
                session, "Demo Organization", DEMO_SLUG, paid_seats=25
            )
        saved = token_file.read_text().strip() if token_file.exists() else ""
        token = organizations.authenticate_token(session, saved) if saved else None
        if token is None or token.org_id != organization.id:
            # The secret is unrecoverable by design; a lost demo token is rotated.
            label = DEMO_TOKEN_LABEL
            taken = {t.label for t in organizations.list_tokens(session, organization)}
            if label in taken:
                provisioning.revoke_token(session, organization, label)
                label = f"{DEMO_TOKEN_LABEL}-{len(taken) + 1}"
            saved = provisioning.create_token(session, organization, label).secret
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(saved + "\n")
            token_file.chmod(0o600)
    base_url = settings().base_url
    click.echo(f"demo organization: {DEMO_SLUG}")
    click.echo(f"SCIM base URL:     {base_url}/scim/v2")
    click.echo(f"SCIM token:        {saved}")
