"""SCIM filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3) as SQLAlchemy expressions.

scim2-filter-parser parses the filter; its AST is turned into a small typed AST here, and that
into SQL. Nothing is evaluated in Python over loaded rows. The caller adds the organization and
deprovisioned conditions; every subquery built here also carries the organization, so it can use
the `(org_id, ...)` indexes.

Three things the parser gets wrong are fixed around it:

- It gives `and` and `or` the same precedence, so `a or b and c` parses as `(a or b) and c`.
  Chains of `and`/`or` are flattened and regrouped, `and` binding tighter (RFC 7644 §3.4.2.2).
- Its lexer knows no JSON string escapes and only one-digit numbers, and it turns `"true"` and
  `true` into the same node. String and number literals are therefore lifted out before lexing
  and replaced by numbered placeholders, which the parser only ever sees as plain strings.
- It raises whatever its internals raise on garbage; all of it becomes `FilterError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, auto
from typing import Any, TypeAlias, assert_never
from uuid import UUID

from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError
from sqlalchemy import (
    Column,
    ColumnElement,
    String,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import QueryableAttribute

from app.models import Group, Membership, User, UserValue
from scim.discovery import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, find_attribute

MAX_FILTER_LENGTH = 4096
# Deeper nesting than any IdP sends; the limit keeps recursion here and in the SQL compiler small.
MAX_FILTER_DEPTH = 32


class FilterError(Exception):
    """A filter or sortBy this service cannot evaluate (400, scimType invalidFilter)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- The typed AST -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Number:
    """A JSON number literal, as written."""

    text: str


_Literal: TypeAlias = str | bool | _Number | None


@dataclass(frozen=True, slots=True)
class _Path:
    uri: str | None
    name: str
    sub_name: str | None = None

    def __str__(self) -> str:
        name = self.name if self.sub_name is None else f"{self.name}.{self.sub_name}"
        return name if self.uri is None else f"{self.uri}:{name}"


@dataclass(frozen=True, slots=True)
class _Compare:
    path: _Path
    op: str  # eq ne co sw ew gt ge lt le pr, lower case
    value: _Literal  # None for `pr` and for `null`
    # `emails[type eq "work"].value eq "x"`: the value filter and the comparison share one value.
    value_filter: _Expr | None = None


@dataclass(frozen=True, slots=True)
class _ValuePath:
    path: _Path
    value_filter: _Expr


@dataclass(frozen=True, slots=True)
class _Not:
    expr: _Expr


@dataclass(frozen=True, slots=True)
class _AllOf:
    exprs: tuple[_Expr, ...]


@dataclass(frozen=True, slots=True)
class _AnyOf:
    exprs: tuple[_Expr, ...]


_Expr: TypeAlias = _Compare | _ValuePath | _Not | _AllOf | _AnyOf


# --- Parsing ---------------------------------------------------------------------------------

# A JSON string with its escapes, or a JSON number standing alone (not part of a name or URN).
_LITERAL = re.compile(
    r'"(?:[^"\\]|\\.)*"'
    r"|(?<![^\s(\[])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![^\s)\]])",
    re.DOTALL,
)
_PLACEHOLDER = re.compile(r"#(\d+)")
_TOKEN = re.compile(r"Token\(type='(\w+)', value='([^']*)'")
_ILLEGAL = re.compile(r"Illegal character in filter query '(.)'", re.DOTALL)


def _lift_literals(text: str) -> tuple[str, list[str | _Number]]:
    """Replace string and number literals by placeholders `"#n"`; return the text and the values."""
    literals: list[str | _Number] = []

    def lift(match: re.Match[str]) -> str:
        written = match.group()
        if not written.startswith('"'):
            literals.append(_Number(written))
            return f'"#{len(literals) - 1}"'
        try:
            text: str = json.loads(written)
        except json.JSONDecodeError as error:
            raise FilterError(f"invalid string {written}: {error.msg}") from error
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
        if "\x00" in text:
            raise FilterError("strings in a filter cannot contain NUL characters")
        literals.append(text)
        return f'"#{len(literals) - 1}"'

    lifted = _LITERAL.sub(lift, text)
    if '"' in _LITERAL.sub("", lifted):
        raise FilterError("unterminated string in filter")
    return lifted, literals


