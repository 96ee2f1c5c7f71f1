"""Users and groups over SCIM: schema, mutability, uniqueness, deprovisioning, tenancy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User
from scim.discovery import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, USER_SCHEMA
from tests.support import ScimClient, ScimResponse, assert_scim_error

FULL_USER = {
    "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, "urn:example:params:scim:schemas:Custom"],
    "userName": "Barbara.Jensen@acme.example",
    "externalId": "bjensen",
    "name": {
        "formatted": "Ms. Barbara J Jensen III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III",
    },
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "password": "t1meMa$heen",
    "emails": [
        {"value": "bjensen@acme.example", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
    "addresses": [
        {
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "primary": True,
        }
    ],
    "photos": [
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}
    ],
    "roles": [{"value": "Project Administrator"}],
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
    "groups": [{"value": "should-be-ignored"}],
    "id": "client-chosen-id",
    "meta": {"resourceType": "User", "version": 'W/"77"'},
    ENTERPRISE_USER_SCHEMA: {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    },
    "urn:example:params:scim:schemas:Custom": {"badge": "X-1", "floors": [1, 2]},
}


def test_full_user_round_trips_and_server_assigns_id_and_meta(scim: ScimClient) -> None:
    created = scim.post("/Users", FULL_USER)
    assert created.status_code == 201
    user = created.json
    assert user["id"] != "client-chosen-id"
    assert created.headers["Location"].endswith(f"/Users/{user['id']}")
    assert user["meta"]["resourceType"] == "User" and user["meta"]["version"] != 'W/"77"'
    assert "password" not in user
    assert "groups" not in user
    fetched = scim.get(f"/Users/{user['id']}").json
    for key in (
        "userName",
        "externalId",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "emails",
        "phoneNumbers",
        "addresses",
        "photos",
        "roles",
        "x509Certificates",
    ):
        assert fetched[key] == FULL_USER[key], key
    enterprise = fetched[ENTERPRISE_USER_SCHEMA]
    assert enterprise["employeeNumber"] == "701984"
    assert enterprise["manager"]["value"] == "26118915-6090-4610-87e4-49d8ca9f808d"
    assert fetched["urn:example:params:scim:schemas:Custom"] == {"badge": "X-1", "floors": [1, 2]}
    assert set(fetched["schemas"]) == {
        USER_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
        "urn:example:params:scim:schemas:Custom",
    }


def test_password_is_never_stored(scim: ScimClient, session: Session) -> None:
    user = scim.post("/Users", FULL_USER).json
    row = session.get(User, __import__("uuid").UUID(user["id"]))
    assert row is not None
    assert "t1meMa$heen" not in repr(vars(row))
    events = session.scalars(select(AuditEvent)).all()
    assert all("t1meMa$heen" not in repr((e.before, e.after)) for e in events)


def test_user_name_is_unique_case_insensitively(scim: ScimClient) -> None:
    scim.create_user("Alice@acme.example")
    duplicate = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ALICE@acme.example"})
    assert_scim_error(duplicate, 409, "uniqueness")
    found = scim.get('/Users?filter=userName eq "alice@ACME.example"').json
    assert found["totalResults"] == 1


def test_missing_user_name_and_schemas_are_rejected(scim: ScimClient) -> None:
    assert_scim_error(scim.post("/Users", {"schemas": [USER_SCHEMA]}), 400, "invalidValue")
    assert_scim_error(scim.post("/Users", {"userName": "x"}), 400, "invalidSyntax")
    bad_active = {"schemas": [USER_SCHEMA], "userName": "x", "active": "maybe"}
    assert_scim_error(scim.post("/Users", bad_active), 400, "invalidValue")


def test_roles_sent_over_scim_grant_nothing(scim: ScimClient, session: Session) -> None:
    from app.models import RoleAssignment

    scim.post("/Users", FULL_USER)
    assert session.scalars(select(RoleAssignment)).all() == []


def test_put_replaces_and_ignores_read_only(scim: ScimClient) -> None:
    user = scim.create_user("put@acme.example", title="Old", nickName="Nick")
    body = {
        "schemas": [USER_SCHEMA],
        "userName": "put@acme.example",
        "title": "New",
        "id": "other",
        "meta": {"created": "2000-01-01T00:00:00Z"},
        "groups": [],
    }
    replaced = scim.put(f"/Users/{user['id']}", body).json
    assert replaced["id"] == user["id"]
    assert replaced["title"] == "New"
    assert "nickName" not in replaced
    assert replaced["meta"]["created"] == user["meta"]["created"]


def test_patch_errors(scim: ScimClient) -> None:
    user = scim.create_user("patch@acme.example")
    path = f"/Users/{user['id']}"

    def patch(*ops: dict[str, Any]) -> ScimResponse:
        return scim.patch(path, {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)})

    assert_scim_error(patch({"op": "replace", "path": "nosuch", "value": 1}), 400, "invalidPath")
    assert_scim_error(patch({"op": "replace", "path": "id", "value": "x"}), 400, "mutability")
    assert_scim_error(
        patch({"op": "replace", "path": "meta.created", "value": "x"}), 400, "mutability"
    )
    assert_scim_error(patch({"op": "replace", "path": "groups", "value": []}), 400, "mutability")
    response = patch({"op": "move", "path": "title", "value": "x"})
    assert response.status_code == 400


def test_patch_is_atomic(scim: ScimClient) -> None:
    user = scim.create_user("atomic@acme.example", title="Before")
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [
            {"op": "replace", "path": "title", "value": "After"},
            {"op": "replace", "path": "nosuch", "value": "x"},
        ],
    }
    assert_scim_error(scim.patch(f"/Users/{user['id']}", body), 400, "invalidPath")
    assert scim.get(f"/Users/{user['id']}").json["title"] == "Before"


def test_patch_value_path_and_extension_urn(scim: ScimClient) -> None:
    user = scim.create_user(
        "vp@acme.example",
        emails=[{"value": "vp@acme.example", "type": "work"}, {"value": "h@x.org", "type": "home"}],
    )
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@acme.example"},
            {"op": "add", "path": f"{ENTERPRISE_USER_SCHEMA}:department", "value": "R&D"},
        ],
    }
    patched = scim.patch(f"/Users/{user['id']}", body)
    assert patched.status_code == 200
    emails = {e["type"]: e["value"] for e in patched.json["emails"]}
    assert emails == {"work": "new@acme.example", "home": "h@x.org"}
    assert patched.json[ENTERPRISE_USER_SCHEMA]["department"] == "R&D"
    found = scim.get('/Users?filter=emails[type eq "work" and value eq "NEW@acme.example"]')
    assert found.json["totalResults"] == 1


def test_deactivation_keeps_user_readable_and_filterable(scim: ScimClient) -> None:
    user = scim.create_user("leaver@acme.example")
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    assert scim.patch(f"/Users/{user['id']}", body).json["active"] is False
    assert scim.get(f"/Users/{user['id']}").json["active"] is False
    found = scim.get("/Users?filter=active eq false").json
    assert [r["id"] for r in found["Resources"]] == [user["id"]]


def test_delete_hides_user_and_recreate_relinks(scim: ScimClient, session: Session) -> None:
    user = scim.create_user("gone@acme.example", externalId="ext-gone")
    group = scim.create_group("Team", [user["id"]])
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert_scim_error(scim.get(f"/Users/{user['id']}"), 404)
    assert_scim_error(scim.delete(f"/Users/{user['id']}"), 404)
    assert scim.get('/Users?filter=userName eq "gone@acme.example"').json["totalResults"] == 0
    assert "members" not in scim.get(f"/Groups/{group['id']}").json
    again = scim.create_user("Gone@acme.example", externalId="ext-gone")
    assert again["id"] == user["id"]
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_id == user["id"]).order_by(AuditEvent.id)
    ).all()
    assert (
        actions[0] == "user.created"
        and "user.deleted" in actions
        and actions[-1] == "user.relinked"
    )


def test_recreate_by_external_id_relinks(scim: ScimClient) -> None:
    user = scim.create_user("first@acme.example", externalId="00u-okta-1")
    scim.delete(f"/Users/{user['id']}")
    again = scim.create_user("renamed@acme.example", externalId="00u-okta-1")
    assert again["id"] == user["id"] and again["userName"] == "renamed@acme.example"


def test_a_recreate_never_leaves_two_live_users_with_one_external_id(scim: ScimClient) -> None:
    # Two departed users; the IdP re-creates one's userName with the other's externalId.
    ada = scim.create_user("ada@acme.example", externalId="ext-ada")
    bob = scim.create_user("bob@acme.example", externalId="ext-bob")
    scim.delete(f"/Users/{ada['id']}")
    scim.delete(f"/Users/{bob['id']}")
    # The userName's record is relinked, taking the new externalId...
    back = scim.create_user("ada@acme.example", externalId="ext-bob")
    assert back["id"] == ada["id"] and back["externalId"] == "ext-bob"
    # ...so bob's return with his own externalId is refused, not a second live "ext-bob".
    response = scim.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "bob@acme.example", "externalId": "ext-bob"},
    )
    assert_scim_error(response, 409, "uniqueness")
    live = scim.get('/Users?filter=externalId eq "ext-bob"').json
    assert [r["id"] for r in live["Resources"]] == [ada["id"]]


def test_a_live_users_external_id_is_not_given_to_another(scim: ScimClient) -> None:
    first = scim.create_user("first@acme.example", externalId="00u-1")
    second = scim.create_user("second@acme.example", externalId="00u-2")
    created = scim.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "third@acme.example", "externalId": "00u-1"},
    )
    assert_scim_error(created, 409, "uniqueness")
    replaced = scim.put(
        f"/Users/{second['id']}",
        {"schemas": [USER_SCHEMA], "userName": "second@acme.example", "externalId": "00u-1"},
    )
    assert_scim_error(replaced, 409, "uniqueness")
    assert scim.get(f"/Users/{first['id']}").json["externalId"] == "00u-1"


def test_external_id_is_data_not_a_way_in(scim: ScimClient) -> None:
    user = scim.create_user("ext@acme.example", externalId="abc")
    assert_scim_error(scim.get("/Users/abc"), 404)
    assert scim.get(f"/Users/{user['id']}").json["externalId"] == "abc"


def test_groups_members_display_and_ref(scim: ScimClient) -> None:
    alice = scim.create_user("alice@acme.example")
    bob = scim.create_user("bob@acme.example")
    group = scim.create_group("Engineering", [alice["id"], bob["id"]], externalId="eng-1")
    fetched = scim.get(f"/Groups/{group['id']}").json
    members = {m["value"]: m for m in fetched["members"]}
    assert members[alice["id"]]["display"] == "alice@acme.example"
    assert members[alice["id"]]["$ref"].endswith(f"/Users/{alice['id']}")
    user_groups = scim.get(f"/Users/{alice['id']}").json["groups"]
    assert user_groups == [
        {
            "value": group["id"],
            "$ref": user_groups[0]["$ref"],
            "display": "Engineering",
            "type": "direct",
        }
    ]
    lean = scim.get(f"/Groups/{group['id']}?excludedAttributes=members").json
    assert "members" not in lean and lean["displayName"] == "Engineering"
    listed = scim.get("/Groups?excludedAttributes=members").json["Resources"]
    assert all("members" not in g for g in listed)
    assert scim.get(f'/Groups?filter=members[value eq "{bob["id"]}"]').json["totalResults"] == 1


def test_group_display_name_unique_case_insensitively(scim: ScimClient) -> None:
    scim.create_group("Admins")
    duplicate = scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "ADMINS"})
    assert_scim_error(duplicate, 409, "uniqueness")


def test_nested_groups_are_refused(scim: ScimClient) -> None:
    inner = scim.create_group("Inner")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Outer", "members": [{"value": inner["id"]}]}
    error = assert_scim_error(scim.post("/Groups", body), 400, "invalidValue")
    assert "nested" in error["detail"]
    typed = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Outer",
        "members": [{"value": inner["id"], "type": "Group"}],
    }
    assert_scim_error(scim.post("/Groups", typed), 400, "invalidValue")
    outer = scim.create_group("Outer")
    patch = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": inner["id"]}]}],
    }
    assert_scim_error(scim.patch(f"/Groups/{outer['id']}", patch), 400, "invalidValue")


def test_group_put_replaces_members(scim: ScimClient) -> None:
    a = scim.create_user("a@acme.example")
    b = scim.create_user("b@acme.example")
    group = scim.create_group("G", [a["id"]])
    body = {"schemas": [GROUP_SCHEMA], "displayName": "G2", "members": [{"value": b["id"]}]}
    replaced = scim.put(f"/Groups/{group['id']}", body).json
    assert replaced["displayName"] == "G2"
    assert [m["value"] for m in replaced["members"]] == [b["id"]]


def test_group_delete(scim: ScimClient) -> None:
    group = scim.create_group("Temp")
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert_scim_error(scim.get(f"/Groups/{group['id']}"), 404)


def test_another_organizations_resources_are_invisible(
    scim: ScimClient, other_scim: ScimClient
) -> None:
    mine = scim.create_user("shared@acme.example", externalId="same")
    group = scim.create_group("Mine", [mine["id"]])
    theirs = other_scim.create_user("shared@acme.example", externalId="same")
    assert theirs["id"] != mine["id"]
    for path in (f"/Users/{mine['id']}", f"/Groups/{group['id']}"):
        assert_scim_error(other_scim.get(path), 404)
        assert_scim_error(other_scim.delete(path), 404)
    assert_scim_error(
        other_scim.put(f"/Users/{mine['id']}", {"schemas": [USER_SCHEMA], "userName": "x"}), 404
    )
    for query in (
        'userName eq "shared@acme.example"',
        'externalId eq "same"',
        f'id eq "{mine["id"]}"',
        "userName pr",
        'not (userName eq "x")',
    ):
        found = other_scim.get("/Users", query_string={"filter": query}).json
        assert mine["id"] not in {r["id"] for r in found["Resources"]}, query
    assert other_scim.get("/Groups").json["totalResults"] == 0
    foreign_member = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Steal",
        "members": [{"value": mine["id"]}],
    }
    assert_scim_error(other_scim.post("/Groups", foreign_member), 400, "invalidValue")


def test_put_or_patch_without_active_never_reactivates(scim: ScimClient) -> None:
    user = scim.create_user("quiet@acme.example", active=False)
    assert user["active"] is False
    body = {"schemas": [USER_SCHEMA], "userName": "quiet@acme.example", "title": "X"}
    assert scim.put(f"/Users/{user['id']}", body).json["active"] is False
    remove = {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "active"}]}
    assert scim.patch(f"/Users/{user['id']}", remove).json["active"] is False


def test_patch_extension_object_may_carry_its_schemas_member(scim: ScimClient) -> None:
    user = scim.create_user("ext2@acme.example")
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [
            {
                "op": "add",
                "path": ENTERPRISE_USER_SCHEMA,
                "value": {"schemas": [ENTERPRISE_USER_SCHEMA], "department": "Ops"},
            }
        ],
    }
    patched = scim.patch(f"/Users/{user['id']}", body)
    assert patched.status_code == 200, patched.json
    assert patched.json[ENTERPRISE_USER_SCHEMA]["department"] == "Ops"
