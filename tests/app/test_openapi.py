"""The OpenAPI document of the admin API (/api/v1/openapi.json) kept in step with the routes:
every /api/v1 route documented and every documented operation routed, the document valid
OpenAPI 3.1, each operation's documented token roles what the tokens really get, and real
requests and responses of every operation matching their documented schemas."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import organizations, provisioning
from app.admin import openapi
from app.db import utcnow
from app.delivery.queue import fan_out
from app.models import Organization
from tests.sso.saml_idp import TestIdp, key_pair
from tests.support import ScimClient, admin_token

PREFIX = "/api/v1"
# The URI the document is known by when a schema in it is resolved, "#/components/…" included.
DOCUMENT_URI = "urn:blue:admin-api"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
Operation = tuple[str, str]  # (HTTP method, path template under /api/v1)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(openapi.document_bytes())
    return loaded


def documented(document: dict[str, Any]) -> set[Operation]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def routed(app: Flask) -> set[Operation]:
    """Every method and rule under /api/v1, as an OpenAPI path (`<uuid:id>` is `{id}`)."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule != PREFIX and not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        found |= {
            (method, path) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")
        }
    return found


# ----------------------------------------------------------- in step with the routes


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()
    assert document["servers"] == [{"url": PREFIX}]


def test_every_api_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    missing = sorted(routed(app) - documented(document))
    assert not missing, f"routes missing from app/admin/openapi.json: {missing}"


def test_every_documented_operation_is_a_route(app: Flask, document: dict[str, Any]) -> None:
    gone = sorted(documented(document) - routed(app))
    assert not gone, f"app/admin/openapi.json documents routes that are gone: {gone}"


def test_the_route_comparison_sees_flask_converters_and_every_method(app: Flask) -> None:
    operations = routed(app)
    assert ("PUT", "/contract") in operations and ("PATCH", "/contract") in operations
    assert ("GET", "/rules/{rule_id}") in operations
    assert not any("<" in path for _, path in operations)


