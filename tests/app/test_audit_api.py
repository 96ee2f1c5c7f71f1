"""The audit trail: every kind of change writes its event (and rolls back with it); the query
API pages by cursor without repeats or gaps; exports stream and parse back; verify."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import audit, provisioning
from app.db import make_sessions, read_only_unit
from app.models import AuditEvent, Group, IdpConnection, MappingRule, Organization, User
from app.provisioning import (
    Actor,
    ContractSpec,
    GroupSpec,
    LoginClaims,
    MemberChange,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)
from app.reporting import exports
from tests.support import admin_token, make_org

ACTOR = Actor(kind="scim", label="okta", request_id="req-1", source_ip="10.0.0.1")


# ------------------------------------------------------------------ world


@dataclass
class World:
    """An organization with a little of everything, committed."""

    session: Session
    org: Organization
    service: ProvisioningService
    alice: User  # member of Engineering: team member, paid seat
    bob: User  # in no group
    dave: User  # deactivated
    engineering: Group
    rule: MappingRule
    connection: IdpConnection


def build_world(session: Session, org: Organization) -> World:
    service = ProvisioningService(session, org, ACTOR)
    service.create_project("web", "Website")
    service.create_custom_role("lead", "Lead", 350)
    engineering = service.create_group(GroupSpec("Engineering"))
    rule = service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    assert isinstance(rule, MappingRule)
    alice = service.create_user(UserSpec("alice@acme.example"))
    bob = service.create_user(UserSpec("bob@acme.example"))
    dave = service.create_user(UserSpec("dave@acme.example", is_active=False))
    erin = service.create_user(UserSpec("erin@acme.example"))
    service.delete_user(erin.id)
    service.add_domain("acme.example")
    connection = service.create_connection("okta", "oidc", {"issuer": "https://idp.example"}, {})
    world = World(session, org, service, alice, bob, dave, engineering, rule, connection)
    join(world, alice)
    session.commit()
    return world


@pytest.fixture
def world(session: Session, organization: tuple[Organization, str]) -> World:
    return build_world(session, organization[0])


def join(world: World, user: User, group: Group | None = None) -> None:
    group = group or world.engineering
    spec = GroupSpec(group.display_name, group.external_id)
    world.service.update_group(group.id, spec, MemberChange(added=[str(user.id)]))


def leave(world: World, user: User, group: Group | None = None) -> None:
    group = group or world.engineering
    spec = GroupSpec(group.display_name, group.external_id)
    world.service.update_group(group.id, spec, MemberChange(removed=[str(user.id)]))


def set_active(world: World, user: User, active: bool) -> None:
    world.service.replace_user(user.id, UserSpec(user.user_name, is_active=active))


def hold_at_one_seat(world: World) -> None:
    world.service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))


def make_bob_wait(world: World) -> None:
    hold_at_one_seat(world)
    join(world, world.bob)


def promote_bob(world: World) -> None:
    hold_at_one_seat(world)
    join(world, world.bob)
    set_active(world, world.alice, False)


def held_grant(world: World) -> UUID:
    world.service.set_guard_thresholds(0, 1.0, 0)
    everyone = world.service.create_group(GroupSpec("Everyone", member_ids=[str(world.bob.id)]))
    world.service.create_rule(RuleSpec("id", str(everyone.id), "project_admin"))
    held = world.session.scalars(select(AuditEvent).where(AuditEvent.action == "change.held"))
    return UUID(held.one().target_id)


def login(world: World, **claims: Any) -> None:
    world.service.login(
        world.connection,
        LoginClaims(subject="sub-alice", email="alice@acme.example", email_verified=True, **claims),
    )


@dataclass(frozen=True)
class Case:
    action: str
    change: Callable[[World], object]
    check: Callable[[AuditEvent], bool] = field(default=lambda event: True)
    name: str = ""


def after(key: str, value: Any) -> Callable[[AuditEvent], bool]:
    return lambda event: (event.after or {}).get(key) == value


CASES = [
    Case("user.created", lambda w: w.service.create_user(UserSpec("new@acme.example"))),
    Case(
        "user.updated",
        lambda w: w.service.replace_user(
            w.alice.id, UserSpec(w.alice.user_name, attributes={"title": "CTO"})
        ),
    ),
    Case("user.deactivated", lambda w: set_active(w, w.alice, False)),
    Case("user.reactivated", lambda w: set_active(w, w.dave, True)),
    Case("user.deleted", lambda w: w.service.delete_user(w.bob.id)),
    Case("user.relinked", lambda w: w.service.create_user(UserSpec("erin@acme.example"))),
    Case("group.created", lambda w: w.service.create_group(GroupSpec("Sales"))),
    Case(
        "group.updated", lambda w: w.service.update_group(w.engineering.id, GroupSpec("Engineers"))
    ),
    Case("group.deleted", lambda w: w.service.delete_group(w.engineering.id)),
    Case("membership.added", lambda w: join(w, w.bob)),
    Case("membership.removed", lambda w: leave(w, w.alice)),
    Case("role.granted", lambda w: join(w, w.bob), after("role", "team_member")),
    Case(
        "role.changed",
        lambda w: w.service.update_rule(
            w.rule.id, RuleSpec("displayName", "Engineering", "project_admin")
        ),
        after("role", "project_admin"),
    ),
    Case("role.revoked", lambda w: leave(w, w.alice)),
    Case("seat.changed", lambda w: join(w, w.bob), after("seat", "paid"), "seat-gained"),
    Case("seat.changed", lambda w: leave(w, w.alice), after("seat", "none"), "seat-released"),
    Case("seat.changed", make_bob_wait, after("pending", True), "pending"),
    Case("seat.changed", promote_bob, after("reason", "promoted"), "promoted"),
    Case("change.held", held_grant),
    Case("change.confirmed", lambda w: w.service.confirm_held(held_grant(w))),
    Case("change.discarded", lambda w: w.service.discard_held(held_grant(w))),
    Case(
        "rule.created",
        lambda w: w.service.create_rule(RuleSpec("displayName", "Sales", "client", "web")),
    ),
    Case(
        "rule.updated",
        lambda w: w.service.update_rule(
            w.rule.id, RuleSpec("displayName", "Engineering", "team_member", priority=5)
        ),
    ),
    Case("rule.deleted", lambda w: w.service.delete_rule(w.rule.id)),
    Case(
        "rule.bound",
        lambda w: w.service.create_rule(RuleSpec("displayName", "engineering", "client", "web")),
        after("reason", "rule_written"),
    ),
    Case("custom_role.created", lambda w: w.service.create_custom_role("qa", "QA", 320)),
    Case("custom_role.updated", lambda w: w.service.update_custom_role("lead", rank=450)),
    Case("custom_role.deleted", lambda w: w.service.delete_custom_role("lead")),
    Case("project.created", lambda w: w.service.create_project("api", "API")),
    Case("project.updated", lambda w: w.service.rename_project("web", "Web site")),
    Case("project.deleted", lambda w: w.service.delete_project("web")),
    Case("org.default_role_changed", lambda w: w.service.set_default_role("view_only")),
    Case("org.contract_changed", lambda w: w.service.set_contract(ContractSpec(50))),
    Case("org.guard_changed", lambda w: w.service.set_guard_thresholds(5, 0.5, 2)),
    Case("org.sso_changed", lambda w: w.service.set_sso_options(blue_url="https://blue.example")),
    Case("org.domain_added", lambda w: w.service.add_domain("acme.test")),
    Case("org.domain_removed", lambda w: w.service.remove_domain("acme.example")),
    Case(
        "connection.created",
        lambda w: w.service.create_connection("entra", "saml", {"entity_id": "urn:x"}, {}),
    ),
    Case(
        "connection.updated",
        lambda w: w.service.update_connection(w.connection.id, is_jit_enabled=False),
    ),
    Case("connection.deleted", lambda w: w.service.delete_connection(w.connection.id)),
    Case("login.linked", login),
    Case("login.accepted", login),
    Case("login.groups_overage", lambda w: login(w, groups_overage=True)),
    Case(
        "login.refused",
        lambda w: w.service.record_refused_login(w.connection, "no_role", "no role in Blue"),
    ),
    Case("token.created", lambda w: provisioning.create_token(w.session, w.org, "jenkins")),
    Case("token.revoked", lambda w: provisioning.revoke_token(w.session, w.org, "okta")),
]


def case_id(case: Case) -> str:
    return case.name or case.action


def last_event_id(session: Session) -> int:
    return session.scalar(select(func.max(AuditEvent.id))) or 0


def written(session: Session, since_id: int, case: Case) -> list[AuditEvent]:
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.id > since_id, AuditEvent.action == case.action)
    )
    return [event for event in rows if case.check(event)]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_change_writes_its_event_and_rolls_back_with_it(world: World, case: Case) -> None:
    session = world.session
    committed = session.scalar(select(func.count()).select_from(AuditEvent))
    start = last_event_id(session)
    case.change(world)
    [event, *_] = written(session, start, case)
    assert event.org_id == world.org.id and event.chain == str(world.org.id)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == committed
    assert written(session, start, case) == []


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_committed_change_is_sealed_into_the_chain(world: World, case: Case) -> None:
    session = world.session
    start = last_event_id(session)
    case.change(world)
    session.commit()
    [event, *_] = written(session, start, case)
    assert event.seq is not None and event.hash is not None and event.prev_hash is not None
    assert (event.actor_type, event.actor, event.request_id) == ("scim", "okta", "req-1") or (
        event.actor_type == "cli"  # organizations.* default to the operator
    )
    assert audit.verify(session, world.org.id).is_ok


# -------------------------------------------------------------- API client


@dataclass
class Api:
    client: FlaskClient
    token: str

    def get(self, path: str, **params: Any) -> TestResponse:
        return self.client.get(
            "/api/v1" + path,
            query_string={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json


def assert_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    detail: str = (response.json or {})["error"]["detail"]
    return detail


@pytest.fixture
def api(client: FlaskClient, session: Session, world: World) -> Api:
    return Api(client, admin_token(session, world.org))


def all_pages(api: Api, limit: int, **filters: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.ok("/audit", limit=limit, cursor=cursor, **filters)
        events += page["events"]
        if not page["has_more"]:
            return events
        cursor = page["next_cursor"]


def trail(session: Session, org: Organization) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == org.id).order_by(AuditEvent.seq)
        )
    )


# ------------------------------------------------------------- the query


def test_the_audit_api_needs_an_admin_token(
    client: FlaskClient, world: World, organization: tuple[Organization, str]
) -> None:
    assert_error(client.get("/api/v1/audit"), 401)
    assert_error(Api(client, organization[1]).get("/audit"), 403)  # the SCIM token
    assert_error(Api(client, "blue_scim_nope").get("/audit/export"), 401)
    assert_error(Api(client, organization[1]).get("/audit/verify"), 403)


def test_events_carry_their_place_in_the_chain_and_everything_their_hash_covers(
    api: Api, world: World
) -> None:
    events = all_pages(api, 1000)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["prev_hash"] == ""
    for earlier, later in zip(events, events[1:], strict=False):
        assert later["prev_hash"] == earlier["hash"]
    for document in events:
        rebuilt = AuditEvent(
            org_id=UUID(document["org_id"]),
            chain=document["org_id"],
            at=datetime.fromisoformat(document["at"]),
            **{
                k: document[k]
                for k in (
                    "actor_type",
                    "actor",
                    "action",
                    "target_type",
                    "target_id",
                    "before",
                    "after",
                    "request_id",
                    "source_ip",
                    "user_agent",
                )
            },
        )
        assert audit.event_hash(rebuilt, document["seq"], document["prev_hash"]) == document["hash"]


@pytest.mark.parametrize("limit", [1, 4, 7, 1000])
def test_cursor_paging_never_repeats_or_skips(api: Api, world: World, limit: int) -> None:
    events = all_pages(api, limit)
    expected = [e.seq for e in trail(world.session, world.org)]
    assert [e["seq"] for e in events] == expected
    assert len({e["id"] for e in events}) == len(events)


def test_paging_with_a_filter_and_events_written_between_pages(api: Api, world: World) -> None:
    join(world, world.bob)
    leave(world, world.bob)
    world.session.commit()
    first = api.ok("/audit", limit=2, action="role.")
    assert first["has_more"] and len(first["events"]) == 2
    join(world, world.bob)  # new role events arrive while the client pages
    world.session.commit()
    seen = first["events"]
    cursor = first["next_cursor"]
    while True:
        page = api.ok("/audit", limit=2, action="role.", cursor=cursor)
        seen += page["events"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    expected = [e.seq for e in trail(world.session, world.org) if e.action.startswith("role.")]
    assert [e["seq"] for e in seen] == expected
    assert any(e["target_id"] == str(world.bob.id) for e in seen)
    # The last cursor stays valid: nothing new yet, then exactly what came after.
    assert api.ok("/audit", cursor=cursor, action="role.")["events"] == []
    leave(world, world.bob)
    world.session.commit()
    later = api.ok("/audit", cursor=cursor, action="role.")["events"]
    assert [e["action"] for e in later] == ["role.revoked"]


def test_limit_and_cursor_are_checked(api: Api, world: World) -> None:
    assert len(api.ok("/audit", limit=1000)["events"]) == len(trail(world.session, world.org))
    assert "between 1 and 1000" in assert_error(api.get("/audit", limit=1001), 400)
    assert_error(api.get("/audit", limit=0), 400)
    assert "cursor" in assert_error(api.get("/audit", cursor="not-a-cursor"), 400)
    assert_error(api.get("/audit", since="yesterday"), 400)
    assert_error(api.get("/audit", since="2025-02-01", until="2025-01-01"), 400)


def test_filter_by_time_range(api: Api, world: World) -> None:
    middle = datetime.now(UTC)
    join(world, world.bob)
    world.session.commit()
    end = datetime.now(UTC)
    leave(world, world.bob)
    world.session.commit()
    events = trail(world.session, world.org)
    window = api.ok("/audit", since=middle.isoformat(), until=end.isoformat())["events"]
    assert [e["seq"] for e in window] == [e.seq for e in events if middle <= e.at < end]
    assert {e["action"] for e in window} >= {"membership.added", "role.granted"}
    older = api.ok("/audit", until=middle.isoformat(), limit=1000)["events"]
    newer = api.ok("/audit", since=middle.isoformat(), limit=1000)["events"]
    assert len(older) + len(newer) == len(events)
    # A date as `until` includes that whole day; naive times are UTC.
    today = middle.date().isoformat()
    assert len(api.ok("/audit", until=today, limit=1000)["events"]) == len(events)
    assert api.ok("/audit", since=(end.replace(tzinfo=None)).isoformat())["events"] == [
        e for e in api.ok("/audit", since=end.isoformat())["events"]
    ]


def test_filter_by_actor_and_action(api: Api, world: World) -> None:
    ProvisioningService(world.session, world.org, Actor("api", "console")).create_group(
        GroupSpec("Support")
    )
    world.session.commit()
    by_label = api.ok("/audit", actor="console")["events"]
    assert [(e["actor"], e["action"]) for e in by_label] == [("console", "group.created")]
    assert [e["action"] for e in api.ok("/audit", actor_type="api")["events"]] == ["group.created"]
    exact = api.ok("/audit", action="role.granted")["events"]
    assert exact and {e["action"] for e in exact} == {"role.granted"}
    for prefix in ("role.", "role.*"):
        actions = {e["action"] for e in api.ok("/audit", action=prefix)["events"]}
        assert actions and all(a.startswith("role.") for a in actions)
    assert api.ok("/audit", action="role")["events"] == []  # exact: no such action
    assert api.ok("/audit", action="rol%")["events"] == []  # LIKE wildcards are literal


def test_filter_by_user_includes_their_memberships(api: Api, world: World) -> None:
    alice = str(world.alice.id)
    for reference in (alice, "ALICE@acme.example"):
        events = api.ok("/audit", user=reference)["events"]
        actions = [e["action"] for e in events]
        assert actions[0] == "user.created"
        assert {"role.granted", "seat.changed", "membership.added"} <= set(actions)
        for event in events:
            if event["target_type"] == "group":
                assert event["after"]["user_id"] == alice
            else:
                assert event["target_id"] == alice
    assert "not found" in assert_error(api.get("/audit", user="nobody@acme.example"), 404)


def test_filter_by_group_id_or_name_even_after_rename_and_delete(api: Api, world: World) -> None:
    group_id = str(world.engineering.id)
    world.service.update_group(group_id, GroupSpec("Engineers"))
    world.service.delete_group(group_id)
    world.session.commit()
    for reference in (group_id, "engineering", "Engineers"):
        events = api.ok("/audit", group=reference)["events"]
        assert [e["action"] for e in events] == [
            "group.created",
            "membership.added",
            "group.updated",
            "group.deleted",
        ]
    assert_error(api.get("/audit", group="Nope"), 404)
    assert_error(api.get("/audit", group=str(UUID(int=7))), 404)


def test_another_organizations_events_and_users_are_invisible(
    api: Api, world: World, session: Session
) -> None:
    other, _ = make_org(session, "globex")
    stranger = ProvisioningService(session, other, ACTOR).create_user(UserSpec("eve@globex.test"))
    session.commit()
    events = all_pages(api, 1000)
    assert all(e["org_id"] == str(world.org.id) for e in events)
    assert str(stranger.id) not in {e["target_id"] for e in events}
    assert_error(api.get("/audit", user=str(stranger.id)), 404)


# ---------------------------------------------------------------- export


def test_export_streams_jsonl_that_parses_back(api: Api, world: World) -> None:
    response = api.get("/audit/export", format="jsonl")
    assert response.status_code == 200
    assert response.is_streamed and "Content-Length" not in response.headers
    assert response.content_type == "application/jsonl"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert [json.loads(line) for line in lines] == all_pages(api, 1000)


def test_export_streams_csv_that_parses_back(api: Api, world: World) -> None:
    response = api.get("/audit/export", format="csv", action="role.")
    assert response.status_code == 200 and response.is_streamed
    assert response.content_type == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    expected = api.ok("/audit", action="role.", limit=1000)["events"]
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in expected]
    for row, event in zip(rows, expected, strict=True):
        assert (row["hash"], row["prev_hash"], row["action"]) == (
            event["hash"],
            event["prev_hash"],
            event["action"],
        )
        assert json.loads(row["after"]) == event["after"]
        assert (row["before"] and json.loads(row["before"])) == (event["before"] or "")


def test_export_as_one_json_document(api: Api, world: World) -> None:
    body = api.get("/audit/export", format="json", action="user.").get_data(as_text=True)
    assert json.loads(body) == {"events": api.ok("/audit", action="user.")["events"]}


def test_export_writes_row_by_row(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "CHUNK_CHARS", 1)
    response = api.get("/audit/export", format="jsonl")
    chunks = list(response.response)
    assert len(chunks) == len(trail(world.session, world.org))


def test_export_checks_its_parameters_before_streaming(api: Api, world: World) -> None:
    assert_error(api.get("/audit/export", format="xml"), 400)
    assert_error(api.get("/audit/export", user="nobody"), 404)


# ---------------------------------------------------------------- verify


def test_verify_reports_an_intact_chain_and_then_the_break(
    api: Api, world: World, session: Session
) -> None:
    events = trail(session, world.org)
    assert api.ok("/audit/verify") == {
        "ok": True,
        "count": len(events),
        "head_hash": events[-1].hash,
        "broken_at": None,
        "problem": None,
    }
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    session.execute(
        text("UPDATE audit_events SET actor = 'mallory' WHERE id = :id"), {"id": events[4].id}
    )
    session.commit()
    result = api.ok("/audit/verify")
    assert result["ok"] is False and result["broken_at"] == 5 and result["count"] == 4
    assert result["problem"] == "event #5 was altered"


# ------------------------------------------------------------------- CLI


def invoke(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_audit_query_pages_like_the_api(runner: FlaskCliRunner, world: World) -> None:
    first = json.loads(invoke(runner, "audit", "query", "--org", "acme", "--limit", "2", "--json"))
    assert [e["seq"] for e in first["events"]] == [1, 2] and first["has_more"]
    second = json.loads(
        invoke(
            runner,
            "audit",
            *("query", "--org", "acme", "--limit", "2", "--cursor", first["next_cursor"]),
            "--json",
        )
    )
    assert [e["seq"] for e in second["events"]] == [3, 4]
    lines = invoke(
        runner, "audit", "query", "--org", "acme", "--user", "alice@acme.example"
    ).splitlines()
    assert lines and "user.created" in lines[0] and str(world.alice.id) in lines[0]
    refused = runner.invoke(args=["audit", "query", "--org", "acme", "--since", "soon"])
    assert refused.exit_code != 0 and "ISO 8601" in refused.output
    missing = runner.invoke(args=["audit", "query", "--org", "acme", "--group", "Nope"])
    assert missing.exit_code != 0 and "not found" in missing.output


@pytest.mark.parametrize("format_", ["jsonl", "csv"])
def test_cli_audit_export_streams_to_a_file(
    runner: FlaskCliRunner, world: World, tmp_path: Path, format_: str
) -> None:
    target = tmp_path / f"audit.{format_}"
    args = ["audit", "export", "--org", "acme", "--format", format_, "--action", "seat."]
    assert invoke(runner, *args, "--output", str(target)) == ""
    content = target.read_text()
    if format_ == "jsonl":
        rows = [json.loads(line) for line in content.splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(content)))
    expected = [e for e in trail(world.session, world.org) if e.action == "seat.changed"]
    assert [int(r["seq"]) for r in rows] == [e.seq for e in expected]
    assert [r["hash"] for r in rows] == [e.hash for e in expected]


def test_cli_audit_verify_is_still_there(runner: FlaskCliRunner, world: World) -> None:
    assert invoke(runner, "audit", "verify", "--org", "acme").startswith("OK: ")


def test_cli_audit_commands_get_their_own_application_context(runner: FlaskCliRunner) -> None:
    for command in ("query", "export"):
        result = runner.invoke(args=["audit", command, "--org", "nope"])
        assert result.exit_code == 1 and "no organization with slug 'nope'" in result.output


def test_read_only_unit_reads_beside_a_writer_and_never_writes(app: Flask, engine: Engine) -> None:
    # Bound to the engine as in production; the test's own connection holds a write transaction.
    app.extensions["sessions"] = make_sessions(engine)
    with app.app_context(), read_only_unit() as session:
        assert session.scalar(select(func.count()).select_from(Organization)) is not None
        if engine.dialect.name == "postgresql":
            with pytest.raises(DBAPIError, match="read-only transaction"):
                session.execute(
                    text("INSERT INTO audit_heads (chain, seq, hash) VALUES ('x', 0, '')")
                )
