"""Attribute paths of PATCH operations (RFC 7644 §3.5.2): `urn:...:attr[filter].sub` resolved
against the schema of the resource being patched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim.discovery import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, find_attribute
from scim.patch import documents
from scim.patch.documents import JsonObject
from scim.patch.operations import PatchError, PatchOperationName
from scim.patch.value_filters import ValueFilter, parse_value_filter

_REMOVE = PatchOperationName.REMOVE

# Common attributes (RFC 7643 §3.1) are in no schema's attribute list.
_META_PARTS = ("resourceType", "created", "lastModified", "location", "version")
COMMON_ATTRIBUTES: dict[str, JsonObject] = {
    "id": {
        "name": "id",
        "type": "string",
        "multiValued": False,
        "caseExact": True,
        "mutability": "readOnly",
    },
    "externalid": {
        "name": "externalId",
        "type": "string",
        "multiValued": False,
        "caseExact": True,
        "mutability": "readWrite",
    },
    "meta": {
        "name": "meta",
        "type": "complex",
        "multiValued": False,
        "mutability": "readOnly",
        "subAttributes": [
            {"name": part, "type": "string", "multiValued": False, "mutability": "readOnly"}
            for part in _META_PARTS
        ],
    },
    "schemas": {
        "name": "schemas",
        "type": "reference",
        "multiValued": True,
        "caseExact": True,
        "mutability": "readWrite",
    },
}
KNOWN_SCHEMAS = (USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA)


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A resource type as PATCH sees it: its core schema and the extensions it knows."""

    name: str
    core_schema: str
    extension_schemas: tuple[str, ...]


