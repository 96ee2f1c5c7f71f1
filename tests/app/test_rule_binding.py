"""Mapping rules bind to groups, not names: an IdP rename keeps everyone's access, and a group
deleted and re-created under the same name is a new group (issue #13, item 3)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from alembic import command
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import migrate, reporting
from app.db import make_engine, make_sessions
from app.models import (
    AuditEvent,
    Group,
    HeldChange,
    MappingRule,
    Organization,
    RoleAssignment,
    SeatEvent,
    User,
)
from app.provisioning import (
    Actor,
    GroupSpec,
    LoginClaims,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)
from scim.discovery import PATCH_OP_SCHEMA
from tests.support import ScimClient, admin_token

ACTOR = Actor(kind="system", label="test")
ENTRA_GROUP_ID = "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"


def in_force(service: ProvisioningService, spec: RuleSpec) -> MappingRule:
    """A rule the guard lets through: written and in force at once."""
    rule = service.create_rule(spec)
    assert isinstance(rule, MappingRule)
    return rule


@pytest.fixture
def service(session: Session, organization: tuple[Organization, str]) -> ProvisioningService:
    return ProvisioningService(session, organization[0], ACTOR)


def roles_of(session: Session, user_id: str | uuid.UUID) -> dict[str, str]:
    rows = session.scalars(
        select(RoleAssignment).where(RoleAssignment.user_id == uuid.UUID(str(user_id)))
    )
    return {r.project_key: r.role_key for r in rows}


def seat_of(session: Session, user_id: str) -> str:
    user = session.get(User, uuid.UUID(user_id), populate_existing=True)
    assert user is not None
    return user.seat


def count(session: Session, model: type[Any], *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def okta_rename(group_id: str, name: str) -> dict[str, Any]:
    """Okta's group push renames with a replace of the whole resource, no path."""
    return patch({"op": "replace", "value": {"id": group_id, "displayName": name}})


def entra_rename(group_id: str, name: str) -> dict[str, Any]:
    """Entra ID renames with a capitalised op and a path."""
    return patch({"op": "Replace", "path": "displayName", "value": name})


@dataclass
class Idp:
    """How one IdP creates and renames a group over SCIM."""

    name: str
    rename: Callable[[str, str], dict[str, Any]]
    group_attributes: Callable[[int], dict[str, Any]]


IDPS = [
    Idp("okta", okta_rename, lambda n: {}),
    # Entra ID sends the group's object id as externalId; a group created again in Entra ID is a
    # new object with a new id.
    Idp("entra", entra_rename, lambda n: {"externalId": str(uuid.UUID(int=n + 1))}),
]


@dataclass
class Team:
    """Three users in a SCIM-pushed "Engineering" group that a displayName rule maps to a
    paid role, under a guard that holds more than one new paid seat."""

    scim: ScimClient
    service: ProvisioningService
    session: Session
    idp: Idp
    group_id: str
    user_ids: list[str]
    rule: MappingRule

    def rename(self, name: str) -> None:
        response = self.scim.patch(f"/Groups/{self.group_id}", self.idp.rename(self.group_id, name))
        assert response.status_code in (200, 204), response.json

    def assert_everyone_keeps_access(self) -> None:
        for user_id in self.user_ids:
            assert roles_of(self.session, user_id) == {"*": "team_member"}
            assert seat_of(self.session, user_id) == "paid"


def make_team(scim: ScimClient, service: ProvisioningService, session: Session, idp: Idp) -> Team:
    users = [scim.create_user(f"dev{n}@acme.example")["id"] for n in range(3)]
    group = scim.create_group("Engineering", users, **idp.group_attributes(0))
    rule = in_force(service, RuleSpec("displayName", "Engineering", "team_member"))
    service.set_guard_thresholds(
        max_new_paid_seats=1, max_new_paid_share=1.0, max_new_project_admins=10
    )
    session.commit()
    team = Team(scim, service, session, idp, group["id"], users, rule)
    team.assert_everyone_keeps_access()
    return team


