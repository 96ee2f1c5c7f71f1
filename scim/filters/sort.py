"""sortBy (RFC 7644 §3.4.2.3) as an ORDER BY expression."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, func

from scim.filter_parser import FilterError, Path
from scim.filters.attributes import Constant, Kind, Resource, dotted

# [URI ":"] ATTRNAME ["." ATTRNAME] (RFC 7644 §3.10); the URI ends at the last colon.
_SORT_PATH = re.compile(
    r"(?:(?P<uri>[A-Za-z]\S*):)?"
    r"(?P<name>[A-Za-z][A-Za-z0-9_$-]*)"
    r"(?:\.(?P<sub>[A-Za-z$][A-Za-z0-9_$-]*))?"
)


def sort_key(resource: Resource, sort_by: str) -> ColumnElement[Any]:
    """The ORDER BY expression for sortBy on `resource`; FilterError if it names none we sort by."""
    match = _SORT_PATH.fullmatch(sort_by.strip())
    if match is None:
        raise FilterError(f"cannot sort by {sort_by!r}: not an attribute path")
    path = Path(match["uri"], match["name"], match["sub"])
    try:
        multi = resource.find_multi_valued(path)
        if multi is not None:
            multi.sub_attribute(path.sub_name)  # unknown sub-attributes say so
            key = resource.sort_keys.get(dotted(path))
            if key is None:
                raise FilterError(f"{path} is multi-valued")
            return key
        target = resource.resolve(path)
    except FilterError as error:
        raise FilterError(f"cannot sort by {sort_by!r}: {error.detail}") from error
    if isinstance(target, Constant):
        raise FilterError(f"cannot sort by {sort_by!r}: it is the same for every {resource.name}")
    if target.kind is Kind.STRING and not target.case_exact and not target.folded:
        return func.lower(target.column)
    return target.column
