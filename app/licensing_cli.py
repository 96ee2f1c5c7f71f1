"""`blue-provisioning` commands for mapping rules, roles, projects, contract and seats."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

import licensing
from app import reporting as reports
from app.admin import changes, documents, payloads, queries
from app.admin.changes import KEEP, ContractInput, GuardInput, ProposedChange, RuleEdit, RuleInput
from app.cli import echo_json, org_service
from app.errors import InvalidChangeError

MATCHES = [m.value for m in licensing.GroupMatch]
POLICIES = [p.value for p in licensing.OveragePolicy]
BILLING_TERMS = [b.value for b in licensing.BillingTerms]
F = TypeVar("F", bound=Callable[..., Any])
DATE = click.DateTime(formats=["%Y-%m-%d"])

rule_cli = AppGroup("rule", help="Mapping rules: IdP group → role in a project.")
contract_cli = AppGroup("contract", help="The organization's contract and overage policy.")
user_cli = AppGroup("user", help="What a user can access, and why.")
project_cli = AppGroup("project", help="Blue projects that rules can target.")
role_cli = AppGroup("role", help="The role catalogue and custom roles.")
default_role_cli = AppGroup("default-role", help="The role of users in no mapped group.")
held_cli = AppGroup("held", help="Changes held by the mass-grant guard.")
guard_cli = AppGroup("guard", help="Mass-grant guard thresholds.")


def org_option(required: bool = True) -> Callable[[F], F]:
    return click.option("--org", "slug", required=required, help="Organization slug.")


def json_option() -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


# ------------------------------------------------------------------ rules


@rule_cli.command("add")
@org_option()
@click.option("--group", required=True, help="The group's displayName, id or externalId.")
@click.option("--match", type=click.Choice(MATCHES), default="displayName", show_default=True)
@click.option("--role", required=True, help="Role key or name, e.g. 'Team Member'.")
@click.option("--project", default="*", show_default=True, help="Project key, or * for all.")
@click.option("--priority", type=int, default=0, show_default=True, help="Breaks rank ties.")
def rule_add(slug: str, group: str, match: str, role: str, project: str, priority: int) -> None:
    """Add a mapping rule; prints its id."""
    rule = RuleInput(group=group, role=role, match=match, project=project, priority=priority)
    with org_service(slug) as service:
        rule_id = str(changes.create_rule(service, rule).id)
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
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['id']}  {row['match']}={row['group']!r} → {row['role_name'] or row['role']} "
            f"in {row['project']} (priority {row['priority']})"
        )


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
@json_option()
def rule_edit(
    slug: str,
    rule_id: str,
    group: str | None,
    match: str | None,
    role: str | None,
    project: str | None,
    priority: int | None,
    as_json: bool,
) -> None:
    """Change some fields of a mapping rule."""
    edit = RuleEdit(group=group, role=role, match=match, project=project, priority=priority)
    if edit == RuleEdit():
        raise click.UsageError(
            "nothing to change: give --group, --match, --role, --project or --priority"
        )
    with org_service(slug) as service:
        row = documents.rule(changes.edit_rule(service, rule_id, edit), service.catalogue())
    if as_json:
        echo_json(row)
        return
    click.echo(f"updated rule {rule_id}")


# ------------------------------------------------------------------ seats


@click.group("seats", cls=AppGroup, invoke_without_command=True)
@org_option(required=False)
@json_option()
@with_appcontext
@click.pass_context
def seats_cli(context: click.Context, slug: str | None, as_json: bool) -> None:
    """Paid, free and pending seats against the contracted tier."""
    if context.invoked_subcommand is not None:
        return
    if slug is None:
        raise click.UsageError("Missing option '--org'.")
    with org_service(slug) as service:
        summary = reports.seat_summary(service.session, service.organization).as_json()
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"tier {summary['tier']}  paid {summary['paid']}  free {summary['free']}  "
        f"pending {summary['pending']}  overage {summary['overage']}  policy {summary['policy']}"
    )


def _inherited_slug(context: click.Context, slug: str | None) -> str:
    """`seats --org acme history` and `seats history --org acme` both work."""
    parent = context.parent.params.get("slug") if context.parent is not None else None
    chosen = slug or parent
    if not chosen:
        raise click.UsageError("Missing option '--org'.")
    return str(chosen)


@seats_cli.command("history")
@org_option(required=False)
@click.option("--start", type=DATE, default=None, help="First day (default: 30 days ago).")
@click.option("--end", type=DATE, default=None, help="Last day (default: today, UTC).")
@json_option()
@click.pass_context
def seats_history(
    context: click.Context,
    slug: str | None,
    start: datetime | None,
    end: datetime | None,
    as_json: bool,
) -> None:
    """Paid and free seats at the end of each day, from the seat ledger."""
    slug = _inherited_slug(context, slug)
    with org_service(slug) as service:
        today = datetime.now(UTC).date()
        first, last = payloads.seat_period(_day(start), _day(end), today)
        history = reports.seat_history(service.session, service.organization, first, last)
    if as_json:
        echo_json(history)
        return
    click.echo(
        f"tier {history['tier']}  peak paid {history['peak_paid']}  "
        f"average paid {history['average_paid']}"
    )
    for day in history["series"]:
        click.echo(f"{day['date']}  paid {day['paid']:>6}  free {day['free']:>6}")


@seats_cli.command("pending")
@org_option(required=False)
@json_option()
@click.pass_context
def seats_pending(context: click.Context, slug: str | None, as_json: bool) -> None:
    """Users waiting for a paid seat, in promotion order."""
    slug = _inherited_slug(context, slug)
    with org_service(slug) as service:
        rows = reports.pending_users(service.session, service.organization)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['pending_since']}  {row['userName']}  {row['id']}")


# --------------------------------------------------------------- contract


@contract_cli.command("set")
@org_option()
@click.option("--paid-seats", type=click.IntRange(min=0), default=None, help="Paid-seat tier.")
@click.option("--policy", type=click.Choice(POLICIES), default=None, help="Past the tier.")
@click.option("--billing-terms", type=click.Choice(BILLING_TERMS), default=None)
@click.option("--starts-on", type=DATE, default=None, help="YYYY-MM-DD")
@click.option("--ends-on", type=DATE, default=None, help="YYYY-MM-DD")
@json_option()
def contract_set(
    slug: str,
    paid_seats: int | None,
    policy: str | None,
    billing_terms: str | None,
    starts_on: datetime | None,
    ends_on: datetime | None,
    as_json: bool,
) -> None:
    """Change the contract; options left out keep their current value."""
    contract = ContractInput(
        paid_seats=KEEP if paid_seats is None else paid_seats,
        policy=KEEP if policy is None else policy,
        billing_terms=KEEP if billing_terms is None else billing_terms,
        starts_on=KEEP if starts_on is None else starts_on.date(),
        ends_on=KEEP if ends_on is None else ends_on.date(),
    )
    if contract.is_empty:
        raise click.UsageError(
            "nothing to change: give --paid-seats, --policy, --billing-terms, --starts-on "
            "or --ends-on"
        )
    with org_service(slug) as service:
        document = documents.contract(changes.set_contract(service, contract))
    if as_json:
        echo_json(document)
        return
    _echo_contract(slug, document)


@contract_cli.command("show")
@org_option()
@json_option()
def contract_show(slug: str, as_json: bool) -> None:
    """Show the contract and the mass-grant guard thresholds."""
    with org_service(slug) as service:
        document = documents.contract(service.organization)
    if as_json:
        echo_json(document)
        return
    _echo_contract(slug, document)


def _echo_contract(slug: str, document: dict[str, Any]) -> None:
    period = f"{document['starts_on'] or '…'} – {document['ends_on'] or '…'}"
    click.echo(
        f"{slug}: {document['paid_seats']} paid seats, policy {document['policy']}, "
        f"billed {document['billing_terms']}, {period}"
    )


# ------------------------------------------------------------------ guard


@guard_cli.command("set")
@org_option()
@click.option("--max-new-paid-seats", type=int, default=None)
@click.option("--max-new-paid-share", type=float, default=None, help="0..1")
@click.option("--max-new-project-admins", type=int, default=None)
def guard_set(
    slug: str,
    max_new_paid_seats: int | None,
    max_new_paid_share: float | None,
    max_new_project_admins: int | None,
) -> None:
    """Change the mass-grant guard thresholds; options left out keep their value."""
    guard = GuardInput(max_new_paid_seats, max_new_paid_share, max_new_project_admins)
    if guard == GuardInput():
        raise click.UsageError("nothing to change")
    with org_service(slug) as service:
        document = documents.guard(changes.set_guard_thresholds(service, guard))
    echo_json(document)


# ------------------------------------------------------------------- user


@user_cli.command("access")
@org_option()
@click.option("--user", "reference", required=True, help="userName (any case) or user id.")
@json_option()
def user_access(slug: str, reference: str, as_json: bool) -> None:
    """Roles per project with the rules and groups behind them, seat, and why it is paid."""
    with org_service(slug) as service:
        user = queries.find_user(service.session, service.organization, reference)
        access = reports.user_access(
            service.session, service.organization, service.catalogue(), user
        )
    if as_json:
        echo_json(access)
        return
    state = "active" if access["active"] else "inactive"
    pending = " (pending a paid seat)" if access["pending"] else ""
    click.echo(f"{access['userName']} ({access['id']}), {state}, seat {access['seat']}{pending}")
    for role in access["roles"]:
        click.echo(f"  {role['project']}: {role['role_name']}{' (paid)' if role['paid'] else ''}")
        for source in role["source"]:
            if source.get("default_role"):
                click.echo("    from the organization's default role")
            else:
                click.echo(f"    from group {source['group']!r} via rule {source['rule']}")


# ---------------------------------------------------------------- projects


@project_cli.command("add")
@org_option()
@click.option("--key", required=True, help="The project's key in Blue.")
@click.option("--name", default=None, help="Display name (default: the key).")
def project_add(slug: str, key: str, name: str | None) -> None:
    """Add a project that rules can target."""
    with org_service(slug) as service:
        service.create_project(key, name or key)
    click.echo(f"added project {key}")


@project_cli.command("list")
@org_option()
@json_option()
def project_list(slug: str, as_json: bool) -> None:
    """List projects."""
    with org_service(slug) as service:
        rows = [
            documents.project(p)
            for p in queries.list_projects(service.session, service.organization)
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['key']:<24} {row['name']}")


@project_cli.command("rename")
@org_option()
@click.option("--key", required=True)
@click.option("--name", required=True)
def project_rename(slug: str, key: str, name: str) -> None:
    """Change a project's display name."""
    with org_service(slug) as service:
        service.rename_project(key, name)
    click.echo(f"renamed project {key}")


