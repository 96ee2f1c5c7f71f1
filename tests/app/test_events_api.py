"""Blue's event feed, GET /api/v1/events and `blue-provisioning events`: what SCIM traffic
publishes, paged by a cursor that survives a restart, for admin and events-scoped tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import create_app, migrate, organizations, provisioning
from app.config import Settings
from app.models import Organization
from scim.discovery import BULK_REQUEST_SCHEMA, PATCH_OP_SCHEMA, USER_SCHEMA
from tests.app.test_admin_api import Api, assert_error
from tests.support import ScimClient, admin_token, assert_scim_error, make_org


def events_token(session: Session, organization: Organization) -> str:
    secret = provisioning.create_token(
        session, organization, "blue", scope=organizations.TokenScope.EVENTS
    ).secret
    session.commit()
    return secret


@pytest.fixture
def feed(client: FlaskClient, session: Session, organization: tuple[Organization, str]) -> Api:
    """A client with the organization's events-scoped token."""
    return Api(client, events_token(session, organization[0]))


def page(api: Api, query: str = "") -> dict[str, Any]:
    response = api.get(f"/events{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.json or {}
    return body


def test_scim_changes_are_listed_in_order_with_their_state(scim: ScimClient, feed: Api) -> None:
    alice = scim.create_user("alice@acme.example", externalId="okta-1")
    scim.patch(
        f"/Users/{alice['id']}",
        {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    scim.delete(f"/Users/{alice['id']}")
    body = page(feed)
    assert body["has_more"] is False
    assert body["next_cursor"] == "3"
    events = body["events"]
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "user.provisioned"),
        (2, "user.deactivated"),
        (3, "user.deleted"),
    ]
    assert {e["user_id"] for e in events} == {alice["id"]}
    assert {e["org_id"] for e in events} == {str(scim.org_id)}
    assert events[0]["data"]["external_id"] == "okta-1"
    assert (events[1]["data"]["active"], events[1]["data"]["deleted"]) == (False, False)
    assert events[2]["data"]["deleted"] is True
    assert len({e["id"] for e in events}) == 3 and events[0]["timestamp"]


def test_the_cursor_pages_through_the_feed(scim: ScimClient, feed: Api) -> None:
    for n in range(5):
        scim.create_user(f"user{n}@acme.example")
    first = page(feed, "?limit=2")
    assert ([e["seq"] for e in first["events"]], first["has_more"]) == ([1, 2], True)
    second = page(feed, f"?after={first['next_cursor']}&limit=2")
    assert ([e["seq"] for e in second["events"]], second["has_more"]) == ([3, 4], True)
    last = page(feed, f"?after={second['next_cursor']}&limit=2")
    assert ([e["seq"] for e in last["events"]], last["has_more"]) == ([5], False)
    caught_up = page(feed, f"?after={last['next_cursor']}")
    assert (caught_up["events"], caught_up["next_cursor"]) == ([], last["next_cursor"])
    assert len(page(feed)["events"]) == 5  # no cursor: from the beginning, 100 at most


def test_failed_and_unchanging_scim_requests_publish_nothing(scim: ScimClient, feed: Api) -> None:
    alice = scim.create_user("alice@acme.example", name={"givenName": "Alice"})
    assert_scim_error(
        scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ALICE@acme.example"}),
        409,
        "uniqueness",
    )
    same = scim.patch(
        f"/Users/{alice['id']}",
        {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": "Alice"}],
        },
    )
    assert same.status_code == 200
    assert_scim_error(scim.patch(f"/Users/{alice['id']}", {"schemas": [PATCH_OP_SCHEMA]}), 400)
    assert [e["type"] for e in page(feed)["events"]] == ["user.provisioned"]


def test_a_bulk_publishes_its_successful_operations_once_per_user(
    scim: ScimClient, feed: Api
) -> None:
    body = {
        "schemas": [BULK_REQUEST_SCHEMA],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [USER_SCHEMA], "userName": "bulk@acme.example"},
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "dup",
                "data": {"schemas": [USER_SCHEMA], "userName": "BULK@acme.example"},
            },
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [{"op": "replace", "path": "externalId", "value": "e1"}],
                },
            },
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [{"op": "replace", "path": "externalId", "value": "e2"}],
                },
            },
        ],
    }
    response = scim.post("/Bulk", body)
    assert [r["status"] for r in response.json["Operations"]] == ["201", "409", "200", "200"]
    events = page(feed)["events"]
    # The two updates, each in its own savepoint, coalesce into one with the final state.
    assert [(e["seq"], e["type"]) for e in events] == [(1, "user.provisioned"), (2, "user.updated")]
    assert events[1]["data"]["external_id"] == "e2"


