"""`blue-provisioning rule …`: mapping rules, IdP group → role in a project."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup

from app.admin import changes, documents, queries
from app.admin.changes import RuleEdit, RuleInput
from app.cli.common import (
    MATCHES,
    echo_json,
    echo_rows,
    json_option,
    nothing_to_change,
    org_option,
    org_service,
)
from app.cli.held import exit_held
from app.models import HeldChange

rule_cli = AppGroup("rule", help="Mapping rules: IdP group → role in a project.")


@rule_cli.command("add")
@org_option()
@click.option("--group", required=True, help="The group's displayName, id or externalId.")
@click.option("--match", type=click.Choice(MATCHES), default="displayName", show_default=True)
@click.option("--role", required=True, help="Role key or name, e.g. 'Team Member'.")
@click.option("--project", default="*", show_default=True, help="Project key, or * for all.")
@click.option("--priority", type=int, default=0, show_default=True, help="Breaks rank ties.")
def rule_add(slug: str, group: str, match: str, role: str, project: str, priority: int) -> None:
    """Add a mapping rule; prints its id. When the mass-grant guard holds its grants the rule
    is staged, not in force: prints `held <id>: …` and exits with status 3."""
    rule = RuleInput(group=group, role=role, match=match, project=project, priority=priority)
    with org_service(slug) as service:
        result = changes.create_rule(service, rule)
        held = documents.held_change(result) if isinstance(result, HeldChange) else None
        rule_id = str(result.id)
    if held is not None:
        exit_held(held, slug)
    click.echo(rule_id)


@rule_cli.command("list")
@org_option()
@json_option()
def rule_list(slug: str, as_json: bool) -> None:
    """List mapping rules, oldest first."""
    with org_service(slug) as service:
        roles = service.catalogue()
        rows = [
            documents.rule(r, roles)
            for r in queries.list_rules(service.session, service.organization)
        ]
    echo_rows(
        rows,
        as_json,
        lambda row: (
            f"{row['id']}  {row['match']}={row['group']!r} → {row['role_name'] or row['role']} "
            f"in {row['project']} (priority {row['priority']}){_binding(row)}"
        ),
    )


def _binding(row: dict[str, Any]) -> str:
    """The group a rule follows, as `rule list` shows it."""
    bound = row["bound_group"]
    if bound is None:
        return "" if row["match"] == "id" else "  [not bound: no such group yet]"
    if bound["deleted"]:
        return f"  [bound to deleted group {bound['id']}: rebind with `rule edit --rebind`]"
    return f"  [bound to group {bound['id']} {bound['display_name']!r}]"


@rule_cli.command("remove")
@org_option()
@click.option("--id", "rule_id", required=True, help="The rule's id.")
def rule_remove(slug: str, rule_id: str) -> None:
    """Remove a mapping rule; its users lose what only it granted."""
    with org_service(slug) as service:
        service.delete_rule(rule_id)
    click.echo(f"removed rule {rule_id}")


@rule_cli.command("edit")
@org_option()
@click.option("--id", "rule_id", required=True, help="The rule's id.")
@click.option("--group", default=None)
@click.option("--match", type=click.Choice(MATCHES), default=None)
@click.option("--role", default=None, help="Role key or name.")
@click.option("--project", default=None, help="Project key, or * for all.")
@click.option("--priority", type=int, default=None)
@click.option(
    "--rebind",
    is_flag=True,
    help="Bind the rule to the group its name (or externalId) names now, e.g. after its "
    "group was deleted and re-created.",
)
@json_option()
def rule_edit(
    slug: str,
    rule_id: str,
    group: str | None,
    match: str | None,
    role: str | None,
    project: str | None,
    priority: int | None,
    rebind: bool,
    as_json: bool,
) -> None:
    """Change some fields of a mapping rule, or rebind it to a group. When the mass-grant
    guard holds the edit's grants the whole edit is staged (the rule stays as it was): prints
    `held <id>: …` and exits with status 3."""
    edit = RuleEdit(
        group=group, role=role, match=match, project=project, priority=priority, rebind=rebind
    )
    if edit == RuleEdit():
        raise nothing_to_change(
            "--group", "--match", "--role", "--project", "--priority", "--rebind"
        )
    with org_service(slug) as service:
        result = changes.edit_rule(service, rule_id, edit)
        if isinstance(result, HeldChange):
            held = documents.held_change(result)
        else:
            row = documents.rule(result, service.catalogue())
    if isinstance(result, HeldChange):
        exit_held(held, slug, as_json)
    if as_json:
        echo_json(row)
        return
    click.echo(f"updated rule {rule_id}")
