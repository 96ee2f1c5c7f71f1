"""SCIM resources in and out: JSON documents ↔ service specs, and attribute projection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from app.models import Group, User
from app.provisioning import MULTI_VALUED, GroupSpec, UserSpec
from scim.discovery import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    find_attribute,
)
from scim.errors import ScimError

SIMPLE_USER = {
    "displayName": "display_name",
    "nickName": "nick_name",
    "profileUrl": "profile_url",
    "title": "title",
    "userType": "user_type",
    "preferredLanguage": "preferred_language",
    "locale": "locale",
    "timezone": "timezone",
}
NAME_PARTS = {
    "formatted": "formatted_name",
    "familyName": "family_name",
    "givenName": "given_name",
    "middleName": "middle_name",
    "honorificPrefix": "honorific_prefix",
    "honorificSuffix": "honorific_suffix",
}
ENTERPRISE = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization_name",
    "division": "division",
    "department": "department",
}
_KNOWN_EXTENSIONS = {ENTERPRISE_USER_SCHEMA.lower()}
_LOWER_SIMPLE = {k.lower(): k for k in SIMPLE_USER}
_LOWER_NAME = {k.lower(): k for k in NAME_PARTS}
_LOWER_ENTERPRISE = {k.lower(): k for k in (*ENTERPRISE, "manager")}
_LOWER_MULTI = {k.lower(): k for k in MULTI_VALUED}


def invalid(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(HTTPStatus.BAD_REQUEST, detail, scim_type)


def etag(version: int) -> str:
    """The weak entity tag of a resource version (RFC 7644 §3.14)."""
    return f'W/"{version}"'


def parse_etag(value: str) -> int | None:
    """The version in an entity tag, or None when it is not one of ours."""
    tag = value.strip().removeprefix("W/").strip('"')
    return int(tag) if tag.isdigit() else None


# ------------------------------------------------------------------ input


def to_bool(value: Any, where: str) -> bool:
    """A SCIM boolean; Entra ID sends "True"/"False" strings, also inside complex values."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(f"{where} must be a boolean")