@project_cli.command("remove")
@org_option()
@click.option("--key", required=True)
def project_remove(slug: str, key: str) -> None:
    """Remove a project that no rule targets."""
    with org_service(slug) as service:
        service.delete_project(key)
    click.echo(f"removed project {key}")


# ------------------------------------------------------------------- roles


@role_cli.command("add")
@org_option()
@click.option("--slug", "role_slug", required=True, help="lowercase-with-hyphens")
@click.option("--name", required=True)
@click.option("--rank", type=int, required=True, help="1..999; built-ins are 100..500.")
@click.option("--description", default="")
@click.option("--permission", "permissions", multiple=True, help="Repeat for each one.")
def role_add(
    slug: str,
    role_slug: str,
    name: str,
    rank: int,
    description: str,
    permissions: Sequence[str],
) -> None:
    """Add a custom role (always paid); prints its key."""
    with org_service(slug) as service:
        key = service.create_custom_role(role_slug, name, rank, description, permissions).key
    click.echo(key)


@role_cli.command("edit")
@org_option()
@click.option("--key", required=True, help="custom:<slug> or <slug>")
@click.option("--name", default=None)
@click.option("--rank", type=int, default=None)
@click.option("--description", default=None)
@click.option("--permission", "permissions", multiple=True, help="Replaces all permissions.")
def role_edit(
    slug: str,
    key: str,
    name: str | None,
    rank: int | None,
    description: str | None,
    permissions: Sequence[str],
) -> None:
    """Change a custom role; a new rank re-resolves everyone its rules reach."""
    edit = changes.CustomRoleEdit(key, name, rank, description, tuple(permissions) or None)
    if edit == changes.CustomRoleEdit(key):
        raise click.UsageError("nothing to change")
    with org_service(slug) as service:
        edit.apply(service)
    click.echo(f"updated role {changes.custom_role_key(key)}")


