"""Static SCIM 2.0 discovery documents: ServiceProviderConfig, ResourceTypes and Schemas.

The documents describe what this service implements, not the whole of RFC 7643: the User
schema leaves out `ims` and `entitlements`. `id`, `externalId` and `meta` are common
attributes (RFC 7643 §3.1) and are therefore not listed in any schema's attributes.
"""

from copy import deepcopy
from typing import Any, TypeAlias

JsonObject: TypeAlias = dict[str, Any]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def _attribute(
    name: str,
    type_: str,
    description: str,
    *,
    multi_valued: bool = False,
    required: bool = False,
    case_exact: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    sub_attributes: list[JsonObject] | None = None,
    canonical_values: list[str] | None = None,
    reference_types: list[str] | None = None,
) -> JsonObject:
    """Return one attribute definition with every characteristic of RFC 7643 §7 spelled out."""
    # The defaults are those of RFC 7643 §2.2, written out so that code reading a definition
    # (and a client reading /Schemas) never has to know them.
    attribute: JsonObject = {
        "name": name,
        "type": type_,
        "multiValued": multi_valued,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub_attributes is not None:
        attribute["subAttributes"] = sub_attributes
    if canonical_values is not None:
        attribute["canonicalValues"] = canonical_values
    if reference_types is not None:
        attribute["referenceTypes"] = reference_types
    return attribute


def _string(name: str, description: str, **characteristics: Any) -> JsonObject:
    return _attribute(name, "string", description, **characteristics)


def _primary(noun: str) -> JsonObject:
    return _attribute(
        "primary",
        "boolean",
        f"Whether this is the preferred {noun}. At most one value may be true.",
    )


def _multi_valued(
    name: str,
    description: str,
    *,
    noun: str,
    value_type: str = "string",
    value_case_exact: bool = False,
    value_reference_types: list[str] | None = None,
    type_values: list[str] | None = None,
) -> JsonObject:
    """Return a multi-valued complex attribute with value, display, type and primary."""
    return _attribute(
        name,
        "complex",
        description,
        multi_valued=True,
        sub_attributes=[
            _attribute(
                "value",
                value_type,
                f"The {noun} itself.",
                case_exact=value_case_exact,
                reference_types=value_reference_types,
            ),
            _string("display", f"A human-readable name for the {noun}, for display."),
            _string(
                "type",
                f"A label for the {noun}'s function.",
                canonical_values=type_values,
            ),
            _primary(noun),
        ],
    )


_USER_ATTRIBUTES: list[JsonObject] = [
    _string(
        "userName",
        "Unique identifier the user signs in with. Unique across the organization. REQUIRED.",
        required=True,
        uniqueness="server",
    ),
    _attribute(
        "name",
        "complex",
        "The components of the user's real name.",
        sub_attributes=[
            _string("formatted", "The full name, formatted for display."),
            _string("familyName", "The family name, or last name in most Western languages."),
            _string("givenName", "The given name, or first name in most Western languages."),
            _string("middleName", "The middle name(s)."),
            _string("honorificPrefix", "The honorific prefix(es), such as 'Ms.'."),
            _string("honorificSuffix", "The honorific suffix(es), such as 'III'."),
        ],
    ),
    _string("displayName", "The name of the user, suitable for display to end users."),
    _string("nickName", "The casual way to address the user, such as 'Bob' for 'Robert'."),
    _attribute(
        "profileUrl",
        "reference",
        "A URL of a page representing the user's online profile.",
        case_exact=True,
        reference_types=["external"],
    ),
    _string("title", "The user's title, such as 'Vice President'."),
    _string("userType", "The relationship between the organization and the user."),
    _string("preferredLanguage", "The user's preferred language, as in HTTP Accept-Language."),
    _string("locale", "The user's default location, as a language tag such as 'en-US'."),
    _string("timezone", "The user's time zone in IANA format, such as 'America/Los_Angeles'."),
    _attribute("active", "boolean", "The user's administrative status."),
    _string(
        "password",
        "A cleartext password, to set or reset the user's password. Never returned.",
        mutability="writeOnly",
        returned="never",
    ),
    _multi_valued(
        "emails",
        "Email addresses of the user.",
        noun="email address",
        type_values=["work", "home", "other"],
    ),
    _multi_valued(
        "phoneNumbers",
        "Phone numbers of the user, preferably in RFC 3966 form.",
        noun="phone number",
        type_values=["work", "home", "mobile", "fax", "pager", "other"],
    ),
    _multi_valued(
        "photos",
        "URLs of photos of the user.",
        noun="photo",
        value_type="reference",
        value_case_exact=True,
        value_reference_types=["external"],
        type_values=["photo", "thumbnail"],
    ),
    _attribute(
        "addresses",
        "complex",
        "Physical mailing addresses of the user.",
        multi_valued=True,
        sub_attributes=[
            _string("formatted", "The full mailing address, formatted for display."),
            _string("streetAddress", "The full street address component."),
            _string("locality", "The city or locality component."),
            _string("region", "The state or region component."),
            _string("postalCode", "The zip code or postal code component."),
            _string("country", "The country name component, as an ISO 3166-1 alpha-2 code."),
            _string(
                "type",
                "A label for the address's function.",
                canonical_values=["work", "home", "other"],
            ),
            _primary("address"),
        ],
    ),
    # Membership is written through the Group resource only (RFC 7643 §4.1.2).
    _attribute(
        "groups",
        "complex",
        "The groups the user belongs to. Change membership through the Group resource.",
        multi_valued=True,
        mutability="readOnly",
        sub_attributes=[
            _string("value", "The id of the group.", case_exact=True, mutability="readOnly"),
            _attribute(
                "$ref",
                "reference",
                "The URI of the group.",
                case_exact=True,
                mutability="readOnly",
                reference_types=["Group"],
            ),
            _string("display", "The display name of the group.", mutability="readOnly"),
            _string(
                "type",
                "How the user belongs to the group.",
                mutability="readOnly",
                canonical_values=["direct", "indirect"],
            ),
        ],
    ),
    _multi_valued("roles", "Roles of the user.", noun="role"),
    _multi_valued(
        "x509Certificates",
        "Certificates issued to the user.",
        noun="certificate",
        value_type="binary",
        # Binary values compare byte for byte (RFC 7643 erratum 6000).
        value_case_exact=True,
    ),
]

_ENTERPRISE_USER_ATTRIBUTES: list[JsonObject] = [
    _string("employeeNumber", "Identifier the organization assigned to the person."),
    _string("costCenter", "The name of a cost center."),
    _string("organization", "The name of an organization."),
    _string("division", "The name of a division."),
    _string("department", "The name of a department."),
    _attribute(
        "manager",
        "complex",
        "The user's manager, as a reference to another user.",
        sub_attributes=[
            _string("value", "The id of the manager's User resource.", case_exact=True),
            _attribute(
                "$ref",
                "reference",
                "The URI of the manager's User resource.",
                case_exact=True,
                reference_types=["User"],
            ),
            _string("displayName", "The manager's display name.", mutability="readOnly"),
        ],
    ),
]

_GROUP_ATTRIBUTES: list[JsonObject] = [
    _string(
        "displayName",
        "A human-readable name for the group. Unique across the organization. REQUIRED.",
        required=True,
        uniqueness="server",
    ),
    _attribute(
        "members",
        "complex",
        "The members of the group.",
        multi_valued=True,
        sub_attributes=[
            _string("value", "The id of the member.", case_exact=True, mutability="immutable"),
            _attribute(
                "$ref",
                "reference",
                "The URI of the member.",
                case_exact=True,
                mutability="immutable",
                reference_types=["User", "Group"],
            ),
            _string("display", "The display name of the member.", mutability="readOnly"),
            _string(
                "type",
                "The resource type of the member.",
                mutability="immutable",
                canonical_values=["User", "Group"],
            ),
        ],
    ),
]

# id -> (name, description, attributes), in the order /Schemas lists them.
_SCHEMAS: dict[str, tuple[str, str, list[JsonObject]]] = {
    USER_SCHEMA: ("User", "User Account", _USER_ATTRIBUTES),
    ENTERPRISE_USER_SCHEMA: ("EnterpriseUser", "Enterprise User", _ENTERPRISE_USER_ATTRIBUTES),
    GROUP_SCHEMA: ("Group", "Group", _GROUP_ATTRIBUTES),
}

# Schema URIs compare case-insensitively, like attribute names (RFC 7643 §2.1).
_SCHEMA_IDS = {schema_id.lower(): schema_id for schema_id in _SCHEMAS}


def _meta(resource_type: str, location: str) -> JsonObject:
    return {"resourceType": resource_type, "location": location}


def service_provider_config(
    base_url: str,
    *,
    max_results: int,
    max_operations: int,
    max_payload_size: int,
    documentation_uri: str | None = None,
) -> JsonObject:
    """Return the /ServiceProviderConfig document (RFC 7643 §5) with the given limits."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": documentation_uri or f"{base_url}/openapi.json",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": max_operations,
            "maxPayloadSize": max_payload_size,
        },
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with the organization's SCIM bearer token.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": _meta("ServiceProviderConfig", f"{base_url}/ServiceProviderConfig"),
    }


def resource_types(base_url: str) -> list[JsonObject]:
    """Return the /ResourceTypes documents (RFC 7643 §6) for User and Group."""
    return [
        _resource_type(base_url, "User", "User Account", USER_SCHEMA, ENTERPRISE_USER_SCHEMA),
        _resource_type(base_url, "Group", "Group", GROUP_SCHEMA),
    ]


def _resource_type(
    base_url: str, name: str, description: str, schema: str, *extensions: str
) -> JsonObject:
    document: JsonObject = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "description": description,
        "endpoint": f"/{name}s",
        "schema": schema,
    }
    if extensions:
        document["schemaExtensions"] = [{"schema": e, "required": False} for e in extensions]
    document["meta"] = _meta("ResourceType", f"{base_url}/ResourceTypes/{name}")
    return document


def schemas(base_url: str) -> list[JsonObject]:
    """Return the /Schemas documents (RFC 7643 §7) for User, EnterpriseUser and Group."""
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": schema_id,
            "name": name,
            "description": description,
            "attributes": deepcopy(attributes),
            "meta": _meta("Schema", f"{base_url}/Schemas/{schema_id}"),
        }
        for schema_id, (name, description, attributes) in _SCHEMAS.items()
    ]


def attribute_definitions(schema_id: str) -> list[JsonObject]:
    """Return a copy of the attribute definitions of a schema; raise KeyError if unknown."""
    canonical_id = _SCHEMA_IDS.get(schema_id.lower())
    if canonical_id is None:
        raise KeyError(schema_id)
    return deepcopy(_SCHEMAS[canonical_id][2])


def _find_by_name(attributes: list[JsonObject], name: str) -> JsonObject | None:
    folded = name.lower()
    return next((a for a in attributes if str(a["name"]).lower() == folded), None)


def find_attribute(schema_id: str, name: str, sub_name: str | None = None) -> JsonObject | None:
    """Return a copy of an attribute or sub-attribute, matched case-insensitively, or None."""
    canonical_id = _SCHEMA_IDS.get(schema_id.lower())
    if canonical_id is None:
        return None
    found = _find_by_name(_SCHEMAS[canonical_id][2], name)
    if found is not None and sub_name is not None:
        found = _find_by_name(found.get("subAttributes", []), sub_name)
    return deepcopy(found)