def to_str(value: Any, where: str) -> str | None:
    """A SCIM string; "" and null both clear the attribute."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(f"{where} must be a string")
    return str(value)


def _lower_keys(document: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    return {key.lower(): (key, value) for key, value in document.items()}


def _check_schemas(document: Mapping[str, Any], core: str) -> list[str]:
    schemas = document.get("schemas")
    if schemas is None:
        raise invalid(f"schemas is required and must include {core}", "invalidSyntax")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid("schemas must be a list of URNs", "invalidSyntax")
    if core.lower() not in {s.lower() for s in schemas}:
        raise invalid(f"schemas must include {core}", "invalidSyntax")
    return schemas


def _multi_value_items(attribute: str, value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise invalid(f"{attribute} must be a list")
    items: list[dict[str, Any]] = []
    for raw in value:
        if not isinstance(raw, dict):
            raise invalid(f"each of {attribute} must be an object")
        item: dict[str, Any] = {}
        for key, sub_value in raw.items():
            definition = find_attribute(USER_SCHEMA, attribute, key)
            if definition is None:
                continue  # an unknown sub-attribute is ignored, as unknown attributes are
            name = definition["name"]
            if definition.get("type") == "boolean":
                item[name] = to_bool(sub_value, f"{attribute}.{name}")
            elif sub_value is not None and sub_value != "":
                item[name] = sub_value
        if item:
            items.append(item)
    # RFC 7643 §2.4: at most one value may be primary.
    primaries = [i for i in items if i.get("primary") is True]
    if len(primaries) > 1:
        raise invalid(f"only one of {attribute} may be primary")
    return items


def user_spec_from_scim(document: Any) -> UserSpec:
    """A full user (POST/PUT body); read-only and unknown core attributes are ignored."""
    if not isinstance(document, dict):
        raise invalid("the body must be a JSON object", "invalidSyntax")
    schemas = _check_schemas(document, USER_SCHEMA)
    fields = _lower_keys(document)
    user_name = fields.get("username", ("", None))[1]
    if not isinstance(user_name, str) or not user_name.strip():
        raise invalid("userName is required and must be a non-empty string")
    attributes: dict[str, str | None] = {}
    for lower, canonical in _LOWER_SIMPLE.items():
        if lower in fields:
            attributes[SIMPLE_USER[canonical]] = to_str(fields[lower][1], canonical)
    name = fields.get("name", ("", None))[1]
    if name is not None:
        if not isinstance(name, dict):
            raise invalid("name must be an object")
        for key, value in name.items():
            part = _LOWER_NAME.get(key.lower())
            if part is not None:
                attributes[NAME_PARTS[part]] = to_str(value, f"name.{part}")
    multi_values = {
        canonical: _multi_value_items(canonical, fields[lower][1])
        for lower, canonical in _LOWER_MULTI.items()
        if lower in fields
    }
    is_active: bool | None = None
    if "active" in fields and fields["active"][1] is not None:
        is_active = to_bool(fields["active"][1], "active")
    extensions: dict[str, dict[str, Any]] = {}
    declared = {s.lower() for s in schemas}
    for lower, (key, value) in fields.items():
        if lower == ENTERPRISE_USER_SCHEMA.lower():
            attributes.update(_enterprise_from_scim(value))
        elif lower.startswith("urn:") and lower != USER_SCHEMA.lower():
            if not isinstance(value, dict):
                raise invalid(f"extension {key} must be an object")
            if lower not in declared:
                raise invalid(f"extension {key} is not listed in schemas", "invalidSyntax")
            extensions[key] = value
    return UserSpec(
        user_name=user_name.strip(),
        external_id=to_str(fields.get("externalid", ("", None))[1], "externalId"),
        is_active=is_active,
        attributes=attributes,
        multi_values=multi_values,
        extensions=extensions,
    )


def _enterprise_from_scim(value: Any) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{ENTERPRISE_USER_SCHEMA} must be an object")
    attributes: dict[str, str | None] = {}
    for key, item in value.items():
        canonical = _LOWER_ENTERPRISE.get(key.lower())
        if canonical == "manager":
            attributes["manager_id"] = manager_id(item)
        elif canonical is not None:
            attributes[ENTERPRISE[canonical]] = to_str(item, canonical)
    return attributes


def manager_id(value: Any) -> str | None:
    """Entra ID sends the manager as a bare id or {"value": id}; "" or null clears it."""
    if isinstance(value, dict):
        lowered = {k.lower(): v for k, v in value.items()}
        value = lowered.get("value")
    return to_str(value, "manager")


def group_spec_from_scim(document: Any, with_members: bool = True) -> GroupSpec:
    """A full group (POST/PUT body); members are user ids."""
    if not isinstance(document, dict):
        raise invalid("the body must be a JSON object", "invalidSyntax")
    schemas = _check_schemas(document, GROUP_SCHEMA)
    fields = _lower_keys(document)
    display_name = fields.get("displayname", ("", None))[1]
    if not isinstance(display_name, str) or not display_name.strip():
        raise invalid("displayName is required and must be a non-empty string")
    member_ids: list[str] | None = None
    if with_members:
        member_ids = member_values(fields.get("members", ("", []))[1])
    declared = {s.lower() for s in schemas}
    # Entra ID adds "urn:ietf:params:scim:schemas:extension:...:Group" style URNs; keep them.
    extensions = {
        key: value
        for lower, (key, value) in fields.items()
        if lower.startswith("urn:")
        and lower != GROUP_SCHEMA.lower()
        and isinstance(value, dict)
        and lower in declared
    }
    return GroupSpec(
        display_name=display_name.strip(),
        external_id=to_str(fields.get("externalid", ("", None))[1], "externalId"),
        extensions=extensions,
        member_ids=member_ids,
    )


def member_values(members: Any) -> list[str]:
    """Member user ids from a members list; nested groups are refused."""
    if members is None:
        return []
    if not isinstance(members, list):
        raise invalid("members must be a list")
    ids: list[str] = []
    for member in members:
        if not isinstance(member, dict):
            raise invalid("each member must be an object with a value")
        lowered = {k.lower(): v for k, v in member.items()}
        if str(lowered.get("type", "User")).lower() == "group":
            raise invalid("nested groups are not supported: members must be users")
        value = lowered.get("value")
        if not isinstance(value, str) or not value:
            raise invalid("each member needs a string value (the user's id)")
        ids.append(value)
    return ids


# ----------------------------------------------------------------- output


def _meta(resource_type: str, location: str, resource: User | Group) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": resource.created_at.isoformat(),
        "lastModified": resource.updated_at.isoformat(),
        "location": location,
        "version": etag(resource.version),
    }


def user_to_scim(
    user: User, base_url: str, groups: Sequence[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The SCIM representation of a user; `groups` are (id, displayName) pairs when loaded."""
    location = f"{base_url}/Users/{user.id}"
    doc: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": str(user.id)}
    if user.external_id is not None:
        doc["externalId"] = user.external_id
    doc["userName"] = user.user_name
    name = {part: getattr(user, column) for part, column in NAME_PARTS.items()}
    name = {k: v for k, v in name.items() if v is not None}
    if name:
        doc["name"] = name
    for attribute, column in SIMPLE_USER.items():
        value = getattr(user, column)
        if value is not None:
            doc[attribute] = value
    doc["active"] = user.is_active
    for attribute in MULTI_VALUED:
        values = (user.multi_values or {}).get(attribute)
        if values:
            doc[attribute] = values
    if groups is not None and groups:
        doc["groups"] = [
            {"value": gid, "$ref": f"{base_url}/Groups/{gid}", "display": display, "type": "direct"}
            for gid, display in groups
        ]
    enterprise: dict[str, Any] = {
        attribute: getattr(user, column)
        for attribute, column in ENTERPRISE.items()
        if getattr(user, column) is not None
    }
    if user.manager_id:
        enterprise["manager"] = {
            "value": user.manager_id,
            "$ref": f"{base_url}/Users/{user.manager_id}",
        }
    if enterprise:
        doc["schemas"].append(ENTERPRISE_USER_SCHEMA)
        doc[ENTERPRISE_USER_SCHEMA] = enterprise
    for urn, values in (user.extensions or {}).items():
        doc["schemas"].append(urn)
        doc[urn] = values
    doc["meta"] = _meta("User", location, user)
    return doc


