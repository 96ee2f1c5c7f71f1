"""What Okta and Microsoft Entra ID actually send, replayed as sent."""

from __future__ import annotations

from scim.discovery import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, USER_SCHEMA
from tests.support import ScimClient

ENTERPRISE = ENTERPRISE_USER_SCHEMA


def patch_body(*operations: dict) -> dict:  # type: ignore[type-arg]
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


# ----------------------------------------------------------------- Okta


def test_okta_user_lifecycle(scim: ScimClient) -> None:
    lookup = scim.get(
        '/Users?filter=userName eq "dade.murphy@acme.example"&startIndex=1&count=100',
        content_type="application/json",
    )
    assert lookup.status_code == 200 and lookup.json["totalResults"] == 0
    create = {
        "schemas": [USER_SCHEMA],
        "userName": "dade.murphy@acme.example",
        "name": {"givenName": "Dade", "familyName": "Murphy"},
        "emails": [{"primary": True, "value": "dade.murphy@acme.example", "type": "work"}],
        "displayName": "Dade Murphy",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    created = scim.request("POST", "/Users", create, content_type="application/json")
    assert created.status_code == 201
    user_id = created.json["id"]
    assert (
        scim.get('/Users?filter=userName eq "dade.murphy@acme.example"').json["Resources"][0]["id"]
        == user_id
    )
    put = {**create, "id": user_id, "name": {"givenName": "Dade", "familyName": "Murphy-Okta"}}
    put.pop("password")
    updated = scim.request("PUT", f"/Users/{user_id}", put, content_type="application/json")
    assert updated.status_code == 200
    assert updated.json["name"]["familyName"] == "Murphy-Okta"
    deactivate = patch_body({"op": "replace", "value": {"active": False}})
    off = scim.request("PATCH", f"/Users/{user_id}", deactivate, content_type="application/json")
    assert off.status_code == 200 and off.json["active"] is False
    reactivate = patch_body({"op": "replace", "value": {"active": True}})
    assert scim.patch(f"/Users/{user_id}", reactivate).json["active"] is True


def test_okta_group_push(scim: ScimClient) -> None:
    a = scim.create_user("a@acme.example")
    b = scim.create_user("b@acme.example")
    group = scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": []}
    ).json
    rename = patch_body({"op": "replace", "value": {"id": group["id"], "displayName": "Renamed"}})
    assert scim.patch(f"/Groups/{group['id']}", rename).status_code == 204
    add = patch_body(
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": a["id"], "display": "a@acme.example"},
                {"value": b["id"], "display": "b@acme.example"},
            ],
        }
    )
    assert scim.patch(f"/Groups/{group['id']}", add).status_code == 204
    remove = patch_body({"op": "remove", "path": f'members[value eq "{a["id"]}"]'})
    assert scim.patch(f"/Groups/{group['id']}", remove).status_code == 204
    fetched = scim.get(f"/Groups/{group['id']}").json
    assert fetched["displayName"] == "Renamed"
    assert [m["value"] for m in fetched["members"]] == [b["id"]]


# ------------------------------------------------------------- Entra ID


def test_entra_connection_test_filter_matches_nothing(scim: ScimClient) -> None:
    response = scim.get('/Users?filter=userName eq "non-existent user"')
    assert response.status_code == 200 and response.json["totalResults"] == 0
    groups = scim.get('/Groups?excludedAttributes=members&filter=displayName eq "nothing"')
    assert groups.status_code == 200 and groups.json["totalResults"] == 0


def test_entra_user_lifecycle(scim: ScimClient) -> None:
    manager = scim.create_user("boss@acme.example")
    create = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@acme.example",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@acme.example"}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1", "department": "Eng", "manager": manager["id"]},
    }
    user = scim.post("/Users", create).json
    assert user[ENTERPRISE]["manager"]["value"] == manager["id"]
    uid = user["id"]
    ops = patch_body(
        {"op": "Replace", "path": "userName", "value": "renamed@acme.example"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "upd@acme.example"},
        {"op": "Add", "path": "title", "value": "Engineer"},
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "value": {"name.givenName": "Given", f"{ENTERPRISE}:department": "Ops"}},
        {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": manager["id"]}},
    )
    patched = scim.patch(f"/Users/{uid}", ops)
    assert patched.status_code == 200, patched.json
    body = patched.json
    assert body["userName"] == "renamed@acme.example"
    assert body["emails"][0]["value"] == "upd@acme.example"
    assert body["title"] == "Engineer"
    assert body["active"] is False
    assert body["name"]["givenName"] == "Given"
    assert body[ENTERPRISE]["department"] == "Ops"
    assert body[ENTERPRISE]["manager"]["value"] == manager["id"]
    clear = patch_body(
        {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""},
        {"op": "Replace", "path": "title", "value": None},
        {"op": "Replace", "path": "active", "value": "True"},
    )
    cleared = scim.patch(f"/Users/{uid}", clear).json
    assert "manager" not in cleared.get(ENTERPRISE, {})
    assert "title" not in cleared
    assert cleared["active"] is True
    disabled = scim.patch(
        f"/Users/{uid}", patch_body({"op": "replace", "path": "active", "value": "False"})
    )
    assert disabled.status_code == 200
    found = scim.get(f'/Users?filter=externalId eq "{create["externalId"]}"').json
    assert found["totalResults"] == 1 and found["Resources"][0]["active"] is False


def test_entra_booleans_as_strings_inside_complex_values(scim: ScimClient) -> None:
    user = scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "bools@acme.example",
            "active": "True",
            "emails": [{"value": "b@acme.example", "type": "work", "primary": "True"}],
        },
    ).json
    assert user["active"] is True and user["emails"][0]["primary"] is True


def test_entra_attribute_names_in_any_case(scim: ScimClient) -> None:
    user = scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "USERNAME": "case@acme.example", "DisplayName": "Case"}
    ).json
    assert user["userName"] == "case@acme.example" and user["displayName"] == "Case"
    patched = scim.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "replace", "path": "DISPLAYNAME", "value": "Upper"}),
    )
    assert patched.json["displayName"] == "Upper"
    assert scim.get('/Users?filter=USERNAME eq "CASE@acme.example"').json["totalResults"] == 1


def test_entra_group_lifecycle(scim: ScimClient) -> None:
    users = [scim.create_user(f"m{i}@acme.example") for i in range(4)]
    created = scim.post(
        "/Groups",
        {
            "schemas": [
                GROUP_SCHEMA,
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1DisplayName",
            "members": [],
        },
    )
    assert created.status_code == 201
    gid = created.json["id"]
    add = patch_body({"op": "Add", "path": "members", "value": [{"value": u["id"]} for u in users]})
    assert scim.patch(f"/Groups/{gid}", add).status_code == 204
    remove = patch_body(
        {
            "op": "Remove",
            "path": "members",
            "value": [{"value": users[0]["id"]}, {"value": users[1]["id"]}],
        }
    )
    assert scim.patch(f"/Groups/{gid}", remove).status_code == 204
    members = {m["value"] for m in scim.get(f"/Groups/{gid}").json["members"]}
    assert members == {users[2]["id"], users[3]["id"]}
    rename = patch_body({"op": "Replace", "path": "displayName", "value": "Renamed"})
    assert scim.patch(f"/Groups/{gid}", rename).status_code == 204
    lean = scim.get(f"/Groups/{gid}?excludedAttributes=members").json
    assert lean["displayName"] == "Renamed" and "members" not in lean
