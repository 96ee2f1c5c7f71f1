"""SCIM 2.0 PATCH (RFC 7644 §3.5.2) applied to the JSON document of one User or Group.

The engine is pure: it takes the document a GET would return plus a PatchOp body and returns
a patched copy, which the caller validates and stores exactly like a PUT. Group members are
never part of the document (a group may have 50,000); operations on `members` come back as a
`MemberChanges` instead. Any error raises `PatchError` before anything is returned, so a
request either applies completely or not at all (RFC 7644 §3.5.2: "all or nothing").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from scim2_filter_parser import ast as filter_ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

from scim.discovery import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    PATCH_OP_SCHEMA,
    USER_SCHEMA,
    attribute_definitions,
    find_attribute,
)

JsonObject: TypeAlias = dict[str, Any]


class PatchError(Exception):
    """A PATCH request that cannot be applied: HTTP 400 with `scim_type` (RFC 7644 §3.12)."""

    scim_type: str
    detail: str

    def __init__(self, scim_type: str, detail: str) -> None:
        super().__init__(detail)
        self.scim_type = scim_type
        self.detail = detail


class PatchOperationName(StrEnum):
    """The three PATCH operations of RFC 7644 §3.5.2."""

    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One entry of "Operations"; `path` is None for a path-less add or replace."""

    op: PatchOperationName
    path: str | None
    value: Any = None


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """Membership edits of one PATCH: `replaced` (when set) first, then `added` and `removed`."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    replaced: tuple[str, ...] | None = None


_ADD = PatchOperationName.ADD
_REMOVE = PatchOperationName.REMOVE
_REPLACE = PatchOperationName.REPLACE

# -------------------------------------------------------------------------- envelope


def parse_operations(body: Mapping[str, Any]) -> list[PatchOperation]:
    """Validate a PatchOp body (RFC 7644 §3.5.2) and return its operations in order."""
    if not isinstance(body, Mapping):
        raise PatchError("invalidSyntax", "The request body must be a PatchOp object.")
    schemas = _get(body, "schemas")
    if isinstance(schemas, str):
        schemas = [schemas]
    if not isinstance(schemas, list) or not any(
        isinstance(schema, str) and schema.lower() == PATCH_OP_SCHEMA.lower() for schema in schemas
    ):
        raise PatchError("invalidSyntax", f'"schemas" must contain "{PATCH_OP_SCHEMA}".')
    # Some clients spell the member "operations"; attribute names are case-insensitive
    # (RFC 7643 §2.1) and we extend that to the message's own members.
    operations = _get(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise PatchError("invalidSyntax", '"Operations" must be a non-empty array.')
    return [_parse_operation(index, raw) for index, raw in enumerate(operations)]


def _parse_operation(index: int, raw: Any) -> PatchOperation:
    where = f"Operations[{index}]"
    if not isinstance(raw, Mapping):
        raise PatchError("invalidSyntax", f"{where} must be an object.")
    op = _get(raw, "op")
    if not isinstance(op, str):
        raise PatchError("invalidSyntax", f'{where} needs an "op" of add, remove or replace.')
    try:
        # Entra ID sends "Add", "Replace" and "Remove".
        name = PatchOperationName(op.strip().lower())
    except ValueError:
        raise PatchError(
            "invalidSyntax", f'{where}: unsupported op "{op}"; expected add, remove or replace.'
        ) from None
    path = _get(raw, "path")
    if path is not None and not isinstance(path, str):
        raise PatchError("invalidPath", f'{where}: "path" must be a string.')
    if path is not None and not path.strip():
        path = None
    value_key = _key(raw, "value")
    if name is not _REMOVE and value_key is None:
        raise PatchError("invalidSyntax", f'{where}: "{op}" needs a "value" (RFC 7644 §3.5.2).')
    value = deepcopy(raw[value_key]) if value_key is not None else None
    if name is _REMOVE and path is None:
        # RFC 7644 §3.5.2.2: a remove without a path fails with noTarget.
        raise PatchError("noTarget", f'{where}: "remove" needs a "path".')
    if path is None and not isinstance(value, Mapping):
        raise PatchError(
            "invalidValue", f'{where}: without a "path", "value" must be an object of attributes.'
        )
    return PatchOperation(name, path.strip() if path is not None else None, value)


# ---------------------------------------------------------------------- value paths


class _QuotedString(str):
    """A filter comparison value that was written in quotes, as opposed to true/false/null."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Comparison:
    attribute: str
    operator: str
    value: str | int | bool | None
    definition: JsonObject | None


@dataclass(frozen=True, slots=True)
class _Logical:
    operator: str
    left: _Filter
    right: _Filter


@dataclass(frozen=True, slots=True)
class _Negation:
    operand: _Filter


_Filter: TypeAlias = _Comparison | _Logical | _Negation