@role_cli.command("list")
@org_option()
@click.option("--custom", is_flag=True, help="Only custom roles, with their details.")
@json_option()
def role_list(slug: str, custom: bool, as_json: bool) -> None:
    """The role catalogue, highest rank first."""
    with org_service(slug) as service:
        if custom:
            rows = [
                documents.custom_role(r)
                for r in queries.list_custom_roles(service.session, service.organization)
            ]
        else:
            rows = documents.catalogue(service.catalogue())
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        kind = "paid" if row["paid"] else "free"
        click.echo(f"{row['rank']:>4}  {row['key']:<24} {row['name']} ({kind})")


@role_cli.command("remove")
@org_option()
@click.option("--key", required=True, help="custom:<slug> or <slug>")
def role_remove(slug: str, key: str) -> None:
    """Remove a custom role that no rule and no default refers to."""
    key = changes.custom_role_key(key)
    with org_service(slug) as service:
        service.delete_custom_role(key)
    click.echo(f"removed role {key}")


# ------------------------------------------------------------ default role


@default_role_cli.command("set")
@org_option()
@click.option("--role", default=None, help="Role key or name.")
@click.option("--none", "no_role", is_flag=True, help="Users in no mapped group get no role.")
def default_role_set(slug: str, role: str | None, no_role: bool) -> None:
    """Set the role of users whom no rule reaches."""
    if (role is None) == (not no_role):
        raise click.UsageError("give exactly one of --role or --none")
    with org_service(slug) as service:
        key = changes.set_default_role(service, None if no_role else role)
    click.echo(f"default role: {key or 'none'}")


