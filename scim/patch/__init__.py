"""SCIM 2.0 PATCH (RFC 7644 §3.5.2) applied to the JSON document of one User or Group.

The engine is pure: it takes the document a GET would return plus a PatchOp body and returns
a patched copy, which the caller validates and stores exactly like a PUT. Group members are
never part of the document (a group may have 50,000); operations on `members` come back as a
`MemberChanges` instead. Any error raises `PatchError` before anything is returned, so a
request either applies completely or not at all (RFC 7644 §3.5.2: "all or nothing").

`operations` reads the PatchOp body, `paths` resolves attribute paths, `value_filters` evaluates
`attr[filter]`, `values` checks values against their definition, `multi_valued` edits lists of
values, `patcher` applies operations to a User and `members` to a Group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scim.patch.members import GroupPatcher, MemberChanges
from scim.patch.operations import PatchError, PatchOperation, PatchOperationName, parse_operations
from scim.patch.patcher import UserPatcher


def apply_user_patch(document: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Return a patched copy of a User document; on PatchError `document` is untouched."""
    operations = parse_operations(body)
    return UserPatcher(document).run(operations)


def apply_group_patch(
    document: dict[str, Any], body: Mapping[str, Any]
) -> tuple[dict[str, Any], MemberChanges]:
    """Return a patched copy of a Group document (no members) and the membership changes."""
    operations = parse_operations(body)
    patcher = GroupPatcher(document)
    patched = patcher.run(operations)
    return patched, patcher.members.changes()


__all__ = [
    "MemberChanges",
    "PatchError",
    "PatchOperation",
    "PatchOperationName",
    "apply_group_patch",
    "apply_user_patch",
    "parse_operations",
]