_COMPARISON_TOKENS = frozenset({"EQ", "NE", "CO", "SW", "EW", "GT", "GE", "LT", "LE"})
_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})


def _lex_filter(text: str) -> list[Any]:
    """Tokenize with scim2-filter-parser's lexer, repairing what it gets wrong for us."""
    tokens: list[Any] = []
    for token in SCIMLexer().tokenize(text):
        previous = tokens[-1] if tokens else None
        if (
            token.type == "NUMBER"
            and previous is not None
            and previous.type == "NUMBER"
            and previous.end == token.index
        ):
            # The lexer reads one digit per NUMBER token; "10" must stay one number.
            previous.value += token.value
            previous.end = token.end
            continue
        if (
            token.type == "ATTRNAME"
            and previous is not None
            and previous.type in _COMPARISON_TOKENS
            and token.value.lower() in ("true", "false", "null")
        ):
            # Entra ID writes `primary eq True`; JSON literals are lower case only.
            token.type = token.value.upper()
            token.value = token.value.lower()
        elif token.type == "COMP_VALUE":
            token.value = _QuotedString(token.value)
        tokens.append(token)
    return tokens


def _parse_filter(text: str, parent: JsonObject | None, label: str) -> _Filter:
    try:
        tree = SCIMParser().parse(iter(_lex_filter(text)))
    except Exception:  # the untyped parser raises SCIMParserError, ValueError and more
        raise PatchError("invalidFilter", f'"{label}": invalid filter "{text}".') from None
    if tree is None:
        raise PatchError("invalidFilter", f'Empty filter in "{label}".')
    return _convert_filter(tree, parent, label)


def _convert_filter(node: Any, parent: JsonObject | None, label: str) -> _Filter:
    if isinstance(node, filter_ast.Filter):
        if node.namespace is not None:
            raise PatchError("invalidFilter", f'Nested value filters are not supported: "{label}".')
        inner = _convert_filter(node.expr, parent, label)
        return _Negation(inner) if node.negated else inner
    if isinstance(node, filter_ast.LogExpr):
        return _Logical(
            str(node.op).lower(),
            _convert_filter(node.expr1, parent, label),
            _convert_filter(node.expr2, parent, label),
        )
    if isinstance(node, filter_ast.AttrExpr):
        return _convert_comparison(node, parent, label)
    raise PatchError("invalidFilter", f'Unsupported filter in "{label}".')


def _convert_comparison(node: Any, parent: JsonObject | None, label: str) -> _Comparison:
    operator = str(node.value).lower()
    path = node.attr_path
    name = path.attr_name
    if not isinstance(name, str) or path.uri is not None:
        raise PatchError("invalidFilter", f'Unsupported attribute in the filter of "{label}".')
    if path.sub_attr is not None:
        # `emails[emails.type eq "work"]`: a client may qualify with the parent's own name.
        if parent is None or name.lower() != str(parent["name"]).lower():
            raise PatchError("invalidFilter", f'Unsupported attribute in the filter of "{label}".')
        name = str(path.sub_attr.value)
    definition: JsonObject | None = None
    if parent is not None:
        definition = _find_sub_attribute(parent, name)
        if definition is None:
            raise PatchError(
                "invalidFilter", f'Unknown attribute "{name}" in the filter of "{label}".'
            )
        name = str(definition["name"])
    value = _comparison_value(node.comp_value) if operator != "pr" else None
    type_ = definition["type"] if definition is not None else None
    # RFC 7644 §3.4.2.2: ordering on boolean or binary attributes is invalidFilter.
    if type_ in ("boolean", "binary") and operator in _ORDERING:
        raise PatchError("invalidFilter", f'"{operator}" cannot compare "{name}" in "{label}".')
    if type_ == "boolean" and operator != "pr":
        if operator in _SUBSTRING:
            raise PatchError("invalidFilter", f'"{operator}" cannot compare "{name}" in "{label}".')
        if value is not None:
            coerced = _as_boolean(value)
            if coerced is None:
                raise PatchError("invalidFilter", f'"{name}" compares with true or false only.')
            value = coerced
    return _Comparison(name, operator, value, definition)


def _comparison_value(node: Any) -> str | int | bool | None:
    raw = node.value
    if isinstance(raw, _QuotedString):
        text = str(raw)
        if "\\" in text:
            # The lexer strips the quotes but leaves JSON escapes (RFC 7644 §3.4.2.2 compValue).
            try:
                decoded = json.loads(f'"{text}"')
            except ValueError:
                return text
            return str(decoded)
        return text
    if raw == "true":
        return True
    if raw == "false":
        return False
    if raw == "null":
        return None
    return int(raw)