def test_the_document_is_served_without_a_token(client: FlaskClient) -> None:
    response = client.get(PREFIX + "/openapi.json")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.json == json.loads(openapi.document_bytes())
    again = client.get(
        PREFIX + "/openapi.json", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


# ------------------------------------------------------------------------ tokens


def roles(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """The token roles an operation names; "public" when it needs no token."""
    requirements = operation.get("security", document["security"])
    if not requirements:
        return {"public"}
    return {role for requirement in requirements for role in requirement["bearerToken"]}


def concrete(path: str) -> str:
    """A documented path with an id that names nothing in every parameter."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_each_operation_takes_the_tokens_it_documents(
    client: FlaskClient,
    session: Session,
    organization: tuple[Organization, str],
    document: dict[str, Any],
) -> None:
    """No token: 401; a SCIM token: 403; an events token reaches only the `events` routes;
    a read-only admin token reads (and dry-runs) but is refused every `admin:write` route."""
    org, scim_secret = organization
    read_only = provisioning.create_token(
        session, org, "auditor", True, organizations.TokenScope.ADMIN
    ).secret
    events = provisioning.create_token(
        session, org, "blue", scope=organizations.TokenScope.EVENTS
    ).secret
    session.commit()
    for method, path in sorted(documented(document)):
        operation = document["paths"][path][method.lower()]
        named = roles(document, operation)
        url = PREFIX + concrete(path)

        def call(token: str | None, url: str = url, method: str = method) -> TestResponse:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.open(url, method=method, headers=headers, json={})
            response.get_data()  # a streamed body is read to its end, closing its unit of work
            return response

        where = f"{method} {path}"
        if named == {"public"}:
            assert call(None).status_code == 200, where
            continue
        assert call(None).status_code == 401, where
        assert call(scim_secret).status_code == 403, where
        assert (call(events).status_code == 403) == ("events" not in named), where
        refused = call(read_only)
        if "admin:write" in named:
            assert refused.status_code == 403, where
            assert "read-only" in (refused.json or {})["error"]["detail"], where
        else:
            assert named & {"admin"}, where
            assert refused.status_code not in (401, 403), where


# ------------------------------------------------------------ schemas, really


def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@dataclass
class DocumentedApi:
    """A client with an admin token that checks each exchange against the document: the
    request body against its schema, the status among the documented ones, the body against
    the schema of its status and media type. It remembers which operations it exercised."""

    client: FlaskClient
    token: str
    document: dict[str, Any]
    exercised: set[Operation] = field(default_factory=set)

    def __post_init__(self) -> None:
        resource = DRAFT202012.create_resource(self.document)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)

    def validate(self, pointer: str, value: Any) -> None:
        """`value` against the schema at this JSON pointer of the document."""
        validator = Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#{pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        validator.validate(value)

    def operation(self, method: str, url: str) -> tuple[str, dict[str, Any]]:
        """The documented path and operation a request goes to; literal segments win over
        parameters, as in the router."""
        path = url.split("?")[0].removeprefix(PREFIX)
        candidates = [
            template
            for template, item in self.document["paths"].items()
            if method.lower() in item
            and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path)
        ]
        assert candidates, f"{method} {path} is not documented"
        template = min(candidates, key=lambda t: t.count("{"))
        return template, self.document["paths"][template][method.lower()]

    def response_pointer(self, template: str, method: str, status: str) -> str:
        responses = self.document["paths"][template][method]["responses"]
        assert status in responses, f"{method.upper()} {template} answered {status}, undocumented"
        reference = responses[status].get("$ref")
        if reference is not None:
            return str(reference).removeprefix("#")
        return f"/paths/{escape(template)}/{method}/responses/{status}"

    def call(
        self, method: str, url: str, body: Any = None, status: int = 200, checked: bool = True
    ) -> Any:
        """Send, check both ways, expect `status`; the JSON answer (or None). `checked=False`
        sends a body the document does not allow (to check the error the API answers)."""
        template, operation = self.operation(method, url)
        lower = method.lower()
        if body is not None and checked:
            content = f"/paths/{escape(template)}/{lower}/requestBody/content"
            self.validate(f"{content}/application~1json/schema", body)
        response = self.client.open(
            PREFIX + url.removeprefix(PREFIX),
            method=method,
            headers={"Authorization": f"Bearer {self.token}"},
            json=body,
        )
        assert response.status_code == status, response.get_data(as_text=True)
        pointer = self.response_pointer(template, lower, str(status))
        self.exercised.add((method, template))
        if status == 204:
            assert response.get_data() == b""
            return None
        media = response.mimetype
        assert media in self.resolve(pointer)["content"], f"{method} {url}: {media}"
        if media != "application/json":
            return response.get_data(as_text=True)
        self.validate(f"{pointer}/content/{escape(media)}/schema", response.json)
        return response.json

    def resolve(self, pointer: str) -> dict[str, Any]:
        """The part of the document at this JSON pointer."""
        node: Any = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict)
        return node


@pytest.fixture
def api(
    client: FlaskClient,
    session: Session,
    organization: tuple[Organization, str],
    document: dict[str, Any],
) -> DocumentedApi:
    return DocumentedApi(client, admin_token(session, organization[0]), document)


def test_the_checker_refuses_a_body_that_does_not_match(api: DocumentedApi) -> None:
    """The schema check is not vacuous: a project without its name or with a stray field is
    refused, and so is an error body without its code."""
    template, _ = api.operation("GET", "/projects")
    pointer = api.response_pointer(template, "get", "200") + "/content/application~1json/schema"
    stamp = "2026-01-01T00:00:00+00:00"
    api.validate(pointer, {"projects": [{"key": "web", "name": "Web", "created_at": stamp}]})
    for wrong in (
        {"projects": [{"key": "web", "created_at": "2026-01-01T00:00:00+00:00"}]},
        {"projects": [], "extra": 1},
        {"projects": [{"key": "web", "name": "Web", "created_at": "x", "paid": True}]},
    ):
        with pytest.raises(ValidationError):
            api.validate(pointer, wrong)
    with pytest.raises(ValidationError):
        api.validate("/components/schemas/Error", {"error": {"status": 404, "detail": "x"}})


def directory(scim: ScimClient) -> Iterator[str]:
    """Alice and Bob in Engineering, Carol in no group; yields the user ids."""
    alice = scim.create_user("alice@acme.example")["id"]
    bob = scim.create_user("bob@acme.example")["id"]
    carol = scim.create_user("carol@acme.example")["id"]
    scim.create_group("Engineering", [alice, bob])
    yield from (alice, bob, carol)


def exercise_catalogue(api: DocumentedApi) -> str:
    """Projects, roles, custom roles, rules and settings; returns a rule's id."""
    api.call("GET", "/openapi.json")
    api.call("POST", "/projects", {"key": "web", "name": "Web"}, 201)
    api.call("POST", "/projects", {"key": "web", "colour": "red"}, 400, checked=False)
    api.call("GET", "/projects")
    api.call("GET", "/projects?name=%00", status=400)  # unstorable: refused on any route
    api.call("PATCH", "/projects/web", {"name": "Website"})
    api.call("GET", "/roles")
    api.call("POST", "/custom-roles", {"slug": "lead", "name": "Lead", "rank": 450}, 201)
    api.call("GET", "/custom-roles")
    api.call("PATCH", "/custom-roles/lead", {"description": "leads a team"})
    rule = api.call(
        "POST", "/rules", {"group": "Engineering", "role": "Team Member", "project": "web"}, 201
    )
    api.call("GET", "/rules")
    api.call("GET", f"/rules/{rule['id']}")
    api.call("GET", f"/rules/{uuid.uuid4()}", status=404)
    api.call("PATCH", f"/rules/{rule['id']}", {"priority": 2})
    api.call("PUT", f"/rules/{rule['id']}", {"group": "Engineering", "role": "team_member"})
    api.call("GET", "/settings/default-role")
    api.call("PUT", "/settings/default-role", {"role": "View Only"})
    api.call("GET", "/settings/guard")
    api.call("GET", "/contract")
    api.call("PUT", "/contract", {"paid_seats": 50, "starts_on": "2026-01-01"})
    api.call("PATCH", "/contract", {"policy": "hold", "ends_on": None})
    add = {"group": "Engineering", "role": "Project Administrator", "project": "web"}
    edit = {"id": rule["id"], "role": "Client"}
    proposal = {"add_rules": [add], "edit_rules": [edit], "remove_rules": [], "paid_seats": 1}
    dry = api.call("POST", "/dry-run?limit=10", proposal)
    assert dry["changed_users"] >= 1
    return str(rule["id"])


def exercise_held_changes(api: DocumentedApi, rule_id: str) -> None:
    """A guard that holds any new project admin: a new rule and a rule edit are staged."""
    api.call("PUT", "/settings/guard", {"max_new_project_admins": 0})
    add = {"group": "Engineering", "role": "Project Administrator", "project": "web"}
    staged = api.call("POST", "/rules", add, 202)["held"]
    edited = api.call("PATCH", f"/rules/{rule_id}", {"role": "Project Administrator"}, 202)
    api.call("GET", "/held-changes?status=held")
    api.call("GET", f"/held-changes/{staged['id']}")
    api.call("POST", f"/held-changes/{staged['id']}/confirm")
    api.call("POST", f"/held-changes/{edited['held']['id']}/discard")


def make_drift_and_pending(api: DocumentedApi, scim: ScimClient) -> None:
    """A rule for a group that does not exist, Engineering renamed by the IdP, and a tier of
    one paid seat under `hold`, so that Dave joining waits for a paid seat."""
    api.call("PUT", "/settings/guard", {"max_new_project_admins": 10})
    api.call("POST", "/rules", {"group": "Designers", "role": "client"}, 201)
    api.call("PUT", "/contract", {"paid_seats": 1, "policy": "hold"})
    dave = scim.create_user("dave@acme.example")["id"]
    engineering = scim.get('/Groups?filter=displayName eq "Engineering"').json["Resources"][0]
    rename = {"op": "replace", "path": "displayName", "value": "R&D"}
    join = {"op": "add", "path": "members", "value": [{"value": dave}]}
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
    response = scim.patch(f"/Groups/{engineering['id']}", {**patch, "Operations": [rename, join]})
    assert response.status_code in (200, 204), response.json


def exercise_reports(api: DocumentedApi, alice: str) -> None:
    drift = api.call("GET", "/reports/drift")
    assert drift["missing_rule_groups"] and drift["renamed_rule_groups"]
    assert api.call("GET", "/seats/pending")["users"]
    api.call("GET", "/users/dave@acme.example/access")
    api.call("GET", f"/users/{alice}/access")
    api.call("GET", "/users/alice@acme.example/access")
    api.call("GET", "/seats")
    api.call("GET", "/seats/history?start=2026-01-01")
    api.call("GET", "/seats/pending")
    page = api.call("GET", "/events?limit=2")
    api.call("GET", f"/events?after={page['next_cursor']}")
    page = api.call("GET", "/audit?limit=3&action=role.")
    api.call("GET", f"/audit?cursor={page['next_cursor']}&user=alice@acme.example")
    api.call("GET", "/audit?group=Nobody", status=404)
    for format_ in ("json", "jsonl", "csv"):
        api.call("GET", f"/audit/export?format={format_}")
        api.call("GET", f"/reports/access?format={format_}&project=web")
        api.call("GET", f"/reports/changes?format={format_}")
        api.call("GET", f"/reports/renewal?format={format_}")
        api.call("GET", f"/reports/drift?format={format_}")
    api.call("GET", "/reports/access?as_of=2026-01-01&seat=paid")
    api.call("GET", "/reports/access?seat=gold", status=400)
    api.call("GET", "/audit/verify")


def exercise_webhooks_and_connections(
    api: DocumentedApi, scim: ScimClient, session: Session
) -> None:
    made = api.call("POST", "/webhooks", {"url": "http://localhost:9/hook", "events": None}, 201)
    webhook = made["webhook"]["id"]
    api.call("GET", "/webhooks")
    api.call("GET", f"/webhooks/{webhook}")
    api.call("PATCH", f"/webhooks/{webhook}", {"enabled": False})
    api.call("POST", f"/webhooks/{webhook}/rotate-secret", {"overlap_hours": 1})
    api.call("PATCH", f"/webhooks/{webhook}", {"enabled": True})
    scim.create_user("erin@acme.example")  # an event after the endpoint was made
    fan_out(session, uuid.UUID(webhook), utcnow())
    session.commit()
    deliveries = api.call("GET", "/webhooks/deliveries?limit=5")["deliveries"]
    assert deliveries
    api.call("GET", "/webhooks/deliveries?failed=true")
    api.call("POST", "/webhooks/replay", {"event_id": deliveries[0]["event_id"]})
    api.call("POST", "/webhooks/replay", {"dead": True})
    api.call("POST", "/webhooks/replay", {"event_id": str(uuid.uuid4())}, 404)
    api.call("DELETE", f"/webhooks/{webhook}", status=204)
    idp = TestIdp("https://idp.acme.example/app", key_pair("acme-idp"))
    saml = {"protocol": "saml", "metadata_xml": idp.metadata().decode(), "preset": "okta"}
    connection = api.call("POST", "/connections", saml, 201)["id"]
    api.call("GET", "/connections")
    api.call("GET", f"/connections/{connection}")
    api.call("PATCH", f"/connections/{connection}", {"name": "Okta", "jit": False})
    api.call("POST", f"/connections/{connection}/disable")
    api.call("POST", f"/connections/{connection}/enable")
    api.call("DELETE", f"/connections/{connection}", status=204)


def test_every_operation_answers_as_documented(
    api: DocumentedApi, scim: ScimClient, session: Session, document: dict[str, Any]
) -> None:
    """Every documented operation, called for real: its bodies match the document."""
    alice, *_ = directory(scim)
    rule_id = exercise_catalogue(api)
    exercise_held_changes(api, rule_id)
    make_drift_and_pending(api, scim)
    exercise_reports(api, alice)
    exercise_webhooks_and_connections(api, scim, session)
    for rule in api.call("GET", "/rules")["rules"]:
        api.call("DELETE", f"/rules/{rule['id']}", status=204)
    api.call("DELETE", "/custom-roles/lead", status=204)
    api.call("DELETE", "/projects/web", status=204)
    assert sorted(documented(document) - api.exercised) == []
