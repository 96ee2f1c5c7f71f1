"""`blue-provisioning dry-run`: what a change would do to roles and seats; nothing is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from flask.cli import with_appcontext

import licensing
from app.admin import changes, documents, queries
from app.admin.changes import KEEP, ContractInput, ProposedChange, RuleInput
from app.cli.common import MATCHES, POLICIES, echo_json, json_option, org_option, org_service
from app.errors import InvalidChangeError


def parse_rule(text: str) -> RuleInput:
    """MATCH:GROUP:ROLE:PROJECT; the group may contain ':', the role may be custom:<slug>."""
    parts = text.split(":")
    if len(parts) < 4 or parts[0] not in MATCHES:
        raise InvalidChangeError(
            f"--add-rule {text!r} must be MATCH:GROUP:ROLE:PROJECT with MATCH one of "
            f"{', '.join(MATCHES)}, e.g. 'displayName:Everyone:Team Member:*'"
        )
    project, role, group = parts[-1], parts[-2], parts[1:-2]
    if len(group) > 1 and group[-1] == licensing.CUSTOM_KEY_PREFIX.rstrip(":"):
        role, group = licensing.CUSTOM_KEY_PREFIX + role, group[:-1]
    return RuleInput(group=":".join(group), role=role, match=parts[0], project=project)


@click.command("dry-run")
@org_option()
@click.option("--add-rule", "add_rules", multiple=True, help="MATCH:GROUP:ROLE:PROJECT")
@click.option("--remove-rule", "remove_rules", multiple=True, help="A rule id.")
@click.option("--default-role", default=None, help="Role key or name.")
@click.option("--no-default-role", is_flag=True, help="Try having no default role.")
@click.option("--paid-seats", type=click.IntRange(min=0), default=None)
@click.option("--policy", type=click.Choice(POLICIES), default=None)
@click.option("--limit", type=click.IntRange(min=0), default=1000, show_default=True)
@json_option()
@with_appcontext
def dry_run(
    slug: str,
    add_rules: Sequence[str],
    remove_rules: Sequence[str],
    default_role: str | None,
    no_default_role: bool,
    paid_seats: int | None,
    policy: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """What a change would do to roles and seats; nothing is written."""
    if default_role is not None and no_default_role:
        raise click.UsageError("give at most one of --default-role and --no-default-role")
    with org_service(slug) as service:
        change = ProposedChange(
            add_rules=[parse_rule(text) for text in add_rules],
            remove_rules=list(remove_rules),
            default_role=None if no_default_role else default_role or KEEP,
            contract=ContractInput(
                paid_seats=KEEP if paid_seats is None else paid_seats,
                policy=KEEP if policy is None else policy,
            ),
        )
        outcome = changes.dry_run(service, change)
        names = queries.user_names(service.session, service.organization, outcome.user_ids(limit))
        document = documents.dry_run(outcome, names, limit)
    if as_json:
        echo_json(document)
        return
    _echo_outcome(document)


def _echo_outcome(document: dict[str, Any]) -> None:
    """The dry run as lines: totals before → after (what would really apply), then each
    changed user, then what is held and each user's held grants."""
    before, after = document["totals"]["before"], document["totals"]["after"]
    click.echo(f"{document['changed_users']} users would change")
    for kind in ("paid", "free", "pending"):
        click.echo(f"  {kind:<8} {before[kind]:>6} → {after[kind]}")
    for user in document["users"]:
        roles = ", ".join(
            f"{r['project']}: {r['before'] or '-'} → {r['after'] or '-'}" for r in user["roles"]
        )
        seat = user["seat"]
        click.echo(f"{user['userName']}: seat {seat['before']} → {seat['after']}; {roles}")
    for held in document["would_hold"]:
        click.echo(f"would be held for confirmation: {'; '.join(held['reasons'])}")
    for user in document["held"]:
        roles = ", ".join(
            f"{r['project']}: {r['before'] or '-'} → {r['after']}" for r in user["roles"]
        )
        seat = "; a paid seat" if user["paid_seat"] else ""
        click.echo(f"held: {user['userName']}: {roles or 'no role change'}{seat}")
