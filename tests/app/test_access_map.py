"""The access map (issue #16 item 12): every route of the app is walked. Each answers without
credentials only when it is on the public list below; and every route that names a resource
answers 404 to another organization's credentials for this organization's resource. A new
route that is neither authenticated nor listed, or whose id parameter is unknown here, fails."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from app.models import CustomRole, HeldChange, ImportJob, Organization, Project, ScimToken
from app.provisioning import OPERATOR, GroupSpec, ProvisioningService, UserSpec
from tests.console.support import console_link, csrf_token, sign_in_with_link
from tests.sso.saml_flow import add_connection
from tests.sso.saml_idp import TestIdp, key_pair
from tests.support import admin_token, make_org

# Routes anyone may call, and why.
PUBLIC = {
    "health.healthz": "liveness probe",
    "health.readyz": "readiness probe",
    "jwks.get_jwks": "Blue verifies hand-off tokens with these public keys",
    "openapi.get_openapi_document": "the admin API's description",
    "scim.get_openapi": "the SCIM API's description",
    "console.index": "sends a visitor to sign in",
    "console.sign_in": "the console's sign-in page",
    "console.sso_return": "back from the IdP: needs a live SSO session, else sign-in",
    "console.link": "a bootstrap link's page: the secret in the URL is the credential",
    "console.redeem": "a bootstrap link used: the secret in the URL is the credential",
    "static": "Flask's own static folder (the app serves none)",
    "console.static": "styles and scripts",
    "sso.static": "the sign-in pages' styles and scripts",
    "sso.start_page": "the SSO start page",
    "sso.get_session": "answers 401 without a session cookie",
    "sso.logout": "ends this browser's session, if any",
}
# The SSO protocol endpoints: public by nature, authenticated by the protocol (signed
# assertions, state and PKCE), each naming a connection that must exist.
SSO_PROTOCOL = re.compile(r"^/sso/(saml|oidc)/|^/sso/test-sign-in/")
UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def sample_path(rule: Rule, values: dict[str, str]) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:[^:>]+:)?{argument}>", values.get(argument, UNKNOWN_ID), path)
    return path


def methods_of(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def test_every_route_refuses_a_caller_without_credentials(app: Flask, client: FlaskClient) -> None:
    open_routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or SSO_PROTOCOL.match(rule.rule):
            continue
        for method in methods_of(rule):
            response = client.open(sample_path(rule, {}), method=method)
            status = response.status_code
            signed_out = status == 302 and "/console/sign-in" in response.headers["Location"]
            if status not in (400, 401) and not signed_out:
                open_routes.append(f"{method} {rule.rule} -> {status}")
    assert open_routes == []


@pytest.fixture
def acme_ids(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, session: Session, tmp_path: Path
) -> dict[str, str]:
    """One of each resource of acme, by the names routes give their id parameters."""
    organization, _ = make_org(session, "acme")
    service = ProvisioningService(session, organization, OPERATOR)
    user = service.create_user(UserSpec(user_name="ada@acme.example"))
    group = service.create_group(GroupSpec(display_name="Engineers", member_ids=[str(user.id)]))
    session.commit()
    token = admin_token(session, organization)
    api = {"Authorization": f"Bearer {token}"}

    def post(path: str, body: dict[str, Any]) -> Any:
        response = client.post(f"/api/v1{path}", json=body, headers=api)
        assert response.status_code in (200, 201, 202), response.get_data(as_text=True)
        return response.json

    post("/projects", {"key": "web", "name": "Web"})
    post("/custom-roles", {"slug": "lead", "name": "Lead", "rank": 35})
    guard = "/api/v1/settings/guard"
    client.put(guard, json={"max_new_paid_share": 1.0}, headers=api)
    rule = post("/rules", {"group": "Engineers", "role": "team_member"})
    client.put(guard, json={"max_new_project_admins": 0}, headers=api)
    post("/rules", {"group": "Engineers", "role": "project_admin", "project": "web"})
    webhook = post("/webhooks", {"url": "https://blue.example/hooks"})
    idp = TestIdp("https://acme.okta.example/app/blue/exk1", key_pair("acme-idp"))
    connection = add_connection(runner, tmp_path, idp, "--preset", "okta")
    csv = tmp_path / "people.csv"
    csv.write_text("email,givenName,familyName\ngrace@acme.example,Grace,Hopper\n")
    previewed = runner.invoke(args=["import", "users", "--org", "acme", str(csv)])
    assert previewed.exit_code == 0, previewed.output
    job = session.scalars(select(ImportJob).where(ImportJob.org_id == organization.id)).one()
    held = session.scalars(select(HeldChange).where(HeldChange.org_id == organization.id)).one()
    project = session.scalars(select(Project).where(Project.org_id == organization.id)).one()
    role = session.scalars(select(CustomRole).where(CustomRole.org_id == organization.id)).one()
    scim_token = session.scalars(
        select(ScimToken).where(ScimToken.org_id == organization.id, ScimToken.scope == "scim")
    ).one()
    return {
        "resource_id": str(user.id),  # /Users/<id>; groups get their own pass below
        "user_id": str(user.id),
        "reference": str(user.id),
        "group_id": str(group.id),
        "rule_id": str(rule["id"]),
        "held_id": str(held.id),
        "webhook_id": str(webhook["webhook"]["id"]),
        "connection_id": str(connection["id"]),
        "token_id": str(scim_token.id),
        "key": "web",
        "project_id": str(project.id),
        "role_id": str(role.id),
        "job_id": str(job.id),
    }


SCIM_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "Users"): {"schemas": [USER], "userName": "x@globex.example"},
    ("PUT", "Groups"): {"schemas": [GROUP], "displayName": "X"},
    ("PATCH", "Users"): {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "X"}],
    },
    ("PATCH", "Groups"): {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "X"}],
    },
}

# Valid bodies, so that a refusal is about whose resource it is, not about the body.
API_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "admin.rename_project"): {"name": "X"},
    ("PUT", "admin.replace_rule"): {"group": "G", "role": "team_member"},
    ("PATCH", "admin.patch_rule"): {"priority": 1},
    ("PATCH", "webhooks.update_webhook"): {"enabled": False},
    ("PATCH", "admin.update_custom_role"): {"rank": 36},
    ("PATCH", "sso_api.patch_connection"): {"name": "X"},
}

# Id parameters that do not name a resource of one organization.
NOT_RESOURCES = {"filename", "secret", "name", "urn", "report"}


def test_another_organization_never_reaches_this_ones_resources(
    app: Flask, runner: FlaskCliRunner, session: Session, acme_ids: dict[str, str]
) -> None:
    globex: Organization = make_org(session, "globex")[0]
    scim_secret = make_org_token(session, globex)
    headers = {"Authorization": f"Bearer {admin_token(session, globex)}"}
    console = app.test_client()
    sign_in_with_link(console, console_link(runner, "globex", "it@globex.example"))
    token = csrf_token(console)
    group_routes = {"scim.get_group", "scim.patch_group", "scim.replace_group", "scim.delete_group"}
    reached = []
    for rule in app.url_map.iter_rules():
        arguments = set(rule.arguments) - NOT_RESOURCES
        if not arguments or SSO_PROTOCOL.match(rule.rule):
            continue
        unknown = arguments - set(acme_ids)
        assert not unknown, f"{rule.rule}: add {unknown} to the access map's resources"
        values = dict(acme_ids)
        if rule.endpoint in group_routes:
            values["resource_id"] = acme_ids["group_id"]
        path = sample_path(rule, values)
        for method in methods_of(rule):
            if path.startswith("/scim/"):
                response = console.open(
                    path,
                    method=method,
                    headers={"Authorization": f"Bearer {scim_secret}"},
                    json=SCIM_BODIES.get((method, path.split("/")[3])),
                    content_type="application/scim+json",
                )
            elif path.startswith("/api/"):
                body: dict[str, Any] | None = None
                if method in ("POST", "PUT", "PATCH"):
                    body = API_BODIES.get((method, rule.endpoint), {})
                response = console.open(path, method=method, headers=headers, json=body)
            else:
                data = {"csrf_token": token} if method == "POST" else None
                response = console.open(path, method=method, data=data)
            if response.status_code != 404:
                reached.append(f"{method} {path} -> {response.status_code}")
    assert reached == [], "\n".join(reached)


def make_org_token(session: Session, organization: Organization) -> str:
    from app import provisioning

    secret = provisioning.create_token(session, organization, "scim-b").secret
    session.commit()
    return secret
