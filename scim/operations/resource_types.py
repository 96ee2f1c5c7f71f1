"""The operations Users and Groups share (RFC 7644 §3.2–§3.6): list, get, create, replace,
delete, each written once over a `ResourceType`; PATCH stays with each type."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement

from app.models import Group, User
from app.provisioning import GroupSpec, ProvisioningService, UserSpec
from scim.errors import ScimError
from scim.operations.context import Context, Outcome
from scim.operations.listing import (
    Page,
    Query,
    condition,
    list_response,
    page_of,
    page_rows,
    sort,
)
from scim.patch import PatchError
from scim.resources import etag, invalid, parse_etag

Resource = TypeVar("Resource", User, Group)
Spec = TypeVar("Spec", UserSpec, GroupSpec)


@dataclass(frozen=True, slots=True)
class ResourceType(Generic[Resource, Spec]):
    """One SCIM resource type: its endpoint, its service calls and how it is listed and shown."""

    endpoint: str  # the path segment, "Users"
    name: str  # "user", as in the route names get_user and list_users
    model: type[Resource]
    read_spec: Callable[[Any], Spec]  # a POST or PUT body as a service spec, or 400
    fetch: Callable[[ProvisioningService, str], Resource]
    create: Callable[[ProvisioningService, Spec], Resource]
    replace: Callable[[ProvisioningService, str, Spec, int | None], Resource]
    delete: Callable[[ProvisioningService, UUID, int | None], None]
    patch: Callable[[Context, str, Any, Query, str | None], Outcome]
    # Listing: the rows a listing starts from, the filter and sortBy translations, the value
    # each row carries along (a correlated subquery, or None) and the rendering of a page.
    listed: Callable[[UUID], list[ColumnElement[bool]]]
    filter: Callable[[str], ColumnElement[bool]]
    sort_key: Callable[[str], ColumnElement[Any]]
    carried: Callable[[Page], ColumnElement[Any] | None]
    render: Callable[[Context, Sequence[tuple[Resource, Any]], Page], list[dict[str, Any]]]
    # One resource as a response: its body, ETag and, when created, Location.
    outcome: Callable[[Context, Resource, Query, int], Outcome]


def list_resources(context: Context, kind: ResourceType[Resource, Spec], query: Query) -> Outcome:
    """GET /Users or /Groups (RFC 7644 §3.4.2): one page of the organization's resources."""
    page = page_of(query, context.settings.scim_max_results)
    conditions = kind.listed(context.service.org_id)
    filtered = condition(query.filter, kind.filter)
    if filtered is not None:
        conditions.append(filtered)
    total, rows = page_rows(
        context.session,
        kind.model,
        conditions,
        sort(query.sort_by, kind.sort_key),
        page,
        query.filter is not None,
        carried=kind.carried(page),
    )
    return Outcome(list_response(total, page, kind.render(context, rows, page)))


def get_resource(
    context: Context,
    kind: ResourceType[Resource, Spec],
    resource_id: str,
    query: Query,
    none_match: str | None,
) -> Outcome:
    """GET one resource; 304 when If-None-Match names its version (RFC 7644 §3.14)."""
    resource = kind.fetch(context.service, resource_id)
    if none_match and _matches(none_match, resource.version):
        return Outcome(None, HTTPStatus.NOT_MODIFIED, {"ETag": etag(resource.version)})
    return kind.outcome(context, resource, query, HTTPStatus.OK)


def create_resource(
    context: Context, kind: ResourceType[Resource, Spec], body: Any, query: Query
) -> Outcome:
    """POST a resource (RFC 7644 §3.3): 201 with its Location."""
    context.require_write()
    resource = kind.create(context.service, kind.read_spec(body))
    return kind.outcome(context, resource, query, HTTPStatus.CREATED)


def replace_resource(
    context: Context,
    kind: ResourceType[Resource, Spec],
    resource_id: str,
    body: Any,
    query: Query,
    if_match: str | None,
) -> Outcome:
    """PUT a resource (RFC 7644 §3.5.1), at the version If-Match names."""
    context.require_write()
    spec = kind.read_spec(body)
    expected = None
    if if_match:
        expected = expected_version(if_match, kind.fetch(context.service, resource_id).version)
    resource = kind.replace(context.service, resource_id, spec, expected)
    return kind.outcome(context, resource, query, HTTPStatus.OK)


def delete_resource(
    context: Context, kind: ResourceType[Resource, Spec], resource_id: str, if_match: str | None
) -> Outcome:
    """DELETE a resource (RFC 7644 §3.6), at the version If-Match names: 204."""
    resource, expected = fetch_for_change(context, kind, resource_id, if_match)
    kind.delete(context.service, resource.id, expected)
    return Outcome(None, HTTPStatus.NO_CONTENT)


def fetch_for_change(
    context: Context, kind: ResourceType[Resource, Spec], resource_id: str, if_match: str | None
) -> tuple[Resource, int | None]:
    """The resource a change is about and the version If-Match demands (403 for a read-only
    token, 404 for no such resource, 412 for another version)."""
    context.require_write()
    resource = kind.fetch(context.service, resource_id)
    return resource, expected_version(if_match, resource.version)


def resource_headers(
    context: Context, endpoint: str, resource: User | Group, status: int
) -> dict[str, str]:
    """The ETag of a resource in a response, and its Location when it was just created."""
    headers = {"ETag": etag(resource.version)}
    if status == HTTPStatus.CREATED:
        headers["Location"] = f"{context.base_url}/{endpoint}/{resource.id}"
    return headers


def patched(
    apply: Callable[[dict[str, Any], dict[str, Any]], Any], document: dict[str, Any], body: Any
) -> Any:
    """What the PATCH engine makes of a resource's document and a PatchOp body, or 400."""
    if not isinstance(body, dict):
        raise invalid("the body must be a PatchOp object", "invalidSyntax")
    try:
        return apply(document, copy.deepcopy(body))
    except PatchError as error:
        raise invalid(error.detail, error.scim_type) from None


def _matches(header: str, version: int) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(parse_etag(t) == version for t in tags)


def expected_version(if_match: str | None, current: int) -> int | None:
    """The version If-Match demands (RFC 7644 §3.14); a mismatch is 412."""
    if not if_match:
        return None
    if _matches(if_match, current):
        return current
    raise ScimError(
        HTTPStatus.PRECONDITION_FAILED,
        f"If-Match {if_match} does not match the current version {etag(current)}",
    )