def _matches(value_filter: _Filter, element: Any) -> bool:
    if isinstance(value_filter, _Negation):
        return not _matches(value_filter.operand, element)
    if isinstance(value_filter, _Logical):
        if value_filter.operator == "and":
            return _matches(value_filter.left, element) and _matches(value_filter.right, element)
        return _matches(value_filter.left, element) or _matches(value_filter.right, element)
    # A simple multi-valued element is compared as its own "value" (RFC 7644 §3.4.2.2).
    fields = element if isinstance(element, Mapping) else {"value": element}
    return _compare(value_filter, _get(fields, value_filter.attribute))


def _compare(comparison: _Comparison, actual: Any) -> bool:
    operator = comparison.operator
    expected = comparison.value
    if operator == "pr":
        return actual not in (None, "", [], {})
    if operator == "ne":
        return not _equals(comparison, actual)
    if operator == "eq":
        return _equals(comparison, actual)
    if isinstance(expected, bool) or expected is None:
        return False
    if isinstance(expected, int):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return _order(operator, actual, expected)
    if not isinstance(actual, str):
        return False
    left, right = _fold(comparison.definition, actual), _fold(comparison.definition, expected)
    if operator == "co":
        return right in left
    if operator == "sw":
        return left.startswith(right)
    if operator == "ew":
        return left.endswith(right)
    return _order(operator, left, right)


def _order(operator: str, left: Any, right: Any) -> bool:
    if operator == "gt":
        return bool(left > right)
    if operator == "ge":
        return bool(left >= right)
    if operator == "lt":
        return bool(left < right)
    return bool(left <= right)


def _equals(comparison: _Comparison, actual: Any) -> bool:
    expected = comparison.value
    if expected is None:
        return actual in (None, "")
    if isinstance(expected, bool):
        # Entra ID stores and sends booleans as "True"/"False" strings.
        return _as_boolean(actual) is expected
    if isinstance(expected, str) and isinstance(actual, str):
        return _fold(comparison.definition, actual) == _fold(comparison.definition, expected)
    if isinstance(actual, bool):
        return False
    return bool(actual == expected)


def _fold(definition: JsonObject | None, text: str) -> str:
    # RFC 7643 §2.2: strings compare case-insensitively unless the attribute is caseExact.
    if definition is not None and definition.get("caseExact"):
        return text
    return text.casefold()


def _template(value_filter: _Filter) -> JsonObject | None:
    """The element an `eq`-only filter describes, e.g. {"type": "work"}; None if not such."""
    if isinstance(value_filter, _Comparison):
        if value_filter.operator == "eq" and value_filter.value is not None:
            return {value_filter.attribute: value_filter.value}
        return None
    if isinstance(value_filter, _Logical) and value_filter.operator == "and":
        left, right = _template(value_filter.left), _template(value_filter.right)
        if left is None or right is None or set(left) & set(right):
            return None
        return left | right
    return None


def _member_ids_in_filter(value_filter: _Filter, label: str) -> list[str]:
    if (
        isinstance(value_filter, _Comparison)
        and value_filter.attribute == "value"
        and value_filter.operator == "eq"
        and isinstance(value_filter.value, str)
    ):
        return [value_filter.value]
    if isinstance(value_filter, _Logical) and value_filter.operator == "or":
        return _member_ids_in_filter(value_filter.left, label) + _member_ids_in_filter(
            value_filter.right, label
        )
    raise PatchError(
        "invalidFilter", f'"{label}": members are selected only by value eq "id" (or of them).'
    )


# ------------------------------------------------------------------ small helpers


