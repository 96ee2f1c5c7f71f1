"""Discovery, authentication, errors, versioning, listing, search and bulk over HTTP."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

from app import create_app, provisioning
from app.config import Settings
from scim.discovery import (
    BULK_REQUEST_SCHEMA,
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA,
    USER_SCHEMA,
)
from tests.support import ScimClient, assert_scim_error, make_org, someone_waits_for_a_lock


def test_service_provider_config_is_true_to_the_implementation(scim: ScimClient) -> None:
    response = scim.get("/ServiceProviderConfig")
    assert response.status_code == 200
    config = response.json
    assert config["patch"]["supported"] is True
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["bulk"]["supported"] is True
    assert config["bulk"]["maxOperations"] == 1000
    assert config["changePassword"]["supported"] is False
    assert config["sort"]["supported"] is True
    assert config["etag"]["supported"] is True
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_and_schemas_are_served(scim: ScimClient) -> None:
    types = scim.get("/ResourceTypes").json
    assert {r["name"] for r in types["Resources"]} == {"User", "Group"}
    assert scim.get("/ResourceTypes/User").json["endpoint"] == "/Users"
    schemas = scim.get("/Schemas").json
    assert {s["id"] for s in schemas["Resources"]} == {
        USER_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
        GROUP_SCHEMA,
    }
    assert scim.get(f"/Schemas/{USER_SCHEMA}").json["name"] == "User"
    assert_scim_error(scim.get("/Schemas/urn:nope"), 404)
    assert_scim_error(scim.get("/ResourceTypes/Nope"), 404)


def test_openapi_description_is_served(client: FlaskClient) -> None:
    response = client.get("/scim/v2/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert "/Users/{id}" in document["paths"]


def test_missing_or_bad_token_is_401_with_challenge(client: FlaskClient, scim: ScimClient) -> None:
    missing = client.get("/scim/v2/Users")
    body = assert_scim_error(missing, 401)
    assert "bearer" in body["detail"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/scim/v2/Users", headers={"Authorization": "Bearer blue_scim_nope"})
    assert_scim_error(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = client.get("/scim/v2/Users", headers={"Authorization": "Basic abc"})
    assert_scim_error(basic, 401)


def test_unknown_urls_and_methods_get_scim_errors(scim: ScimClient) -> None:
    assert_scim_error(scim.get("/Nope"), 404)
    assert_scim_error(scim.get("/Users/x/y/z"), 404)
    assert_scim_error(scim.request("PUT", "/Users"), 405)


def test_trailing_slash_and_unknown_query_parameters_are_accepted(scim: ScimClient) -> None:
    scim.create_user("alice@acme.example")
    response = scim.get("/Users/?foo=bar&filter=userName%20eq%20%22alice@acme.example%22")
    assert response.status_code == 200
    assert response.json["totalResults"] == 1


def test_invalid_json_is_invalid_syntax(scim: ScimClient) -> None:
    response = scim.request("POST", "/Users", data="{not json", content_type="application/json")
    assert_scim_error(response, 400, "invalidSyntax")


def test_etag_if_match_and_if_none_match(scim: ScimClient) -> None:
    user = scim.create_user("etag@acme.example")
    path = f"/Users/{user['id']}"
    got = scim.get(path)
    tag = got.headers["ETag"]
    assert tag == user["meta"]["version"]
    assert scim.get(path, headers={"If-None-Match": tag}).status_code == 304
    body = {"schemas": [USER_SCHEMA], "userName": "etag@acme.example", "title": "Dr"}
    stale = scim.put(path, body, headers={"If-Match": 'W/"999"'})
    assert_scim_error(stale, 412)
    fresh = scim.put(path, body, headers={"If-Match": tag})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] != tag
    assert scim.get(path, headers={"If-None-Match": tag}).status_code == 200
    assert_scim_error(scim.delete(path, headers={"If-Match": tag}), 412)


def test_listing_pages_are_stable_and_count_zero_gives_totals(scim: ScimClient) -> None:
    for i in range(5):
        scim.create_user(f"user{i}@acme.example")
    first = scim.get("/Users?startIndex=1&count=2").json
    second = scim.get("/Users?startIndex=3&count=2").json
    third = scim.get("/Users?startIndex=5&count=2").json
    assert first["totalResults"] == 5
    names = [r["userName"] for page in (first, second, third) for r in page["Resources"]]
    assert names == [f"user{i}@acme.example" for i in range(5)]
    assert second["startIndex"] == 3 and second["itemsPerPage"] == 2
    totals = scim.get("/Users?count=0").json
    assert totals["totalResults"] == 5 and totals["Resources"] == []
    assert scim.get("/Users?startIndex=0&count=-1").json["startIndex"] == 1
    assert_scim_error(scim.get("/Users?count=abc"), 400, "invalidValue")


def test_max_results_is_enforced(scim: ScimClient, app: object) -> None:
    from dataclasses import replace

    from flask import Flask

    assert isinstance(app, Flask)
    app.extensions["settings"] = replace(app.extensions["settings"], scim_max_results=2)
    for i in range(3):
        scim.create_user(f"m{i}@acme.example")
    page = scim.get("/Users?count=50").json
    assert page["totalResults"] == 3
    assert page["itemsPerPage"] == 2


def test_sorting(scim: ScimClient) -> None:
    for name in ("carol", "alice", "bob"):
        scim.create_user(f"{name}@acme.example")
    ascending = scim.get("/Users?sortBy=userName").json["Resources"]
    assert [r["userName"][0] for r in ascending] == ["a", "b", "c"]
    descending = scim.get("/Users?sortBy=userName&sortOrder=descending").json["Resources"]
    assert [r["userName"][0] for r in descending] == ["c", "b", "a"]
    assert_scim_error(scim.get("/Users?sortOrder=sideways"), 400)


@pytest.mark.parametrize("sort", ["", "&sortBy=emails&sortOrder=descending", "&sortBy=userName"])
def test_pages_of_a_sorted_listing_follow_the_whole_listing(scim: ScimClient, sort: str) -> None:
    for name in ("dave", "Carol", "alice", "Bob", "eve"):
        scim.create_user(f"{name}@acme.example", emails=[{"value": f"{name}@mail.example"}])
    whole = [r["id"] for r in scim.get(f"/Users?count=10{sort}").json["Resources"]]
    paged = [
        r["id"]
        for start in (1, 3, 5)
        for r in scim.get(f"/Users?startIndex={start}&count=2{sort}").json["Resources"]
    ]
    assert paged == whole and len(whole) == 5
    filtered = scim.get(f'/Users?filter=userName co "e@"&startIndex=2&count=2{sort}').json
    assert filtered["totalResults"] == 3 and filtered["itemsPerPage"] == 2


def test_no_match_is_200_with_zero_results(scim: ScimClient) -> None:
    response = scim.get('/Users?filter=userName eq "nobody@acme.example"')
    assert response.status_code == 200
    assert response.json["totalResults"] == 0
    assert response.json["Resources"] == []


def test_invalid_and_unknown_attribute_filters_are_400(scim: ScimClient) -> None:
    for bad in (
        'nosuchattr eq "x"',
        'not (nosuchattr eq "x")',
        "userName eq",
        "(((",
        'userName zz "a"',
    ):
        assert_scim_error(scim.get("/Users", query_string={"filter": bad}), 400, "invalidFilter")


def test_attributes_and_excluded_attributes(scim: ScimClient) -> None:
    scim.create_user(
        "proj@acme.example",
        name={"givenName": "Pro", "familyName": "Jection"},
        emails=[{"value": "proj@acme.example", "type": "work", "primary": True}],
    )
    only = scim.get("/Users?attributes=userName,name.givenName").json["Resources"][0]
    assert set(only) == {"schemas", "id", "userName", "name"}
    assert only["name"] == {"givenName": "Pro"}
    without = scim.get("/Users?excludedAttributes=emails,meta").json["Resources"][0]
    assert "emails" not in without and "meta" not in without and without["userName"]


def test_search_endpoints(scim: ScimClient) -> None:
    scim.create_user("searcher@acme.example")
    scim.create_group("Searchers")
    body = {"schemas": [SEARCH_REQUEST_SCHEMA], "filter": 'userName sw "search"', "count": 10}
    users = scim.post("/Users/.search", body)
    assert users.status_code == 200 and users.json["totalResults"] == 1
    groups = scim.post(
        "/Groups/.search",
        {"schemas": [SEARCH_REQUEST_SCHEMA], "filter": 'displayName eq "searchers"'},
    )
    assert groups.json["totalResults"] == 1
    everything = scim.post("/.search", {"schemas": [SEARCH_REQUEST_SCHEMA]})
    assert everything.json["totalResults"] == 2
    assert_scim_error(scim.post("/Users/.search", {"filter": "x"}), 400, "invalidSyntax")


def test_bulk_with_bulk_id_references(scim: ScimClient) -> None:
    body = {
        "schemas": [BULK_REQUEST_SCHEMA],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [USER_SCHEMA], "userName": "bulk1@acme.example"},
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {
                    "schemas": [GROUP_SCHEMA],
                    "displayName": "Bulkers",
                    "members": [{"value": "bulkId:u1"}],
                },
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "dup",
                "data": {"schemas": [USER_SCHEMA], "userName": "BULK1@acme.example"},
            },
        ],
    }
    response = scim.post("/Bulk", body)
    assert response.status_code == 200
    results = response.json["Operations"]
    assert [r["status"] for r in results] == ["201", "201", "409"]
    assert results[2]["response"]["scimType"] == "uniqueness"
    group_id = results[1]["location"].rsplit("/", 1)[-1]
    members = scim.get(f"/Groups/{group_id}").json["members"]
    assert members[0]["value"] == results[0]["location"].rsplit("/", 1)[-1]


def test_bulk_fail_on_errors_stops_processing(scim: ScimClient) -> None:
    op = {"method": "POST", "path": "/Users", "data": {"schemas": [USER_SCHEMA]}}
    body = {
        "schemas": [BULK_REQUEST_SCHEMA],
        "failOnErrors": 1,
        "Operations": [{**op, "bulkId": "a"}, {**op, "bulkId": "b"}],
    }
    results = scim.post("/Bulk", body).json["Operations"]
    assert len(results) == 1 and results[0]["status"] == "400"


def test_bulk_limits_are_enforced(scim: ScimClient, app: object) -> None:
    from dataclasses import replace

    from flask import Flask

    assert isinstance(app, Flask)
    app.extensions["settings"] = replace(
        app.extensions["settings"], scim_bulk_max_operations=1, scim_bulk_max_payload_bytes=2000
    )
    op = {"method": "DELETE", "path": "/Users/x"}
    too_many = scim.post("/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [op, op]})
    assert_scim_error(too_many, 413, "tooMany")
    big = {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [op], "pad": "x" * 3000}
    assert_scim_error(scim.post("/Bulk", big), 413, "tooMany")


def test_server_error_has_no_traceback_and_a_request_id(
    scim: ScimClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scim.operations as operations

    def explode(*args: object) -> object:  # fault injection: any unexpected crash
        raise RuntimeError("boom secret detail")

    monkeypatch.setattr(operations, "list_resources", explode)
    response = scim.get("/Users", headers={"X-Request-ID": "req-500"})
    body = assert_scim_error(response, 500)
    assert "req-500" in body["detail"]
    assert "boom" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_read_only_token_reads_but_every_change_is_403(
    client: FlaskClient, session: Session, scim: ScimClient
) -> None:
    from app.models import Organization

    user = scim.create_user("reader@acme.example")
    organization = session.get(Organization, scim.org_id)
    assert organization is not None
    secret = provisioning.create_token(session, organization, "audit", is_read_only=True).secret
    session.commit()
    reader = ScimClient(client, secret, scim.org_id)
    assert reader.get(f"/Users/{user['id']}").status_code == 200
    search = {"schemas": [SEARCH_REQUEST_SCHEMA], "filter": "userName pr"}
    assert reader.post("/Users/.search", search).status_code == 200
    body = {"schemas": [USER_SCHEMA], "userName": "x@acme.example"}
    assert_scim_error(reader.post("/Users", body), 403)
    assert_scim_error(reader.put(f"/Users/{user['id']}", body), 403)
    assert_scim_error(reader.delete(f"/Users/{user['id']}"), 403)
    assert_scim_error(
        reader.post("/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": []}), 403
    )
    assert scim.get(f"/Users/{user['id']}").json["userName"] == "reader@acme.example"


def test_rate_limit_answers_429_with_integer_retry_after(scim: ScimClient, app: object) -> None:
    from dataclasses import replace

    from flask import Flask

    assert isinstance(app, Flask)
    app.extensions["settings"] = replace(app.extensions["settings"], scim_rate_limit=3)
    statuses = [scim.get("/Users?count=0").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = scim.get("/Users?count=0")
    assert_scim_error(limited, 429)
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 60


def test_admin_token_cannot_provision(
    client: FlaskClient, session: Session, scim: ScimClient
) -> None:
    from app.models import Organization
    from tests.support import admin_token

    organization = session.get(Organization, scim.org_id)
    assert organization is not None
    admin = ScimClient(client, admin_token(session, organization), scim.org_id)
    assert_scim_error(admin.get("/Users"), 403)


# ------------------------------------------------------------ reads on PostgreSQL


@pytest.mark.postgresql_only
def test_reads_run_in_autocommit_and_give_back_a_transactional_connection(
    separate_database: Settings,
) -> None:
    # Bound to an engine as in production. Under READ COMMITTED a read's statements each take
    # their own snapshot anyway, so a GET skips BEGIN and COMMIT; writes keep their transaction.
    app = create_app(separate_database)
    engine: Engine = app.extensions["engine"]
    with app.app_context(), app.extensions["sessions"]() as session:
        _, secret = make_org(session, "acme")
    scim = ScimClient(app.test_client(), secret, uuid.uuid4())
    autocommit: dict[str, set[bool]] = {}

    def record(connection: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if "rate_limits" in statement:
            return  # the rate limiter counts in autocommit on every request, by design
        verb = statement.split(None, 1)[0].upper()
        dbapi_connection: Any = connection.connection.dbapi_connection
        autocommit.setdefault(verb, set()).add(dbapi_connection.autocommit)

    event.listen(engine, "before_cursor_execute", record)
    try:
        created = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ada@acme.example"})
        assert created.status_code == 201
        found = scim.get("/Users", query_string={"filter": 'userName eq "ada@acme.example"'})
        assert found.status_code == 200 and found.json["totalResults"] == 1
        assert scim.get(f"/Users/{created.json['id']}").status_code == 200
        assert_scim_error(
            scim.get("/Users", query_string={"filter": "nosuchattr eq 1"}), 400, "invalidFilter"
        )
        renamed = scim.patch(
            f"/Users/{created.json['id']}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
            },
        )
        assert renamed.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert autocommit["SELECT"] == {True, False}  # GETs in autocommit, writes' reads not
    assert autocommit["INSERT"] == autocommit["UPDATE"] == {False}
    # The connection went back to the pool transactional: a write on it rolls back whole.
    with engine.connect() as connection:
        dbapi_connection: Any = connection.connection.dbapi_connection
        assert dbapi_connection.autocommit is False
        connection.execute(text("INSERT INTO audit_heads (chain, seq, hash) VALUES ('x', 0, '')"))
        connection.rollback()
        assert connection.scalar(text("SELECT count(*) FROM audit_heads WHERE chain = 'x'")) == 0
    engine.dispose()


@pytest.mark.postgresql_only
def test_bulk_locks_the_groups_it_changes_in_id_order(separate_database: Settings) -> None:
    # Another transaction that locks the same two groups in id order (another /Bulk, say) holds
    # the first. Changed in request order, last group first, the bulk would hold the last one
    # while waiting for the first, and the other transaction, reaching the last, would deadlock.
    app = create_app(separate_database)
    engine: Engine = app.extensions["engine"]
    with app.app_context(), app.extensions["sessions"]() as session:
        _, secret = make_org(session, "acme")
    scim = ScimClient(app.test_client(), secret, uuid.uuid4())
    created = [scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": n}) for n in "AB"]
    first, last = sorted(uuid.UUID(g.json["id"]) for g in created)
    body = {
        "schemas": [BULK_REQUEST_SCHEMA],
        "Operations": [
            {
                "method": "PATCH",
                "path": f"/Groups/{group_id}",
                "data": {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [
                        {"op": "replace", "path": "externalId", "value": f"x-{group_id}"}
                    ],
                },
            }
            for group_id in (last, first)
        ],
    }
    answers: list[Any] = []
    bulk = threading.Thread(target=lambda: answers.append(scim.post("/Bulk", body)))
    with engine.connect() as other:
        other.execute(text("SET lock_timeout = '5s'"))
        locked = "SELECT id FROM groups WHERE id = :id FOR NO KEY UPDATE"
        other.execute(text(locked), {"id": first})
        bulk.start()
        assert someone_waits_for_a_lock(other)  # the bulk waits for the first group
        other.execute(text(locked), {"id": last})  # free: the bulk has changed nothing yet
        other.commit()
    bulk.join(timeout=30)
    [answer] = answers
    assert answer.status_code == 200
    assert [op["status"] for op in answer.json["Operations"]] == ["204", "204"]
    engine.dispose()
