"""The SCIM PATCH engine (RFC 7644 §3.5.2), rule by rule, then Okta and Entra ID sequences."""

from copy import deepcopy
from typing import Any

import pytest

from scim.discovery import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, USER_SCHEMA
from scim.patch import (
    MemberChanges,
    PatchError,
    PatchOperation,
    PatchOperationName,
    apply_group_patch,
    apply_user_patch,
    parse_operations,
)

ENTERPRISE = ENTERPRISE_USER_SCHEMA
CUSTOM = "urn:example:params:scim:schemas:extension:acme:2.0:User"
WORK = {"value": "ada@work.example", "type": "work", "primary": True}
HOME = {"value": "ada@home.example", "type": "home"}
OTHER = {"value": "Ada@Other.example", "type": "other", "display": "Other"}
NO_CHANGES = MemberChanges()


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def user(extra: dict[str, Any] | None = None, /, **attributes: Any) -> dict[str, Any]:
    """A User document as GET returns it; `extra` holds keys that are not identifiers."""
    document: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": "u-1",
        "userName": "ada@example.com",
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }
    document.update(extra or {})
    document.update(attributes)
    return document


def with_enterprise(enterprise: dict[str, Any], /, **attributes: Any) -> dict[str, Any]:
    return user(
        {"schemas": [USER_SCHEMA, ENTERPRISE], ENTERPRISE: enterprise},
        **attributes,
    )


def group(**attributes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Engineering",
        "meta": {"resourceType": "Group", "version": 'W/"1"'},
    }
    document.update(attributes)
    return document


def operation(op: str, path: str | None, value: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"op": op}
    if path is not None:
        entry["path"] = path
    if op != "remove" or value is not None:
        entry["value"] = value
    return entry


def replace(path: str | None, value: Any) -> dict[str, Any]:
    return operation("replace", path, value)


def add(path: str | None, value: Any) -> dict[str, Any]:
    return operation("add", path, value)


def remove(path: str, value: Any = None) -> dict[str, Any]:
    return operation("remove", path, value)


def patch_error(call: Any, *args: Any) -> PatchError:
    with pytest.raises(PatchError) as caught:
        call(*args)
    return caught.value


# ------------------------------------------------------------------------------ envelope

ENVELOPE_ERRORS = [
    pytest.param({"Operations": [replace("active", False)]}, "invalidSyntax", id="no-schemas"),
    pytest.param(
        {"schemas": [USER_SCHEMA], "Operations": [replace("active", False)]},
        "invalidSyntax",
        id="wrong-schema",
    ),
    pytest.param({"schemas": [PATCH_OP_SCHEMA]}, "invalidSyntax", id="no-operations"),
    pytest.param(body(), "invalidSyntax", id="empty-operations"),
    pytest.param(
        {"schemas": [PATCH_OP_SCHEMA], "Operations": replace("active", False)},
        "invalidSyntax",
        id="operations-not-a-list",
    ),
    pytest.param(body({"path": "active", "value": False}), "invalidSyntax", id="no-op"),
    pytest.param(body({"op": "copy", "path": "active"}), "invalidSyntax", id="unknown-op"),
    pytest.param(
        {"schemas": [PATCH_OP_SCHEMA], "Operations": ["replace"]},
        "invalidSyntax",
        id="operation-not-an-object",
    ),
    pytest.param(body({"op": "add", "path": "title"}), "invalidSyntax", id="add-without-value"),
    pytest.param(body({"op": "remove"}), "noTarget", id="remove-without-path"),
    pytest.param(body(replace(None, "Ada")), "invalidValue", id="pathless-value-not-object"),
    pytest.param(body({"op": "add", "path": 7, "value": 1}), "invalidPath", id="path-not-string"),
]


@pytest.mark.parametrize(("request_body", "scim_type"), ENVELOPE_ERRORS)
def test_malformed_patch_request_is_refused(request_body: dict[str, Any], scim_type: str) -> None:
    error = patch_error(parse_operations, request_body)
    assert error.scim_type == scim_type
    assert error.detail


def test_unknown_op_is_named_in_the_detail() -> None:
    error = patch_error(parse_operations, body({"op": "Move", "path": "title", "value": "x"}))
    assert error.scim_type == "invalidSyntax"
    assert '"Move"' in error.detail


