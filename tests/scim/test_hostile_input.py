"""Hostile and careless input answers a clear error in the protocol's own format, never a 500
(issue #16): deep nesting, huge arrays, bodies read only after authentication."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Organization
from app.web import MAX_JSON_ARRAY, MAX_JSON_DEPTH
from tests.support import ScimClient, admin_token, assert_scim_error

DEEP = "[" * 100_000 + "]" * 100_000  # past the C parser's recursion limit: RecursionError


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/Users"),
        ("POST", "/Groups"),
        ("POST", "/Users/.search"),
        ("POST", "/.search"),
        ("POST", "/Bulk"),
        ("PUT", "/Users/00000000-0000-0000-0000-000000000000"),
        ("PATCH", "/Groups/00000000-0000-0000-0000-000000000000"),
    ],
)
def test_deeply_nested_json_is_invalid_syntax_on_every_scim_body(
    scim: ScimClient, method: str, path: str
) -> None:
    response = scim.request(method, path, data=DEEP, content_type="application/scim+json")
    assert_scim_error(response, 400, "invalidSyntax")
    assert "nests deeper" in response.json["detail"]


def test_nesting_up_to_the_limit_is_read_and_one_more_level_is_refused(
    scim: ScimClient,
) -> None:
    body = '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.example",'
    ok = scim.request(
        "POST",
        "/Users",
        data=body + f'"urn:x:ext": {nested(MAX_JSON_DEPTH - 1)}}}',
        content_type="application/scim+json",
    )
    assert ok.status_code in (201, 400)  # read; an unknown extension is the schema's business
    assert "nests deeper" not in str(ok.json)
    deep = scim.request(
        "POST",
        "/Users",
        data=body + f'"urn:x:ext": {nested(MAX_JSON_DEPTH)}}}',
        content_type="application/scim+json",
    )
    assert_scim_error(deep, 400, "invalidSyntax")


def test_an_array_past_the_limit_is_refused(scim: ScimClient) -> None:
    members = ",".join(["1"] * (MAX_JSON_ARRAY + 1))
    body = f'{{"schemas": [], "displayName": "g", "members": [{members}]}}'
    response = scim.request("POST", "/Groups", data=body, content_type="application/scim+json")
    assert_scim_error(response, 400, "invalidSyntax")
    assert "array of more than" in response.json["detail"]


def test_a_scim_body_is_not_read_before_the_token_is_accepted(client: FlaskClient) -> None:
    response = client.post("/scim/v2/Users", data=DEEP, content_type="application/scim+json")
    assert response.status_code == 401
    too_large = client.post(
        "/scim/v2/Users",
        data=b"x" * 2_000_000,
        content_type="application/scim+json",
        headers={"Authorization": "Bearer nope"},
    )
    assert too_large.status_code == 401


def test_deeply_nested_json_is_a_400_on_the_admin_api(
    client: FlaskClient, session: Session, organization: tuple[Organization, str]
) -> None:
    token = admin_token(session, organization[0])
    response = client.post(
        "/api/v1/rules",
        data=DEEP,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "start", ["99999999999999999999999", "2147483648", "-99999999999999999999"]
)
def test_a_huge_start_index_is_an_empty_page(scim: ScimClient, start: str) -> None:
    scim.create_user("someone@acme.example")
    response = scim.get(f"/Users?startIndex={start}")
    assert response.status_code == 200
    expected = 1 if start.startswith("-") else 0
    assert len(response.json["Resources"]) == expected


@pytest.mark.parametrize(
    ("value", "status"), [(1e308, 200), (99999999999999999999999, 200), (1.5, 400), ("x", 400)]
)
def test_search_numbers_are_clamped_or_refused(
    scim: ScimClient, value: object, status: int
) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "startIndex": value,
        "count": value,
    }
    response = scim.post("/Users/.search", body)
    assert response.status_code == status, response.json
    if status == 400:
        assert_scim_error(response, 400)


@pytest.mark.parametrize("until", ["9999-12-31", "0001-01-01", "9999-12-31T23:59:59"])
def test_report_dates_outside_the_calendar_we_serve_are_a_400(
    client: FlaskClient, session: Session, organization: tuple[Organization, str], until: str
) -> None:
    token = admin_token(session, organization[0])
    headers = {"Authorization": f"Bearer {token}"}
    for path in (f"/api/v1/reports/changes?until={until}", f"/api/v1/reports/access?as_of={until}"):
        response = client.get(path, headers=headers)
        assert response.status_code == 400, (path, response.get_data(as_text=True))
        assert response.json is not None and response.json["error"]["code"] == "invalid_request"


UNSTORABLE = ["a\x00b", "a\udcffb"]


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_unstorable_strings_in_a_scim_body_are_refused_naming_the_attribute(
    scim: ScimClient, bad: str
) -> None:
    raw = json.dumps({"schemas": [], "userName": "ok@acme.example", "name": {"givenName": bad}})
    response = scim.request("POST", "/Users", data=raw, content_type="application/scim+json")
    assert_scim_error(response, 400, "invalidValue")
    assert "givenName" in response.json["detail"]
    group = json.dumps({"schemas": [], "displayName": bad})
    response = scim.request("POST", "/Groups", data=group, content_type="application/scim+json")
    assert_scim_error(response, 400, "invalidValue")
    assert "displayName" in response.json["detail"]


def test_unstorable_characters_in_a_filter_are_refused(scim: ScimClient) -> None:
    response = scim.get('/Users?filter=userName eq "a%00b"')
    assert_scim_error(response, 400, "invalidValue")
    assert "filter" in response.json["detail"]
    # Bytes that are not UTF-8 arrive as U+FFFD (storable): an ordinary empty result.
    assert scim.get('/Users?filter=userName eq "a%ED%B3%BFb"').status_code == 200
    search = json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName eq "a\udcffb"',
        }
    )
    response = scim.request(
        "POST", "/Users/.search", data=search, content_type="application/scim+json"
    )
    assert_scim_error(response, 400, "invalidValue")
    assert "filter" in response.json["detail"]


def test_unstorable_strings_on_the_admin_api_and_sso_pages_are_400(
    client: FlaskClient, session: Session, organization: tuple[Organization, str]
) -> None:
    token = admin_token(session, organization[0])
    headers = {"Authorization": f"Bearer {token}"}
    raw = json.dumps({"key": "p\x00", "name": "Project"})
    response = client.post(
        "/api/v1/projects", data=raw, content_type="application/json", headers=headers
    )
    assert response.status_code == 400
    assert response.json is not None and "key" in response.json["error"]["detail"]
    listing = client.get("/api/v1/audit?actor=a%00b", headers=headers)
    assert listing.status_code == 400
    page = client.get("/sso/?email=a%00b@acme.example")
    assert page.status_code == 400
    assert "cannot be stored" in page.get_data(as_text=True)


def test_unknown_sub_attributes_are_ignored_on_post_and_patch(scim: ScimClient) -> None:
    created = scim.create_user(
        "b@acme.example",
        name={"givenName": "B", "bogus": 1},
        emails=[{"value": "b@acme.example", "primary": True, "bogus": 2}],
    )
    assert created["emails"] == [{"value": "b@acme.example", "primary": True}]
    assert created["name"] == {"givenName": "B"}
    group = scim.create_group("Team")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {
                "op": "add",
                "name": "addMember",
                "path": "members",
                "value": [{"value": created["id"], "displayName": "B", "extra": True}],
            }
        ],
    }
    response = scim.patch(f"/Groups/{group['id']}", patch)
    assert response.status_code in (200, 204), response.json
    members = scim.get(f"/Groups/{group['id']}").json["members"]
    assert [m["value"] for m in members] == [created["id"]]