@pytest.fixture(params=IDPS, ids=lambda idp: idp.name)
def team(
    request: pytest.FixtureRequest,
    scim: ScimClient,
    service: ProvisioningService,
    session: Session,
) -> Team:
    return make_team(scim, service, session, request.param)


# ------------------------------------------------------------------ renames


def test_an_idp_rename_keeps_roles_and_seats_and_holds_nothing(team: Team) -> None:
    session = team.session
    seat_events = count(session, SeatEvent)
    role_events = count(session, AuditEvent, AuditEvent.action.like("role.%"))
    team.rename("Engineering (EMEA)")
    team.assert_everyone_keeps_access()
    assert count(session, HeldChange) == 0
    assert count(session, SeatEvent) == seat_events
    assert count(session, AuditEvent, AuditEvent.action.like("role.%")) == role_events
    [renamed] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "group.updated")
    ).all()
    assert (renamed.before or {})["display_name"] == "Engineering"
    assert (renamed.after or {})["display_name"] == "Engineering (EMEA)"

    # Renamed back: still nothing to grant, so nothing for the guard to hold.
    team.rename("Engineering")
    team.assert_everyone_keeps_access()
    assert count(session, HeldChange) == 0
    assert count(session, SeatEvent) == seat_events


def test_the_rule_document_shows_the_group_it_follows(team: Team, client: FlaskClient) -> None:
    team.rename("Platform")
    token = admin_token(team.session, team.service.organization)
    response = client.get("/api/v1/rules", headers={"Authorization": f"Bearer {token}"})
    [rule] = (response.json or {})["rules"]
    assert rule["group"] == "Engineering"
    bound = rule["bound_group"]
    assert (bound["id"], bound["display_name"], bound["deleted"]) == (
        team.group_id,
        "Platform",
        False,
    )
    assert bound["external_id"] == team.idp.group_attributes(0).get("externalId")


def test_the_drift_report_notes_a_renamed_group_behind_a_rule(team: Team) -> None:
    team.rename("Platform")
    renamed = reporting.renamed_rule_groups(team.session, team.service.organization)
    assert [(r["rule_id"], r["group_id"], r["current_group"]) for r in renamed] == [
        (str(team.rule.id), team.group_id, "Platform")
    ]
    assert "follows it" in renamed[0]["explanation"]
    assert reporting.missing_rule_groups(team.session, team.service.organization) == []
    assert list(team.service.drift()) == []


def test_editing_the_rule_to_the_new_name_keeps_the_same_group(team: Team) -> None:
    team.rename("Platform")
    team.service.update_rule(team.rule.id, RuleSpec("displayName", "Platform", "team_member"))
    assert str(team.rule.bound_group_id) == team.group_id
    team.assert_everyone_keeps_access()
    assert reporting.renamed_rule_groups(team.session, team.service.organization) == []


# ------------------------------------------------- deleted and re-created


def test_a_group_deleted_and_recreated_under_the_same_name_is_not_granted(team: Team) -> None:
    session, scim = team.session, team.scim
    # No guard in the way: only the binding stands between the new group and a re-grant.
    team.service.set_guard_thresholds(
        max_new_paid_seats=10, max_new_paid_share=1.0, max_new_project_admins=10
    )
    session.commit()
    assert scim.delete(f"/Groups/{team.group_id}").status_code == 204
    for user_id in team.user_ids:
        assert roles_of(session, user_id) == {} and seat_of(session, user_id) == "none"
    new = scim.create_group("Engineering", team.user_ids, **team.idp.group_attributes(1))

    for user_id in team.user_ids:
        assert roles_of(session, user_id) == {} and seat_of(session, user_id) == "none"
    assert count(session, HeldChange) == 0
    session.refresh(team.rule)
    assert str(team.rule.bound_group_id) == team.group_id  # still the deleted group
    [missing] = reporting.missing_rule_groups(session, team.service.organization)
    assert (missing["rule_id"], missing["group_id"], missing["candidate_group_id"]) == (
        str(team.rule.id),
        team.group_id,
        new["id"],
    )
    assert "deleted" in missing["explanation"] and "same name" in missing["explanation"]
    assert "--rebind" in missing["explanation"]


