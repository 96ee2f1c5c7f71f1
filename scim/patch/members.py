"""PATCH of a Group: membership operations never touch the document (a group may have 50,000
members); they are folded, in order, into one `MemberChanges`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scim.patch import documents
from scim.patch.operations import PatchError, PatchOperationName
from scim.patch.patcher import Patcher
from scim.patch.paths import GROUP, Target
from scim.patch.value_filters import member_ids_in_filter
from scim.patch.values import complex_value

_ADD = PatchOperationName.ADD
_REMOVE = PatchOperationName.REMOVE


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """Membership edits of one PATCH: `replaced` (when set) first, then `added` and `removed`."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    replaced: tuple[str, ...] | None = None


class MemberLedger:
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


class GroupPatcher(Patcher):
    """PATCH of a Group: `members` goes to a ledger of membership changes."""

    kind = GROUP

    def __init__(self, document: Mapping[str, Any]) -> None:
        super().__init__(document)
        self.members = MemberLedger()

    def apply_own(self, op: PatchOperationName, target: Target, value: Any) -> bool:
        if target.attribute.lower() != "members":
            return False
        self.apply_members(op, target, value)
        return True

    def apply_members(self, op: PatchOperationName, target: Target, value: Any) -> None:
        """Membership never touches the document; it is folded into a MemberChanges."""
        label = target.label
        if target.sub_attribute is not None:
            raise PatchError("invalidPath", f'"{label}": member sub-attributes cannot be patched.')
        if target.value_filter is not None:
            if op is not _REMOVE:
                raise PatchError("invalidPath", f'"{label}": a members filter works with remove.')
            self.members.remove(member_ids_in_filter(target.value_filter, label))
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

    def member_ids(self, target: Target, value: Any) -> list[str]:
        member_ids: list[str] = []
        for item in documents.as_list(value):
            if not isinstance(item, Mapping):
                raise PatchError("invalidValue", f'"{target.label}": members are objects.')
            member = complex_value(target.definition, item, target.label)[0]
            member_id = member.get("value")
            if not isinstance(member_id, str) or not member_id.strip():
                raise PatchError("invalidValue", f'"{target.label}": each member needs a value.')
            member_ids.append(member_id.strip())
        return member_ids
