"""Reading and writing a SCIM JSON document the way RFC 7643 reads it: names without case."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

JsonObject: TypeAlias = dict[str, Any]


def key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of `mapping` equal to `name` ignoring case (RFC 7643 §2.1), or None."""
    if name in mapping:
        return name
    folded = name.lower()
    return next((k for k in mapping if isinstance(k, str) and k.lower() == folded), None)


def get(mapping: Mapping[str, Any], name: str) -> Any:
    """The value of `name` in `mapping` ignoring case, or None."""
    found = key(mapping, name)
    return mapping[found] if found is not None else None


def put(mapping: JsonObject, name: str, value: Any) -> None:
    """Set `name` to `value`, replacing it in whatever case it was written."""
    pop(mapping, name)
    mapping[name] = value


def pop(mapping: JsonObject, name: str) -> None:
    """Remove `name` in whatever case it was written; nothing if it is absent."""
    found = key(mapping, name)
    if found is not None:
        del mapping[found]


def is_empty(value: Any) -> bool:
    """RFC 7644 §3.5.2: null (and, from IdPs, "") is the same as unassigned."""
    return value is None or value == ""


def as_boolean(value: Any) -> bool | None:
    """A boolean, or Entra ID's "True"/"False" string as one; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def find_sub_attribute(definition: JsonObject, name: str) -> JsonObject | None:
    """The definition of a sub-attribute of `definition`, matched without case, or None."""
    folded = name.lower()
    sub_attributes: list[JsonObject] = definition.get("subAttributes", [])
    return next((sub for sub in sub_attributes if str(sub["name"]).lower() == folded), None)


def as_list(value: Any) -> list[Any]:
    """The values of a multi-valued attribute; unassigned is none."""
    if is_empty(value):
        return []
    if isinstance(value, list):
        return value
    # A single object where RFC 7644 wants an array; several IdPs send it for one value.
    return [value]


def dedupe(elements: Iterable[Any]) -> list[Any]:
    """The elements without repeats, in their first order (values need not be hashable)."""
    unique: list[Any] = []
    for element in elements:
        if element not in unique:
            unique.append(element)
    return unique
