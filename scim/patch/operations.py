"""A PatchOp body (RFC 7644 §3.5.2) read into its operations, and the one PATCH error."""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scim.discovery import PATCH_OP_SCHEMA
from scim.patch import documents


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


_REMOVE = PatchOperationName.REMOVE


def parse_operations(body: Mapping[str, Any]) -> list[PatchOperation]:
    """Validate a PatchOp body (RFC 7644 §3.5.2) and return its operations in order."""
    if not isinstance(body, Mapping):
        raise PatchError("invalidSyntax", "The request body must be a PatchOp object.")
    schemas = documents.get(body, "schemas")
    if isinstance(schemas, str):
        schemas = [schemas]
    if not isinstance(schemas, list) or not any(
        isinstance(schema, str) and schema.lower() == PATCH_OP_SCHEMA.lower() for schema in schemas
    ):
        raise PatchError("invalidSyntax", f'"schemas" must contain "{PATCH_OP_SCHEMA}".')
    # Some clients spell the member "operations"; attribute names are case-insensitive
    # (RFC 7643 §2.1) and we extend that to the message's own members.
    operations = documents.get(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise PatchError("invalidSyntax", '"Operations" must be a non-empty array.')
    return [_parse_operation(index, raw) for index, raw in enumerate(operations)]


def _parse_operation(index: int, raw: Any) -> PatchOperation:
    where = f"Operations[{index}]"
    if not isinstance(raw, Mapping):
        raise PatchError("invalidSyntax", f"{where} must be an object.")
    op = documents.get(raw, "op")
    if not isinstance(op, str):
        raise PatchError("invalidSyntax", f'{where} needs an "op" of add, remove or replace.')
    try:
        # Entra ID sends "Add", "Replace" and "Remove".
        name = PatchOperationName(op.strip().lower())
    except ValueError:
        raise PatchError(
            "invalidSyntax", f'{where}: unsupported op "{op}"; expected add, remove or replace.'
        ) from None
    path = documents.get(raw, "path")
    if path is not None and not isinstance(path, str):
        raise PatchError("invalidPath", f'{where}: "path" must be a string.')
    if path is not None and not path.strip():
        path = None
    value_key = documents.key(raw, "value")
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