# ------------------------------------------------------------------ tokens


def test_admin_and_events_tokens_read_the_feed_and_a_scim_token_may_not(
    client: FlaskClient, session: Session, organization: tuple[Organization, str], feed: Api
) -> None:
    assert page(Api(client, admin_token(session, organization[0])))["events"] == []
    assert page(feed)["events"] == []
    assert_error(Api(client, organization[1]).get("/events"), 403, "forbidden")
    for token in (None, "blue_scim_wrong"):
        assert_error(Api(client, token).get("/events"), 401, "unauthorized")


def test_an_events_token_reaches_nothing_else(
    client: FlaskClient, organization: tuple[Organization, str], feed: Api
) -> None:
    for method, path in [
        ("GET", "/projects"),
        ("GET", "/rules"),
        ("GET", "/contract"),
        ("GET", "/seats"),
        ("GET", "/audit"),
        ("GET", "/connections"),
        ("POST", "/projects"),
    ]:
        assert_error(feed.request(method, path, {} if method == "POST" else None), 403, "forbidden")
    scim = ScimClient(client, feed.token or "", organization[0].id)
    assert_scim_error(scim.get("/Users"), 403)
    assert_scim_error(scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "x@y.z"}), 403)


def test_another_organizations_events_are_not_listed(
    client: FlaskClient, session: Session, scim: ScimClient, feed: Api
) -> None:
    scim.create_user("alice@acme.example")
    globex, secret = make_org(session, "globex")
    ScimClient(client, secret, globex.id).create_user("bob@globex.example")
    assert [e["data"]["user_name"] for e in page(feed)["events"]] == ["alice@acme.example"]
    other = page(Api(client, events_token(session, globex)))
    assert [e["data"]["user_name"] for e in other["events"]] == ["bob@globex.example"]


def test_bad_cursor_or_limit_is_400(feed: Api) -> None:
    for query in ("?after=abc", "?after=-1", "?limit=0", "?limit=1001", "?limit=x"):
        assert_error(feed.get(f"/events{query}"), 400, "invalid_request")
    assert page(feed, "?limit=1000")["events"] == []


# --------------------------------------------------------- across restarts


@pytest.fixture
def own_database(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings of a migrated database whose transactions really commit."""
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        yield request.getfixturevalue("separate_database")
        return
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    migrate.upgrade(url)
    yield replace(settings, database_url=url)


def started(settings: Settings) -> Flask:
    return create_app(settings)


def stopped(app: Flask) -> None:
    app.extensions["engine"].dispose()


def test_the_cursor_survives_a_restart(own_database: Settings) -> None:
    first = started(own_database)
    sessions: sessionmaker[Session] = first.extensions["sessions"]
    with first.app_context(), sessions() as session:
        org, secret = make_org(session, "acme")
        feed_secret = events_token(session, org)
        org_id = org.id
    scim = ScimClient(first.test_client(), secret, org_id)
    for n in range(3):
        scim.create_user(f"before{n}@acme.example")
    cursor = page(Api(first.test_client(), feed_secret), "?limit=2")["next_cursor"]
    stopped(first)

    second = started(own_database)
    ScimClient(second.test_client(), secret, org_id).create_user("after@acme.example")
    rest = page(Api(second.test_client(), feed_secret), f"?after={cursor}")
    assert [(e["seq"], e["data"]["user_name"]) for e in rest["events"]] == [
        (3, "before2@acme.example"),
        (4, "after@acme.example"),
    ]
    stopped(second)


# --------------------------------------------------------------------- CLI


def test_cli_lists_the_feed_and_issues_events_tokens(
    runner: FlaskCliRunner, scim: ScimClient
) -> None:
    for n in range(3):
        scim.create_user(f"user{n}@acme.example")
    result = runner.invoke(args=["events", "--org", "acme", "--after", "1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [e["seq"] for e in body["events"]] == [2, 3]
    assert (body["next_cursor"], body["has_more"]) == ("3", False)
    text = runner.invoke(args=["events", "--org", "acme", "--limit", "1"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "user.provisioned" in lines[0] and lines[-1] == "next cursor: 1 (more after it)"
    bad = runner.invoke(args=["events", "--org", "acme", "--after", "x"])
    assert bad.exit_code == 2 and "--after" in bad.output
    issued = runner.invoke(
        args=["token", "create", "--org", "acme", "--label", "blue", "--scope", "events"]
    )
    assert issued.exit_code == 0, issued.output
    assert issued.output.splitlines()[-1].startswith(organizations.SCOPE_PREFIXES["events"])