def test_rebinding_a_rule_to_the_recreated_group_grants_through_the_guard(team: Team) -> None:
    session = team.session
    assert team.scim.delete(f"/Groups/{team.group_id}").status_code == 204
    new = team.scim.create_group("Engineering", team.user_ids, **team.idp.group_attributes(1))
    team.service.rebind_rule(team.rule.id)
    assert str(team.rule.bound_group_id) == new["id"]
    # Three new paid seats at once: the guard holds them, as any rule that grants them would.
    held = session.scalars(select(HeldChange)).one()
    assert held.new_paid_seats == 3
    team.service.confirm_held(held.id)
    team.assert_everyone_keeps_access()
    assert reporting.missing_rule_groups(session, team.service.organization) == []


def test_entra_recreating_the_same_object_brings_the_rule_back(
    scim: ScimClient, service: ProvisioningService, session: Session
) -> None:
    # The same Entra ID object (same externalId) out of the app's scope and back, renamed in
    # the meantime: the IdP says it is the same group, so the rule follows it.
    team = make_team(scim, service, session, IDPS[1])
    service.set_guard_thresholds(
        max_new_paid_seats=10, max_new_paid_share=1.0, max_new_project_admins=10
    )
    session.commit()
    assert scim.delete(f"/Groups/{team.group_id}").status_code == 204
    again = scim.create_group(
        "Engineering (all)", team.user_ids, externalId=IDPS[1].group_attributes(0)["externalId"]
    )
    team.assert_everyone_keeps_access()
    session.refresh(team.rule)
    assert str(team.rule.bound_group_id) == again["id"]
    bound = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "rule.bound")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).one()
    assert (bound.before or {})["group_id"] == team.group_id
    assert (bound.after or {})["group_id"] == again["id"]


# --------------------------------------------- rules written before groups


def test_a_display_name_rule_written_first_binds_when_the_group_is_created(
    scim: ScimClient, service: ProvisioningService, session: Session
) -> None:
    rule = in_force(service, RuleSpec("displayName", "Design", "team_member"))
    session.commit()
    user = scim.create_user("ux@acme.example")["id"]
    group = scim.create_group("design", [user])
    assert roles_of(session, user) == {"*": "team_member"}
    renamed = scim.patch(f"/Groups/{group['id']}", okta_rename(group["id"], "Product Design"))
    assert renamed.status_code == 204
    assert roles_of(session, user) == {"*": "team_member"} and seat_of(session, user) == "paid"
    session.refresh(rule)
    assert str(rule.bound_group_id) == group["id"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "rule.bound")).one()
    assert (event.after or {})["reason"] == "group_created"


def test_an_external_id_rule_written_first_binds_when_the_group_is_created(
    scim: ScimClient, service: ProvisioningService, session: Session
) -> None:
    rule = in_force(service, RuleSpec("externalId", ENTRA_GROUP_ID, "client"))
    session.commit()
    user = scim.create_user("c@acme.example")["id"]
    group = scim.create_group("Contractors", [user], externalId=ENTRA_GROUP_ID)
    assert roles_of(session, user) == {"*": "client"}
    # The IdP moves the group to another externalId: the rule stays with the group.
    body = patch({"op": "Replace", "path": "externalId", "value": "moved"})
    assert scim.patch(f"/Groups/{group['id']}", body).status_code == 204
    assert roles_of(session, user) == {"*": "client"}
    session.refresh(rule)
    assert (str(rule.bound_group_id), rule.bound_external_id) == (group["id"], "moved")