def test_op_names_and_the_operations_key_are_case_insensitive() -> None:
    operations = parse_operations(
        {
            "schemas": [PATCH_OP_SCHEMA],
            "operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "ADD", "path": "title", "value": "Eng"},
                {"op": "Remove", "path": "nickName"},
                {"op": "replace", "path": "", "value": {"displayName": "Ada"}},
            ],
        }
    )
    assert operations == [
        PatchOperation(PatchOperationName.REPLACE, "active", "False"),
        PatchOperation(PatchOperationName.ADD, "title", "Eng"),
        PatchOperation(PatchOperationName.REMOVE, "nickName", None),
        PatchOperation(PatchOperationName.REPLACE, None, {"displayName": "Ada"}),
    ]


# ------------------------------------------------------------------------ users: success

USER_CASES = [
    # Path-less add/replace: each key of the value is an attribute path.
    pytest.param(
        user(active=True),
        [replace(None, {"active": False})],
        user(active=False),
        id="pathless-replace-active",
    ),
    pytest.param(
        user(),
        [replace(None, {"name.givenName": "X", f"{ENTERPRISE}:department": "Y"})],
        with_enterprise({"department": "Y"}, name={"givenName": "X"}),
        id="pathless-dotted-and-urn-keys",
    ),
    pytest.param(
        user(),
        [add(None, {ENTERPRISE: {"costCenter": "42", "DIVISION": "R&D"}})],
        with_enterprise({"costCenter": "42", "division": "R&D"}),
        id="pathless-extension-object",
    ),
    pytest.param(
        with_enterprise({"costCenter": "42"}),
        [replace(None, {ENTERPRISE: {"department": "Y"}})],
        with_enterprise({"costCenter": "42", "department": "Y"}),
        id="pathless-extension-object-keeps-other-extension-attributes",
    ),
    pytest.param(
        user(),
        [replace(None, {"schemas": [USER_SCHEMA], "id": "u-1", "displayName": "Ada"})],
        user(displayName="Ada"),
        id="pathless-ignores-schemas-and-unchanged-id",
    ),
    pytest.param(
        user(),
        [replace(None, {"password": "s3cret", "title": "Engineer"})],
        user(title="Engineer"),
        id="pathless-password-is-dropped",
    ),
    pytest.param(
        user(),
        [replace("password", "s3cret")],
        user(),
        id="password-is-dropped",
    ),
    pytest.param(
        user(name={"givenName": "Ada", "familyName": "Lovelace"}),
        [replace(None, {"name": {"givenName": "Augusta"}})],
        user(name={"givenName": "Augusta"}),
        id="pathless-replace-of-complex-replaces-it",
    ),
    pytest.param(
        user(emails=[HOME]),
        [add(None, {"emails": [{"value": "ada@work.example", "type": "work"}]})],
        user(emails=[HOME, {"value": "ada@work.example", "type": "work"}]),
        id="pathless-add-appends",
    ),
    pytest.param(
        user(emails=[WORK]),
        [replace(None, {'emails[type eq "work"].value': "new@work.example"})],
        user(emails=[WORK | {"value": "new@work.example"}]),
        id="pathless-key-with-value-filter",
    ),
    pytest.param(
        user(),
        [add(None, {CUSTOM: {"badge": "7", "Flags": [1, 2]}})],
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"badge": "7", "Flags": [1, 2]}}),
        id="pathless-unknown-extension-is-kept",
    ),
    pytest.param(
        user(),
        [replace(None, {USER_SCHEMA: {"displayName": "Ada"}})],
        user(displayName="Ada"),
        id="pathless-core-schema-object",
    ),
    # Attribute names are case-insensitive and come out in the schema's spelling.
    pytest.param(
        user(),
        [
            replace("USERNAME", "ADA@example.com"),
            add("Name.GivenName", "Ada"),
            replace(f"{ENTERPRISE.lower()}:EmployeeNumber", "7"),
            add("Emails", [{"Value": "a@x.example", "TYPE": "work"}]),
        ],
        with_enterprise(
            {"employeeNumber": "7"},
            userName="ADA@example.com",
            name={"givenName": "Ada"},
            emails=[{"value": "a@x.example", "type": "work"}],
        ),
        id="names-are-canonicalized",
    ),
    # Simple attributes.
    pytest.param(user(), [add("displayName", "Ada")], user(displayName="Ada"), id="add-simple"),
    pytest.param(
        user(displayName="Ada", title="Eng", nickName="A"),
        [replace("displayName", ""), replace("title", None), remove("nickName")],
        user(),
        id="empty-null-and-remove-clear",
    ),
    pytest.param(
        user(externalId="old"),
        [replace("externalId", "00u1")],
        user(externalId="00u1"),
        id="external-id-is-plain-data",
    ),
    pytest.param(
        user(),
        [replace("id", "u-1")],
        user(),
        id="unchanged-id-is-ignored",
    ),
    # Booleans as strings (Entra ID).
    pytest.param(user(active=True), [replace("active", "False")], user(active=False), id="false"),
    pytest.param(user(active=False), [add("active", "TRUE")], user(active=True), id="true"),
    pytest.param(
        user(),
        [add("emails", [{"value": "a@x.example", "primary": "True"}])],
        user(emails=[{"value": "a@x.example", "primary": True}]),
        id="boolean-inside-complex-value",
    ),
    pytest.param(
        user(emails=[{"value": "a@x.example", "primary": "True"}], active="false"),
        [replace("displayName", "Ada")],
        user(emails=[{"value": "a@x.example", "primary": True}], active=False, displayName="Ada"),
        id="stored-string-booleans-are-normalized",
    ),
    pytest.param(
        user(emails=[{"value": "a@x.example", "primary": "True"}, HOME]),
        [replace("emails[primary eq true].display", "Main")],
        user(emails=[{"value": "a@x.example", "primary": True, "display": "Main"}, HOME]),
        id="boolean-filter-matches-stored-string",
    ),
    # The enterprise manager.
    pytest.param(
        user(),
        [replace(f"{ENTERPRISE}:manager", "m-1")],
        with_enterprise({"manager": {"value": "m-1"}}),
        id="manager-as-bare-id",
    ),
    pytest.param(
        user(),
        [add(f"{ENTERPRISE}:manager", {"Value": "m-1", "displayName": "Grace"})],
        with_enterprise({"manager": {"value": "m-1"}}),
        id="manager-as-object-drops-read-only-display-name",
    ),
    pytest.param(
        with_enterprise({"manager": {"value": "m-1", "displayName": "Grace"}}),
        [replace(f"{ENTERPRISE}:manager.value", "m-2")],
        with_enterprise({"manager": {"value": "m-2", "displayName": "Grace"}}),
        id="manager-value-sub-attribute",
    ),
    pytest.param(
        with_enterprise({"manager": {"value": "m-1"}}),
        [replace(f"{ENTERPRISE}:manager", "")],
        user(),
        id="manager-empty-string-clears-and-drops-extension",
    ),
    pytest.param(
        with_enterprise({"manager": {"value": "m-1"}, "department": "R&D"}),
        [replace(f"{ENTERPRISE}:manager", None)],
        with_enterprise({"department": "R&D"}),
        id="manager-null-clears",
    ),
    pytest.param(
        with_enterprise({"manager": {"value": "m-1"}, "department": "R&D"}),
        [replace(f"{ENTERPRISE}:manager", {"value": ""})],
        with_enterprise({"department": "R&D"}),
        id="manager-empty-value-clears",
    ),
    pytest.param(
        with_enterprise({"manager": {"value": "m-1"}}),
        [{"op": "Remove", "path": f"{ENTERPRISE}:manager", "value": [{"value": "m-1"}]}],
        user(),
        id="manager-remove-with-value",
    ),
    # Complex single-valued attributes.
    pytest.param(
        user(name={"givenName": "Ada"}),
        [add("name", {"familyName": "Lovelace"})],
        user(name={"givenName": "Ada", "familyName": "Lovelace"}),
        id="add-complex-merges",
    ),
    pytest.param(
        user(name={"givenName": "Ada", "middleName": "B"}),
        [add("name", {"familyName": "Lovelace", "middleName": None})],
        user(name={"givenName": "Ada", "familyName": "Lovelace"}),
        id="add-complex-null-sub-attribute-clears-it",
    ),
    pytest.param(
        user(name={"givenName": "Ada"}),
        [replace("name", {"familyName": "Lovelace"})],
        user(name={"familyName": "Lovelace"}),
        id="replace-complex-replaces",
    ),
    pytest.param(
        user(name={"givenName": "Ada", "familyName": "Lovelace"}),
        [replace("name.givenName", "Augusta"), remove("name.familyName")],
        user(name={"givenName": "Augusta"}),
        id="sub-attribute-set-and-remove",
    ),
    pytest.param(
        user(name={"givenName": "Ada"}),
        [remove("name.givenName")],
        user(),
        id="removing-last-sub-attribute-removes-complex",
    ),
    pytest.param(user(name={"givenName": "Ada"}), [remove("name")], user(), id="remove-complex"),
    # Multi-valued attributes without a filter.
    pytest.param(
        user(emails=[HOME]),
        [add("emails", [HOME, {"value": "ada@work.example", "type": "work"}])],
        user(emails=[HOME, {"value": "ada@work.example", "type": "work"}]),
        id="add-appends-and-dedupes",
    ),
    pytest.param(
        user(emails=[HOME]),
        [add("emails", {"value": "ada@work.example", "type": "work"})],
        user(emails=[HOME, {"value": "ada@work.example", "type": "work"}]),
        id="add-single-object",
    ),
    pytest.param(
        user(emails=[WORK, HOME]),
        [replace("emails", [OTHER])],
        user(emails=[OTHER]),
        id="replace-replaces-list",
    ),
    pytest.param(user(emails=[WORK]), [replace("emails", [])], user(), id="replace-empty-list"),
    pytest.param(user(emails=[WORK, HOME]), [remove("emails")], user(), id="remove-list"),
    pytest.param(
        user(roles=[{"value": "admin"}, {"value": "viewer"}]),
        [{"op": "Remove", "path": "roles", "value": [{"value": "ADMIN"}]}],
        user(roles=[{"value": "viewer"}]),
        id="remove-with-value-removes-those-values",
    ),
    # Multi-valued attributes with a value filter.
    pytest.param(
        user(emails=[WORK, HOME]),
        [replace('emails[type eq "work"].value', "new@work.example")],
        user(emails=[WORK | {"value": "new@work.example"}, HOME]),
        id="replace-filtered-sub-attribute",
    ),
    pytest.param(
        user(emails=[WORK, HOME]),
        [add('emails[type eq "work"]', {"display": "Work"})],
        user(emails=[WORK | {"display": "Work"}, HOME]),
        id="add-filtered-merges",
    ),
    pytest.param(
        user(emails=[WORK, HOME]),
        [replace('emails[type eq "home"]', {"value": "new@home.example", "type": "home"})],
        user(emails=[WORK, {"value": "new@home.example", "type": "home"}]),
        id="replace-filtered-replaces-element",
    ),
    pytest.param(
        user(addresses=[{"type": "work", "locality": "Paris"}, {"type": "home"}]),
        [replace('addresses[type eq "work"].locality', "London")],
        user(addresses=[{"type": "work", "locality": "London"}, {"type": "home"}]),
        id="replace-filtered-address-locality",
    ),
    pytest.param(
        user(emails=[WORK, HOME]),
        [remove('emails[type eq "home"]')],
        user(emails=[WORK]),
        id="remove-filtered",
    ),
    pytest.param(
        user(emails=[WORK, HOME]),
        [remove('emails[type eq "fax"]')],
        user(emails=[WORK, HOME]),
        id="remove-filtered-no-match-is-no-op",
    ),
    pytest.param(
        user(emails=[OTHER]),
        [remove('emails[type eq "other"].display')],
        user(emails=[{"value": "Ada@Other.example", "type": "other"}]),
        id="remove-filtered-sub-attribute",
    ),
    # Entra ID quirk: a replace or add through an eq filter that matches nothing creates it.
    pytest.param(
        user(emails=[HOME]),
        [replace('emails[type eq "work"].value', "ada@work.example")],
        user(emails=[HOME, {"type": "work", "value": "ada@work.example"}]),
        id="entra-replace-creates-missing-work-email",
    ),
    pytest.param(
        user(),
        [{"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555"}],
        user(phoneNumbers=[{"type": "mobile", "value": "+1 555"}]),
        id="entra-add-creates-missing-phone",
    ),
    # RFC 7643 §2.4: one primary value.
    pytest.param(
        user(emails=[WORK, HOME]),
        [add("emails", [{"value": "new@x.example", "primary": True}])],
        user(
            emails=[
                {k: v for k, v in WORK.items() if k != "primary"},
                HOME,
                {"value": "new@x.example", "primary": True},
            ]
        ),
        id="new-primary-demotes-the-others",
    ),
    pytest.param(
        user(emails=[WORK, HOME]),
        [replace('emails[type eq "home"].primary', "True")],
        user(emails=[{k: v for k, v in WORK.items() if k != "primary"}, HOME | {"primary": True}]),
        id="primary-through-filter-demotes-the-others",
    ),
    # Extensions we have no schema for are kept verbatim.
    pytest.param(
        user(),
        [replace(f"{CUSTOM}:badge", "9")],
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"badge": "9"}}),
        id="unknown-extension-attribute-is-stored",
    ),
    pytest.param(
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"badge": "9"}}),
        [remove(f"{CUSTOM}:badge")],
        user(),
        id="unknown-extension-emptied-is-dropped",
    ),
    pytest.param(
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"tags": [{"k": "a"}, {"k": "b"}]}}),
        [remove(f'{CUSTOM}:tags[k eq "A"]')],
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"tags": [{"k": "b"}]}}),
        id="unknown-extension-filter",
    ),
    pytest.param(
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"levels": [{"rank": 9}, {"rank": 12}]}}),
        [remove(f"{CUSTOM}:levels[rank ge 10]")],
        user({"schemas": [USER_SCHEMA, CUSTOM], CUSTOM: {"levels": [{"rank": 9}]}}),
        id="unknown-extension-numeric-filter",
    ),
    pytest.param(
        with_enterprise({"department": "R&D"}),
        [remove(ENTERPRISE)],
        user(),
        id="remove-whole-extension",
    ),
]