def _syntax_detail(error: Exception, literals: list[str | _Number]) -> str:
    """A message for what the library raised; its own messages name placeholders, not values."""
    message = str(error)
    if isinstance(error, SCIMParserError):
        if message.endswith(": None"):
            return "invalid filter: it ends too soon"
        token = _TOKEN.search(message)
        if token is None:
            return "invalid filter"
        placeholder = _PLACEHOLDER.fullmatch(token.group(2))
        if token.group(1) == "COMP_VALUE" and placeholder is not None:
            value = literals[int(placeholder.group(1))]
            written = value.text if isinstance(value, _Number) else json.dumps(value)
            return f"invalid filter: unexpected value {written}"
        return f"invalid filter: unexpected {token.group(2)!r}"
    illegal = _ILLEGAL.fullmatch(message)
    if isinstance(error, ValueError) and illegal is not None:
        return f"invalid filter: unexpected character {illegal.group(1)!r}"
    return "invalid filter"


def _parse(text: str) -> _Expr:
    if not text.strip():
        raise FilterError("filter is empty")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    lifted, literals = _lift_literals(text)
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(lifted))
    # The parser raises SCIMParserError, its lexer ValueError, and its AST rewriting
    # IndexError or AttributeError on some inputs: anything it raises means a bad filter.
    except Exception as error:
        raise FilterError(_syntax_detail(error, literals)) from error
    return _Converter(literals).filter(tree, 0)


@dataclass(frozen=True, slots=True)
class _Converter:
    """Turns scim2-filter-parser's AST (untyped) into ours."""

    literals: list[str | _Number]

    def filter(self, node: Any, depth: int) -> _Expr:
        if depth > MAX_FILTER_DEPTH:
            raise FilterError(f"filter is nested more than {MAX_FILTER_DEPTH} levels deep")
        if not isinstance(node, ast.Filter):
            raise FilterError("invalid filter")
        expr: _Expr
        if node.namespace is not None:  # attrPath "[" valFilter "]"
            expr = _ValuePath(self.path(node.namespace), self.filter(node.expr, depth + 1))
        elif isinstance(node.expr, ast.LogExpr):
            expr = self.logical(node.expr, depth)
        elif isinstance(node.expr, ast.AttrExpr):
            expr = self.comparison(node.expr, depth)
        else:  # "(" FILTER ")", with or without "not"
            expr = self.filter(node.expr, depth + 1)
        return _Not(expr) if node.negated else expr

    def logical(self, node: Any, depth: int) -> _Expr:
        # Flatten the chain `a op b op c ...` (parenthesized parts stay whole), then regroup
        # with `and` binding tighter than `or`. Iterative, so long chains cost no recursion.
        operands: list[Any] = []
        operators: list[str] = []
        stack: list[Any] = [node.expr2, str(node.op).lower(), node.expr1]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                operators.append(item)
            elif (
                isinstance(item, ast.Filter)
                and isinstance(item.expr, ast.LogExpr)
                and not item.negated
                and item.namespace is None
            ):
                stack.extend([item.expr.expr2, str(item.expr.op).lower(), item.expr.expr1])
            else:
                operands.append(item)
        groups: list[list[_Expr]] = [[self.filter(operands[0], depth + 1)]]
        for operator, operand in zip(operators, operands[1:], strict=True):
            converted = self.filter(operand, depth + 1)
            if operator == "and":
                groups[-1].append(converted)
            else:
                groups.append([converted])
        alternatives = [group[0] if len(group) == 1 else _AllOf(tuple(group)) for group in groups]
        return alternatives[0] if len(alternatives) == 1 else _AnyOf(tuple(alternatives))

    def comparison(self, node: Any, depth: int) -> _Compare:
        attr_path = node.attr_path
        value_filter: _Expr | None = None
        if isinstance(attr_path.attr_name, ast.Filter):
            # The parser rewrites `emails[type eq "work"].value` into a value path whose
            # namespace is `emails.value`, and hangs it where the attribute name belongs.
            path = self.path(attr_path.attr_name.namespace)
            value_filter = self.filter(attr_path.attr_name.expr, depth + 1)
        else:
            path = self.path(attr_path)
        value = None if node.comp_value is None else self.literal(str(node.comp_value.value))
        return _Compare(path, str(node.value).lower(), value, value_filter)

    def path(self, node: Any) -> _Path:
        if not isinstance(node, ast.AttrPath) or not isinstance(node.attr_name, str):
            raise FilterError("value filters cannot be nested")
        sub_name = None if node.sub_attr is None else str(node.sub_attr.value)
        return _Path(node.uri, node.attr_name, sub_name)

    def literal(self, written: str) -> _Literal:
        placeholder = _PLACEHOLDER.fullmatch(written)
        if placeholder is not None:
            return self.literals[int(placeholder.group(1))]
        keywords: dict[str, _Literal] = {"true": True, "false": False, "null": None}
        if written in keywords:
            return keywords[written]
        if written.isdigit():  # a digit the placeholder pass did not see, as in `eq 5and`
            return _Number(written)
        raise FilterError(f"invalid value {written!r}")


