"""Value filters of PATCH paths (`emails[type eq "work"]`, RFC 7644 §3.5.2), evaluated in Python.

The filter is read by `scim.filter_parser` like any SCIM filter, then bound to the multi-valued
attribute it selects from: names become that attribute's sub-attributes, with their definition,
so comparisons follow caseExact and booleans (RFC 7643 §2.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from scim.filter_parser import (
    AllOf,
    AnyOf,
    Compare,
    Expr,
    FilterError,
    Not,
    Number,
    ValuePath,
    parse_filter,
)
from scim.patch import documents
from scim.patch.documents import JsonObject
from scim.patch.operations import PatchError


@dataclass(frozen=True, slots=True)
class Comparison:
    """`attribute operator value` on one element; `definition` is the sub-attribute's."""

    attribute: str
    operator: str
    value: str | int | bool | None
    definition: JsonObject | None


@dataclass(frozen=True, slots=True)
class Logical:
    """`and` (every operand) or `or` (any operand)."""

    operator: str
    operands: tuple[ValueFilter, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    operand: ValueFilter


ValueFilter: TypeAlias = Comparison | Logical | Negation

_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})


def parse_value_filter(text: str, parent: JsonObject | None, label: str) -> ValueFilter:
    """The filter inside `[...]` of the path `label`, bound to the attribute `parent` defines."""
    try:
        # Entra ID writes `primary eq True`; JSON literals are lower case only.
        return _bind(parse_filter(text, any_case_keywords=True), parent, label)
    except FilterError:
        raise PatchError("invalidFilter", f'"{label}": invalid filter "{text}".') from None


def _bind(expr: Expr, parent: JsonObject | None, label: str) -> ValueFilter:
    if isinstance(expr, Not):
        return Negation(_bind(expr.expr, parent, label))
    if isinstance(expr, AllOf | AnyOf):
        operator = "and" if isinstance(expr, AllOf) else "or"
        return Logical(operator, tuple(_bind(e, parent, label) for e in expr.exprs))
    if isinstance(expr, ValuePath):
        raise PatchError("invalidFilter", f'Nested value filters are not supported: "{label}".')
    return _bind_comparison(expr, parent, label)


def _bind_comparison(node: Compare, parent: JsonObject | None, label: str) -> Comparison:
    operator = node.op
    path = node.path
    name = path.name
    if node.value_filter is not None or path.uri is not None:
        raise PatchError("invalidFilter", f'Unsupported attribute in the filter of "{label}".')
    if path.sub_name is not None:
        # `emails[emails.type eq "work"]`: a client may qualify with the parent's own name.
        if parent is None or name.lower() != str(parent["name"]).lower():
            raise PatchError("invalidFilter", f'Unsupported attribute in the filter of "{label}".')
        name = path.sub_name
    definition: JsonObject | None = None
    if parent is not None:
        definition = documents.find_sub_attribute(parent, name)
        if definition is None:
            raise PatchError(
                "invalidFilter", f'Unknown attribute "{name}" in the filter of "{label}".'
            )
        name = str(definition["name"])
    value = _comparison_value(node) if operator != "pr" else None
    type_ = definition["type"] if definition is not None else None
    # RFC 7644 §3.4.2.2: ordering on boolean or binary attributes is invalidFilter.
    if type_ in ("boolean", "binary") and operator in _ORDERING:
        raise PatchError("invalidFilter", f'"{operator}" cannot compare "{name}" in "{label}".')
    if type_ == "boolean" and operator != "pr":
        if operator in _SUBSTRING:
            raise PatchError("invalidFilter", f'"{operator}" cannot compare "{name}" in "{label}".')
        if value is not None:
            coerced = documents.as_boolean(value)
            if coerced is None:
                raise PatchError("invalidFilter", f'"{name}" compares with true or false only.')
            value = coerced
    return Comparison(name, operator, value, definition)


def _comparison_value(node: Compare) -> str | int | bool | None:
    value = node.value
    if not isinstance(value, Number):
        return value
    if not value.text.isdigit():  # value filters compare whole numbers only
        raise FilterError(f"invalid value {value.text}")
    return int(value.text)


def matches(value_filter: ValueFilter, element: Any) -> bool:
    """Whether one value of a multi-valued attribute is selected by the filter."""
    if isinstance(value_filter, Negation):
        return not matches(value_filter.operand, element)
    if isinstance(value_filter, Logical):
        results = (matches(operand, element) for operand in value_filter.operands)
        return all(results) if value_filter.operator == "and" else any(results)
    # A simple multi-valued element is compared as its own "value" (RFC 7644 §3.4.2.2).
    fields = element if isinstance(element, Mapping) else {"value": element}
    return _compare(value_filter, documents.get(fields, value_filter.attribute))


def _compare(comparison: Comparison, actual: Any) -> bool:
    operator = comparison.operator
    expected = comparison.value
    if operator == "pr":
        return actual not in (None, "", [], {})
    if operator == "ne":
        return not equals(comparison, actual)
    if operator == "eq":
        return equals(comparison, actual)
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


def equals(comparison: Comparison, actual: Any) -> bool:
    """`eq` as SCIM means it: case per caseExact, null as unassigned, "True" as true."""
    expected = comparison.value
    if expected is None:
        return actual in (None, "")
    if isinstance(expected, bool):
        # Entra ID stores and sends booleans as "True"/"False" strings.
        return documents.as_boolean(actual) is expected
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


def template(value_filter: ValueFilter) -> JsonObject | None:
    """The element an `eq`-only filter describes, e.g. {"type": "work"}; None if not such."""
    if isinstance(value_filter, Comparison):
        if value_filter.operator == "eq" and value_filter.value is not None:
            return {value_filter.attribute: value_filter.value}
        return None
    if isinstance(value_filter, Logical) and value_filter.operator == "and":
        described: JsonObject = {}
        for operand in value_filter.operands:
            part = template(operand)
            if part is None or set(described) & set(part):
                return None
            described |= part
        return described
    return None


def member_ids_in_filter(value_filter: ValueFilter, label: str) -> list[str]:
    """The user ids a `members[value eq "id" or ...]` filter names."""
    if (
        isinstance(value_filter, Comparison)
        and value_filter.attribute == "value"
        and value_filter.operator == "eq"
        and isinstance(value_filter.value, str)
    ):
        return [value_filter.value]
    if isinstance(value_filter, Logical) and value_filter.operator == "or":
        return [
            member_id
            for operand in value_filter.operands
            for member_id in member_ids_in_filter(operand, label)
        ]
    raise PatchError(
        "invalidFilter", f'"{label}": members are selected only by value eq "id" (or of them).'
    )