def test_sso_just_in_time_group_creation_binds_a_waiting_rule(
    service: ProvisioningService, session: Session
) -> None:
    rule = in_force(service, RuleSpec("displayName", "Sales", "team_member"))
    connection = service.create_connection("IdP", "oidc", {}, {})
    claims = LoginClaims(subject="s-1", email="rep@acme.example", groups=["Sales"])
    user = service.login(connection, claims)
    assert roles_of(session, user.id) == {"*": "team_member"}
    sales = session.scalars(select(Group).where(Group.display_name == "Sales")).one()
    service.update_group(sales.id, GroupSpec("Sales (NA)"))
    assert roles_of(session, user.id) == {"*": "team_member"} and user.seat == "paid"
    assert rule.bound_group_id == sales.id


def test_a_rename_onto_an_unbound_rule_binds_it_and_grants(
    service: ProvisioningService, session: Session
) -> None:
    team = service.create_group(GroupSpec("Team"))
    rule = in_force(service, RuleSpec("displayName", "Engineering", "team_member"))
    user = service.create_user(UserSpec("r@acme.example"))
    service.replace_group(team.id, GroupSpec("Team", member_ids=[str(user.id)]))
    assert roles_of(session, user.id) == {}
    service.update_group(team.id, GroupSpec("Engineering"))
    assert roles_of(session, user.id) == {"*": "team_member"}
    service.update_group(team.id, GroupSpec("Engineering and Research"))
    assert roles_of(session, user.id) == {"*": "team_member"}
    assert rule.bound_group_id == team.id


def test_a_group_taking_the_name_of_a_rule_bound_elsewhere_gets_nothing(
    service: ProvisioningService, session: Session
) -> None:
    engineering = service.create_group(GroupSpec("Engineering"))
    rule = in_force(service, RuleSpec("displayName", "Engineering", "team_member"))
    service.update_group(engineering.id, GroupSpec("Platform"))
    user = service.create_user(UserSpec("o@acme.example"))
    other = service.create_group(GroupSpec("Engineering", member_ids=[str(user.id)]))
    assert roles_of(session, user.id) == {}
    assert rule.bound_group_id == engineering.id and other.id != engineering.id


# ----------------------------------------------------------- id rules


def test_id_rules_are_never_bound_and_work_as_before(
    service: ProvisioningService, session: Session
) -> None:
    user = service.create_user(UserSpec("i@acme.example"))
    group = service.create_group(GroupSpec("Ops", member_ids=[str(user.id)]))
    rule = in_force(service, RuleSpec("id", str(group.id), "client"))
    assert rule.bound_group_id is None and roles_of(session, user.id) == {"*": "client"}
    service.update_group(group.id, GroupSpec("Operations"))
    assert roles_of(session, user.id) == {"*": "client"}
    assert count(session, AuditEvent, AuditEvent.action == "rule.bound") == 0


# ------------------------------------------------------- CLI and admin API