# --- What attributes are -------------------------------------------------------------------


class _Kind(Enum):
    STRING = auto()
    BOOLEAN = auto()
    DATETIME = auto()
    ID = auto()  # a UUID, compared as one
    VERSION = auto()  # meta.version: W/"3" against an integer column


@dataclass(frozen=True, slots=True)
class _Column:
    """One column and how SCIM compares it."""

    column: ColumnElement[Any]
    kind: _Kind
    case_exact: bool = True
    # The column holds Python's lower() of the value (user_name_key and the like): compare it
    # with the lowered literal, so equality can use the index.
    folded: bool = False

    @property
    def nullable(self) -> bool:
        return not isinstance(self.column, Column) or bool(self.column.nullable)


@dataclass(frozen=True, slots=True)
class _Constant:
    """An attribute with the same value on every resource of a type (meta.resourceType)."""

    value: str


@dataclass(frozen=True, slots=True)
class _Unsupported:
    """A known attribute that filters and sortBy refuse."""

    detail: str
    # addresses and password refuse their sub-attributes too; meta does not.
    with_sub_attributes: bool = True


_Target: TypeAlias = _Column | _Constant | _Unsupported


@dataclass(frozen=True, slots=True)
class _Attribute:
    schema: str | None  # None for the common attributes (RFC 7643 §3.1), which have no schema
    target: _Target


@dataclass(frozen=True, slots=True)
class _MultiValued:
    """A multi-valued attribute stored one value per row: conditions on it become EXISTS."""

    name: str
    schema: str
    sub_attributes: Mapping[str, _Column]  # by lower-cased name
    # A condition on one row -> "one of the resource's rows satisfies it".
    exists: Callable[[ColumnElement[bool]], ColumnElement[bool]]

    def sub_attribute(self, name: str | None) -> _Column:
        """The column of a sub-attribute; the attribute alone means its `value`."""
        column = self.sub_attributes.get((name or "value").lower())
        if column is not None:
            return column
        if find_attribute(self.schema, self.name, name) is not None:
            raise FilterError(f"filtering on {self.name}.{name} is not supported")
        raise FilterError(f"unknown attribute {self.name}.{name}")


