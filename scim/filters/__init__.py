"""SCIM filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3) as SQLAlchemy expressions.

`scim.filter_parser` reads the filter into a typed AST, `attributes` says what each attribute
is in SQL, `translate` turns the AST into a condition and `sort` a sortBy into an ORDER BY. The
caller adds the organization and deprovisioned conditions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from scim.filter_parser import MAX_FILTER_LENGTH, FilterError, parse_filter
from scim.filters.attributes import GROUPS, USERS
from scim.filters.sort import sort_key
from scim.filters.translate import translate


def user_filter(text: str) -> ColumnElement[bool]:
    """The condition on User rows that a SCIM filter states; FilterError if it is invalid."""
    return translate(parse_filter(text), USERS)


def group_filter(text: str) -> ColumnElement[bool]:
    """The condition on Group rows that a SCIM filter states; FilterError if it is invalid."""
    return translate(parse_filter(text), GROUPS)


def user_sort_key(sort_by: str) -> ColumnElement[Any]:
    """The ORDER BY expression for a Users sortBy; FilterError if it names none we sort by."""
    return sort_key(USERS, sort_by)


def group_sort_key(sort_by: str) -> ColumnElement[Any]:
    """The ORDER BY expression for a Groups sortBy; FilterError if it names none we sort by."""
    return sort_key(GROUPS, sort_by)


__all__ = [
    "MAX_FILTER_LENGTH",
    "FilterError",
    "group_filter",
    "group_sort_key",
    "user_filter",
    "user_sort_key",
]
