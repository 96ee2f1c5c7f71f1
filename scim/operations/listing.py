"""Listing parameters and pages (RFC 7644 §3.4.2): filter, sortBy, startIndex, count,
attributes, and one page of rows in one query."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, null, select
from sqlalchemy.orm import Session

from app.models import Group, User
from scim import discovery
from scim.filters import FilterError
from scim.resources import invalid, split_paths

Listed = TypeVar("Listed", User, Group)


@dataclass(frozen=True, slots=True)
class Query:
    """The listing and projection parameters of a request, as the client wrote them."""

    filter: str | None = None
    start_index: Any = None
    count: Any = None
    sort_by: str | None = None
    sort_order: str | None = None
    attributes: Any = None
    excluded_attributes: Any = None


# Each field of Query and its name in a query string or a SearchRequest (RFC 7644 §3.4.3).
_PARAMETERS = {
    "filter": "filter",
    "start_index": "startIndex",
    "count": "count",
    "sort_by": "sortBy",
    "sort_order": "sortOrder",
    "attributes": "attributes",
    "excluded_attributes": "excludedAttributes",
}


def query_from(parameter: Callable[[str], Any]) -> Query:
    """A query from a lookup of each parameter by its SCIM name (None when absent)."""
    return Query(**{field: parameter(name) for field, name in _PARAMETERS.items()})


def query_from_search(body: Any) -> Query:
    """A POST /.search body (RFC 7644 §3.4.3) as a query."""
    if not isinstance(body, dict):
        raise invalid("the body must be a SearchRequest object", "invalidSyntax")
    schemas = body.get("schemas")
    schemas = [schemas] if isinstance(schemas, str) else schemas  # lenient, as PATCH is
    if not isinstance(schemas, list) or discovery.SEARCH_REQUEST_SCHEMA not in schemas:
        raise invalid(f"schemas must include {discovery.SEARCH_REQUEST_SCHEMA}", "invalidSyntax")
    fields = {k.lower(): v for k, v in body.items()}
    return query_from(lambda name: fields.get(name.lower()))


# Past any organization's size, and inside the databases' 64-bit OFFSET and LIMIT.
LARGEST_INTEGER = 2**31 - 1


def integer(value: Any, name: str, default: int) -> int:
    """An integer parameter, clamped to ±LARGEST_INTEGER (a startIndex past the last result
    is an empty page, RFC 7644 §3.4.2.4); `default` when absent, 400 when not an integer."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise invalid(f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise invalid(f"{name} must be an integer") from None
    return max(-LARGEST_INTEGER, min(number, LARGEST_INTEGER))


@dataclass(frozen=True, slots=True)
class Page:
    """A query's page and projection, checked."""

    start_index: int
    count: int
    attributes: list[str]
    excluded: list[str]
    descending: bool


def page_of(query: Query, max_results: int) -> Page:
    """The page a query asks for, at most `max_results` long."""
    # RFC 7644 §3.4.2.4: startIndex < 1 means 1, a negative count means 0.
    start = max(1, integer(query.start_index, "startIndex", 1))
    count = min(max(0, integer(query.count, "count", max_results)), max_results)
    # A SearchRequest is JSON: sortOrder may arrive as a list or a number, not only a string.
    order = query.sort_order or "ascending"
    if not isinstance(order, str) or order.lower() not in ("ascending", "descending"):
        raise invalid('sortOrder must be "ascending" or "descending"')
    attributes = split_paths(query.attributes)
    excluded = split_paths(query.excluded_attributes)
    return Page(start, count, attributes, excluded, order.lower() == "descending")


def condition(
    text: str | None, translate: Callable[[str], ColumnElement[bool]]
) -> ColumnElement[bool] | None:
    """The SQL condition of a filter (None without one); 400 invalidFilter if it is invalid."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise invalid("filter must be a string", "invalidFilter")
    try:
        return translate(text)
    except FilterError as error:
        raise invalid(error.detail, "invalidFilter") from None


def sort(sort_by: str | None, translate: Callable[[str], ColumnElement[Any]]) -> Any:
    """The ORDER BY expression of sortBy (None without one); 400 invalidPath if unknown."""
    if not sort_by:
        return None
    if not isinstance(sort_by, str):
        raise invalid("sortBy must be a string", "invalidPath")
    try:
        return translate(sort_by)
    except FilterError as error:
        raise invalid(error.detail, "invalidPath") from None


def list_response(total: int, page: Page, resources_: list[dict[str, Any]]) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2) holding one page."""
    return {
        "schemas": [discovery.LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": len(resources_),
        "Resources": resources_,
    }


def page_rows(
    session: Session,
    model: type[Listed],
    conditions: Sequence[ColumnElement[bool]],
    sort_key: Any,
    page: Page,
    filtered: bool,
    carried: ColumnElement[Any] | None = None,
) -> tuple[int, list[tuple[Listed, Any]]]:
    """The total and one page of rows in a stable order, each with its `carried` value (a
    correlated subquery, or None), in one query.

    The page is chosen over ids alone (an index-only scan), and only its rows are joined in:
    OFFSET deep into 100,000 users would otherwise read every skipped row. A filtered query's
    total rides along as a window count, so a lookup by userName is one statement.
    """

    def count() -> int:
        return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0

    if not page.count:
        return count(), []
    order = [model.created_at, model.id] if sort_key is None else [sort_key, model.id]
    if page.descending:
        order = [o.desc() for o in order]
    # Listing everything: an index-only count beats a window over every row.
    total_column = func.count().over() if filtered else null()
    chosen = (
        select(model.id.label("id"), total_column.label("total"))
        .where(*conditions)
        .order_by(*order)
        .offset(page.start_index - 1)
        .limit(page.count)
        .subquery("chosen")
    )
    # The same order again, over the page's rows alone: a row_number() carried out of the page
    # would be computed over every skipped row as well.
    rows = session.execute(
        select(model, chosen.c.total, carried if carried is not None else null())
        .join(chosen, chosen.c.id == model.id)
        .order_by(*order)
    ).all()
    found = [(row[0], row[2]) for row in rows]
    if filtered and rows:
        return rows[0][1], found
    if filtered and page.start_index == 1:
        return 0, found
    return count(), found