@dataclass(frozen=True, slots=True)
class _Resource:
    name: str
    core_schema: str
    schemas: frozenset[str]  # lower-cased
    attributes: Mapping[str, _Attribute]  # by lower-cased dotted path
    multi_valued: Mapping[str, _MultiValued]  # by lower-cased name
    # sortBy a multi-valued attribute sorts by its primary value (RFC 7644 §3.4.2.3).
    sort_keys: Mapping[str, ColumnElement[Any]]  # by lower-cased dotted path

    def find_multi_valued(self, path: _Path) -> _MultiValued | None:
        multi = self.multi_valued.get(path.name.lower())
        if multi is not None:
            self._check_schema(path, multi.schema)
        return multi

    def resolve(self, path: _Path) -> _Column | _Constant:
        """What a single-valued attribute path refers to; FilterError unless it can be filtered."""
        attribute = self.attributes.get(_dotted(path))
        if attribute is None and path.sub_name is not None:
            parent = self.attributes.get(path.name.lower())
            if parent is not None and isinstance(parent.target, _Unsupported):
                if parent.target.with_sub_attributes:
                    attribute = parent
        if attribute is None:
            raise FilterError(self._missing(path))
        self._check_schema(path, attribute.schema)
        if isinstance(attribute.target, _Unsupported):
            raise FilterError(attribute.target.detail)
        return attribute.target

    def _check_schema(self, path: _Path, schema: str | None) -> None:
        if path.uri is None:
            return
        if path.uri.lower() not in self.schemas:
            raise FilterError(f"unknown schema {path.uri} for {self.name} resources")
        # Common attributes may be written with the core schema URI.
        if path.uri.lower() != (schema or self.core_schema).lower():
            raise FilterError(f"unknown attribute {path}")

    def _missing(self, path: _Path) -> str:
        schemas = [path.uri] if path.uri is not None else sorted(self.schemas)
        for schema in schemas:
            definition = find_attribute(schema, path.name, path.sub_name)
            if definition is None:
                continue
            if "subAttributes" in definition and path.sub_name is None:
                return f"{path} is complex: name one of its sub-attributes"
            return f"filtering on {path} is not supported"
        return f"unknown attribute {path}"


def _dotted(path: _Path) -> str:
    name = path.name if path.sub_name is None else f"{path.name}.{path.sub_name}"
    return name.lower()


# --- The attribute tables ------------------------------------------------------------------


def _case_exact(schema: str, dotted: str) -> bool:
    name, _, sub_name = dotted.partition(".")
    definition = find_attribute(schema, name, sub_name or None)
    if definition is None:
        raise LookupError(f"{schema}:{dotted} is missing from scim/discovery.py")
    return bool(definition["caseExact"])


def _string(schema: str, dotted: str, column: QueryableAttribute[Any]) -> _Attribute:
    case_exact = _case_exact(schema, dotted)
    return _Attribute(schema, _Column(column.expression, _Kind.STRING, case_exact=case_exact))


def _folded(schema: str, dotted: str, column: QueryableAttribute[Any]) -> _Attribute:
    if _case_exact(schema, dotted):
        raise LookupError(f"{dotted} is caseExact: a lowered key column cannot serve it")
    return _Attribute(
        schema, _Column(column.expression, _Kind.STRING, case_exact=False, folded=True)
    )


def _common(resource: type[User] | type[Group], resource_type: str) -> dict[str, _Attribute]:
    def common(target: _Target) -> _Attribute:
        return _Attribute(None, target)

    return {
        "id": common(_Column(resource.id.expression, _Kind.ID)),
        # externalId is caseExact (RFC 7643 §3.1).
        "externalid": common(_Column(resource.external_id.expression, _Kind.STRING)),
        "meta": common(
            _Unsupported(
                "meta is complex: name one of its sub-attributes", with_sub_attributes=False
            )
        ),
        "meta.created": common(_Column(resource.created_at.expression, _Kind.DATETIME)),
        "meta.lastmodified": common(_Column(resource.updated_at.expression, _Kind.DATETIME)),
        "meta.version": common(_Column(resource.version.expression, _Kind.VERSION)),
        "meta.resourcetype": common(_Constant(resource_type)),
        "meta.location": common(_Unsupported("filtering on meta.location is not supported")),
    }


