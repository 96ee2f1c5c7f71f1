"""scim2-filter-parser, repaired: SCIM filter text (RFC 7644 §3.4.2.2) into a small typed AST.

The one place that knows the library's quirks; the filter → SQL translation (`scim.filters`) and
the PATCH engine's value filters (`scim.patch`) both read filters through `parse_filter`.
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError

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
class Number:
    """A JSON number literal, as written."""

    text: str


Literal: TypeAlias = str | bool | Number | None


@dataclass(frozen=True, slots=True)
class Path:
    uri: str | None
    name: str
    sub_name: str | None = None

    def __str__(self) -> str:
        name = self.name if self.sub_name is None else f"{self.name}.{self.sub_name}"
        return name if self.uri is None else f"{self.uri}:{name}"


@dataclass(frozen=True, slots=True)
class Compare:
    path: Path
    op: str  # eq ne co sw ew gt ge lt le pr, lower case
    value: Literal  # None for `pr` and for `null`
    # `emails[type eq "work"].value eq "x"`: the value filter and the comparison share one value.
    value_filter: Expr | None = None


@dataclass(frozen=True, slots=True)
class ValuePath:
    path: Path
    value_filter: Expr


@dataclass(frozen=True, slots=True)
class Not:
    expr: Expr


@dataclass(frozen=True, slots=True)
class AllOf:
    exprs: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    exprs: tuple[Expr, ...]


Expr: TypeAlias = Compare | ValuePath | Not | AllOf | AnyOf


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


def _lift_literals(text: str) -> tuple[str, list[str | Number]]:
    """Replace string and number literals by placeholders `"#n"`; return the text and the values."""
    literals: list[str | Number] = []

    def lift(match: re.Match[str]) -> str:
        written = match.group()
        if not written.startswith('"'):
            literals.append(Number(written))
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


def _syntax_detail(error: Exception, literals: list[str | Number]) -> str:
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
            written = value.text if isinstance(value, Number) else json.dumps(value)
            return f"invalid filter: unexpected value {written}"
        return f"invalid filter: unexpected {token.group(2)!r}"
    illegal = _ILLEGAL.fullmatch(message)
    if isinstance(error, ValueError) and illegal is not None:
        return f"invalid filter: unexpected character {illegal.group(1)!r}"
    return "invalid filter"


def parse_filter(text: str, *, any_case_keywords: bool = False) -> Expr:
    """The typed AST of a filter; FilterError if it is not one. `any_case_keywords` reads
    `True`, `False` and `Null` as the JSON literals (Entra ID writes them in PATCH paths)."""
    if not text.strip():
        raise FilterError("filter is empty")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    lifted, literals = _lift_literals(text)
    tokens: Iterable[Any] = SCIMLexer().tokenize(lifted)
    if any_case_keywords:
        tokens = _keywords_in_any_case(tokens)
    try:
        tree = SCIMParser().parse(tokens)
    # The parser raises SCIMParserError, its lexer ValueError, and its AST rewriting
    # IndexError or AttributeError on some inputs: anything it raises means a bad filter.
    except Exception as error:
        raise FilterError(_syntax_detail(error, literals)) from error
    return _Converter(literals).filter(tree, 0)


_COMPARISON_TOKENS = frozenset({"EQ", "NE", "CO", "SW", "EW", "GT", "GE", "LT", "LE"})
_KEYWORDS = frozenset({"true", "false", "null"})


def _keywords_in_any_case(tokens: Iterable[Any]) -> Iterator[Any]:
    """The lexer reads `True` after an operator as an attribute name: make it the literal."""
    previous_type = None
    for token in tokens:
        if (
            token.type == "ATTRNAME"
            and previous_type in _COMPARISON_TOKENS
            and token.value.lower() in _KEYWORDS
        ):
            token.type = token.value.upper()
            token.value = token.value.lower()
        previous_type = token.type
        yield token


@dataclass(frozen=True, slots=True)
class _Converter:
    """Turns scim2-filter-parser's AST (untyped) into ours."""

    literals: list[str | Number]

    def filter(self, node: Any, depth: int) -> Expr:
        if depth > MAX_FILTER_DEPTH:
            raise FilterError(f"filter is nested more than {MAX_FILTER_DEPTH} levels deep")
        if not isinstance(node, ast.Filter):
            raise FilterError("invalid filter")
        expr: Expr
        if node.namespace is not None:  # attrPath "[" valFilter "]"
            expr = ValuePath(self.path(node.namespace), self.filter(node.expr, depth + 1))
        elif isinstance(node.expr, ast.LogExpr):
            expr = self.logical(node.expr, depth)
        elif isinstance(node.expr, ast.AttrExpr):
            expr = self.comparison(node.expr, depth)
        else:  # "(" FILTER ")", with or without "not"
            expr = self.filter(node.expr, depth + 1)
        return Not(expr) if node.negated else expr

    def logical(self, node: Any, depth: int) -> Expr:
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
        groups: list[list[Expr]] = [[self.filter(operands[0], depth + 1)]]
        for operator, operand in zip(operators, operands[1:], strict=True):
            converted = self.filter(operand, depth + 1)
            if operator == "and":
                groups[-1].append(converted)
            else:
                groups.append([converted])
        alternatives = [group[0] if len(group) == 1 else AllOf(tuple(group)) for group in groups]
        return alternatives[0] if len(alternatives) == 1 else AnyOf(tuple(alternatives))

    def comparison(self, node: Any, depth: int) -> Compare:
        attr_path = node.attr_path
        value_filter: Expr | None = None
        if isinstance(attr_path.attr_name, ast.Filter):
            # The parser rewrites `emails[type eq "work"].value` into a value path whose
            # namespace is `emails.value`, and hangs it where the attribute name belongs.
            path = self.path(attr_path.attr_name.namespace)
            value_filter = self.filter(attr_path.attr_name.expr, depth + 1)
        else:
            path = self.path(attr_path)
        value = None if node.comp_value is None else self.literal(str(node.comp_value.value))
        return Compare(path, str(node.value).lower(), value, value_filter)

    def path(self, node: Any) -> Path:
        if not isinstance(node, ast.AttrPath) or not isinstance(node.attr_name, str):
            raise FilterError("value filters cannot be nested")
        sub_name = None if node.sub_attr is None else str(node.sub_attr.value)
        return Path(node.uri, node.attr_name, sub_name)

    def literal(self, written: str) -> Literal:
        placeholder = _PLACEHOLDER.fullmatch(written)
        if placeholder is not None:
            return self.literals[int(placeholder.group(1))]
        keywords: dict[str, Literal] = {"true": True, "false": False, "null": None}
        if written in keywords:
            return keywords[written]
        if written.isdigit():  # a digit the placeholder pass did not see, as in `eq 5and`
            return Number(written)
        raise FilterError(f"invalid value {written!r}")