@default_role_cli.command("show")
@org_option()
@json_option()
def default_role_show(slug: str, as_json: bool) -> None:
    """Show the default role."""
    with org_service(slug) as service:
        document = documents.default_role(service.organization, service.catalogue())
    if as_json:
        echo_json(document)
        return
    click.echo(f"default role: {document['role_name'] or 'none'}")


# ------------------------------------------------------------ held changes


@held_cli.command("list")
@org_option()
@click.option(
    "--status",
    type=click.Choice([*queries.HELD_STATUSES, "all"]),
    default="held",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option()
def held_list(slug: str, status: str, limit: int, as_json: bool) -> None:
    """Held changes, newest first."""
    with org_service(slug) as service:
        rows = [
            documents.held_change(h)
            for h in queries.list_held_changes(
                service.session,
                service.organization,
                None if status == "all" else status,
                limit,
            )
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['id']}  {row['status']:<9} {row['created_at']}  {row['user_count']} users, "
            f"{row['new_paid_seats']} new paid seats: {'; '.join(row['reasons'])}"
        )


@held_cli.command("confirm")
@org_option()
@click.option("--id", "held_id", required=True)
def held_confirm(slug: str, held_id: str) -> None:
    """Apply a held change's grants."""
    with org_service(slug) as service:
        users = len(service.confirm_held(held_id).user_ids)
    click.echo(f"confirmed held change {held_id} ({users} users)")


@held_cli.command("discard")
@org_option()
@click.option("--id", "held_id", required=True)
def held_discard(slug: str, held_id: str) -> None:
    """Drop a held change's grants."""
    with org_service(slug) as service:
        users = len(service.discard_held(held_id).user_ids)
    click.echo(f"discarded held change {held_id} ({users} users)")


# ----------------------------------------------------------------- dry run


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
        shown = [c.user_id for c in outcome.result.changes[:limit]]
        names = queries.user_names(service.session, service.organization, shown)
        document = documents.dry_run(outcome, names, limit)
    if as_json:
        echo_json(document)
        return
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


def init_app(app: Flask) -> None:
    """Register the licensing command groups on the application."""
    for command in (
        rule_cli,
        seats_cli,
        contract_cli,
        guard_cli,
        user_cli,
        project_cli,
        role_cli,
        default_role_cli,
        held_cli,
        dry_run,
    ):
        app.cli.add_command(command)