def group_to_scim(
    group: Group, base_url: str, members: Sequence[tuple[str, str | None]] | None = None
) -> dict[str, Any]:
    """The SCIM representation of a group; `members` are (id, userName) pairs when loaded."""
    doc: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": str(group.id)}
    if group.external_id is not None:
        doc["externalId"] = group.external_id
    doc["displayName"] = group.display_name
    if members:
        doc["members"] = [
            {"value": uid, "$ref": f"{base_url}/Users/{uid}", "display": display, "type": "User"}
            for uid, display in members
        ]
    for urn, values in (group.extensions or {}).items():
        doc["schemas"].append(urn)
        doc[urn] = values
    doc["meta"] = _meta("Group", f"{base_url}/Groups/{group.id}", group)
    return doc


# ------------------------------------------------------------- projection


def split_paths(raw: str | Iterable[str] | None) -> list[str]:
    """attributes / excludedAttributes as a list of paths (comma-separated or a list)."""
    if raw is None:
        return []
    if not isinstance(raw, str | list | tuple):  # JSON: a number or an object is no list of paths
        raise invalid("attributes and excludedAttributes must be strings or lists of strings")
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    return [p.strip() for p in parts if isinstance(p, str) and p.strip()]


def _path(core_schema: str, path: str) -> tuple[str | None, str, str | None]:
    """(extension urn or None, attribute, sub-attribute or None), all lower-case."""
    lowered = path.lower()
    urn: str | None = None
    if lowered.startswith(core_schema.lower() + ":"):
        lowered = lowered[len(core_schema) + 1 :]
    elif lowered.startswith("urn:"):
        if lowered in _KNOWN_EXTENSIONS:
            return lowered, "", None
        urn, _, lowered = lowered.rpartition(":")
    attribute, _, sub = lowered.partition(".")
    return urn, attribute, sub or None


