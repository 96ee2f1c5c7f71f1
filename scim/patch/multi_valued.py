"""PATCH operations on the values of a multi-valued attribute (RFC 7644 §3.5.2): the whole list,
one sub-attribute of every value, or the values a filter selects.

Each function takes the current values, returns the new list and appends every value it wrote to
`written` (for the single-primary rule); `elements` may be changed in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from scim.patch import documents
from scim.patch.operations import PatchError, PatchOperationName
from scim.patch.paths import Target
from scim.patch.value_filters import matches, template
from scim.patch.values import complex_value, contains, element_value, simple

_ADD = PatchOperationName.ADD
_REMOVE = PatchOperationName.REMOVE
_REPLACE = PatchOperationName.REPLACE


def apply_whole_list(
    op: PatchOperationName, target: Target, elements: list[Any], value: Any, written: list[Any]
) -> list[Any]:
    """`emails`: add appends new values, replace sets the list, remove empties or filters it."""
    definition = target.definition
    if op is _REMOVE:
        if value is None:
            return []
        # Entra ID removes single values (members, roles) by listing them in "value"
        # instead of a filter.
        patterns = [
            element_value(definition, item, target.label) for item in documents.as_list(value)
        ]
        return [e for e in elements if not any(contains(e, p, definition) for p in patterns)]
    if op is _REPLACE:
        elements = []
    for item in documents.as_list(value):
        element = element_value(definition, item, target.label)
        if element in ({}, None, ""):
            continue
        # RFC 7644 §3.5.2.1: adding a value that is already present changes nothing.
        if element not in elements:
            elements.append(element)
            written.append(element)
    return elements


def apply_to_every_element(
    op: PatchOperationName, target: Target, elements: list[Any], value: Any, written: list[Any]
) -> list[Any]:
    """`emails.type` without a filter addresses that sub-attribute of every value."""
    objects = [e for e in elements if isinstance(e, dict)]
    if op is _REMOVE:
        return _clear_sub_attribute(elements, objects, str(target.sub_attribute))
    if not objects and not documents.is_empty(value):
        raise PatchError("noTarget", f'"{target.label}": the attribute has no values.')
    return _write_sub_attribute(target, elements, objects, value, written)


def apply_filtered(
    op: PatchOperationName, target: Target, elements: list[Any], value: Any, written: list[Any]
) -> list[Any]:
    """`emails[type eq "work"]` or `emails[type eq "work"].value`: the values the filter selects."""
    assert target.value_filter is not None
    selected = [e for e in elements if matches(target.value_filter, e)]
    sub = target.sub_attribute
    if op is _REMOVE:
        # RFC 7644 §3.5.2.2: matching values (or their sub-attribute) go; no match, no-op.
        if sub is None:
            return [e for e in elements if not any(e is s for s in selected)]
        return _clear_sub_attribute(elements, selected, sub)
    if not selected:
        if sub is not None and documents.is_empty(value):
            return elements
        return _add_described(op, target, elements, value, written)
    if sub is None:
        return _replace_selected(op, target, elements, selected, value, written)
    return _write_sub_attribute(target, elements, selected, value, written)


def _add_described(
    op: PatchOperationName, target: Target, elements: list[Any], value: Any, written: list[Any]
) -> list[Any]:
    """A filter that matches nothing: add the value it describes, or fail with noTarget."""
    assert target.value_filter is not None
    described = template(target.value_filter)
    # RFC 7644 §3.5.2.3: replace with a filter that matches nothing is noTarget. But
    # Entra ID sends `replace emails[type eq "work"].value` (and `add` likewise) to a
    # user with no work email and expects it created: an eq-only filter names the new
    # element, so we add {"type": "work", "value": ...}.
    sub = target.sub_attribute
    if described is None or (op is _REPLACE and sub is None):
        raise PatchError("noTarget", f'"{target.label}" matches no value.')
    described = complex_value(target.definition, described, target.label)[0]
    element: Any
    if sub is not None:
        element = described | {sub: simple(target.sub_definition, value, target.label)}
    else:
        element = described | complex_value(target.definition, value, target.label)[0]
    if _has_value(target.definition) and element.get("value") in (None, ""):
        # `replace emails[primary eq true].primary` false on a user with no primary email
        # would add {"primary": false}: an email without an address is no email.
        raise PatchError("noTarget", f'"{target.label}" matches no value.')
    elements.append(element)
    written.append(element)
    return elements


def _has_value(definition: Mapping[str, Any] | None) -> bool:
    return definition is not None and any(
        sub.get("name") == "value" for sub in definition.get("subAttributes", [])
    )


def _replace_selected(
    op: PatchOperationName,
    target: Target,
    elements: list[Any],
    selected: list[Any],
    value: Any,
    written: list[Any],
) -> list[Any]:
    """Whole selected values: add merges into them, replace replaces them."""
    updated, cleared = complex_value(target.definition, value, target.label)
    result: list[Any] = []
    for element in elements:
        if not any(element is s for s in selected):
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
    return documents.dedupe(result)


def _clear_sub_attribute(elements: list[Any], selected: list[Any], sub: str) -> list[Any]:
    """Remove `sub` from the selected values; a value left empty goes."""
    for element in selected:
        if isinstance(element, dict):
            documents.pop(element, sub)
    return [e for e in elements if e != {}]


def _write_sub_attribute(
    target: Target, elements: list[Any], selected: list[Any], value: Any, written: list[Any]
) -> list[Any]:
    """Set the target's sub-attribute of the selected values to `value` (clear it when `value`
    is empty); values that became equal merge."""
    sub = str(target.sub_attribute)
    if documents.is_empty(value):
        return _clear_sub_attribute(elements, selected, sub)
    new = simple(target.sub_definition, value, target.label)
    for element in selected:
        if isinstance(element, dict):
            documents.put(element, sub, deepcopy(new))
            written.append(element)
    return documents.dedupe(elements)
