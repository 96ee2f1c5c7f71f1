"""POST /.search at the root (RFC 7644 §3.4.3): users then groups, one page over both."""

from __future__ import annotations

from typing import Any

from scim.errors import ScimError
from scim.operations.context import Context, Outcome
from scim.operations.groups import GROUPS
from scim.operations.listing import Query, list_response, page_of
from scim.operations.resource_types import ResourceType, list_resources
from scim.operations.users import USERS


def search_all(context: Context, query: Query) -> Outcome:
    """POST /.search: users then groups, one page over both (RFC 7644 §3.4.3)."""
    page = page_of(query, context.settings.scim_max_results)
    everything = Query(
        filter=query.filter,
        sort_by=query.sort_by,
        sort_order=query.sort_order,
        attributes=query.attributes,
        excluded_attributes=query.excluded_attributes,
        start_index=1,
        count=context.settings.scim_max_results,
    )
    parts: list[tuple[int, list[dict[str, Any]]]] = []
    errors: list[ScimError] = []
    kinds: tuple[ResourceType[Any, Any], ...] = (USERS, GROUPS)
    for kind in kinds:
        try:
            body = list_resources(context, kind, everything).body
        except ScimError as error:  # a filter may only make sense for one resource type
            errors.append(error)
            continue
        parts.append((body["totalResults"], body["Resources"]))
    if not parts:
        raise errors[0]
    combined = [r for _, found in parts for r in found]
    total = sum(t for t, _ in parts)
    window = combined[page.start_index - 1 : page.start_index - 1 + page.count]
    return Outcome(list_response(total, page, window))