def _user_values(attribute: str) -> _MultiValued:
    """A multi-valued User attribute, mirrored in user_values."""

    def exists(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        rows = select(UserValue.id).where(
            UserValue.org_id == User.org_id,
            UserValue.user_id == User.id,
            UserValue.attribute == attribute,
            condition,
        )
        return rows.correlate(User).exists()

    def string(sub_name: str) -> _Column:
        column = {"display": UserValue.display, "type": UserValue.type}[sub_name]
        case_exact = _case_exact(USER_SCHEMA, f"{attribute}.{sub_name}")
        return _Column(column.expression, _Kind.STRING, case_exact=case_exact)

    if _case_exact(USER_SCHEMA, f"{attribute}.value"):
        value = _Column(UserValue.value.expression, _Kind.STRING)
    else:
        value = _Column(UserValue.value_key.expression, _Kind.STRING, case_exact=False, folded=True)
    return _MultiValued(
        attribute,
        USER_SCHEMA,
        {
            "value": value,
            "display": string("display"),
            "type": string("type"),
            "primary": _Column(UserValue.is_primary.expression, _Kind.BOOLEAN),
        },
        exists,
    )


def _groups_of_user(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    rows = select(Membership.group_id).where(
        Membership.org_id == User.org_id, Membership.user_id == User.id, condition
    )
    return rows.correlate(User).exists()


def _members_of_group(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    rows = select(Membership.user_id).where(
        Membership.org_id == Group.org_id, Membership.group_id == Group.id, condition
    )
    return rows.correlate(Group).exists()


def _user_resource() -> _Resource:
    core = {
        "name.formatted": User.formatted_name,
        "name.familyName": User.family_name,
        "name.givenName": User.given_name,
        "name.middleName": User.middle_name,
        "name.honorificPrefix": User.honorific_prefix,
        "name.honorificSuffix": User.honorific_suffix,
        "nickName": User.nick_name,
        "profileUrl": User.profile_url,
        "title": User.title,
        "userType": User.user_type,
        "preferredLanguage": User.preferred_language,
        "locale": User.locale,
        "timezone": User.timezone,
    }
    enterprise = {
        "employeeNumber": User.employee_number,
        "costCenter": User.cost_center,
        "organization": User.organization_name,
        "division": User.division,
        "department": User.department,
        "manager.value": User.manager_id,
    }
    attributes = {
        **_common(User, "User"),
        "username": _folded(USER_SCHEMA, "userName", User.user_name_key),
        "displayname": _folded(USER_SCHEMA, "displayName", User.display_name_key),
        **{dotted.lower(): _string(USER_SCHEMA, dotted, c) for dotted, c in core.items()},
        "active": _Attribute(USER_SCHEMA, _Column(User.is_active.expression, _Kind.BOOLEAN)),
        "password": _Attribute(USER_SCHEMA, _Unsupported("password cannot be used in a filter")),
        "addresses": _Attribute(
            USER_SCHEMA, _Unsupported("filtering on addresses is not supported")
        ),
        **{
            dotted.lower(): _string(ENTERPRISE_USER_SCHEMA, dotted, c)
            for dotted, c in enterprise.items()
        },
        # `manager` alone means its value, as `emails` alone does.
        "manager": _string(ENTERPRISE_USER_SCHEMA, "manager.value", User.manager_id),
    }
    multi_valued = {
        name.lower(): _user_values(name)
        for name in ("emails", "phoneNumbers", "photos", "roles", "x509Certificates")
    }
    multi_valued["groups"] = _MultiValued(
        "groups",
        USER_SCHEMA,
        {"value": _Column(Membership.group_id.expression, _Kind.ID)},
        _groups_of_user,
    )
    primary_email = func.lower(User.primary_email)  # emails.value is not caseExact
    return _Resource(
        "User",
        USER_SCHEMA,
        frozenset({USER_SCHEMA.lower(), ENTERPRISE_USER_SCHEMA.lower()}),
        attributes,
        multi_valued,
        {"emails": primary_email, "emails.value": primary_email},
    )


def _group_resource() -> _Resource:
    members = _MultiValued(
        "members",
        GROUP_SCHEMA,
        {"value": _Column(Membership.user_id.expression, _Kind.ID)},
        _members_of_group,
    )
    return _Resource(
        "Group",
        GROUP_SCHEMA,
        frozenset({GROUP_SCHEMA.lower()}),
        {
            **_common(Group, "Group"),
            "displayname": _folded(GROUP_SCHEMA, "displayName", Group.display_name_key),
        },
        {"members": members},
        {},
    )


_USERS = _user_resource()
_GROUPS = _group_resource()


# --- Translation -----------------------------------------------------------------------------


def _translate(
    node: _Expr, resource: _Resource, row: _MultiValued | None = None
) -> ColumnElement[bool]:
    """SQL for a filter; `row` is the multi-valued attribute a value filter is about."""
    match node:
        case _AllOf(exprs):
            return and_(*(_translate(expr, resource, row) for expr in exprs))
        case _AnyOf(exprs):
            return or_(*(_translate(expr, resource, row) for expr in exprs))
        case _Not(expr):
            return not_(_translate(expr, resource, row))
        case _ValuePath(path, value_filter):
            if row is not None:
                raise FilterError("value filters cannot be nested")
            if path.sub_name is not None:
                raise FilterError(f"[...] follows the attribute, not {path}")
            multi = _value_path_attribute(resource, path)
            return multi.exists(_translate(value_filter, resource, multi))
        case _Compare():
            return _translate_comparison(node, resource, row)
    assert_never(node)


def _translate_comparison(
    node: _Compare, resource: _Resource, row: _MultiValued | None
) -> ColumnElement[bool]:
    path, op, value, name = node.path, node.op, node.value, str(node.path)
    if row is not None:  # inside [...]: names are the attribute's sub-attributes
        if node.value_filter is not None:
            raise FilterError("value filters cannot be nested")
        if path.uri is not None or path.sub_name is not None:
            raise FilterError(f"unknown attribute {row.name}.{path}")
        return _compare(row.sub_attribute(path.name), op, value, f"{row.name}.{path}")
    if node.value_filter is not None:  # emails[type eq "work"].value eq "x"
        multi = _value_path_attribute(resource, _Path(path.uri, path.name))
        condition = _translate(node.value_filter, resource, multi)
        return _on_rows(multi, multi.sub_attribute(path.sub_name), op, value, condition, name)
    found = resource.find_multi_valued(path)
    if found is not None:
        return _on_rows(found, found.sub_attribute(path.sub_name), op, value, true(), name)
    target = resource.resolve(path)
    if isinstance(target, _Constant):
        return _compare_constant(target, op, value, name)
    return _compare(target, op, value, name)


def _value_path_attribute(resource: _Resource, path: _Path) -> _MultiValued:
    multi = resource.find_multi_valued(path)
    if multi is None:
        resource.resolve(path)  # unknown and refused attributes say so
        raise FilterError(f"{path} is not multi-valued: [...] cannot follow it")
    return multi


def _on_rows(
    multi: _MultiValued,
    column: _Column,
    op: str,
    value: _Literal,
    condition: ColumnElement[bool],
    name: str,
) -> ColumnElement[bool]:
    # A multi-valued attribute matches if one of its values does (RFC 7644 §3.4.2.2), and it
    # is null when it has no value at all (RFC 7643 §2.5).
    if op == "eq" and value is None:
        return not_(multi.exists(and_(condition, _present(column))))
    return multi.exists(and_(condition, _compare(column, op, value, name)))


def _present(column: _Column) -> ColumnElement[bool]:
    """`pr`: neither null nor, for strings, empty (RFC 7644 §3.4.2.2)."""
    conditions: list[ColumnElement[bool]] = []
    if column.nullable:
        conditions.append(column.column.is_not(None))
    if column.kind is _Kind.STRING:
        conditions.append(column.column != "")
    return and_(true(), *conditions)


_ORDERING = ("eq", "ne", "gt", "ge", "lt", "le")


def _compare(column: _Column, op: str, value: _Literal, name: str) -> ColumnElement[bool]:
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


def _compare_string(column: _Column, op: str, value: _Literal, name: str) -> ColumnElement[bool]:
    if isinstance(value, _Number):  # `employeeNumber eq 1001`
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


def _compare_boolean(column: _Column, op: str, value: _Literal, name: str) -> ColumnElement[bool]:
    if op not in ("eq", "ne"):
        raise _refuse(op, name, "eq, ne and pr")
    if not isinstance(value, bool):
        raise FilterError(f"{name} is a boolean: compare it with true or false")
    return _order(column.column, op, value)


def _compare_datetime(column: _Column, op: str, value: _Literal, name: str) -> ColumnElement[bool]:
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


def _compare_id(column: _Column, op: str, value: _Literal, name: str) -> ColumnElement[bool]:
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


def _compare_version(column: _Column, op: str, value: _Literal, name: str) -> ColumnElement[bool]:
    if op not in _ORDERING:
        raise _refuse(op, name, "eq, ne, gt, ge, lt, le and pr")
    written = value.text if isinstance(value, _Number) else value
    etag = _ETAG.fullmatch(written) if isinstance(written, str) else None
    if etag is None:
        raise FilterError(f'{name}: expected a version such as "W/\\"3\\""')
    version = int(etag.group(1) or etag.group(2))
    if version > _MAX_VERSION:  # PostgreSQL would refuse the parameter for an integer column
        raise FilterError(f"{name}: {version} is not a version of ours")
    return _order(column.column, op, version)


_COMPARISONS: dict[_Kind, Callable[[_Column, str, _Literal, str], ColumnElement[bool]]] = {
    _Kind.STRING: _compare_string,
    _Kind.BOOLEAN: _compare_boolean,
    _Kind.DATETIME: _compare_datetime,
    _Kind.ID: _compare_id,
    _Kind.VERSION: _compare_version,
}


def _compare_constant(
    constant: _Constant, op: str, value: _Literal, name: str
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


# --- sortBy ------------------------------------------------------------------------------------

# [URI ":"] ATTRNAME ["." ATTRNAME] (RFC 7644 §3.10); the URI ends at the last colon.
_SORT_PATH = re.compile(
    r"(?:(?P<uri>[A-Za-z]\S*):)?"
    r"(?P<name>[A-Za-z][A-Za-z0-9_$-]*)"
    r"(?:\.(?P<sub>[A-Za-z$][A-Za-z0-9_$-]*))?"
)


def _sort_key(resource: _Resource, sort_by: str) -> ColumnElement[Any]:
    match = _SORT_PATH.fullmatch(sort_by.strip())
    if match is None:
        raise FilterError(f"cannot sort by {sort_by!r}: not an attribute path")
    path = _Path(match["uri"], match["name"], match["sub"])
    try:
        multi = resource.find_multi_valued(path)
        if multi is not None:
            multi.sub_attribute(path.sub_name)  # unknown sub-attributes say so
            key = resource.sort_keys.get(_dotted(path))
            if key is None:
                raise FilterError(f"{path} is multi-valued")
            return key
        target = resource.resolve(path)
    except FilterError as error:
        raise FilterError(f"cannot sort by {sort_by!r}: {error.detail}") from error
    if isinstance(target, _Constant):
        raise FilterError(f"cannot sort by {sort_by!r}: it is the same for every {resource.name}")
    if target.kind is _Kind.STRING and not target.case_exact and not target.folded:
        return func.lower(target.column)
    return target.column


# --- API ---------------------------------------------------------------------------------------


def user_filter(text: str) -> ColumnElement[bool]:
    """The condition on User rows that a SCIM filter states; FilterError if it is invalid."""
    return _translate(_parse(text), _USERS)


def group_filter(text: str) -> ColumnElement[bool]:
    """The condition on Group rows that a SCIM filter states; FilterError if it is invalid."""
    return _translate(_parse(text), _GROUPS)


def user_sort_key(sort_by: str) -> ColumnElement[Any]:
    """The ORDER BY expression for a Users sortBy; FilterError if it names none we sort by."""
    return _sort_key(_USERS, sort_by)


def group_sort_key(sort_by: str) -> ColumnElement[Any]:
    """The ORDER BY expression for a Groups sortBy; FilterError if it names none we sort by."""
    return _sort_key(_GROUPS, sort_by)
