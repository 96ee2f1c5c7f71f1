"""A parsed SCIM filter (RFC 7644 §3.4.2.2) as a SQL condition; nothing is evaluated in Python
over loaded rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, assert_never
from uuid import UUID

from sqlalchemy import ColumnElement, String, and_, false, func, literal, not_, or_, true

from scim.filter_parser import (
    AllOf,
    AnyOf,
    Compare,
    Expr,
    FilterError,
    Literal,
    Not,
    Number,
    Path,
    ValuePath,
)
from scim.filters.attributes import AttributeColumn, Constant, Kind, MultiValued, Resource


def translate(
    node: Expr, resource: Resource, row: MultiValued | None = None
) -> ColumnElement[bool]:
    """SQL for a filter; `row` is the multi-valued attribute a value filter is about."""
    match node:
        case AllOf(exprs):
            return and_(*(translate(expr, resource, row) for expr in exprs))
        case AnyOf(exprs):
            return or_(*(translate(expr, resource, row) for expr in exprs))
        case Not(expr):
            return not_(translate(expr, resource, row))
        case ValuePath(path, value_filter):
            if row is not None:
                raise FilterError("value filters cannot be nested")
            if path.sub_name is not None:
                raise FilterError(f"[...] follows the attribute, not {path}")
            multi = _value_path_attribute(resource, path)
            return multi.exists(translate(value_filter, resource, multi))
        case Compare():
            return _translate_comparison(node, resource, row)
    assert_never(node)


def _translate_comparison(
    node: Compare, resource: Resource, row: MultiValued | None
) -> ColumnElement[bool]:
    path, op, value, name = node.path, node.op, node.value, str(node.path)
    if row is not None:  # inside [...]: names are the attribute's sub-attributes
        if node.value_filter is not None:
            raise FilterError("value filters cannot be nested")
        if path.uri is not None or path.sub_name is not None:
            raise FilterError(f"unknown attribute {row.name}.{path}")
        return _compare(row.sub_attribute(path.name), op, value, f"{row.name}.{path}")
    if node.value_filter is not None:  # emails[type eq "work"].value eq "x"
        multi = _value_path_attribute(resource, Path(path.uri, path.name))
        condition = translate(node.value_filter, resource, multi)
        return _on_rows(multi, multi.sub_attribute(path.sub_name), op, value, condition, name)
    found = resource.find_multi_valued(path)
    if found is not None:
        return _on_rows(found, found.sub_attribute(path.sub_name), op, value, true(), name)
    target = resource.resolve(path)
    if isinstance(target, Constant):
        return _compare_constant(target, op, value, name)
    return _compare(target, op, value, name)


def _value_path_attribute(resource: Resource, path: Path) -> MultiValued:
    multi = resource.find_multi_valued(path)
    if multi is None:
        resource.resolve(path)  # unknown and refused attributes say so
        raise FilterError(f"{path} is not multi-valued: [...] cannot follow it")
    return multi


def _on_rows(
    multi: MultiValued,
    column: AttributeColumn,
    op: str,
    value: Literal,
    condition: ColumnElement[bool],
    name: str,
) -> ColumnElement[bool]:
    # A multi-valued attribute matches if one of its values does (RFC 7644 §3.4.2.2), and it
    # is null when it has no value at all (RFC 7643 §2.5).
    if op == "eq" and value is None:
        return not_(multi.exists(and_(condition, _present(column))))
    return multi.exists(and_(condition, _compare(column, op, value, name)))


def _present(column: AttributeColumn) -> ColumnElement[bool]:
    """`pr`: neither null nor, for strings, empty (RFC 7644 §3.4.2.2)."""
    conditions: list[ColumnElement[bool]] = []
    if column.nullable:
        conditions.append(column.column.is_not(None))
    if column.kind is Kind.STRING:
        conditions.append(column.column != "")
    return and_(true(), *conditions)


_ORDERING = ("eq", "ne", "gt", "ge", "lt", "le")


def _compare(column: AttributeColumn, op: str, value: Literal, name: str) -> ColumnElement[bool]:
    """SQL for `name op value` on one column; true or false, never NULL, so `not` works."""
    if op == "pr":
        return _present(column)
    if value is None:
        if op == "eq":
            return not_(_present(column))
        if op == "ne":
            return _present(column)
        raise FilterError(f"{name} {op} null: only eq and ne compare with null")
    comparison = _COMPARISONS[column.kind](column, op, value, name)
    if not column.nullable:
        return comparison
    # A comparison with NULL is NULL, which `not (...)` would keep NULL; SCIM's `ne` includes
    # unassigned values (`title ne "x"` matches users without a title).
    if op == "ne":
        return or_(column.column.is_(None), comparison)
    return and_(column.column.is_not(None), comparison)


def _order(target: ColumnElement[Any], op: str, operand: object) -> ColumnElement[bool]:
    if op == "eq":
        return target == operand
    if op == "ne":
        return target != operand
    if op == "gt":
        return target > operand
    if op == "ge":
        return target >= operand
    if op == "lt":
        return target < operand
    return target <= operand


def _refuse(op: str, name: str, allowed: str) -> FilterError:
    return FilterError(f"{name} {op}: {name} supports only {allowed}")


def _compare_string(
    column: AttributeColumn, op: str, value: Literal, name: str
) -> ColumnElement[bool]:
    if isinstance(value, Number):  # `employeeNumber eq 1001`
        value = value.text
    if not isinstance(value, str):
        raise FilterError(f"{name} is a string: compare it with a string")
    target: ColumnElement[Any] = column.column
    operand: ColumnElement[Any]
    if column.folded:
        operand = literal(value.lower(), String)
    elif column.case_exact:
        operand = literal(value, String)
    else:
        # lower() on both sides: SQLite's lower() folds ASCII only, and the same fold must
        # apply to the value and the column.
        target, operand = func.lower(target), func.lower(literal(value, String))
    if op in _ORDERING:
        return _order(target, op, operand)
    if value == "":
        return true()
    # Not LIKE: SQLite's LIKE ignores ASCII case, which caseExact attributes must not, and
    # these forms need no escaping of %, _ or the escape character.
    if op == "sw":
        return func.substr(target, 1, func.length(operand)) == operand
    if op == "ew":
        start = func.length(target) - func.length(operand) + 1
        return and_(
            func.length(target) >= func.length(operand), func.substr(target, start) == operand
        )
    return func.replace(target, operand, "") != target  # co


def _compare_boolean(
    column: AttributeColumn, op: str, value: Literal, name: str
) -> ColumnElement[bool]:
    if op not in ("eq", "ne"):
        raise _refuse(op, name, "eq, ne and pr")
    if not isinstance(value, bool):
        raise FilterError(f"{name} is a boolean: compare it with true or false")
    return _order(column.column, op, value)


def _compare_datetime(
    column: AttributeColumn, op: str, value: Literal, name: str
) -> ColumnElement[bool]:
    if op not in _ORDERING:
        raise _refuse(op, name, "eq, ne, gt, ge, lt, le and pr")
    if not isinstance(value, str):
        raise FilterError(f"{name} is a dateTime: compare it with an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
        # xsd:dateTime without an offset is read as UTC, the zone every stored time is in.
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as error:  # OverflowError: 0001-01-01T00:00+01:00
        raise FilterError(f"{name}: {value!r} is not an ISO 8601 dateTime") from error
    return _order(column.column, op, moment)


def _compare_id(column: AttributeColumn, op: str, value: Literal, name: str) -> ColumnElement[bool]:
    if op not in ("eq", "ne"):
        raise _refuse(op, name, "eq, ne and pr")
    if not isinstance(value, str):
        raise FilterError(f"{name} is a string: compare it with a string")
    try:
        identifier = UUID(value)
    except ValueError:
        # No id of ours looks like that: nothing is equal to it, everything differs from it.
        return false() if op == "eq" else true()
    return _order(column.column, op, identifier)


_ETAG = re.compile(r'(?:W/)?"(\d+)"|(\d+)')
_MAX_VERSION = 2**31 - 1


def _compare_version(
    column: AttributeColumn, op: str, value: Literal, name: str
) -> ColumnElement[bool]:
    if op not in _ORDERING:
        raise _refuse(op, name, "eq, ne, gt, ge, lt, le and pr")
    written = value.text if isinstance(value, Number) else value
    etag = _ETAG.fullmatch(written) if isinstance(written, str) else None
    if etag is None:
        raise FilterError(f'{name}: expected a version such as "W/\\"3\\""')
    version = int(etag.group(1) or etag.group(2))
    if version > _MAX_VERSION:  # PostgreSQL would refuse the parameter for an integer column
        raise FilterError(f"{name}: {version} is not a version of ours")
    return _order(column.column, op, version)


_COMPARISONS: dict[Kind, Callable[[AttributeColumn, str, Literal, str], ColumnElement[bool]]] = {
    Kind.STRING: _compare_string,
    Kind.BOOLEAN: _compare_boolean,
    Kind.DATETIME: _compare_datetime,
    Kind.ID: _compare_id,
    Kind.VERSION: _compare_version,
}


def _compare_constant(
    constant: Constant, op: str, value: Literal, name: str
) -> ColumnElement[bool]:
    if op == "pr" or (op == "ne" and value is None):
        return true()
    if op == "eq" and value is None:
        return false()
    if not isinstance(value, str):
        raise FilterError(f"{name} is a string: compare it with a string")
    # caseExact (RFC 7643 §3.1); the same for every row, so decided here.
    results = {
        "eq": constant.value == value,
        "ne": constant.value != value,
        "co": value in constant.value,
        "sw": constant.value.startswith(value),
        "ew": constant.value.endswith(value),
        "gt": constant.value > value,
        "ge": constant.value >= value,
        "lt": constant.value < value,
        "le": constant.value <= value,
    }
    return true() if results[op] else false()