def wants(core_schema: str, attributes: Sequence[str], excluded: Sequence[str], name: str) -> bool:
    """Whether a top-level attribute is part of the response (to skip loading it at all)."""
    name = name.lower()
    if attributes:
        return any(
            _path(core_schema, p)[1] == name and _path(core_schema, p)[0] is None
            for p in attributes
        )
    return not any(_path(core_schema, p) == (None, name, None) for p in excluded)


def project(
    document: dict[str, Any],
    core_schema: str,
    attributes: Sequence[str],
    excluded: Sequence[str],
) -> dict[str, Any]:
    """Apply attributes / excludedAttributes (RFC 7644 §3.4.2.5); id and schemas always stay."""
    if attributes:
        return _select(document, core_schema, attributes)
    if excluded:
        return _exclude(document, core_schema, excluded)
    return document


def _extensions(document: dict[str, Any]) -> dict[str, str]:
    """The document's extension keys by their lower-cased URN."""
    return {k.lower(): k for k in document if k.lower().startswith("urn:")}


def _select(
    document: dict[str, Any], core_schema: str, attributes: Sequence[str]
) -> dict[str, Any]:
    """Only the named attributes (and id and schemas)."""
    keys = {k.lower(): k for k in document}
    urns = _extensions(document)
    result: dict[str, Any] = {k: document[k] for k in ("schemas", "id") if k in document}
    for raw in attributes:
        urn, attribute, sub = _path(core_schema, raw)
        container = document
        target = result
        if urn is not None:
            if urn not in urns:
                continue
            container = document[urns[urn]]
            target = result.setdefault(urns[urn], {})
            inner_keys = {k.lower(): k for k in container}
        else:
            inner_keys = keys
        if not attribute:
            target.update(container)
            continue
        key = inner_keys.get(attribute)
        if key is None:
            continue
        value = container[key]
        if sub is None or not isinstance(value, dict | list):
            target[key] = value
        elif isinstance(value, dict):
            picked = {k: v for k, v in value.items() if k.lower() == sub}
            target.setdefault(key, {}).update(picked)
        else:
            target[key] = [
                {k: v for k, v in item.items() if k.lower() == sub}
                for item in value
                if isinstance(item, dict)
            ]
    return result


def _exclude(document: dict[str, Any], core_schema: str, excluded: Sequence[str]) -> dict[str, Any]:
    """Everything but the named attributes (id and schemas stay)."""
    urns = _extensions(document)
    result = dict(document)
    for raw in excluded:
        urn, attribute, sub = _path(core_schema, raw)
        container = result
        if urn is not None:
            if urn not in urns:
                continue
            container = dict(result[urns[urn]])
            result[urns[urn]] = container
        key = {k.lower(): k for k in container}.get(attribute)
        if key is None or key in ("id", "schemas"):
            continue
        if sub is None:
            del container[key]
        elif isinstance(container[key], dict):
            container[key] = {k: v for k, v in container[key].items() if k.lower() != sub}
        elif isinstance(container[key], list):
            container[key] = [
                {k: v for k, v in item.items() if k.lower() != sub}
                for item in container[key]
                if isinstance(item, dict)
            ]
    return result