@pytest.mark.parametrize(("document", "operations", "expected"), USER_CASES)
def test_user_patch(
    document: dict[str, Any], operations: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    assert apply_user_patch(document, body(*operations)) == expected


USER_ERRORS = [
    pytest.param(user(), [replace("nickname2", "x")], "invalidPath", id="unknown-core-attribute"),
    pytest.param(
        user(), [replace(f"{ENTERPRISE}:badge", "x")], "invalidPath", id="unknown-enterprise"
    ),
    pytest.param(
        user(), [add(None, {ENTERPRISE: {"badge": "x"}})], "invalidPath", id="unknown-in-object"
    ),
    pytest.param(user(), [replace("name.nick", "x")], "invalidPath", id="unknown-sub-attribute"),
    pytest.param(user(), [replace("displayName.x", "x")], "invalidPath", id="sub-of-simple"),
    pytest.param(user(), [replace('emails[type eq "w"', "x")], "invalidPath", id="unclosed-filter"),
    pytest.param(user(), [replace("emails..value", "x")], "invalidPath", id="malformed-path"),
    pytest.param(
        user(), [replace('name[givenName eq "a"]', {})], "invalidPath", id="filter-on-single"
    ),
    pytest.param(
        user(), [replace(f"{GROUP_SCHEMA}:displayName", "x")], "invalidPath", id="group-schema"
    ),
    pytest.param(user(), [add("members", [{"value": "u"}])], "invalidPath", id="members-on-user"),
    pytest.param(
        user(emails=[WORK]), [remove('emails[type xx "work"]')], "invalidFilter", id="bad-operator"
    ),
    pytest.param(
        user(emails=[WORK]),
        [remove('emails[kind eq "work"]')],
        "invalidFilter",
        id="filter-unknown",
    ),
    pytest.param(
        user(emails=[WORK]), [remove("emails[primary gt true]")], "invalidFilter", id="gt-boolean"
    ),
    pytest.param(
        user(emails=[WORK]), [remove('emails[primary eq "yes"]')], "invalidFilter", id="bad-bool"
    ),
    # Value filters are read by the listing filters' parser (scim/filter_parser.py), with its
    # limits and its strict string escapes (RFC 7159 §7).
    pytest.param(
        user(emails=[WORK]), [remove(r'emails[value eq "a\q"]')], "invalidFilter", id="bad-escape"
    ),
    pytest.param(
        user(emails=[WORK]),
        [remove(f'emails[value eq "{"x" * 5000}"]')],
        "invalidFilter",
        id="overlong-filter",
    ),
    pytest.param(user(), [replace(None, {"id": "u-2"})], "mutability", id="pathless-other-id"),
    pytest.param(user(), [replace("id", "u-2")], "mutability", id="other-id"),
    pytest.param(user(), [remove("id")], "mutability", id="remove-id"),
    pytest.param(user(), [replace("meta.version", 'W/"2"')], "mutability", id="meta"),
    pytest.param(user(), [replace(None, {"meta": {}})], "mutability", id="pathless-meta"),
    pytest.param(user(), [add("groups", [{"value": "g-1"}])], "mutability", id="groups"),
    pytest.param(
        user(),
        [replace(f"{ENTERPRISE}:manager.displayName", "G")],
        "mutability",
        id="read-only-sub",
    ),
    pytest.param(user(), [replace("schemas", [USER_SCHEMA])], "mutability", id="schemas-path"),
    pytest.param(user(), [replace("active", "yes")], "invalidValue", id="non-boolean-string"),
    pytest.param(user(), [replace("active", 1)], "invalidValue", id="non-boolean-number"),
    pytest.param(
        user(),
        [add("emails", [{"value": "a", "primary": "maybe"}])],
        "invalidValue",
        id="bad-primary",
    ),
    pytest.param(
        user(),
        [add("emails", [{"value": "a", "primary": True}, {"value": "b", "primary": True}])],
        "invalidValue",
        id="two-primaries",
    ),
    pytest.param(
        user(), [replace("displayName", {"x": 1})], "invalidValue", id="object-for-string"
    ),
    pytest.param(user(), [replace("name", 5)], "invalidValue", id="number-for-complex"),
    pytest.param(
        user(emails=[HOME]),
        [replace('emails[type eq "work"]', {"value": "a@x.example"})],
        "noTarget",
        id="replace-filter-no-match",
    ),
    pytest.param(
        user(emails=[HOME]),
        [replace('emails[value co "work"].display', "W")],
        "noTarget",
        id="replace-non-eq-filter-no-match",
    ),
    pytest.param(user(), [replace("emails.display", "W")], "noTarget", id="sub-of-empty-list"),
]


def test_unknown_sub_attributes_inside_values_are_ignored() -> None:
    # Be liberal in what a real client sends (issue #16): only a path naming one is refused.
    patched = apply_user_patch(
        user(),
        body(
            replace("name", {"givenName": "Ada", "nick": "x"}),
            add("emails", [{"value": "ada@example.com", "kind": "x", "primary": True}]),
        ),
    )
    assert patched["name"] == {"givenName": "Ada"}
    assert patched["emails"] == [{"value": "ada@example.com", "primary": True}]


@pytest.mark.parametrize(("document", "operations", "scim_type"), USER_ERRORS)
def test_user_patch_error(
    document: dict[str, Any], operations: list[dict[str, Any]], scim_type: str
) -> None:
    error = patch_error(apply_user_patch, document, body(*operations))
    assert error.scim_type == scim_type


# --------------------------------------------------------------------------- value filters

FILTERED = [
    ('type eq "WORK"', [HOME, OTHER]),
    ('type ne "work"', [WORK]),
    ('value co "HOME"', [WORK, OTHER]),
    ('value sw "ADA@"', []),
    ('value ew ".example"', []),
    ("display pr", [WORK, HOME]),
    ('type gt "other"', [HOME, OTHER]),
    ('type ge "other"', [HOME]),
    ('type lt "other"', [WORK, OTHER]),
    ('type le "other"', [WORK]),
    ('type eq "work" or type eq "home"', [OTHER]),
    ('value co "ada" and type eq "home"', [WORK, OTHER]),
    ('not (type eq "work")', [WORK]),
    ("primary eq true", [HOME, OTHER]),
    ("primary eq True", [HOME, OTHER]),
    ("primary ne true", [WORK]),
    ('emails.type eq "home"', [WORK, OTHER]),
    # "and" binds tighter than "or" (RFC 7644 §3.4.2.2): home, or (work and a value no one has).
    ('type eq "home" or type eq "work" and value eq "nobody"', [WORK, OTHER]),
    # A quote inside a value is escaped as in JSON.
    (r'display eq "Other" and value ne "a\"b"', [WORK, HOME]),
]


@pytest.mark.parametrize(("value_filter", "remaining"), FILTERED)
def test_remove_selects_values_with_filter(
    value_filter: str, remaining: list[dict[str, Any]]
) -> None:
    document = user(emails=[WORK, HOME, OTHER])
    patched = apply_user_patch(document, body(remove(f"emails[{value_filter}]")))
    assert patched.get("emails", []) == remaining


def test_filter_respects_case_exact_sub_attributes() -> None:
    # photos.value is a caseExact reference (RFC 7643 §4.1.2).
    upper, lower = {"value": "https://x.example/A.png"}, {"value": "https://x.example/a.png"}
    document = user(photos=[upper, lower])
    patched = apply_user_patch(document, body(remove('photos[value eq "https://x.example/a.png"]')))
    assert patched["photos"] == [upper]


# ------------------------------------------------------------------------------- groups

GROUP_CASES = [
    pytest.param(
        group(),
        [replace(None, {"id": "g-1", "displayName": "New"})],
        group(displayName="New"),
        NO_CHANGES,
        id="okta-pathless-replace-with-own-id",
    ),
    pytest.param(
        group(),
        [add("members", [{"value": "u1", "display": "Ada"}, {"value": "u2"}, {"value": "u1"}])],
        group(),
        MemberChanges(added=("u1", "u2")),
        id="add-members",
    ),
    pytest.param(
        group(),
        [remove('members[value eq "u1"]')],
        group(),
        MemberChanges(removed=("u1",)),
        id="remove-member-by-filter",
    ),
    pytest.param(
        group(),
        [remove('members[value eq "u1" or value eq "u2"]')],
        group(),
        MemberChanges(removed=("u1", "u2")),
        id="remove-members-by-or-filter",
    ),
    pytest.param(
        group(),
        [remove("members", [{"value": "a"}, {"value": "b"}])],
        group(),
        MemberChanges(removed=("a", "b")),
        id="remove-members-listed-in-value",
    ),
    pytest.param(
        group(),
        [remove("members", [])],
        group(),
        NO_CHANGES,
        id="remove-empty-value-list-removes-nobody",
    ),
    pytest.param(
        group(),
        [remove("members")],
        group(),
        MemberChanges(replaced=()),
        id="remove-all-members",
    ),
    pytest.param(
        group(),
        [
            replace("members", [{"value": "u3"}]),
            add("members", [{"value": "u4"}]),
            remove('members[value eq "u3"]'),
        ],
        group(),
        MemberChanges(replaced=("u4",)),
        id="replace-then-add-and-remove",
    ),
    pytest.param(
        group(),
        [add("members", [{"value": "u1"}]), remove('members[value eq "u1"]')],
        group(),
        MemberChanges(removed=("u1",)),
        id="add-then-remove-cancels-the-add",
    ),
    pytest.param(
        group(),
        [remove('members[value eq "u1"]'), add("members", [{"value": "u1"}])],
        group(),
        MemberChanges(added=("u1",)),
        id="remove-then-add-cancels-the-remove",
    ),
    pytest.param(
        group(),
        [add(None, {"members": [{"value": "u1"}]})],
        group(),
        MemberChanges(added=("u1",)),
        id="pathless-add-members",
    ),
    pytest.param(
        group(),
        [replace(None, {"displayName": "Ops", "members": [{"value": "u9"}]})],
        group(displayName="Ops"),
        MemberChanges(replaced=("u9",)),
        id="pathless-replace-members",
    ),
    pytest.param(
        group(),
        [replace("members", None)],
        group(),
        MemberChanges(replaced=()),
        id="replace-members-with-null",
    ),
    pytest.param(
        group(),
        [add(f"{GROUP_SCHEMA}:members", [{"value": "u1"}]), replace("externalId", "abc")],
        group(externalId="abc"),
        MemberChanges(added=("u1",)),
        id="urn-qualified-members",
    ),
]


@pytest.mark.parametrize(("document", "operations", "expected", "changes"), GROUP_CASES)
def test_group_patch(
    document: dict[str, Any],
    operations: list[dict[str, Any]],
    expected: dict[str, Any],
    changes: MemberChanges,
) -> None:
    assert apply_group_patch(document, body(*operations)) == (expected, changes)


GROUP_ERRORS = [
    pytest.param([remove('members[display eq "Ada"]')], "invalidFilter", id="filter-not-by-value"),
    pytest.param([remove('members[value ne "u1"]')], "invalidFilter", id="filter-not-eq"),
    pytest.param(
        [remove('members[value eq "u1" and type eq "User"]')], "invalidFilter", id="filter-and"
    ),
    pytest.param([remove('members[value eq "u1"].display')], "invalidPath", id="member-sub"),
    pytest.param([add('members[value eq "u1"]', {"value": "u1"})], "invalidPath", id="add-filter"),
    pytest.param([add("members", [{"display": "Ada"}])], "invalidValue", id="member-no-value"),
    pytest.param([add("members", ["u1"])], "invalidValue", id="member-not-object"),
    pytest.param([replace(None, {"id": "g-2"})], "mutability", id="other-id"),
    pytest.param([replace("meta", {})], "mutability", id="meta"),
    pytest.param([replace("password", "x")], "invalidPath", id="password"),
    pytest.param([replace(f"{ENTERPRISE}:department", "x")], "invalidPath", id="enterprise"),
    pytest.param([replace("userName", "x")], "invalidPath", id="user-attribute"),
]


@pytest.mark.parametrize(("operations", "scim_type"), GROUP_ERRORS)
def test_group_patch_error(operations: list[dict[str, Any]], scim_type: str) -> None:
    error = patch_error(apply_group_patch, group(), body(*operations))
    assert error.scim_type == scim_type


# ------------------------------------------------------------------------- atomicity

ATOMIC = [
    pytest.param(
        apply_user_patch,
        user(emails=[WORK], name={"givenName": "Ada"}),
        [replace("name.givenName", "X"), add("emails", [HOME]), replace("active", "nope")],
        id="user",
    ),
    pytest.param(
        apply_group_patch,
        group(),
        [replace("displayName", "Ops"), add("members", [{"value": "u1"}]), remove("id")],
        id="group",
    ),
]


@pytest.mark.parametrize(("apply", "document", "operations"), ATOMIC)
def test_failed_patch_leaves_the_document_untouched(
    apply: Any, document: dict[str, Any], operations: list[dict[str, Any]]
) -> None:
    original = deepcopy(document)
    patch_error(apply, document, body(*operations))
    assert document == original


def test_successful_patch_returns_a_copy() -> None:
    document = user(emails=[WORK], name={"givenName": "Ada"})
    original = deepcopy(document)
    operation = replace("name", {"givenName": "Augusta"})
    patched = apply_user_patch(document, body(operation, add("emails", [HOME])))
    patched["emails"][0]["value"] = "changed"
    patched["name"]["givenName"] = "changed"
    assert document == original
    assert operation["value"] == {"givenName": "Augusta"}


# ------------------------------------------------------------------- IdP sequences


def test_okta_user_deactivation_sequence() -> None:
    document = user(active=True, name={"givenName": "Ada", "familyName": "Lovelace"})
    document = apply_user_patch(document, body(replace(None, {"active": False})))
    assert document["active"] is False
    document = apply_user_patch(
        document, body(replace(None, {"id": "u-1", "active": True, "title": "Engineer"}))
    )
    assert document == user(
        active=True, name={"givenName": "Ada", "familyName": "Lovelace"}, title="Engineer"
    )


def test_members_carrying_unknown_sub_attributes_are_added() -> None:
    # A members entry carrying displayName, an operation with an extra "name" key (issue #16).
    operation = add("members", [{"value": "u1", "displayName": "Ada", "bogus": 1}])
    document, changes = apply_group_patch(group(), body(operation | {"name": "addMember"}))
    assert document == group()
    assert changes == MemberChanges(added=("u1",))


def test_okta_group_push_sequence() -> None:
    document, changes = apply_group_patch(
        group(),
        body(
            replace(None, {"id": "g-1", "displayName": "Engineering Team"}),
            add("members", [{"value": "u1", "display": "ada@example.com"}]),
            add("members", [{"value": "u2", "display": "grace@example.com"}]),
            remove('members[value eq "u3"]'),
        ),
    )
    assert document == group(displayName="Engineering Team")
    assert changes == MemberChanges(added=("u1", "u2"), removed=("u3",))


def test_entra_user_sequence() -> None:
    document = user(emails=[HOME])
    document = apply_user_patch(
        document,
        body(
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ada@work.example"},
            {"op": "Add", "path": "name.givenName", "value": "Ada"},
            {"op": "Replace", "path": "externalId", "value": "ada"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "m-1"},
            {
                "op": "Replace",
                "value": {"name.givenName": "X", f"{ENTERPRISE}:department": "Y"},
            },
        ),
    )
    assert document == with_enterprise(
        {"manager": {"value": "m-1"}, "department": "Y"},
        active=False,
        emails=[HOME, {"type": "work", "value": "ada@work.example"}],
        name={"givenName": "X"},
        externalId="ada",
    )
    document = apply_user_patch(
        document,
        body(
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "m-2"}},
            {"op": "Replace", "path": "active", "value": "True"},
        ),
    )
    assert document[ENTERPRISE]["manager"] == {"value": "m-2"}
    assert document["active"] is True
    document = apply_user_patch(
        document,
        body(
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""},
            {"op": "Remove", "path": f"{ENTERPRISE}:department", "value": [{"value": "Y"}]},
        ),
    )
    assert ENTERPRISE not in document
    assert document["schemas"] == [USER_SCHEMA]


def test_entra_group_sequence() -> None:
    document, changes = apply_group_patch(
        group(),
        body(
            {"op": "Replace", "path": "displayName", "value": "Engineering Team"},
            {
                "op": "Add",
                "path": "members",
                "value": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
            },
            {"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
        ),
    )
    assert document == group(displayName="Engineering Team")
    assert changes == MemberChanges(added=("c",), removed=("a", "b"))
