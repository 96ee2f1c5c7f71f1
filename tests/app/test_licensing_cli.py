"""`blue-provisioning` licensing commands, through the CLI runner."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    AuditEvent,
    CustomRole,
    HeldChange,
    MappingRule,
    Organization,
    Project,
    RoleAssignment,
    SeatEvent,
    User,
)
from app.provisioning import Actor, GroupSpec, ProvisioningService, UserSpec


@pytest.fixture
def service(session: Session, organization: tuple[Organization, str]) -> ProvisioningService:
    return ProvisioningService(session, organization[0], Actor(kind="system", label="test"))


def people(
    service: ProvisioningService, group: str, count: int, prefix: str = "user"
) -> list[User]:
    """`count` users, all members of a new group, committed for the commands to see."""
    users = [
        service.create_user(UserSpec(user_name=f"{prefix}{n}@acme.example")) for n in range(count)
    ]
    service.create_group(GroupSpec(display_name=group, member_ids=[str(u.id) for u in users]))
    service.session.commit()
    return users


def run(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=list(args))


def ok(runner: FlaskCliRunner, *args: str) -> str:
    result = run(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


def ok_json(runner: FlaskCliRunner, *args: str) -> Any:
    return json.loads(ok(runner, *args, "--json"))


def refused(runner: FlaskCliRunner, *args: str) -> str:
    result = run(runner, *args)
    assert result.exit_code != 0, result.output
    return result.output


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def roles_of(session: Session, user: User) -> dict[str, str]:
    rows = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id))
    return {r.project_key: r.role_key for r in rows}


def snapshot(session: Session) -> tuple[int, ...]:
    models = (RoleAssignment, AuditEvent, MappingRule, SeatEvent, HeldChange)
    return tuple(count(session, m) for m in models)


def add_rule(runner: FlaskCliRunner, group: str, role: str, *extra: str) -> str:
    output = ok(runner, "rule", "add", "--org", "acme", "--group", group, "--role", role, *extra)
    rule_id = output.strip()
    assert len(rule_id) == 36 and "\n" not in rule_id
    return rule_id


# ------------------------------------------------------------------ rules


@pytest.mark.usefixtures("organization")
def test_rule_add_prints_the_id_and_list_shows_it(runner: FlaskCliRunner, session: Session) -> None:
    rule_id = add_rule(
        runner,
        "Engineering",
        "Team Member",
        "--match",
        "displayName",
        "--project",
        "*",
        "--priority",
        "3",
    )
    [rule] = ok_json(runner, "rule", "list", "--org", "acme")
    assert rule["id"] == rule_id
    assert (rule["match"], rule["group"], rule["role"], rule["project"], rule["priority"]) == (
        "displayName",
        "Engineering",
        "team_member",
        "*",
        3,
    )
    assert "Engineering" in ok(runner, "rule", "list", "--org", "acme")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "rule.created")).one()
    assert event.actor_type == "cli" and event.actor


@pytest.mark.usefixtures("organization")
def test_rule_edit_and_remove(runner: FlaskCliRunner) -> None:
    ok(runner, "project", "add", "--org", "acme", "--key", "web", "--name", "Web")
    rule_id = add_rule(runner, "Engineering", "client")
    ok(runner, "rule", "edit", "--org", "acme", "--id", rule_id, "--role", "Team Member")
    edited = ok_json(runner, "rule", "edit", "--org", "acme", "--id", rule_id, "--project", "web")
    assert (edited["role"], edited["project"], edited["group"]) == (
        "team_member",
        "web",
        "Engineering",
    )
    ok(runner, "rule", "remove", "--org", "acme", "--id", rule_id)
    assert ok_json(runner, "rule", "list", "--org", "acme") == []


@pytest.mark.usefixtures("organization")
def test_bad_rule_input_exits_non_zero_and_changes_nothing(
    runner: FlaskCliRunner, session: Session
) -> None:
    base = ("rule", "add", "--org", "acme", "--group", "Engineering")
    events_before = count(session, AuditEvent)
    assert "unknown role 'Wizard'" in refused(runner, *base, "--role", "Wizard")
    assert "email" in refused(runner, *base, "--role", "client", "--match", "email")
    assert "unknown project" in refused(runner, *base, "--role", "client", "--project", "nope")
    assert "no organization" in refused(
        runner, "rule", "add", "--org", "nope", "--group", "G", "--role", "client"
    )
    assert count(session, MappingRule) == 0
    assert count(session, AuditEvent) == events_before
    rule_id = add_rule(runner, "Engineering", "client")
    refused(runner, "rule", "edit", "--org", "acme", "--id", rule_id)
    refused(runner, "rule", "edit", "--org", "acme", "--id", rule_id, "--role", "Wizard")
    assert "not found" in refused(runner, "rule", "remove", "--org", "acme", "--id", "nope")
    [rule] = ok_json(runner, "rule", "list", "--org", "acme")
    assert rule["role"] == "client"


def test_another_organizations_rule_is_not_found(
    runner: FlaskCliRunner, organization: tuple[Organization, str]
) -> None:
    ok(runner, "org", "create", "Globex", "--slug", "globex")
    theirs = ok(
        runner, "rule", "add", "--org", "globex", "--group", "G", "--role", "client"
    ).strip()
    assert "not found" in refused(runner, "rule", "remove", "--org", "acme", "--id", theirs)
    refused(runner, "rule", "edit", "--org", "acme", "--id", theirs, "--role", "view_only")
    assert len(ok_json(runner, "rule", "list", "--org", "globex")) == 1


# ------------------------------------------------------------------ seats


def test_seats_json_has_exactly_the_documented_keys(
    runner: FlaskCliRunner, service: ProvisioningService
) -> None:
    people(service, "Engineering", 2, "eng")
    people(service, "Visitors", 1, "visitor")
    add_rule(runner, "Engineering", "Team Member")
    add_rule(runner, "Visitors", "Client")
    assert ok_json(runner, "seats", "--org", "acme") == {
        "tier": 100,
        "paid": 2,
        "free": 1,
        "pending": 0,
        "none": 0,
        "active": 3,
        "policy": "allow",
        "overage": 0,
    }
    assert "paid 2" in ok(runner, "seats", "--org", "acme")
    assert "--org" in refused(runner, "seats")


def test_seats_history_and_pending(runner: FlaskCliRunner, service: ProvisioningService) -> None:
    ok(runner, "contract", "set", "--org", "acme", "--paid-seats", "1", "--policy", "hold")
    people(service, "Engineering", 3, "eng")
    add_rule(runner, "Engineering", "Team Member")
    history = ok_json(
        runner, "seats", "history", "--org", "acme", "--start", "2020-01-01", "--end", "2020-01-02"
    )
    assert [d["date"] for d in history["series"]] == ["2020-01-01", "2020-01-02"]
    recent = ok_json(runner, "seats", "--org", "acme", "history")
    assert recent["series"][-1]["paid"] == 1 and len(recent["series"]) == 30
    pending = ok_json(runner, "seats", "pending", "--org", "acme")
    # One user took the paid seat; the other two wait, longest first.
    assert len(pending) == 2 and all(p["pending_since"] for p in pending)
    assert "before it starts" in refused(
        runner, "seats", "history", "--org", "acme", "--start", "2020-01-05", "--end", "2020-01-01"
    )
    refused(runner, "seats", "history", "--org", "acme", "--start", "soon")


# --------------------------------------------------------------- contract


@pytest.mark.usefixtures("organization")
def test_contract_set_and_show(runner: FlaskCliRunner) -> None:
    ok(
        runner,
        "contract",
        "set",
        "--org",
        "acme",
        "--paid-seats",
        "500",
        "--policy",
        "hold",
        "--billing-terms",
        "quarterly",
        "--starts-on",
        "2025-01-01",
        "--ends-on",
        "2025-12-31",
    )
    ok(runner, "contract", "set", "--org", "acme", "--paid-seats", "600")
    shown = ok_json(runner, "contract", "show", "--org", "acme")
    assert shown == {
        "paid_seats": 600,
        "policy": "hold",
        "billing_terms": "quarterly",
        "starts_on": "2025-01-01",
        "ends_on": "2025-12-31",
        "guard": {
            "max_new_paid_seats": 50,
            "max_new_paid_share": 0.2,
            "max_new_project_admins": 10,
            "window_minutes": 10,
            "max_new_paid_seats_in_window": 100,
        },
    }
    assert "600 paid seats" in ok(runner, "contract", "show", "--org", "acme")


@pytest.mark.usefixtures("organization")
def test_bad_contract_input_changes_nothing(runner: FlaskCliRunner) -> None:
    before = ok_json(runner, "contract", "show", "--org", "acme")
    assert "before it starts" in refused(
        runner,
        "contract",
        "set",
        "--org",
        "acme",
        "--paid-seats",
        "5",
        "--starts-on",
        "2025-02-01",
        "--ends-on",
        "2025-01-01",
    )
    refused(runner, "contract", "set", "--org", "acme", "--paid-seats", "-1")
    refused(runner, "contract", "set", "--org", "acme", "--policy", "maybe")
    refused(runner, "contract", "set", "--org", "acme", "--starts-on", "01/02/2025")
    assert "nothing to change" in refused(runner, "contract", "set", "--org", "acme")
    assert ok_json(runner, "contract", "show", "--org", "acme") == before


# ------------------------------------------------------------------- user


def test_user_access_names_rule_and_group(
    runner: FlaskCliRunner, service: ProvisioningService
) -> None:
    [alice] = people(service, "Engineering", 1, "alice")
    rule_id = add_rule(runner, "Engineering", "Team Member")
    for reference in ("Alice0@ACME.example", str(alice.id)):
        access = ok_json(runner, "user", "access", "--org", "acme", "--user", reference)
        assert access["userName"] == "alice0@acme.example"
        assert access["seat"] == "paid"
        [role] = access["roles"]
        assert (role["project"], role["role"]) == ("*", "team_member")
        [why] = access["why_paid"]
        assert why["role"] == "Team Member"
        [because] = why["because"]
        assert because["rule_id"] == rule_id and because["group"] == "Engineering"
    text = ok(runner, "user", "access", "--org", "acme", "--user", "alice0@acme.example")
    assert "'Engineering'" in text and "Team Member" in text
    assert "not found" in refused(
        runner, "user", "access", "--org", "acme", "--user", "nobody@acme.example"
    )


# ------------------------------------------------------- projects and roles


@pytest.mark.usefixtures("organization")
def test_projects(runner: FlaskCliRunner, session: Session) -> None:
    ok(runner, "project", "add", "--org", "acme", "--key", "web", "--name", "Web")
    ok(runner, "project", "add", "--org", "acme", "--key", "app")
    assert "already exists" in refused(runner, "project", "add", "--org", "acme", "--key", "web")
    refused(runner, "project", "add", "--org", "acme", "--key", "not a key")
    ok(runner, "project", "rename", "--org", "acme", "--key", "web", "--name", "Website")
    listed = ok_json(runner, "project", "list", "--org", "acme")
    assert [(p["key"], p["name"]) for p in listed] == [("app", "app"), ("web", "Website")]
    add_rule(runner, "Web team", "client", "--project", "web")
    assert "used by mapping rules" in refused(
        runner, "project", "remove", "--org", "acme", "--key", "web"
    )
    ok(runner, "project", "remove", "--org", "acme", "--key", "app")
    assert [p.key for p in session.scalars(select(Project))] == ["web"]


@pytest.mark.usefixtures("organization")
def test_custom_roles(runner: FlaskCliRunner, session: Session) -> None:
    key = ok(
        runner,
        "role",
        "add",
        "--org",
        "acme",
        "--slug",
        "lead",
        "--name",
        "Lead",
        "--rank",
        "450",
        "--description",
        "Leads a team",
        "--permission",
        "approve",
        "--permission",
        "merge",
    ).strip()
    assert key == "custom:lead"
    catalogue = ok_json(runner, "role", "list", "--org", "acme")
    assert [r["key"] for r in catalogue][:3] == ["project_admin", "custom:lead", "team_member"]
    assert catalogue[1] == {
        "key": "custom:lead",
        "name": "Lead",
        "rank": 450,
        "paid": True,
        "custom": True,
    }
    [custom] = ok_json(runner, "role", "list", "--org", "acme", "--custom")
    assert custom["permissions"] == ["approve", "merge"]
    ok(runner, "role", "edit", "--org", "acme", "--key", "lead", "--rank", "350")
    assert session.scalars(select(CustomRole)).one().rank == 350
    assert "rank 400" in refused(
        runner, "role", "add", "--org", "acme", "--slug", "x", "--name", "X", "--rank", "400"
    )
    rule_id = add_rule(runner, "Leads", "Lead")
    assert "used by mapping rules" in refused(
        runner, "role", "remove", "--org", "acme", "--key", "lead"
    )
    ok(runner, "rule", "remove", "--org", "acme", "--id", rule_id)
    ok(runner, "role", "remove", "--org", "acme", "--key", "lead")
    assert count(session, CustomRole) == 0


def test_default_role(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    [loner] = people(service, "Unmapped", 1)
    ok(runner, "default-role", "set", "--org", "acme", "--role", "View Only")
    assert roles_of(session, loner) == {"*": "view_only"}
    assert ok_json(runner, "default-role", "show", "--org", "acme")["role"] == "view_only"
    ok(runner, "default-role", "set", "--org", "acme", "--none")
    assert roles_of(session, loner) == {}
    assert ok_json(runner, "default-role", "show", "--org", "acme")["role"] is None
    refused(runner, "default-role", "set", "--org", "acme")
    refused(runner, "default-role", "set", "--org", "acme", "--role", "client", "--none")
    assert "unknown role" in refused(
        runner, "default-role", "set", "--org", "acme", "--role", "Wizard"
    )


# ------------------------------------------------------------ held changes


def hold_a_mass_grant(runner: FlaskCliRunner, service: ProvisioningService) -> list[User]:
    users = people(service, "Everyone", 3)
    ok(runner, "guard", "set", "--org", "acme", "--max-new-paid-seats", "1")
    held = run(
        runner, "rule", "add", "--org", "acme", "--group", "Everyone", "--role", "Team Member"
    )
    assert held.exit_code == 3 and held.output.startswith("held "), held.output
    return users


def test_held_change_confirm(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    users = hold_a_mass_grant(runner, service)
    [held] = ok_json(runner, "held", "list", "--org", "acme")
    assert held["status"] == "held" and held["user_count"] == 3
    assert all(roles_of(session, u) == {} for u in users)
    assert "3 users" in ok(runner, "held", "confirm", "--org", "acme", "--id", held["id"])
    assert all(roles_of(session, u) == {"*": "team_member"} for u in users)
    assert "already confirmed" in refused(
        runner, "held", "discard", "--org", "acme", "--id", held["id"]
    )
    assert ok_json(runner, "held", "list", "--org", "acme") == []
    [confirmed] = ok_json(runner, "held", "list", "--org", "acme", "--status", "all")
    assert confirmed["decided_by"].startswith("cli:")


def test_held_change_discard(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    users = hold_a_mass_grant(runner, service)
    [held] = ok_json(runner, "held", "list", "--org", "acme")
    ok(runner, "held", "discard", "--org", "acme", "--id", held["id"])
    assert all(roles_of(session, u) == {} for u in users)
    [discarded] = ok_json(runner, "held", "list", "--org", "acme", "--status", "discarded")
    assert discarded["id"] == held["id"]
    assert "not found" in refused(runner, "held", "confirm", "--org", "acme", "--id", "nope")


# ----------------------------------------------------------------- dry run


def test_dry_run_reports_and_writes_nothing(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    people(service, "Everyone", 2)
    before = snapshot(session)
    result = ok_json(
        runner, "dry-run", "--org", "acme", "--add-rule", "displayName:Everyone:Team Member:*"
    )
    assert snapshot(session) == before
    assert result["changed_users"] == 2
    assert result["totals"]["after"] == {"paid": 2, "free": 0, "pending": 0}
    assert {u["userName"] for u in result["users"]} == {
        "user0@acme.example",
        "user1@acme.example",
    }
    text = ok(
        runner,
        "dry-run",
        "--org",
        "acme",
        "--add-rule",
        "displayName:Everyone:client:*",
        "--default-role",
        "View Only",
    )
    assert "2 users would change" in text
    assert snapshot(session) == before


def test_dry_run_rule_with_colons_and_custom_role(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    people(service, "Team: Web", 1)
    ok(runner, "role", "add", "--org", "acme", "--slug", "lead", "--name", "Lead", "--rank", "450")
    before = snapshot(session)
    result = ok_json(
        runner, "dry-run", "--org", "acme", "--add-rule", "displayName:Team: Web:custom:lead:*"
    )
    [user] = result["users"]
    assert user["roles"][0]["after"] == "custom:lead"
    assert snapshot(session) == before


@pytest.mark.usefixtures("organization")
def test_bad_dry_run_input_is_refused(runner: FlaskCliRunner, session: Session) -> None:
    before = snapshot(session)
    assert "MATCH:GROUP:ROLE:PROJECT" in refused(
        runner, "dry-run", "--org", "acme", "--add-rule", "Everyone:Team Member"
    )
    assert "unknown role" in refused(
        runner, "dry-run", "--org", "acme", "--add-rule", "displayName:Everyone:Wizard:*"
    )
    assert "not found" in refused(runner, "dry-run", "--org", "acme", "--remove-rule", "nope")
    refused(runner, "dry-run", "--org", "acme", "--default-role", "client", "--no-default-role")
    assert snapshot(session) == before


# ------------------------------------- staged held changes (issue #13, item 1)


def held_line(runner: FlaskCliRunner, *args: str) -> str:
    """The command was held: exit status 3 and one `held <id>: …` line; returns the id."""
    result = run(runner, *args)
    assert result.exit_code == 3, result.output
    [line] = result.output.splitlines()
    assert line.startswith("held ") and "not in force until confirmed" in line
    return line.split()[1].rstrip(":")


def test_rule_add_edit_and_default_role_say_when_held(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    users = people(service, "Everyone", 3)
    loners = people(service, "Loners", 3, "loner")
    ok(runner, "guard", "set", "--org", "acme", "--max-new-paid-seats", "1")
    created = held_line(
        runner, "rule", "add", "--org", "acme", "--group", "Everyone", "--role", "Team Member"
    )
    assert ok_json(runner, "rule", "list", "--org", "acme") == []
    rule_id = add_rule(runner, "Everyone", "View Only")
    edited = held_line(
        runner, "rule", "edit", "--org", "acme", "--id", rule_id, "--role", "Team Member"
    )
    as_json = run(
        runner, "rule", "edit", "--org", "acme", "--id", rule_id, "--role", "Team Member", "--json"
    )
    assert as_json.exit_code == 3 and json.loads(as_json.output)["held"]["kind"] == "rule_update"
    default = held_line(runner, "default-role", "set", "--org", "acme", "--role", "Team Member")
    assert all(roles_of(session, u) == {} for u in loners)
    listed = {h["id"]: h["kind"] for h in ok_json(runner, "held", "list", "--org", "acme")}
    assert {created, edited, default} <= set(listed)
    assert listed[default] == "default_role"
    assert ok_json(runner, "default-role", "show", "--org", "acme")["role"] is None
    assert all(roles_of(session, u) == {} for u in loners)
    assert all(roles_of(session, u) == {"*": "view_only"} for u in users)
    ok(runner, "held", "discard", "--org", "acme", "--id", edited)
    assert all(roles_of(session, u) == {"*": "view_only"} for u in users)
    ok(runner, "held", "confirm", "--org", "acme", "--id", created)
    assert all(roles_of(session, u) == {"*": "team_member"} for u in users)


def test_guard_set_window(runner: FlaskCliRunner, service: ProvisioningService) -> None:
    shown = json.loads(
        ok(
            runner,
            "guard",
            "set",
            "--org",
            "acme",
            "--window-minutes",
            "5",
            "--max-new-paid-seats-in-window",
            "20",
        )
    )
    assert (shown["window_minutes"], shown["max_new_paid_seats_in_window"]) == (5, 20)
    assert "at most 1440" in refused(
        runner, "guard", "set", "--org", "acme", "--window-minutes", "2000"
    )


def test_dry_run_shows_held_grants_as_held(
    runner: FlaskCliRunner, service: ProvisioningService
) -> None:
    people(service, "Everyone", 3)
    ok(runner, "guard", "set", "--org", "acme", "--max-new-paid-seats", "1")
    output = ok(
        runner, "dry-run", "--org", "acme", "--add-rule", "displayName:Everyone:Team Member:*"
    )
    assert "0 users would change" in output
    assert "paid          0 → 0" in output
    assert output.count("held: ") == 3 and "*: - → team_member; a paid seat" in output
