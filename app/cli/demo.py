"""`blue-provisioning demo …`: demo data for local use."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app import organizations, provisioning
from app.cli.common import cli_actor, command_unit
from app.errors import ProvisioningError
from app.provisioning import GroupSpec, MemberChange, ProvisioningService, RuleSpec, UserSpec
from app.provisioning.console import ConsoleRole
from app.web import settings

DEMO_SLUG = "demo"
DEMO_TOKEN_LABEL = "demo"

demo_cli = AppGroup("demo", help="Demo data for local use.")


@demo_cli.command("seed")
@click.option("--token-file", type=click.Path(path_type=Path), default=Path("var/demo-token"))
@click.option("--people/--no-people", default=True, help="Also a directory to look at.")
def demo_seed(token_file: Path, people: bool) -> None:
    """Create the demo organization and a SCIM token unless they exist; print how to connect."""
    with command_unit() as session:
        try:
            organization = organizations.get_organization(session, DEMO_SLUG)
        except ProvisioningError:
            organization = provisioning.create_organization(
                session, "Demo Organization", DEMO_SLUG, paid_seats=25
            )
            if people:
                seed_directory(ProvisioningService(session, organization, cli_actor()))
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


# The demo directory: groups, the roles their rules give, and who is in them.
DEMO_GROUPS: dict[str, tuple[str, str] | None] = {
    "Engineering": ("team_member", "*"),
    "Design": ("team_member", "website"),
    "Leadership": ("project_admin", "*"),
    "Contractors": ("client", "*"),
    "Everyone": ("view_only", "*"),
    "IT Admins": None,  # the console's org admins
    "Security": None,  # the console's security reviewers
}
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]


def seed_directory(service: ProvisioningService) -> None:
    """Projects, rules, 40 people in groups (more paid than the tier of 25, so some wait under
    the `hold` policy) and console access for IT Admins and Security."""
    service.create_project("website", "Website relaunch")
    service.create_project("mobile", "Mobile app")
    service.set_contract(provisioning.ContractSpec(paid_seat_tier=25, policy="hold"))
    groups = {}
    for name, grant in DEMO_GROUPS.items():
        groups[name] = service.create_group(GroupSpec(display_name=name))
        if grant is not None:
            service.create_rule(RuleSpec("displayName", name, grant[0], grant[1]))
    service.grant_console_role(groups["IT Admins"].id, ConsoleRole.ADMIN)
    service.grant_console_role(groups["Security"].id, ConsoleRole.REVIEWER)
    kinds = ["Engineering", "Engineering", "Design", "Contractors", "Engineering", "Leadership"]
    for index in range(40):
        given, family = FIRST[index % len(FIRST)], LAST[index % len(LAST)]
        email = f"{given}.{family}{index}@demo.example".lower()
        user = service.create_user(
            UserSpec(
                user_name=email,
                attributes={"given_name": given, "family_name": family},
                multi_values={"emails": [{"value": email, "primary": True, "type": "work"}]},
            )
        )
        names = ["Everyone", kinds[index % len(kinds)]]
        names += ["IT Admins"] if index == 0 else ["Security"] if index == 1 else []
        for name in names:
            group = groups[name]
            spec = GroupSpec(display_name=group.display_name)
            service.update_group(group.id, spec, MemberChange(added=[str(user.id)]))
