"""What each filterable SCIM attribute is in SQL: the tables for Users and Groups.

An attribute path resolves to a column and how SCIM compares it, a constant (meta.resourceType),
a refusal, or a multi-valued attribute stored one value per row, whose conditions become EXISTS.
Every subquery carries the organization, so it can use the `(org_id, ...)` indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, TypeAlias

from sqlalchemy import Column, ColumnElement, func, select
from sqlalchemy.orm import QueryableAttribute

from app.models import Group, Membership, User, UserValue
from scim.discovery import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, find_attribute
from scim.filter_parser import FilterError, Path


class Kind(Enum):
    STRING = auto()
    BOOLEAN = auto()
    DATETIME = auto()
    ID = auto()  # a UUID, compared as one
    VERSION = auto()  # meta.version: W/"3" against an integer column


@dataclass(frozen=True, slots=True)
class AttributeColumn:
    """One column and how SCIM compares it."""

    column: ColumnElement[Any]
    kind: Kind
    case_exact: bool = True
    # The column holds Python's lower() of the value (user_name_key and the like): compare it
    # with the lowered literal, so equality can use the index.
    folded: bool = False

    @property
    def nullable(self) -> bool:
        return not isinstance(self.column, Column) or bool(self.column.nullable)


@dataclass(frozen=True, slots=True)
class Constant:
    """An attribute with the same value on every resource of a type (meta.resourceType)."""

    value: str


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A known attribute that filters and sortBy refuse."""

    detail: str
    # addresses and password refuse their sub-attributes too; meta does not.
    with_sub_attributes: bool = True


Target: TypeAlias = AttributeColumn | Constant | Unsupported


@dataclass(frozen=True, slots=True)
class Attribute:
    schema: str | None  # None for the common attributes (RFC 7643 §3.1), which have no schema
    target: Target


@dataclass(frozen=True, slots=True)
class MultiValued:
    """A multi-valued attribute stored one value per row: conditions on it become EXISTS."""

    name: str
    schema: str
    sub_attributes: Mapping[str, AttributeColumn]  # by lower-cased name
    # A condition on one row -> "one of the resource's rows satisfies it".
    exists: Callable[[ColumnElement[bool]], ColumnElement[bool]]

    def sub_attribute(self, name: str | None) -> AttributeColumn:
        """The column of a sub-attribute; the attribute alone means its `value`."""
        column = self.sub_attributes.get((name or "value").lower())
        if column is not None:
            return column
        if find_attribute(self.schema, self.name, name) is not None:
            raise FilterError(f"filtering on {self.name}.{name} is not supported")
        raise FilterError(f"unknown attribute {self.name}.{name}")


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    core_schema: str
    schemas: frozenset[str]  # lower-cased
    attributes: Mapping[str, Attribute]  # by lower-cased dotted path
    multi_valued: Mapping[str, MultiValued]  # by lower-cased name
    # sortBy a multi-valued attribute sorts by its primary value (RFC 7644 §3.4.2.3).
    sort_keys: Mapping[str, ColumnElement[Any]]  # by lower-cased dotted path

    def find_multi_valued(self, path: Path) -> MultiValued | None:
        multi = self.multi_valued.get(path.name.lower())
        if multi is not None:
            self._check_schema(path, multi.schema)
        return multi

    def resolve(self, path: Path) -> AttributeColumn | Constant:
        """What a single-valued attribute path refers to; FilterError unless it can be filtered."""
        attribute = self.attributes.get(dotted(path))
        if attribute is None and path.sub_name is not None:
            parent = self.attributes.get(path.name.lower())
            if parent is not None and isinstance(parent.target, Unsupported):
                if parent.target.with_sub_attributes:
                    attribute = parent
        if attribute is None:
            raise FilterError(self._missing(path))
        self._check_schema(path, attribute.schema)
        if isinstance(attribute.target, Unsupported):
            raise FilterError(attribute.target.detail)
        return attribute.target

    def _check_schema(self, path: Path, schema: str | None) -> None:
        if path.uri is None:
            return
        if path.uri.lower() not in self.schemas:
            raise FilterError(f"unknown schema {path.uri} for {self.name} resources")
        # Common attributes may be written with the core schema URI.
        if path.uri.lower() != (schema or self.core_schema).lower():
            raise FilterError(f"unknown attribute {path}")

    def _missing(self, path: Path) -> str:
        schemas = [path.uri] if path.uri is not None else sorted(self.schemas)
        for schema in schemas:
            definition = find_attribute(schema, path.name, path.sub_name)
            if definition is None:
                continue
            if "subAttributes" in definition and path.sub_name is None:
                return f"{path} is complex: name one of its sub-attributes"
            return f"filtering on {path} is not supported"
        return f"unknown attribute {path}"


def dotted(path: Path) -> str:
    name = path.name if path.sub_name is None else f"{path.name}.{path.sub_name}"
    return name.lower()


# --- The attribute tables ------------------------------------------------------------------


def _case_exact(schema: str, dotted: str) -> bool:
    name, _, sub_name = dotted.partition(".")
    definition = find_attribute(schema, name, sub_name or None)
    if definition is None:
        raise LookupError(f"{schema}:{dotted} is missing from scim/discovery.py")
    return bool(definition["caseExact"])


def _string(schema: str, dotted: str, column: QueryableAttribute[Any]) -> Attribute:
    case_exact = _case_exact(schema, dotted)
    return Attribute(schema, AttributeColumn(column.expression, Kind.STRING, case_exact=case_exact))


def _folded(schema: str, dotted: str, column: QueryableAttribute[Any]) -> Attribute:
    if _case_exact(schema, dotted):
        raise LookupError(f"{dotted} is caseExact: a lowered key column cannot serve it")
    return Attribute(
        schema, AttributeColumn(column.expression, Kind.STRING, case_exact=False, folded=True)
    )


