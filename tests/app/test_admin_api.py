"""The admin JSON API at /api/v1, through the test client."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import organizations, provisioning
from app.models import (
    AuditEvent,
    HeldChange,
    MappingRule,
    Organization,
    RoleAssignment,
    SeatEvent,
    User,
)
from app.provisioning import Actor, GroupSpec, ProvisioningService, UserSpec
from tests.support import admin_token, make_org


@dataclass
class Api:
    """A test client that carries an organization's bearer token."""

    client: FlaskClient
    token: str | None

    def request(
        self, method: str, path: str, body: Any = None, raw: str | None = None, **kwargs: Any
    ) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            raw = json.dumps(body)
        return self.client.open(
            "/api/v1" + path,
            method=method,
            headers=headers,
            data=raw,
            content_type="application/json" if raw is not None else None,
            **kwargs,
        )

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.request(method, path, body)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.json


def assert_error(response: TestResponse, status: int, code: str | None = None) -> str:
    """The response is the API's JSON error with this status (and code); returns the detail."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    error = (response.json or {})["error"]
    assert error["status"] == status
    assert error["detail"]
    if code is not None:
        assert error["code"] == code
    detail: str = error["detail"]
    return detail


@pytest.fixture
def api(client: FlaskClient, session: Session, organization: tuple[Organization, str]) -> Api:
    return Api(client, admin_token(session, organization[0]))


@pytest.fixture
def other_api(client: FlaskClient, session: Session) -> Api:
    return Api(client, admin_token(session, make_org(session, "globex")[0]))


@pytest.fixture
def service(session: Session, organization: tuple[Organization, str]) -> ProvisioningService:
    return ProvisioningService(session, organization[0], Actor(kind="system", label="test"))


def people(
    service: ProvisioningService, group: str, count: int, prefix: str = "user"
) -> list[User]:
    """`count` users, all members of a new group, committed for the API to see."""
    users = [
        service.create_user(UserSpec(user_name=f"{prefix}{n}@acme.example")) for n in range(count)
    ]
    service.create_group(GroupSpec(display_name=group, member_ids=[str(u.id) for u in users]))
    service.session.commit()
    return users


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def roles_of(session: Session, user: User) -> dict[str, str]:
    rows = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id))
    return {r.project_key: r.role_key for r in rows}


def snapshot(session: Session) -> tuple[int, ...]:
    models: Sequence[type[Any]] = (RoleAssignment, AuditEvent, MappingRule, SeatEvent, HeldChange)
    return tuple(count(session, m) for m in models)


# ---------------------------------------------------------- authentication


def test_scim_token_cannot_use_the_admin_api(
    client: FlaskClient, organization: tuple[Organization, str]
) -> None:
    response = Api(client, organization[1]).post(
        "/rules", {"group": "Everyone", "role": "Team Member"}
    )
    assert_error(response, 403, "forbidden")


def test_missing_or_wrong_token_is_401_with_a_challenge(client: FlaskClient, api: Api) -> None:
    for token in (None, "blue_scim_wrong", "not-even-a-token"):
        response = Api(client, token).get("/rules")
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    basic = api.get("/rules", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(basic, 401)


def test_revoked_token_is_401(
    client: FlaskClient, api: Api, session: Session, organization: tuple[Organization, str]
) -> None:
    assert api.get("/rules").status_code == 200
    provisioning.revoke_token(session, organization[0], "admin")
    session.commit()
    assert_error(api.get("/rules"), 401, "unauthorized")


def test_read_only_token_reads_and_dry_runs_but_may_not_change(
    client: FlaskClient, session: Session, organization: tuple[Organization, str]
) -> None:
    secret = provisioning.create_token(
        session, organization[0], "audit", True, organizations.TokenScope.ADMIN
    ).secret
    session.commit()
    reader = Api(client, secret)
    assert reader.get("/rules").status_code == 200
    assert reader.get("/contract").status_code == 200
    for method, path, body in [
        ("POST", "/projects", {"key": "web"}),
        ("POST", "/rules", {"group": "Engineering", "role": "Team Member"}),
        ("PUT", "/contract", {"paid_seats": 1}),
        ("PUT", "/settings/default-role", {"role": None}),
        ("DELETE", "/rules/00000000-0000-0000-0000-000000000000", None),
    ]:
        assert_error(reader.request(method, path, body), 403, "forbidden")
    dry = reader.post("/dry-run", {"add_rules": [{"group": "Everyone", "role": "team_member"}]})
    assert dry.status_code == 200, dry.json
    assert count(session, MappingRule) == 0


def test_changes_are_audited_as_the_api_token(api: Api, session: Session) -> None:
    api.ok("POST", "/projects", {"key": "web", "name": "Website"}, 201)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "project.created")).one()
    assert (event.actor_type, event.actor) == ("api", "admin")
    assert event.request_id


def test_rate_limit_answers_429_with_retry_after(app: Flask, api: Api) -> None:
    app.extensions["settings"] = replace(app.extensions["settings"], scim_rate_limit=2)
    assert api.get("/roles").status_code == 200
    assert api.get("/roles").status_code == 200
    response = api.get("/roles")
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1


# ------------------------------------------------------------ plumbing


def test_unknown_url_and_method_get_json_errors(api: Api, client: FlaskClient) -> None:
    assert_error(api.get("/nothing-here"), 404, "not_found")
    wrong = api.request("PUT", "/projects", {})
    assert_error(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]
    # Other parts of the service keep their own errors.
    assert client.get("/not-the-api").status_code == 404


def test_bad_json_and_wrong_shapes_are_400(api: Api) -> None:
    assert_error(api.request("POST", "/projects", raw="{not json"), 400, "invalid_json")
    assert_error(api.request("POST", "/projects", raw=""), 400, "invalid_json")
    assert_error(api.post("/projects", ["web"]), 400, "invalid_request")
    detail = assert_error(api.post("/projects", {"key": "web", "colour": "red"}), 400)
    assert "colour" in detail
    assert_error(api.post("/rules", {"group": "G", "role": "client", "priority": "1"}), 400)
    assert_error(api.post("/rules", {"group": "G", "role": "client", "priority": True}), 400)


# --------------------------------------------------------------- projects


def test_projects_create_list_rename_delete(api: Api) -> None:
    created = api.ok("POST", "/projects", {"key": "web", "name": "Website"}, 201)
    assert created["key"] == "web" and created["name"] == "Website"
    api.ok("POST", "/projects", {"key": "app"}, 201)
    listed = api.ok("GET", "/projects")["projects"]
    assert [(p["key"], p["name"]) for p in listed] == [("app", "app"), ("web", "Website")]
    renamed = api.ok("PATCH", "/projects/web", {"name": "Web site"})
    assert renamed["name"] == "Web site"
    assert api.delete("/projects/app").status_code == 204
    assert [p["key"] for p in api.ok("GET", "/projects")["projects"]] == ["web"]


def test_project_errors(api: Api) -> None:
    api.ok("POST", "/projects", {"key": "web"}, 201)
    assert_error(api.post("/projects", {"key": "web"}), 409, "conflict")
    assert_error(api.post("/projects", {"key": "no spaces"}), 400, "invalid_change")
    assert_error(api.post("/projects", {"name": "keyless"}), 400, "invalid_request")
    assert_error(api.patch("/projects/ghost", {"name": "x"}), 404, "not_found")
    assert_error(api.delete("/projects/ghost"), 404, "not_found")
    api.ok("POST", "/rules", {"group": "Web team", "role": "client", "project": "web"}, 201)
    assert_error(api.delete("/projects/web"), 409, "conflict")


# ------------------------------------------------------------------ roles


def test_role_catalogue_lists_built_in_and_custom_roles(api: Api) -> None:
    api.ok("POST", "/custom-roles", {"slug": "lead", "name": "Lead", "rank": 450}, 201)
    roles = api.ok("GET", "/roles")["roles"]
    assert [r["key"] for r in roles] == [
        "project_admin",
        "custom:lead",
        "team_member",
        "client",
        "comment_only",
        "view_only",
    ]
    assert roles[1] == {
        "key": "custom:lead",
        "name": "Lead",
        "rank": 450,
        "paid": True,
        "custom": True,
    }
    assert {"key": "client", "name": "Client", "rank": 300, "paid": False, "custom": False} in roles


def test_custom_roles_create_list_update_delete(api: Api) -> None:
    created = api.ok(
        "POST",
        "/custom-roles",
        {
            "slug": "lead",
            "name": "Lead",
            "rank": 450,
            "description": "Leads a team",
            "permissions": ["approve"],
        },
        201,
    )
    assert created["key"] == "custom:lead" and created["permissions"] == ["approve"]
    updated = api.ok("PATCH", "/custom-roles/custom:lead", {"rank": 350, "name": "Team lead"})
    assert (updated["rank"], updated["name"], updated["description"]) == (
        350,
        "Team lead",
        "Leads a team",
    )
    [listed] = api.ok("GET", "/custom-roles")["custom_roles"]
    assert listed["rank"] == 350
    assert api.delete("/custom-roles/lead").status_code == 204
    assert api.ok("GET", "/custom-roles")["custom_roles"] == []


def test_custom_role_errors(api: Api) -> None:
    assert_error(api.post("/custom-roles", {"slug": "x", "name": "X", "rank": 400}), 400)
    assert_error(api.post("/custom-roles", {"slug": "Bad Slug", "name": "X", "rank": 1}), 400)
    assert_error(api.post("/custom-roles", {"slug": "x", "name": "Client", "rank": 1}), 400)
    assert_error(api.post("/custom-roles", {"slug": "x", "name": "X"}), 400, "invalid_request")
    assert_error(api.patch("/custom-roles/ghost", {"rank": 1}), 404)
    api.ok("POST", "/custom-roles", {"slug": "lead", "name": "Lead", "rank": 450}, 201)
    assert_error(api.post("/custom-roles", {"slug": "lead", "name": "Lead 2", "rank": 1}), 400)


@pytest.mark.parametrize("key", ["lead", "custom:lead"])
def test_custom_role_in_use_cannot_be_deleted(api: Api, key: str) -> None:
    api.ok("POST", "/custom-roles", {"slug": "lead", "name": "Lead", "rank": 450}, 201)
    rule = api.ok("POST", "/rules", {"group": "Leads", "role": "Lead"}, 201)
    assert_error(api.delete(f"/custom-roles/{key}"), 409, "conflict")
    api.ok("DELETE", f"/rules/{rule['id']}", status=204)
    api.ok("PUT", "/settings/default-role", {"role": "Lead"})
    assert_error(api.delete(f"/custom-roles/{key}"), 409, "conflict")


# ---------------------------------------------------------- mapping rules


def test_rule_create_defaults_and_resolves_role_names(api: Api) -> None:
    rule = api.ok("POST", "/rules", {"group": "Engineering", "role": "team member"}, 201)
    assert rule["match"] == "displayName"
    assert rule["project"] == "*"
    assert rule["priority"] == 0
    assert (rule["role"], rule["role_name"]) == ("team_member", "Team Member")
    assert api.ok("GET", f"/rules/{rule['id']}") == rule
    assert api.ok("GET", "/rules")["rules"] == [rule]


def test_rule_patch_put_and_delete(api: Api) -> None:
    api.ok("POST", "/projects", {"key": "web"}, 201)
    rule = api.ok("POST", "/rules", {"group": "Engineering", "role": "client"}, 201)
    patched = api.ok("PATCH", f"/rules/{rule['id']}", {"role": "Team Member", "project": "web"})
    assert (patched["group"], patched["role"], patched["project"]) == (
        "Engineering",
        "team_member",
        "web",
    )
    replaced = api.ok(
        "PUT",
        f"/rules/{rule['id']}",
        {"group": "ext-42", "match": "externalId", "role": "view_only", "priority": 5},
    )
    assert (replaced["match"], replaced["group"], replaced["project"], replaced["priority"]) == (
        "externalId",
        "ext-42",
        "*",
        5,
    )
    assert api.delete(f"/rules/{rule['id']}").status_code == 204
    assert_error(api.get(f"/rules/{rule['id']}"), 404)
    assert api.ok("GET", "/rules")["rules"] == []


def test_rule_errors_change_nothing(api: Api, session: Session) -> None:
    detail = assert_error(api.post("/rules", {"group": "G", "role": "Wizard"}), 400)
    assert "Wizard" in detail and "Team Member" in detail
    assert_error(api.post("/rules", {"group": "G", "role": "client", "match": "email"}), 400)
    assert_error(api.post("/rules", {"group": "G", "role": "client", "project": "nope"}), 400)
    assert_error(api.post("/rules", {"group": " ", "role": "client"}), 400)
    assert_error(api.post("/rules", {"role": "client"}), 400, "invalid_request")
    assert_error(api.patch("/rules/not-a-uuid", {"role": "client"}), 404)
    assert count(session, MappingRule) == 0
    rule = api.ok("POST", "/rules", {"group": "G", "role": "client"}, 201)
    assert_error(api.patch(f"/rules/{rule['id']}", {"role": "Wizard"}), 400)
    assert api.ok("GET", f"/rules/{rule['id']}")["role"] == "client"


def test_another_organizations_rule_is_not_found(api: Api, other_api: Api) -> None:
    theirs = other_api.ok("POST", "/rules", {"group": "Engineering", "role": "client"}, 201)
    path = f"/rules/{theirs['id']}"
    assert_error(api.get(path), 404, "not_found")
    assert_error(api.patch(path, {"role": "team_member"}), 404)
    assert_error(api.put(path, {"group": "x", "role": "client"}), 404)
    assert_error(api.delete(path), 404)
    assert api.ok("GET", "/rules")["rules"] == []
    assert other_api.ok("GET", path)["role"] == "client"


# ------------------------------------------------- organization settings


def test_default_role_by_name_key_or_null(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    [loner] = people(service, "Unmapped", 1)
    assert api.ok("GET", "/settings/default-role") == {"role": None, "role_name": None}
    assert api.ok("PUT", "/settings/default-role", {"role": "View Only"}) == {
        "role": "view_only",
        "role_name": "View Only",
    }
    assert roles_of(session, loner) == {"*": "view_only"}
    api.ok("PUT", "/settings/default-role", {"role": "comment_only"})
    assert api.ok("GET", "/settings/default-role")["role"] == "comment_only"
    assert api.ok("PUT", "/settings/default-role", {"role": None})["role"] is None
    assert roles_of(session, loner) == {}
    assert_error(api.put("/settings/default-role", {"role": "Wizard"}), 400)
    assert_error(api.put("/settings/default-role", {}), 400, "invalid_request")


def test_contract_show_and_partial_update(api: Api) -> None:
    shown = api.ok("GET", "/contract")
    assert shown == {
        "paid_seats": 100,
        "policy": "allow",
        "billing_terms": "annual",
        "starts_on": None,
        "ends_on": None,
        "guard": {
            "max_new_paid_seats": 50,
            "max_new_paid_share": 0.2,
            "max_new_project_admins": 10,
            "window_minutes": 10,
            "max_new_paid_seats_in_window": 100,
        },
    }
    updated = api.ok(
        "PUT",
        "/contract",
        {"paid_seats": 500, "policy": "hold", "starts_on": "2025-01-01", "ends_on": "2025-12-31"},
    )
    assert (updated["paid_seats"], updated["policy"], updated["starts_on"]) == (
        500,
        "hold",
        "2025-01-01",
    )
    kept = api.ok("PUT", "/contract", {"paid_seats": 600})
    assert (kept["paid_seats"], kept["policy"], kept["ends_on"]) == (600, "hold", "2025-12-31")
    cleared = api.ok("PUT", "/contract", {"ends_on": None, "billing_terms": "quarterly"})
    assert (cleared["ends_on"], cleared["billing_terms"]) == (None, "quarterly")
    assert api.ok("GET", "/contract") == cleared


def test_contract_errors_change_nothing(api: Api) -> None:
    before = api.ok("GET", "/contract")
    assert_error(api.put("/contract", {"policy": "maybe"}), 400, "invalid_change")
    assert_error(api.put("/contract", {"billing_terms": "weekly"}), 400)
    assert_error(api.put("/contract", {"paid_seats": -1}), 400)
    assert_error(api.put("/contract", {"starts_on": "2025-02-01", "ends_on": "2025-01-01"}), 400)
    assert_error(api.put("/contract", {"starts_on": "01/02/2025"}), 400, "invalid_request")
    assert_error(api.put("/contract", {"paid_seats": "500"}), 400, "invalid_request")
    assert api.ok("GET", "/contract") == before


def test_guard_thresholds(api: Api) -> None:
    assert api.ok("GET", "/settings/guard")["max_new_paid_seats"] == 50
    updated = api.ok("PUT", "/settings/guard", {"max_new_paid_seats": 5})
    assert updated == {
        "max_new_paid_seats": 5,
        "max_new_paid_share": 0.2,
        "max_new_project_admins": 10,
        "window_minutes": 10,
        "max_new_paid_seats_in_window": 100,
    }
    assert api.ok("GET", "/contract")["guard"] == updated
    assert_error(api.put("/settings/guard", {"max_new_paid_share": 1.5}), 400)
    assert_error(api.put("/settings/guard", {"max_new_project_admins": -1}), 400)
    assert api.ok("GET", "/settings/guard") == updated


# ----------------------------------------------------------------- dry run


def test_dry_run_reports_changes_and_writes_nothing(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    engineers = people(service, "Engineering", 2, "eng")
    [visitor] = people(service, "Visitors", 1, "visitor")
    client_rule = api.ok("POST", "/rules", {"group": "Visitors", "role": "client"}, 201)
    before = snapshot(session)
    result = api.ok(
        "POST",
        "/dry-run",
        {
            "add_rules": [{"group": "Engineering", "role": "Team Member"}],
            "remove_rules": [client_rule["id"]],
        },
    )
    assert snapshot(session) == before
    assert all(roles_of(session, u) == {} for u in engineers)
    assert roles_of(session, visitor) == {"*": "client"}
    assert result["changed_users"] == 3 and result["truncated"] is False
    assert result["totals"] == {
        "before": {"paid": 0, "free": 1, "pending": 0},
        "after": {"paid": 2, "free": 0, "pending": 0},
    }
    by_name = {u["userName"]: u for u in result["users"]}
    assert by_name["eng0@acme.example"] == {
        "id": str(engineers[0].id),
        "userName": "eng0@acme.example",
        "roles": [{"project": "*", "before": None, "after": "team_member", "change": "added"}],
        "seat": {"before": "none", "after": "paid"},
        "pending": {"before": False, "after": False},
    }
    assert by_name["visitor0@acme.example"]["roles"] == [
        {"project": "*", "before": "client", "after": None, "change": "removed"}
    ]
    assert result["would_hold"] == []


def test_dry_run_of_edits_default_role_ranks_and_contract(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    people(service, "Engineering", 2, "eng")
    people(service, "Leads", 1, "lead")
    [loner] = people(service, "Unmapped", 1, "loner")
    api.ok("POST", "/custom-roles", {"slug": "lead", "name": "Lead", "rank": 350}, 201)
    engineering = api.ok("POST", "/rules", {"group": "Engineering", "role": "client"}, 201)
    api.ok("POST", "/rules", {"group": "Leads", "role": "Lead"}, 201)
    api.ok("POST", "/rules", {"group": "Leads", "role": "Team Member"}, 201)
    before = snapshot(session)
    result = api.ok(
        "POST",
        "/dry-run",
        {
            "edit_rules": [{"id": engineering["id"], "role": "Team Member"}],
            "custom_roles": [{"key": "lead", "rank": 450}],
            "default_role": "View Only",
            "paid_seats": 1,
            "policy": "hold",
        },
    )
    assert snapshot(session) == before
    changes = {u["userName"]: u for u in result["users"]}
    assert changes["lead0@acme.example"]["roles"] == [
        {"project": "*", "before": "team_member", "after": "custom:lead", "change": "changed"}
    ]
    assert changes["loner0@acme.example"]["roles"][0]["after"] == "view_only"
    engineer_seats = [changes[f"eng{n}@acme.example"] for n in range(2)]
    # One paid seat under `hold`: the lead keeps theirs, the engineers wait on free roles.
    assert all(u["pending"]["after"] for u in engineer_seats)
    assert result["totals"]["after"]["pending"] == 2
    assert roles_of(session, loner) == {}
    assert api.ok("GET", "/contract")["policy"] == "allow"


def test_dry_run_shows_a_change_the_guard_would_hold(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    people(service, "Everyone", 3)
    api.ok("PUT", "/settings/guard", {"max_new_paid_seats": 1})
    result = api.ok(
        "POST", "/dry-run", {"add_rules": [{"group": "Everyone", "role": "Team Member"}]}
    )
    [held] = result["would_hold"]
    assert held["new_paid_seats"] == 3 and held["user_count"] == 3
    assert "3 new paid seats" in held["reasons"][0]
    assert count(session, HeldChange) == 0


def test_dry_run_errors_write_nothing(api: Api, session: Session) -> None:
    before = snapshot(session)
    assert_error(api.post("/dry-run", {"add_rules": [{"group": "G", "role": "Wizard"}]}), 400)
    assert_error(api.post("/dry-run", {"remove_rules": ["nope"]}), 404)
    assert_error(api.post("/dry-run", {"add_rule": []}), 400, "invalid_request")
    assert_error(api.post("/dry-run", {"remove_rules": [1]}), 400, "invalid_request")
    assert_error(api.post("/dry-run", {"edit_rules": [{"role": "client"}]}), 400)
    assert snapshot(session) == before


# ----------------------------------------------------------- held changes


def held_mass_grant(api: Api, service: ProvisioningService) -> tuple[list[User], dict[str, Any]]:
    users = people(service, "Everyone", 3)
    api.ok("PUT", "/settings/guard", {"max_new_paid_seats": 1, "max_new_paid_share": 1.0})
    accepted = api.ok("POST", "/rules", {"group": "Everyone", "role": "Team Member"}, 202)
    [held] = api.ok("GET", "/held-changes?status=held")["held_changes"]
    assert accepted["held"]["id"] == held["id"]
    return users, held


def test_mass_grant_is_held_then_confirmed(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    users, held = held_mass_grant(api, service)
    assert held["status"] == "held" and held["user_count"] == 3 and held["new_paid_seats"] == 3
    assert held["cause"] == "api:admin"
    assert all(roles_of(session, u) == {} for u in users)
    detail = api.ok("GET", f"/held-changes/{held['id']}")
    assert sorted(detail["user_ids"]) == sorted(str(u.id) for u in users)
    confirmed = api.ok("POST", f"/held-changes/{held['id']}/confirm")
    assert confirmed["status"] == "confirmed" and confirmed["decided_by"] == "api:admin"
    assert all(roles_of(session, u) == {"*": "team_member"} for u in users)
    assert api.ok("GET", "/seats")["paid"] == 3
    assert_error(api.post(f"/held-changes/{held['id']}/confirm"), 409, "conflict")
    assert_error(api.post(f"/held-changes/{held['id']}/discard"), 409, "conflict")
    assert api.ok("GET", "/held-changes?status=held")["held_changes"] == []
    [listed] = api.ok("GET", "/held-changes")["held_changes"]
    assert listed["status"] == "confirmed"


def test_mass_grant_is_held_then_discarded(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    users, held = held_mass_grant(api, service)
    discarded = api.ok("POST", f"/held-changes/{held['id']}/discard")
    assert discarded["status"] == "discarded"
    assert all(roles_of(session, u) == {} for u in users)
    assert api.ok("GET", "/seats")["paid"] == 0
    [listed] = api.ok("GET", "/held-changes?status=discarded")["held_changes"]
    assert listed["id"] == held["id"]


def test_held_change_errors(api: Api, other_api: Api, service: ProvisioningService) -> None:
    _, held = held_mass_grant(api, service)
    assert_error(api.get("/held-changes?status=maybe"), 400, "invalid_request")
    assert_error(api.get("/held-changes?limit=x"), 400, "invalid_request")
    assert_error(api.post("/held-changes/not-an-id/confirm"), 404)
    assert_error(other_api.post(f"/held-changes/{held['id']}/confirm"), 404)
    assert_error(other_api.get(f"/held-changes/{held['id']}"), 404)
    assert other_api.ok("GET", "/held-changes")["held_changes"] == []
    assert api.ok("GET", f"/held-changes/{held['id']}")["status"] == "held"


# -------------------------------------------------------- users and seats


def test_user_access_names_rule_and_group_behind_a_paid_seat(
    api: Api, service: ProvisioningService
) -> None:
    api.ok("POST", "/projects", {"key": "web"}, 201)
    [alice] = people(service, "Engineering", 1, "alice")
    engineering = api.ok("POST", "/rules", {"group": "engineering", "role": "Team Member"}, 201)
    api.ok("POST", "/rules", {"group": "Engineering", "role": "client", "project": "web"}, 201)
    for reference in ("ALICE0@acme.example", str(alice.id)):
        access = api.ok("GET", f"/users/{reference}/access")
        assert access["userName"] == "alice0@acme.example"
        assert (access["seat"], access["active"], access["pending"]) == ("paid", True, False)
        projects = {r["project"]: r for r in access["roles"]}
        # Team Member outranks Client in `web` too: the `*` rule wins there.
        assert {p: r["role"] for p, r in projects.items()} == {
            "*": "team_member",
            "web": "team_member",
        }
        [source] = projects["*"]["source"]
        assert source["rule_id"] == engineering["id"]
        assert source["group"] == "Engineering"
        assert "engineering" in source["rule"] and "team_member" in source["rule"]
        why = {w["project"]: w for w in access["why_paid"]}
        assert why["*"]["role"] == "Team Member"
        assert why["*"]["because"][0]["group"] == "Engineering"
        assert why["*"]["because"][0]["rule_id"] == engineering["id"]


def test_user_access_of_a_default_role_and_of_strangers(
    api: Api, other_api: Api, service: ProvisioningService
) -> None:
    [bob] = people(service, "Unmapped", 1, "bob")
    api.ok("PUT", "/settings/default-role", {"role": "View Only"})
    access = api.ok("GET", "/users/bob0@acme.example/access")
    assert access["seat"] == "free" and access["why_paid"] == []
    assert access["roles"][0]["source"] == [{"default_role": True}]
    assert_error(api.get("/users/nobody@acme.example/access"), 404, "not_found")
    assert_error(other_api.get(f"/users/{bob.id}/access"), 404)
    assert_error(other_api.get("/users/bob0@acme.example/access"), 404)


def test_seats_summary_has_exactly_the_documented_keys(
    api: Api, service: ProvisioningService
) -> None:
    people(service, "Engineering", 2, "eng")
    people(service, "Visitors", 1, "visitor")
    api.ok("POST", "/rules", {"group": "Engineering", "role": "Team Member"}, 201)
    api.ok("POST", "/rules", {"group": "Visitors", "role": "Client"}, 201)
    assert api.ok("GET", "/seats") == {
        "tier": 100,
        "paid": 2,
        "free": 1,
        "pending": 0,
        "none": 0,
        "active": 3,
        "policy": "allow",
        "overage": 0,
    }


def test_pending_users_under_hold(api: Api, service: ProvisioningService) -> None:
    api.ok("PUT", "/contract", {"paid_seats": 1, "policy": "hold"})
    people(service, "Engineering", 3, "eng")
    api.ok("POST", "/rules", {"group": "Engineering", "role": "Team Member"}, 201)
    seats = api.ok("GET", "/seats")
    assert (seats["paid"], seats["pending"], seats["free"]) == (1, 2, 0)
    pending = api.ok("GET", "/seats/pending")["users"]
    assert len(pending) == 2 and all(p["pending_since"] for p in pending)
    api.ok("PUT", "/contract", {"paid_seats": 3})
    assert api.ok("GET", "/seats/pending")["users"] == []


def test_seat_history(api: Api, service: ProvisioningService) -> None:
    people(service, "Engineering", 2, "eng")
    api.ok("POST", "/rules", {"group": "Engineering", "role": "Team Member"}, 201)
    history = api.ok("GET", "/seats/history?start=2020-01-01&end=2020-01-03")
    assert [d["date"] for d in history["series"]] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert history["peak_paid"] == 0
    recent = api.ok("GET", "/seats/history")
    assert len(recent["series"]) == 30
    assert recent["series"][-1]["paid"] == 2
    assert_error(api.get("/seats/history?start=2020-01-05&end=2020-01-01"), 400)
    assert_error(api.get("/seats/history?start=yesterday"), 400, "invalid_request")
    assert_error(api.get("/seats/history?start=1900-01-01&end=2020-01-01"), 400)


# ------------------------------------- staged held changes (issue #13, item 1)


def test_held_rule_changes_and_default_role_are_answered_202_and_not_in_force(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    users = people(service, "Everyone", 3)
    api.ok("PUT", "/settings/guard", {"max_new_paid_seats": 1, "max_new_paid_share": 1.0})
    created = api.ok("POST", "/rules", {"group": "Everyone", "role": "Team Member"}, 202)["held"]
    assert created["kind"] == "rule_create" and created["status"] == "held"
    assert created["change"]["rule"]["role"] == "team_member"
    assert "3 new paid seats exceed the limit of 1" in created["reasons"]
    assert api.ok("GET", "/rules")["rules"] == []
    rule = api.ok("POST", "/rules", {"group": "Everyone", "role": "View Only"}, 201)
    edited = api.ok("PATCH", f"/rules/{rule['id']}", {"role": "Team Member"}, 202)["held"]
    assert edited["kind"] == "rule_update" and edited["change"]["rule_id"] == rule["id"]
    replaced = api.ok(
        "PUT", f"/rules/{rule['id']}", {"group": "Everyone", "role": "Team Member"}, 202
    )["held"]
    assert replaced["kind"] == "rule_update"
    assert api.ok("GET", f"/rules/{rule['id']}")["role"] == "view_only"
    api.ok("DELETE", f"/rules/{rule['id']}", status=204)
    default = api.ok("PUT", "/settings/default-role", {"role": "Team Member"}, 202)["held"]
    assert default["kind"] == "default_role"
    assert api.ok("GET", "/settings/default-role")["role"] is None
    assert all(roles_of(session, u) == {} for u in users)
    gone = assert_error(api.post(f"/held-changes/{edited['id']}/confirm"), 409, "conflict")
    assert "was deleted" in gone
    assert api.ok("GET", f"/held-changes/{edited['id']}")["status"] == "held"
    api.ok("POST", f"/held-changes/{default['id']}/confirm")
    assert api.ok("GET", "/settings/default-role")["role"] == "team_member"
    assert all(roles_of(session, u) == {"*": "team_member"} for u in users)


def test_guard_window_settings(api: Api) -> None:
    updated = api.ok(
        "PUT", "/settings/guard", {"window_minutes": 5, "max_new_paid_seats_in_window": 20}
    )
    assert (updated["window_minutes"], updated["max_new_paid_seats_in_window"]) == (5, 20)
    assert api.ok("GET", "/settings/guard") == updated
    assert_error(api.put("/settings/guard", {"window_minutes": -1}), 400, "invalid_change")
    assert_error(api.put("/settings/guard", {"window_minutes": "5"}), 400, "invalid_request")
    assert api.ok("GET", "/settings/guard") == updated


def test_dry_run_during_a_hold_counts_only_what_would_apply(
    api: Api, service: ProvisioningService
) -> None:
    users = people(service, "Everyone", 3)
    api.ok("PUT", "/settings/guard", {"max_new_paid_seats": 1})
    result = api.ok(
        "POST", "/dry-run", {"add_rules": [{"group": "Everyone", "role": "Team Member"}]}
    )
    assert result["totals"]["after"] == result["totals"]["before"]
    assert result["changed_users"] == 0
    held = {u["userName"]: u for u in result["held"]}
    assert set(held) == {u.user_name for u in users}
    assert all(u["paid_seat"] for u in held.values())
    assert held[users[0].user_name]["roles"] == [
        {"project": "*", "before": None, "after": "team_member", "change": "added"}
    ]
