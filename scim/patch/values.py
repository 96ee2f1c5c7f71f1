"""Values checked against their schema definition before a PATCH writes them (RFC 7643 §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scim.patch import documents
from scim.patch.documents import JsonObject
from scim.patch.operations import PatchError
from scim.patch.value_filters import Comparison, equals


def _coerce_boolean(value: Any, label: str) -> bool:
    coerced = documents.as_boolean(value)
    if coerced is None:
        raise PatchError("invalidValue", f'"{label}" must be true or false, not {value!r}.')
    return coerced


def simple(definition: JsonObject | None, value: Any, label: str) -> Any:
    """Check one simple value against its definition; booleans may arrive as strings."""
    if definition is None:
        return value
    if definition["type"] == "boolean":
        # Entra ID sends booleans as "True"/"False".
        return _coerce_boolean(value, label)
    if isinstance(value, Mapping | list):
        raise PatchError("invalidValue", f'"{label}" takes a single {definition["type"]} value.')
    return value


def complex_value(
    definition: JsonObject | None, value: Any, label: str
) -> tuple[JsonObject, set[str]]:
    """A complex value with canonical sub-attribute names, and the sub-attributes it clears."""
    if isinstance(value, str) and (
        definition is not None and documents.find_sub_attribute(definition, "value") is not None
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
            sub = documents.find_sub_attribute(definition, name)
            if sub is None:
                # Be liberal in what clients send: an unknown sub-attribute inside a value
                # (a members entry carrying displayName) is ignored, as unknown attributes
                # are on POST. A PATH naming one is still invalidPath (paths.py).
                continue
            name = str(sub["name"])
            if sub.get("mutability") == "readOnly":
                # RFC 7643 §2.2: values for readOnly sub-attributes (members.display,
                # manager.displayName) are ignored; the service provider fills them in.
                continue
        if documents.is_empty(item):
            cleared.add(name)
            continue
        result[name] = simple(sub, item, f"{label}.{name}")
    return result, cleared


def element_value(definition: JsonObject | None, item: Any, label: str) -> Any:
    """One value of a multi-valued attribute, checked as complex or simple."""
    if definition is None:
        return item
    if definition["type"] == "complex":
        return complex_value(definition, item, label)[0]
    return simple(definition, item, label)


def contains(element: Any, pattern: Any, definition: JsonObject | None) -> bool:
    """Whether `element` has every sub-attribute value of `pattern` (a remove's value)."""
    if not isinstance(pattern, Mapping) or not isinstance(element, Mapping):
        return bool(element == pattern)
    if not pattern:
        return False
    for name, expected in pattern.items():
        sub = documents.find_sub_attribute(definition, name) if definition is not None else None
        actual = documents.get(element, name)
        if isinstance(expected, str | int) or expected is None:
            if not equals(Comparison(name, "eq", expected, sub), actual):
                return False
        elif actual != expected:
            return False
    return True


def single_primary(
    definition: JsonObject | None, label: str, elements: list[Any], written: list[Any]
) -> None:
    """RFC 7643 §2.4: at most one value is primary; a newly primary value demotes the rest."""
    if definition is None or documents.find_sub_attribute(definition, "primary") is None:
        return
    chosen = [e for e in written if isinstance(e, dict) and e.get("primary") is True]
    if len(chosen) > 1:
        raise PatchError("invalidValue", f'"{label}": only one value may be primary.')
    if not chosen:
        return
    for element in elements:
        if element is not chosen[0] and isinstance(element, dict):
            if documents.as_boolean(documents.get(element, "primary")):
                documents.pop(element, "primary")


def normalize_booleans(container: JsonObject, definitions: list[JsonObject]) -> None:
    """Store every boolean-typed (sub-)attribute as a JSON boolean, e.g. Entra ID's "True"."""
    for definition in definitions:
        key = documents.key(container, str(definition["name"]))
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
                    sub_key = documents.key(element, name)
                    if sub_key is not None:
                        element[sub_key] = _lenient_boolean(element[sub_key])


def _lenient_boolean(value: Any) -> Any:
    coerced = documents.as_boolean(value)
    return value if coerced is None else coerced