def _common(resource: type[User] | type[Group], resource_type: str) -> dict[str, Attribute]:
    def common(target: Target) -> Attribute:
        return Attribute(None, target)

    return {
        "id": common(AttributeColumn(resource.id.expression, Kind.ID)),
        # externalId is caseExact (RFC 7643 §3.1).
        "externalid": common(AttributeColumn(resource.external_id.expression, Kind.STRING)),
        "meta": common(
            Unsupported(
                "meta is complex: name one of its sub-attributes", with_sub_attributes=False
            )
        ),
        "meta.created": common(AttributeColumn(resource.created_at.expression, Kind.DATETIME)),
        "meta.lastmodified": common(AttributeColumn(resource.updated_at.expression, Kind.DATETIME)),
        "meta.version": common(AttributeColumn(resource.version.expression, Kind.VERSION)),
        "meta.resourcetype": common(Constant(resource_type)),
        "meta.location": common(Unsupported("filtering on meta.location is not supported")),
    }


def _user_values(attribute: str) -> MultiValued:
    """A multi-valued User attribute, mirrored in user_values."""

    def exists(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        rows = select(UserValue.id).where(
            UserValue.org_id == User.org_id,
            UserValue.user_id == User.id,
            UserValue.attribute == attribute,
            condition,
        )
        return rows.correlate(User).exists()

    def string(sub_name: str) -> AttributeColumn:
        column = {"display": UserValue.display, "type": UserValue.type}[sub_name]
        case_exact = _case_exact(USER_SCHEMA, f"{attribute}.{sub_name}")
        return AttributeColumn(column.expression, Kind.STRING, case_exact=case_exact)

    if _case_exact(USER_SCHEMA, f"{attribute}.value"):
        value = AttributeColumn(UserValue.value.expression, Kind.STRING)
    else:
        value = AttributeColumn(
            UserValue.value_key.expression, Kind.STRING, case_exact=False, folded=True
        )
    return MultiValued(
        attribute,
        USER_SCHEMA,
        {
            "value": value,
            "display": string("display"),
            "type": string("type"),
            "primary": AttributeColumn(UserValue.is_primary.expression, Kind.BOOLEAN),
        },
        exists,
    )


def _groups_of_user(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    rows = select(Membership.group_id).where(
        Membership.org_id == User.org_id, Membership.user_id == User.id, condition
    )
    return rows.correlate(User).exists()


def _members_of_group(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    rows = select(Membership.user_id).where(
        Membership.org_id == Group.org_id, Membership.group_id == Group.id, condition
    )
    return rows.correlate(Group).exists()


def _user_resource() -> Resource:
    core = {
        "name.formatted": User.formatted_name,
        "name.familyName": User.family_name,
        "name.givenName": User.given_name,
        "name.middleName": User.middle_name,
        "name.honorificPrefix": User.honorific_prefix,
        "name.honorificSuffix": User.honorific_suffix,
        "nickName": User.nick_name,
        "profileUrl": User.profile_url,
        "title": User.title,
        "userType": User.user_type,
        "preferredLanguage": User.preferred_language,
        "locale": User.locale,
        "timezone": User.timezone,
    }
    enterprise = {
        "employeeNumber": User.employee_number,
        "costCenter": User.cost_center,
        "organization": User.organization_name,
        "division": User.division,
        "department": User.department,
        "manager.value": User.manager_id,
    }
    attributes = {
        **_common(User, "User"),
        "username": _folded(USER_SCHEMA, "userName", User.user_name_key),
        "displayname": _folded(USER_SCHEMA, "displayName", User.display_name_key),
        **{dotted.lower(): _string(USER_SCHEMA, dotted, c) for dotted, c in core.items()},
        "active": Attribute(USER_SCHEMA, AttributeColumn(User.is_active.expression, Kind.BOOLEAN)),
        "password": Attribute(USER_SCHEMA, Unsupported("password cannot be used in a filter")),
        "addresses": Attribute(USER_SCHEMA, Unsupported("filtering on addresses is not supported")),
        **{
            dotted.lower(): _string(ENTERPRISE_USER_SCHEMA, dotted, c)
            for dotted, c in enterprise.items()
        },
        # `manager` alone means its value, as `emails` alone does.
        "manager": _string(ENTERPRISE_USER_SCHEMA, "manager.value", User.manager_id),
    }
    multi_valued = {
        name.lower(): _user_values(name)
        for name in ("emails", "phoneNumbers", "photos", "roles", "x509Certificates")
    }
    multi_valued["groups"] = MultiValued(
        "groups",
        USER_SCHEMA,
        {"value": AttributeColumn(Membership.group_id.expression, Kind.ID)},
        _groups_of_user,
    )
    primary_email = func.lower(User.primary_email)  # emails.value is not caseExact
    return Resource(
        "User",
        USER_SCHEMA,
        frozenset({USER_SCHEMA.lower(), ENTERPRISE_USER_SCHEMA.lower()}),
        attributes,
        multi_valued,
        {"emails": primary_email, "emails.value": primary_email},
    )


def _group_resource() -> Resource:
    members = MultiValued(
        "members",
        GROUP_SCHEMA,
        {"value": AttributeColumn(Membership.user_id.expression, Kind.ID)},
        _members_of_group,
    )
    return Resource(
        "Group",
        GROUP_SCHEMA,
        frozenset({GROUP_SCHEMA.lower()}),
        {
            **_common(Group, "Group"),
            "displayname": _folded(GROUP_SCHEMA, "displayName", Group.display_name_key),
        },
        {"members": members},
        {},
    )


USERS = _user_resource()
GROUPS = _group_resource()