USER = ResourceKind("User", USER_SCHEMA, (ENTERPRISE_USER_SCHEMA,))
GROUP = ResourceKind("Group", GROUP_SCHEMA, ())


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved attribute path: where it lives, its schema definition and selectors."""

    label: str
    namespace: str | None
    attribute: str
    definition: JsonObject | None
    value_filter: ValueFilter | None
    sub_attribute: str | None
    sub_definition: JsonObject | None


@dataclass(frozen=True, slots=True)
class PathResolver:
    """Resolves paths against one resource document; it reads the document, never writes it."""

    kind: ResourceKind
    document: JsonObject

    def locate(
        self, text: str, op: PatchOperationName, value: Any
    ) -> tuple[str | None, str | None]:
        """(namespace, attribute path) of a path: the namespace is None for the core schema,
        the attribute path None when the path names a whole schema."""
        schema, rest = self._split_schema(text, op, value)
        return self._namespace_for(schema, text), rest

    def _split_schema(
        self, text: str, op: PatchOperationName, value: Any
    ) -> tuple[str | None, str | None]:
        """Split `urn:...:attr.sub` into (schema URN, attribute path); rest None: whole schema."""
        if not text.lower().startswith("urn:"):
            return None, text
        head, bracket, tail = text.partition("[")
        folded = head.lower()
        for schema in KNOWN_SCHEMAS:
            if folded == schema.lower() and not bracket:
                return schema, None
            if folded.startswith(schema.lower() + ":"):
                return schema, text[len(schema) + 1 :]
        # An extension we have no schema for: "urn:x:User:attr" could be the schema "urn:x:User"
        # and attribute "attr", or a schema named "urn:x:User:attr". The document decides
        # first, then the value (an object names a whole extension).
        existing = self._extension_keys()
        if not bracket and folded in existing:
            return existing[folded], None
        urn, _, attribute = head.rpartition(":")
        if urn.lower() in existing:
            return existing[urn.lower()], attribute + bracket + tail
        if not bracket and op is not _REMOVE and isinstance(value, Mapping):
            return head, None
        if urn.count(":") < 1 or not attribute:
            raise PatchError("invalidPath", f'"{text}" is not a valid attribute path.')
        return urn, attribute + bracket + tail

    def _extension_keys(self) -> dict[str, str]:
        keys = {
            key.lower(): key
            for key in self.document
            if isinstance(key, str) and key.lower().startswith("urn:")
        }
        declared = self.document.get("schemas")
        if isinstance(declared, list):
            for schema in declared:
                if isinstance(schema, str):
                    keys.setdefault(schema.lower(), schema)
        return keys

    def _namespace_for(self, schema: str | None, text: str) -> str | None:
        if schema is None or schema == self.kind.core_schema:
            return None
        if schema in self.kind.extension_schemas:
            return schema
        if schema in KNOWN_SCHEMAS:
            raise PatchError("invalidPath", f'"{text}": a {self.kind.name} has no schema {schema}.')
        return schema

    def resolve(self, namespace: str | None, rest: str, label: str) -> Target:
        """The target of `rest` (`attr`, `attr.sub`, `attr[filter].sub`) in `namespace`."""
        name, filter_text, sub_name = split_attribute_path(rest.strip(), label)
        definition = self.definition(namespace, name, label)
        if definition is not None:
            attribute = str(definition["name"])
        else:
            attribute = documents.key(self.peek(namespace), name) or name
        sub_definition: JsonObject | None = None
        if sub_name is not None and definition is not None:
            if definition["type"] != "complex":
                raise PatchError("invalidPath", f'"{label}": {attribute} has no sub-attributes.')
            sub_definition = documents.find_sub_attribute(definition, sub_name)
            if sub_definition is None:
                raise PatchError(
                    "invalidPath", f'"{label}": {attribute} has no sub-attribute "{sub_name}".'
                )
            sub_name = str(sub_definition["name"])
        value_filter: ValueFilter | None = None
        if filter_text is not None:
            if definition is not None and not definition["multiValued"]:
                raise PatchError(
                    "invalidPath", f'"{label}": value filters need a multi-valued attribute.'
                )
            value_filter = parse_value_filter(filter_text, definition, label)
        return Target(
            label, namespace, attribute, definition, value_filter, sub_name, sub_definition
        )

    def definition(self, namespace: str | None, name: str, label: str) -> JsonObject | None:
        """The schema definition of an attribute; None for extensions we keep verbatim."""
        if namespace is None:
            common = COMMON_ATTRIBUTES.get(name.lower())
            found = common if common is not None else find_attribute(self.kind.core_schema, name)
        elif namespace in self.kind.extension_schemas:
            found = find_attribute(namespace, name)
        else:
            return None
        if found is None:
            raise PatchError("invalidPath", f'"{label}": unknown attribute "{name}".')
        return found

    def peek(self, namespace: str | None) -> JsonObject:
        """The attributes of `namespace` as they stand ({} for an absent extension)."""
        if namespace is None:
            return self.document
        container = self.document.get(namespace)
        return container if isinstance(container, dict) else {}


def split_attribute_path(text: str, label: str) -> tuple[str, str | None, str | None]:
    """Split `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub` (RFC 7644 §3.5.2)."""
    name, bracket, after = text.partition("[")
    filter_text: str | None = None
    sub: str | None = None
    if bracket:
        # The filter ends at the last "]", so "]" inside a quoted value is harmless.
        filter_text, closing, trailer = after.rpartition("]")
        if not closing:
            raise PatchError("invalidPath", f'"{label}": missing "]".')
        if trailer:
            if not trailer.startswith("."):
                raise PatchError("invalidPath", f'"{label}" is not a valid attribute path.')
            sub = trailer[1:]
    elif "." in name:
        name, _, sub = name.partition(".")
    for part in (name, sub):
        if part is not None and not _is_attribute_name(part):
            raise PatchError("invalidPath", f'"{label}" is not a valid attribute path.')
    return name, filter_text, sub


def _is_attribute_name(text: str) -> bool:
    # RFC 7643 §2.1: ATTRNAME = ALPHA *(nameChar); "$ref" is the one "$" name in use.
    return (
        bool(text)
        and ((text[0].isascii() and text[0].isalpha()) or text[0] == "$")
        and all(c.isascii() and (c.isalnum() or c in "-_$") for c in text[1:])
    )