def _key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of `mapping` equal to `name` ignoring case (RFC 7643 §2.1), or None."""
    if name in mapping:
        return name
    folded = name.lower()
    return next((key for key in mapping if isinstance(key, str) and key.lower() == folded), None)


def _get(mapping: Mapping[str, Any], name: str) -> Any:
    key = _key(mapping, name)
    return mapping[key] if key is not None else None


def _put(mapping: JsonObject, name: str, value: Any) -> None:
    _pop(mapping, name)
    mapping[name] = value


def _pop(mapping: JsonObject, name: str) -> None:
    key = _key(mapping, name)
    if key is not None:
        del mapping[key]


def _is_empty(value: Any) -> bool:
    """RFC 7644 §3.5.2: null (and, from IdPs, "") is the same as unassigned."""
    return value is None or value == ""


def _as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _find_sub_attribute(definition: JsonObject, name: str) -> JsonObject | None:
    folded = name.lower()
    sub_attributes: list[JsonObject] = definition.get("subAttributes", [])
    return next((sub for sub in sub_attributes if str(sub["name"]).lower() == folded), None)


def _as_list(value: Any) -> list[Any]:
    if _is_empty(value):
        return []
    if isinstance(value, list):
        return value
    # A single object where RFC 7644 wants an array; several IdPs send it for one value.
    return [value]


def _dedupe(elements: Iterable[Any]) -> list[Any]:
    unique: list[Any] = []
    for element in elements:
        if element not in unique:
            unique.append(element)
    return unique


def _contains(element: Any, pattern: Any, definition: JsonObject | None) -> bool:
    """Whether `element` has every sub-attribute value of `pattern` (a remove's value)."""
    if not isinstance(pattern, Mapping) or not isinstance(element, Mapping):
        return bool(element == pattern)
    if not pattern:
        return False
    for name, expected in pattern.items():
        sub = _find_sub_attribute(definition, name) if definition is not None else None
        actual = _get(element, name)
        if isinstance(expected, str | int) or expected is None:
            if not _equals(_Comparison(name, "eq", expected, sub), actual):
                return False
        elif actual != expected:
            return False
    return True


# Common attributes (RFC 7643 §3.1) are in no schema's attribute list.
_META_PARTS = ("resourceType", "created", "lastModified", "location", "version")
_COMMON_ATTRIBUTES: dict[str, JsonObject] = {
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
_KNOWN_SCHEMAS = (USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA)


# ------------------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class _ResourceKind:
    name: str
    core_schema: str
    extension_schemas: tuple[str, ...]


_USER = _ResourceKind("User", USER_SCHEMA, (ENTERPRISE_USER_SCHEMA,))
_GROUP = _ResourceKind("Group", GROUP_SCHEMA, ())


@dataclass(frozen=True, slots=True)
class _Target:
    """A resolved attribute path: where it lives, its schema definition and selectors."""

    label: str
    namespace: str | None
    attribute: str
    definition: JsonObject | None
    value_filter: _Filter | None
    sub_attribute: str | None
    sub_definition: JsonObject | None


class _MemberLedger:
    """Membership operations folded in order; dicts serve as ordered sets."""

    def __init__(self) -> None:
        self.added: dict[str, None] = {}
        self.removed: dict[str, None] = {}
        self.replaced: dict[str, None] | None = None

    def add(self, member_ids: Iterable[str]) -> None:
        for member_id in member_ids:
            if self.replaced is not None:
                self.replaced[member_id] = None
            else:
                self.removed.pop(member_id, None)
                self.added[member_id] = None

    def remove(self, member_ids: Iterable[str]) -> None:
        for member_id in member_ids:
            if self.replaced is not None:
                self.replaced.pop(member_id, None)
            else:
                # Keep the removal even after an add in this request: the id may have been a
                # member before it, and the later remove must win.
                self.added.pop(member_id, None)
                self.removed[member_id] = None

    def replace(self, member_ids: Iterable[str]) -> None:
        self.replaced = dict.fromkeys(member_ids)
        self.added.clear()
        self.removed.clear()

    def changes(self) -> MemberChanges:
        return MemberChanges(
            added=tuple(self.added),
            removed=tuple(self.removed),
            replaced=tuple(self.replaced) if self.replaced is not None else None,
        )


class _Patcher:
    """Applies operations to a private copy of one resource document."""

    def __init__(self, kind: _ResourceKind, document: Mapping[str, Any]) -> None:
        self.kind = kind
        self.document: JsonObject = deepcopy(dict(document))
        self.members = _MemberLedger()
        self.namespaces: dict[str, None] = {}

    def run(self, operations: Iterable[PatchOperation]) -> JsonObject:
        for operation in operations:
            if operation.path is None:
                # RFC 7644 §3.5.2.1/§3.5.2.3: without a path, each member of the value is an
                # attribute of the resource; we accept any attribute path as the key (Entra ID
                # sends "name.givenName" and full URN paths there).
                for key, value in operation.value.items():
                    self.apply_path(operation.op, str(key), value, from_value=True)
            else:
                self.apply_path(operation.op, operation.path, operation.value, from_value=False)
        self.finish()
        return self.document

    # -- resolution

    def apply_path(self, op: PatchOperationName, text: str, value: Any, from_value: bool) -> None:
        schema, rest = self.split_schema(text, op, value)
        namespace = self.namespace_for(schema, text)
        if rest is None:
            self.apply_to_schema(op, namespace, value, text)
        else:
            self.apply_target(op, self.resolve(namespace, rest, text), value, from_value)

    def split_schema(
        self, text: str, op: PatchOperationName, value: Any
    ) -> tuple[str | None, str | None]:
        """Split `urn:...:attr.sub` into (schema URN, attribute path); rest None: whole schema."""
        if not text.lower().startswith("urn:"):
            return None, text
        head, bracket, tail = text.partition("[")
        folded = head.lower()
        for schema in _KNOWN_SCHEMAS:
            if folded == schema.lower() and not bracket:
                return schema, None
            if folded.startswith(schema.lower() + ":"):
                return schema, text[len(schema) + 1 :]
        # An extension we have no schema for: "urn:x:User:attr" could be the schema "urn:x:User"
        # and attribute "attr", or a schema named "urn:x:User:attr". The document decides
        # first, then the value (an object names a whole extension).
        existing = self.extension_keys()
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

    def extension_keys(self) -> dict[str, str]:
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

    def namespace_for(self, schema: str | None, text: str) -> str | None:
        if schema is None or schema == self.kind.core_schema:
            return None
        if schema in self.kind.extension_schemas:
            return schema
        if schema in _KNOWN_SCHEMAS:
            raise PatchError("invalidPath", f'"{text}": a {self.kind.name} has no schema {schema}.')
        return schema

    def resolve(self, namespace: str | None, rest: str, label: str) -> _Target:
        name, filter_text, sub_name = _split_attribute_path(rest.strip(), label)
        definition = self.definition(namespace, name, label)
        if definition is not None:
            attribute = str(definition["name"])
        else:
            attribute = _key(self.peek(namespace), name) or name
        sub_definition: JsonObject | None = None
        if sub_name is not None and definition is not None:
            if definition["type"] != "complex":
                raise PatchError("invalidPath", f'"{label}": {attribute} has no sub-attributes.')
            sub_definition = _find_sub_attribute(definition, sub_name)
            if sub_definition is None:
                raise PatchError(
                    "invalidPath", f'"{label}": {attribute} has no sub-attribute "{sub_name}".'
                )
            sub_name = str(sub_definition["name"])
        value_filter: _Filter | None = None
        if filter_text is not None:
            if definition is not None and not definition["multiValued"]:
                raise PatchError(
                    "invalidPath", f'"{label}": value filters need a multi-valued attribute.'
                )
            value_filter = _parse_filter(filter_text, definition, label)
        return _Target(
            label, namespace, attribute, definition, value_filter, sub_name, sub_definition
        )

    def definition(self, namespace: str | None, name: str, label: str) -> JsonObject | None:
        """The schema definition of an attribute; None for extensions we keep verbatim."""
        if namespace is None:
            common = _COMMON_ATTRIBUTES.get(name.lower())
            found = common if common is not None else find_attribute(self.kind.core_schema, name)
        elif namespace in self.kind.extension_schemas:
            found = find_attribute(namespace, name)
        else:
            return None
        if found is None:
            raise PatchError("invalidPath", f'"{label}": unknown attribute "{name}".')
        return found

    def peek(self, namespace: str | None) -> JsonObject:
        if namespace is None:
            return self.document
        container = self.document.get(namespace)
        return container if isinstance(container, dict) else {}

    def container(self, namespace: str | None) -> JsonObject:
        if namespace is None:
            return self.document
        self.namespaces[namespace] = None
        container = self.document.get(namespace)
        if not isinstance(container, dict):
            container = {}
            self.document[namespace] = container
        return container

    # -- application

    def apply_to_schema(
        self, op: PatchOperationName, namespace: str | None, value: Any, label: str
    ) -> None:
        """A path that is a schema URN: its value holds that schema's attributes."""
        if op is _REMOVE:
            if namespace is None:
                raise PatchError("invalidPath", f'"{label}": the core schema cannot be removed.')
            self.namespaces[namespace] = None
            self.document.pop(namespace, None)
            return
        if not isinstance(value, Mapping):
            raise PatchError("invalidValue", f'"{label}" takes an object of its attributes.')
        for key, item in value.items():
            if str(key).lower().startswith("urn:"):
                raise PatchError("invalidPath", f'"{key}" cannot be nested in "{label}".')
            if str(key).lower() == "schemas":
                # scim2-models serializes an extension object with its own "schemas" member.
                continue
            target = self.resolve(namespace, str(key), f"{label}:{key}")
            self.apply_target(op, target, item, from_value=True)

    def apply_target(
        self, op: PatchOperationName, target: _Target, value: Any, from_value: bool
    ) -> None:
        if target.namespace is None:
            folded = target.attribute.lower()
            if folded == "schemas":
                # Clients echo "schemas" in path-less values; we derive it from the extensions.
                if from_value:
                    return
                raise PatchError("mutability", '"schemas" follows the extensions present.')
            if folded == "password" and self.kind is _USER:
                # RFC 7643 §4.1.1: writeOnly and never returned; passwords are not ours to keep.
                return
            if folded == "members" and self.kind is _GROUP:
                self.apply_members(op, target, value)
                return
            if folded == "id":
                # Okta echoes the resource's own id in path-less replaces (Groups, sometimes
                # Users): an unchanged id is no modification.
                if op is not _REMOVE and value == self.document.get("id"):
                    return
                raise PatchError("mutability", '"id" is assigned by the service provider.')
        self.check_mutability(target)
        container = self.container(target.namespace)
        definition = target.definition
        if definition is not None:
            is_multi_valued = bool(definition["multiValued"])
            is_complex = definition["type"] == "complex"
        else:
            current = _get(container, target.attribute)
            is_multi_valued = (
                target.value_filter is not None
                or isinstance(current, list)
                or (current is None and isinstance(value, list))
            )
            is_complex = target.sub_attribute is not None or isinstance(value, Mapping)
        if is_multi_valued:
            self.apply_multi_valued(op, target, container, value)
        elif is_complex:
            self.apply_complex(op, target, container, value)
        else:
            self.apply_simple(op, target, container, value)

    def check_mutability(self, target: _Target) -> None:
        # RFC 7644 §3.5.2: an operation must respect the attribute's mutability (RFC 7643 §2.2).
        for definition in (target.definition, target.sub_definition):
            if definition is not None and definition.get("mutability") == "readOnly":
                raise PatchError(
                    "mutability", f'"{target.label}": {definition["name"]} is read-only.'
                )
        definition = target.definition
        if definition is not None and definition.get("mutability") == "immutable":
            if not _is_empty(_get(self.peek(target.namespace), target.attribute)):
                raise PatchError(
                    "mutability", f'"{target.label}": {definition["name"]} is immutable.'
                )

    def apply_simple(
        self, op: PatchOperationName, target: _Target, container: JsonObject, value: Any
    ) -> None:
        if target.sub_attribute is not None:
            raise PatchError("invalidPath", f'"{target.label}": the attribute is not complex.')
        if op is _REMOVE or _is_empty(value):
            _pop(container, target.attribute)
        else:
            _put(container, target.attribute, _simple(target.definition, value, target.label))

    def apply_complex(
        self, op: PatchOperationName, target: _Target, container: JsonObject, value: Any
    ) -> None:
        current = _get(container, target.attribute)
        if target.sub_attribute is not None:
            updated = dict(current) if isinstance(current, Mapping) else {}
            if op is _REMOVE or _is_empty(value):
                _pop(updated, target.sub_attribute)
            else:
                label = target.label
                _put(updated, target.sub_attribute, _simple(target.sub_definition, value, label))
        elif op is _REMOVE or _is_empty(value):
            updated = {}
        else:
            updated, cleared = _complex(target.definition, value, target.label)
            # RFC 7644 §3.5.2.1: add merges sub-attributes; replace (§3.5.2.3) replaces them.
            if op is _ADD and isinstance(current, Mapping):
                merged = {k: v for k, v in current.items() if k not in cleared}
                merged.update(updated)
                updated = merged
        # An object with no sub-attribute left is unassigned (manager {"value": ""} clears it).
        if updated:
            _put(container, target.attribute, updated)
        else:
            _pop(container, target.attribute)

    def apply_multi_valued(
        self, op: PatchOperationName, target: _Target, container: JsonObject, value: Any
    ) -> None:
        current = _get(container, target.attribute)
        elements = list(current) if isinstance(current, list) else _as_list(current)
        written: list[Any] = []
        if target.value_filter is not None:
            elements = self.apply_filtered(op, target, elements, value, written)
        elif target.sub_attribute is not None:
            elements = self.apply_to_every_element(op, target, elements, value, written)
        else:
            elements = self.apply_whole_list(op, target, elements, value, written)
        _single_primary(target, elements, written)
        if elements:
            _put(container, target.attribute, elements)
        else:
            _pop(container, target.attribute)

    def apply_whole_list(
        self,
        op: PatchOperationName,
        target: _Target,
        elements: list[Any],
        value: Any,
        written: list[Any],
    ) -> list[Any]:
        definition = target.definition
        if op is _REMOVE:
            if value is None:
                return []
            # Entra ID removes single values (members, roles) by listing them in "value"
            # instead of a filter.
            patterns = [_element(definition, item, target.label) for item in _as_list(value)]
            return [e for e in elements if not any(_contains(e, p, definition) for p in patterns)]
        if op is _REPLACE:
            elements = []
        for item in _as_list(value):
            element = _element(definition, item, target.label)
            if element in ({}, None, ""):
                continue
            # RFC 7644 §3.5.2.1: adding a value that is already present changes nothing.
            if element not in elements:
                elements.append(element)
                written.append(element)
        return elements

    def apply_to_every_element(
        self,
        op: PatchOperationName,
        target: _Target,
        elements: list[Any],
        value: Any,
        written: list[Any],
    ) -> list[Any]:
        """`emails.type` without a filter addresses that sub-attribute of every value."""
        sub = str(target.sub_attribute)
        objects = [e for e in elements if isinstance(e, dict)]
        if op is _REMOVE or _is_empty(value):
            for element in objects:
                _pop(element, sub)
            return [e for e in elements if e != {}]
        if not objects:
            raise PatchError("noTarget", f'"{target.label}": the attribute has no values.')
        new = _simple(target.sub_definition, value, target.label)
        for element in objects:
            _put(element, sub, deepcopy(new))
            written.append(element)
        return _dedupe(elements)

    def apply_filtered(
        self,
        op: PatchOperationName,
        target: _Target,
        elements: list[Any],
        value: Any,
        written: list[Any],
    ) -> list[Any]:
        assert target.value_filter is not None
        value_filter = target.value_filter
        sub = target.sub_attribute
        matches = [e for e in elements if _matches(value_filter, e)]
        if op is _REMOVE:
            # RFC 7644 §3.5.2.2: matching values (or their sub-attribute) go; no match, no-op.
            if sub is None:
                return [e for e in elements if not any(e is m for m in matches)]
            for match in matches:
                if isinstance(match, dict):
                    _pop(match, sub)
            return [e for e in elements if e != {}]
        if not matches:
            if sub is not None and _is_empty(value):
                return elements
            template = _template(value_filter)
            # RFC 7644 §3.5.2.3: replace with a filter that matches nothing is noTarget. But
            # Entra ID sends `replace emails[type eq "work"].value` (and `add` likewise) to a
            # user with no work email and expects it created: an eq-only filter names the new
            # element, so we add {"type": "work", "value": ...}.
            if template is None or (op is _REPLACE and sub is None):
                raise PatchError("noTarget", f'"{target.label}" matches no value.')
            template = _complex(target.definition, template, target.label)[0]
            if sub is not None:
                new = _simple(target.sub_definition, value, target.label)
                element: Any = template | {sub: new}
            else:
                element = template | _complex(target.definition, value, target.label)[0]
            elements.append(element)
            written.append(element)
            return elements
        if sub is not None:
            if _is_empty(value):
                for match in matches:
                    if isinstance(match, dict):
                        _pop(match, sub)
                return [e for e in elements if e != {}]
            new = _simple(target.sub_definition, value, target.label)
            for match in matches:
                if isinstance(match, dict):
                    _put(match, sub, deepcopy(new))
                    written.append(match)
            return _dedupe(elements)
        updated, cleared = _complex(target.definition, value, target.label)
        result: list[Any] = []
        for element in elements:
            if not any(element is m for m in matches):
                result.append(element)
                continue
            if op is _ADD and isinstance(element, dict):
                # RFC 7644 §3.5.2.1: add merges into the selected values.
                replacement = {k: v for k, v in element.items() if k not in cleared}
                replacement.update(deepcopy(updated))
            else:
                # RFC 7644 §3.5.2.3: "all matching record values SHALL be replaced".
                replacement = deepcopy(updated)
            if replacement:
                result.append(replacement)
                written.append(replacement)
        return _dedupe(result)

    def apply_members(self, op: PatchOperationName, target: _Target, value: Any) -> None:
        """Membership never touches the document; it is folded into a MemberChanges."""
        label = target.label
        if target.sub_attribute is not None:
            raise PatchError("invalidPath", f'"{label}": member sub-attributes cannot be patched.')
        if target.value_filter is not None:
            if op is not _REMOVE:
                raise PatchError("invalidPath", f'"{label}": a members filter works with remove.')
            self.members.remove(_member_ids_in_filter(target.value_filter, label))
        elif op is _REMOVE:
            if value is None:
                self.members.replace(())
            else:
                # Entra ID: remove path "members" with a value removes just those members.
                self.members.remove(self.member_ids(target, value))
        elif op is _ADD:
            self.members.add(self.member_ids(target, value))
        else:
            self.members.replace(self.member_ids(target, value))

    def member_ids(self, target: _Target, value: Any) -> list[str]:
        member_ids: list[str] = []
        for item in _as_list(value):
            if not isinstance(item, Mapping):
                raise PatchError("invalidValue", f'"{target.label}": members are objects.')
            member = _complex(target.definition, item, target.label)[0]
            member_id = member.get("value")
            if not isinstance(member_id, str) or not member_id.strip():
                raise PatchError("invalidValue", f'"{target.label}": each member needs a value.')
            member_ids.append(member_id.strip())
        return member_ids

    def finish(self) -> None:
        if self.kind is _USER:
            # RFC 7643 §4.1.1: password is never returned; it must not reach storage either.
            _pop(self.document, "password")
        _normalize_booleans(self.document, attribute_definitions(self.kind.core_schema))
        for schema in self.kind.extension_schemas:
            extension = self.document.get(schema)
            if isinstance(extension, dict):
                _normalize_booleans(extension, attribute_definitions(schema))
        for namespace in self.namespaces:
            self.declare(namespace)

    def declare(self, namespace: str) -> None:
        """RFC 7643 §3: "schemas" lists exactly the extensions the resource carries."""
        extension = self.document.get(namespace)
        schemas = self.document.get("schemas")
        declared = list(schemas) if isinstance(schemas, list) else [self.kind.core_schema]
        present = [s for s in declared if isinstance(s, str) and s.lower() == namespace.lower()]
        if isinstance(extension, dict) and extension:
            if not present:
                self.document["schemas"] = [*declared, namespace]
            return
        self.document.pop(namespace, None)
        if present:
            self.document["schemas"] = [s for s in declared if s not in present]


def _split_attribute_path(text: str, label: str) -> tuple[str, str | None, str | None]:
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


def _coerce_boolean(value: Any, label: str) -> bool:
    coerced = _as_boolean(value)
    if coerced is None:
        raise PatchError("invalidValue", f'"{label}" must be true or false, not {value!r}.')
    return coerced


def _simple(definition: JsonObject | None, value: Any, label: str) -> Any:
    """Check one simple value against its definition; booleans may arrive as strings."""
    if definition is None:
        return value
    if definition["type"] == "boolean":
        # Entra ID sends booleans as "True"/"False".
        return _coerce_boolean(value, label)
    if isinstance(value, Mapping | list):
        raise PatchError("invalidValue", f'"{label}" takes a single {definition["type"]} value.')
    return value


def _complex(definition: JsonObject | None, value: Any, label: str) -> tuple[JsonObject, set[str]]:
    """A complex value with canonical sub-attribute names, and the sub-attributes it clears."""
    if isinstance(value, str) and (
        definition is not None and _find_sub_attribute(definition, "value") is not None
    ):
        # Entra ID sends the manager as the bare id instead of {"value": id}.
        value = {"value": value}
    if not isinstance(value, Mapping):
        raise PatchError("invalidValue", f'"{label}" takes an object.')
    result: JsonObject = {}
    cleared: set[str] = set()
    for raw_name, item in value.items():
        name = str(raw_name)
        sub: JsonObject | None = None
        if definition is not None:
            sub = _find_sub_attribute(definition, name)
            if sub is None:
                raise PatchError("invalidPath", f'"{label}" has no sub-attribute "{name}".')
            name = str(sub["name"])
            if sub.get("mutability") == "readOnly":
                # RFC 7643 §2.2: values for readOnly sub-attributes (members.display,
                # manager.displayName) are ignored; the service provider fills them in.
                continue
        if _is_empty(item):
            cleared.add(name)
            continue
        result[name] = _simple(sub, item, f"{label}.{name}")
    return result, cleared


def _element(definition: JsonObject | None, item: Any, label: str) -> Any:
    if definition is None:
        return item
    if definition["type"] == "complex":
        return _complex(definition, item, label)[0]
    return _simple(definition, item, label)


def _single_primary(target: _Target, elements: list[Any], written: list[Any]) -> None:
    """RFC 7643 §2.4: at most one value is primary; a newly primary value demotes the rest."""
    if target.definition is None or _find_sub_attribute(target.definition, "primary") is None:
        return
    chosen = [e for e in written if isinstance(e, dict) and e.get("primary") is True]
    if len(chosen) > 1:
        raise PatchError("invalidValue", f'"{target.label}": only one value may be primary.')
    if not chosen:
        return
    for element in elements:
        if element is not chosen[0] and isinstance(element, dict):
            if _as_boolean(_get(element, "primary")):
                _pop(element, "primary")


def _normalize_booleans(container: JsonObject, definitions: list[JsonObject]) -> None:
    """Store every boolean-typed (sub-)attribute as a JSON boolean, e.g. Entra ID's "True"."""
    for definition in definitions:
        key = _key(container, str(definition["name"]))
        if key is None:
            continue
        if definition["type"] == "boolean" and not definition["multiValued"]:
            container[key] = _lenient_boolean(container[key])
        elif definition["type"] == "complex":
            value = container[key]
            elements = value if isinstance(value, list) else [value]
            booleans = [
                str(s["name"])
                for s in definition.get("subAttributes", [])
                if s["type"] == "boolean"
            ]
            for element in elements:
                if not isinstance(element, dict):
                    continue
                for name in booleans:
                    sub_key = _key(element, name)
                    if sub_key is not None:
                        element[sub_key] = _lenient_boolean(element[sub_key])


def _lenient_boolean(value: Any) -> Any:
    coerced = _as_boolean(value)
    return value if coerced is None else coerced


# ------------------------------------------------------------------------- entry points


def apply_user_patch(document: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Return a patched copy of a User document; on PatchError `document` is untouched."""
    operations = parse_operations(body)
    return _Patcher(_USER, document).run(operations)


def apply_group_patch(
    document: dict[str, Any], body: Mapping[str, Any]
) -> tuple[dict[str, Any], MemberChanges]:
    """Return a patched copy of a Group document (no members) and the membership changes."""
    operations = parse_operations(body)
    patcher = _Patcher(_GROUP, document)
    patched = patcher.run(operations)
    return patched, patcher.members.changes()
