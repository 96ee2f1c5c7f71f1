import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim import discovery
from scim.discovery import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    attribute_definitions,
    find_attribute,
    resource_types,
    schemas,
    service_provider_config,
)

BASE_URL = "https://blue.example/scim/v2"
OPENAPI_PATH = Path(discovery.__file__).with_name("openapi.json")
CHARACTERISTICS = {
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
}
OPENAPI_PATHS = [
    "/ServiceProviderConfig",
    "/ResourceTypes",
    "/ResourceTypes/{name}",
    "/Schemas",
    "/Schemas/{id}",
    "/Users",
    "/Users/{id}",
    "/Users/.search",
    "/Groups",
    "/Groups/{id}",
    "/Groups/.search",
    "/.search",
    "/Bulk",
    "/openapi.json",
]
COMMON_ATTRIBUTES = {"schemas", "id", "externalId", "meta"}


def all_attributes(attributes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for attribute in attributes:
        yield attribute
        yield from all_attributes(attribute.get("subAttributes", []))


def load_openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


def test_service_provider_config_passes_limits_through() -> None:
    config = service_provider_config(
        BASE_URL, max_results=200, max_operations=50, max_payload_size=1_048_576
    )

    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["bulk"] == {"supported": True, "maxOperations": 50, "maxPayloadSize": 1_048_576}
    assert config["patch"] == {"supported": True}
    assert config["changePassword"] == {"supported": False}
    assert config["sort"] == {"supported": True}
    assert config["etag"] == {"supported": True}
    assert config["documentationUri"].startswith("https://")
    assert config["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE_URL}/ServiceProviderConfig",
    }


def test_service_provider_config_offers_one_primary_bearer_scheme() -> None:
    config = service_provider_config(BASE_URL, max_results=1, max_operations=1, max_payload_size=1)

    [scheme] = config["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken"
    assert scheme["name"] == "OAuth Bearer Token"
    assert scheme["description"]
    assert scheme["primary"] is True


def test_resource_types_reference_published_schemas() -> None:
    published = {schema["id"] for schema in schemas(BASE_URL)}

    types = {resource_type["id"]: resource_type for resource_type in resource_types(BASE_URL)}

    assert set(types) == {"User", "Group"}
    assert types["User"]["endpoint"] == "/Users"
    assert types["Group"]["endpoint"] == "/Groups"
    assert types["User"]["schemaExtensions"] == [
        {"schema": ENTERPRISE_USER_SCHEMA, "required": False}
    ]
    for resource_type in types.values():
        assert resource_type["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]
        assert resource_type["name"] == resource_type["id"]
        assert resource_type["description"]
        assert resource_type["schema"] in published
        for extension in resource_type.get("schemaExtensions", []):
            assert extension["schema"] in published
        assert resource_type["meta"] == {
            "resourceType": "ResourceType",
            "location": f"{BASE_URL}/ResourceTypes/{resource_type['id']}",
        }


def test_schemas_are_user_enterprise_user_and_group_with_absolute_locations() -> None:
    documents = schemas(BASE_URL)

    assert [document["id"] for document in documents] == [
        USER_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
        GROUP_SCHEMA,
    ]
    for document in documents:
        assert document["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
        assert document["name"]
        assert document["description"]
        assert document["meta"] == {
            "resourceType": "Schema",
            "location": f"{BASE_URL}/Schemas/{document['id']}",
        }


@pytest.mark.parametrize("schema_id", [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA])
def test_every_attribute_states_every_characteristic(schema_id: str) -> None:
    for attribute in all_attributes(attribute_definitions(schema_id)):
        assert CHARACTERISTICS <= attribute.keys(), attribute["name"]
        assert (attribute["type"] == "complex") == ("subAttributes" in attribute)
        assert (attribute["type"] == "reference") == ("referenceTypes" in attribute)
        assert attribute["mutability"] in {"readOnly", "readWrite", "immutable", "writeOnly"}
        assert attribute["returned"] in {"always", "never", "default", "request"}
        assert attribute["uniqueness"] in {"none", "server", "global"}


@pytest.mark.parametrize("schema_id", [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA])
def test_common_attributes_are_not_listed_in_schemas(schema_id: str) -> None:
    names = {attribute["name"] for attribute in attribute_definitions(schema_id)}

    assert not names & COMMON_ATTRIBUTES


def test_user_schema_lists_only_what_this_service_implements() -> None:
    names = [attribute["name"] for attribute in attribute_definitions(USER_SCHEMA)]

    assert "ims" not in names
    assert "entitlements" not in names
    assert {"emails", "phoneNumbers", "addresses", "photos", "roles", "x509Certificates"} <= set(
        names
    )


def test_user_name_is_required_case_insensitive_and_unique() -> None:
    user_name = find_attribute(USER_SCHEMA, "userName")

    assert user_name is not None
    assert user_name["required"] is True
    assert user_name["caseExact"] is False
    assert user_name["uniqueness"] == "server"


def test_password_is_write_only_and_never_returned() -> None:
    password = find_attribute(USER_SCHEMA, "password")

    assert password is not None
    assert password["mutability"] == "writeOnly"
    assert password["returned"] == "never"


def test_user_groups_are_read_only() -> None:
    groups = find_attribute(USER_SCHEMA, "groups")

    assert groups is not None
    assert groups["mutability"] == "readOnly"
    assert groups["multiValued"] is True
    assert {sub["name"] for sub in groups["subAttributes"]} == {"value", "$ref", "display", "type"}
    assert all(sub["mutability"] == "readOnly" for sub in groups["subAttributes"])


def test_group_display_name_is_required_and_unique() -> None:
    display_name = find_attribute(GROUP_SCHEMA, "displayName")

    assert display_name is not None
    assert display_name["required"] is True
    assert display_name["caseExact"] is False
    assert display_name["uniqueness"] == "server"


@pytest.mark.parametrize(
    ("sub_name", "mutability"),
    [("value", "immutable"), ("$ref", "immutable"), ("display", "readOnly")],
)
def test_group_member_sub_attribute_mutability(sub_name: str, mutability: str) -> None:
    member_part = find_attribute(GROUP_SCHEMA, "members", sub_name)

    assert member_part is not None
    assert member_part["mutability"] == mutability


def test_manager_display_name_is_read_only() -> None:
    display_name = find_attribute(ENTERPRISE_USER_SCHEMA, "manager", "displayName")

    assert display_name is not None
    assert display_name["mutability"] == "readOnly"


def test_find_attribute_matches_names_case_insensitively() -> None:
    given_name = find_attribute(USER_SCHEMA.upper(), "NAME", "givenname")

    assert given_name is not None
    assert given_name["name"] == "givenName"


def test_find_attribute_returns_none_for_unknown_names() -> None:
    assert find_attribute(USER_SCHEMA, "ims") is None
    assert find_attribute(USER_SCHEMA, "name", "nickname") is None
    assert find_attribute(USER_SCHEMA, "userName", "value") is None
    assert find_attribute("urn:example:unknown", "userName") is None


def test_attribute_definitions_rejects_unknown_schema() -> None:
    with pytest.raises(KeyError):
        attribute_definitions("urn:example:unknown")


def test_returned_documents_are_copies() -> None:
    attribute_definitions(USER_SCHEMA)[0]["caseExact"] = True
    schemas(BASE_URL)[0]["attributes"].clear()

    user_name = find_attribute(USER_SCHEMA, "userName")
    assert user_name is not None
    assert user_name["caseExact"] is False
    assert schemas(BASE_URL)[0]["attributes"]


def test_documents_are_json_serializable() -> None:
    documents = {
        "config": service_provider_config(
            BASE_URL, max_results=1, max_operations=1, max_payload_size=1
        ),
        "resource_types": resource_types(BASE_URL),
        "schemas": schemas(BASE_URL),
    }

    assert json.loads(json.dumps(documents)) == documents


def test_openapi_is_openapi_3_with_bearer_auth() -> None:
    document = load_openapi()

    assert document["openapi"] == "3.0.3"
    assert document["servers"] == [{"url": "/scim/v2"}]
    bearer = document["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]


@pytest.mark.parametrize("path", OPENAPI_PATHS)
def test_openapi_describes_path(path: str) -> None:
    assert path in load_openapi()["paths"]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/Users", {"get", "post"}),
        ("/Users/{id}", {"get", "put", "patch", "delete"}),
        ("/Groups", {"get", "post"}),
        ("/Groups/{id}", {"get", "put", "patch", "delete"}),
        ("/Users/.search", {"post"}),
        ("/Groups/.search", {"post"}),
        ("/.search", {"post"}),
        ("/Bulk", {"post"}),
    ],
)
def test_openapi_resource_paths_have_their_methods(path: str, methods: set[str]) -> None:
    assert methods <= load_openapi()["paths"][path].keys()


def test_openapi_list_accepts_query_parameters() -> None:
    document = load_openapi()
    parameters = document["components"]["parameters"]

    for path in ("/Users", "/Groups"):
        names = {
            parameters[p["$ref"].rsplit("/", 1)[1]]["name"]
            for p in document["paths"][path]["get"]["parameters"]
        }
        assert names == {
            "filter",
            "startIndex",
            "count",
            "sortBy",
            "sortOrder",
            "attributes",
            "excludedAttributes",
        }


def test_openapi_error_schema_follows_rfc_7644() -> None:
    document = load_openapi()
    error = document["components"]["schemas"]["Error"]["properties"]

    assert error["status"]["type"] == "string"
    assert set(error["scimType"]["enum"]) == {
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
    }
    for response in document["components"]["responses"].values():
        assert {"application/scim+json", "application/json"} <= response["content"].keys()


@pytest.mark.parametrize(
    ("component", "schema_id", "extra"),
    [
        ("User", USER_SCHEMA, COMMON_ATTRIBUTES | {ENTERPRISE_USER_SCHEMA}),
        ("EnterpriseUser", ENTERPRISE_USER_SCHEMA, set()),
        ("Group", GROUP_SCHEMA, COMMON_ATTRIBUTES),
    ],
)
def test_openapi_resource_schemas_match_discovery(
    component: str, schema_id: str, extra: set[str]
) -> None:
    properties = load_openapi()["components"]["schemas"][component]["properties"]
    names = {attribute["name"] for attribute in attribute_definitions(schema_id)}

    assert properties.keys() == names | extra