def cli(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_rule_list_report_drift_and_rule_edit_rebind(
    runner: FlaskCliRunner, scim: ScimClient, service: ProvisioningService, session: Session
) -> None:
    team = make_team(scim, service, session, IDPS[0])
    service.set_guard_thresholds(
        max_new_paid_seats=10, max_new_paid_share=1.0, max_new_project_admins=10
    )
    session.commit()
    team.rename("Platform")
    [rule] = json.loads(cli(runner, "rule", "list", "--org", "acme", "--json"))
    assert rule["bound_group"]["id"] == team.group_id
    assert rule["bound_group"]["display_name"] == "Platform"
    assert f"bound to group {team.group_id} 'Platform'" in cli(
        runner, "rule", "list", "--org", "acme"
    )
    drift = json.loads(cli(runner, "report", "drift", "--org", "acme"))
    assert [r["current_group"] for r in drift["renamed_rule_groups"]] == ["Platform"]

    assert scim.delete(f"/Groups/{team.group_id}").status_code == 204
    new = scim.create_group("Engineering", team.user_ids)
    text_list = cli(runner, "rule", "list", "--org", "acme")
    assert f"bound to deleted group {team.group_id}" in text_list
    rows = list(
        csv.DictReader(
            io.StringIO(cli(runner, "report", "drift", "--org", "acme", "--format", "csv"))
        )
    )
    [flagged] = [r for r in rows if r["kind"] == "missing_rule_group"]
    assert flagged["candidate_group_id"] == new["id"] and "same name" in flagged["explanation"]
    assert all(roles_of(session, u) == {} for u in team.user_ids)

    rebound = json.loads(
        cli(
            runner, "rule", "edit", "--org", "acme", "--id", str(team.rule.id), "--rebind", "--json"
        )
    )
    assert rebound["bound_group"]["id"] == new["id"]
    team.assert_everyone_keeps_access()
    assert json.loads(cli(runner, "report", "drift", "--org", "acme"))["missing_rule_groups"] == []


def test_cli_rebind_without_a_group_of_that_name_is_refused(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    engineering = service.create_group(GroupSpec("Engineering"))
    rule = in_force(service, RuleSpec("displayName", "Engineering", "team_member"))
    service.update_group(engineering.id, GroupSpec("Platform"))
    session.commit()
    result = runner.invoke(args=["rule", "edit", "--org", "acme", "--id", str(rule.id), "--rebind"])
    assert result.exit_code != 0 and "no group named 'Engineering'" in result.output
    session.refresh(rule)
    assert rule.bound_group_id == engineering.id


def test_api_patch_rebind_and_drift_report(
    client: FlaskClient, scim: ScimClient, service: ProvisioningService, session: Session
) -> None:
    team = make_team(scim, service, session, IDPS[1])
    service.set_guard_thresholds(
        max_new_paid_seats=10, max_new_paid_share=1.0, max_new_project_admins=10
    )
    token = admin_token(session, service.organization)
    headers = {"Authorization": f"Bearer {token}"}
    assert scim.delete(f"/Groups/{team.group_id}").status_code == 204
    new = scim.create_group("Engineering", team.user_ids, **IDPS[1].group_attributes(1))
    drift = client.get("/api/v1/reports/drift", headers=headers)
    [missing] = json.loads(drift.get_data(as_text=True))["missing_rule_groups"]
    assert missing["candidate_group_id"] == new["id"]
    url = f"/api/v1/rules/{team.rule.id}"
    bad = client.patch(url, json={"rebind": "yes"}, headers=headers)
    assert bad.status_code == 400
    rule = client.patch(url, json={"rebind": True}, headers=headers)
    assert rule.status_code == 200, rule.get_data(as_text=True)
    bound = (rule.json or {})["bound_group"]
    assert (bound["id"], bound["display_name"], bound["deleted"]) == (
        new["id"],
        "Engineering",
        False,
    )
    team.assert_everyone_keeps_access()


# ------------------------------------------------------------ migration


def test_the_migration_binds_existing_rules_to_the_groups_they_match(
    empty_database_url: str,
) -> None:
    from app import provisioning

    config = migrate.alembic_config(empty_database_url)
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with make_sessions(engine).begin() as session:
            org = provisioning.create_organization(session, "Acme", "acme")
            service = ProvisioningService(session, org, ACTOR)
            engineering = service.create_group(GroupSpec("Engineering"))
            contractors = service.create_group(GroupSpec("Contractors", external_id="ext-9"))
            for match, value in [
                ("displayName", "ENGINEERING"),
                ("externalId", "ext-9"),
                ("displayName", "Nobody"),
                ("id", str(engineering.id)),
            ]:
                service.create_rule(RuleSpec(match, value, "client"))
            ids = engineering.id, contractors.id
        command.downgrade(config, "0011-1")
        command.upgrade(config, "head")
        with make_sessions(engine).begin() as session:
            bindings = {
                (r.match, r.group_value): (r.bound_group_id, r.bound_external_id)
                for r in session.scalars(select(MappingRule))
            }
    finally:
        engine.dispose()
    assert bindings == {
        ("displayName", "ENGINEERING"): (ids[0], None),
        ("externalId", "ext-9"): (ids[1], "ext-9"),
        ("displayName", "Nobody"): (None, None),
        ("id", str(ids[0])): (None, None),
    }
