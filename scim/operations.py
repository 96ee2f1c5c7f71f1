"""SCIM operations: protocol in, one service call, protocol out. Routes and /Bulk share them."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Engine, Uuid, bindparam, func, null, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app import organizations
from app.config import Settings
from app.db import json_rows
from app.errors import ProvisioningError
from app.models import Group, Membership, User
from app.provisioning import Actor, MemberChange, ProvisioningService
from scim import discovery, resources
from scim.errors import ScimError, from_service
from scim.filters import FilterError, group_filter, group_sort_key, user_filter, user_sort_key
from scim.patch import PatchError, apply_group_patch, apply_user_patch
from scim.resources import etag, invalid, parse_etag, project, split_paths, wants

BULK_ID_PREFIX = "bulkId:"
Listed = TypeVar("Listed", User, Group)


@dataclass(frozen=True, slots=True)
class Context:
    session: Session
    service: ProvisioningService
    settings: Settings
    base_url: str
    is_read_only: bool = False

    def require_write(self) -> None:
        """403 for a read-only token (RFC 7644 §3.12: not permitted by this authorization)."""
        if self.is_read_only:
            raise ScimError(HTTPStatus.FORBIDDEN, "this SCIM token is read-only")


@dataclass(frozen=True, slots=True)
class Outcome:
    body: Any
    status: int = HTTPStatus.OK
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Query:
    filter: str | None = None
    start_index: Any = None
    count: Any = None
    sort_by: str | None = None
    sort_order: str | None = None
    attributes: Any = None
    excluded_attributes: Any = None


def authenticate(
    session: Session,
    engine: Engine,
    authorization: str,
    settings: Settings,
    base_url: str,
    request_id: str | None = None,
    source_ip: str | None = None,
    user_agent: str | None = None,
    reads_only: bool = False,
) -> Context:
    """The bearer token's organization as a service context, or 401."""
    try:
        token = organizations.authorize_bearer(
            session,
            engine,
            authorization,
            organizations.TokenScope.SCIM,
            settings.scim_rate_limit,
            with_organization=not reads_only,
        )
    except organizations.TokenRefusedError as refused:
        raise token_error(refused, settings.scim_rate_limit) from None
    actor = Actor(
        kind="scim",
        label=token.label,
        request_id=request_id,
        source_ip=source_ip,
        user_agent=user_agent,
    )
    service = ProvisioningService(
        session, token.org_id if reads_only else token.organization, actor
    )
    return Context(
        session=session,
        service=service,
        settings=settings,
        base_url=base_url,
        is_read_only=token.is_read_only,
    )


def token_error(refused: organizations.TokenRefusedError, rate_limit: int) -> ScimError:
    """A refused bearer token as SCIM words it (RFC 6750 challenges on 401)."""
    match refused.refusal:
        case organizations.TokenRefusal.MISSING:
            challenge = {"WWW-Authenticate": 'Bearer realm="scim"'}
            return ScimError(
                HTTPStatus.UNAUTHORIZED, "a bearer token is required", headers=challenge
            )
        case organizations.TokenRefusal.INVALID:
            challenge = {"WWW-Authenticate": 'Bearer realm="scim", error="invalid_token"'}
            return ScimError(
                HTTPStatus.UNAUTHORIZED, "the bearer token is invalid or revoked", headers=challenge
            )
        case organizations.TokenRefusal.RATE_LIMITED:
            return ScimError(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"more than {rate_limit} requests a minute with this token",
                headers={"Retry-After": str(refused.retry_after)},
            )
    return ScimError(HTTPStatus.FORBIDDEN, "this token is for the admin API, not for SCIM")


# ------------------------------------------------------------ discovery


def service_provider_config(context: Context) -> dict[str, Any]:
    settings = context.settings
    return discovery.service_provider_config(
        context.base_url,
        max_results=settings.scim_max_results,
        max_operations=settings.scim_bulk_max_operations,
        max_payload_size=settings.scim_bulk_max_payload_bytes,
    )


def list_of(resources_: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [discovery.LIST_RESPONSE_SCHEMA],
        "totalResults": len(resources_),
        "startIndex": 1,
        "itemsPerPage": len(resources_),
        "Resources": list(resources_),
    }


def find_document(documents: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    for document in documents:
        if key.lower() in (
            str(document.get("id", "")).lower(),
            str(document.get("name", "")).lower(),
        ):
            return document
    raise ScimError(HTTPStatus.NOT_FOUND, f"{key} not found")


# ---------------------------------------------------------------- query


def query_from_search(body: Any) -> Query:
    """A POST /.search body (RFC 7644 §3.4.3) as a query."""
    if not isinstance(body, dict):
        raise invalid("the body must be a SearchRequest object", "invalidSyntax")
    schemas = body.get("schemas") or []
    if discovery.SEARCH_REQUEST_SCHEMA not in schemas:
        raise invalid(f"schemas must include {discovery.SEARCH_REQUEST_SCHEMA}", "invalidSyntax")
    fields = {k.lower(): v for k, v in body.items()}
    return Query(
        filter=fields.get("filter"),
        start_index=fields.get("startindex"),
        count=fields.get("count"),
        sort_by=fields.get("sortby"),
        sort_order=fields.get("sortorder"),
        attributes=fields.get("attributes"),
        excluded_attributes=fields.get("excludedattributes"),
    )


def _integer(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be an integer") from None


@dataclass(frozen=True, slots=True)
class Page:
    start_index: int
    count: int
    attributes: list[str]
    excluded: list[str]
    descending: bool


def _page(context: Context, query: Query) -> Page:
    maximum = context.settings.scim_max_results
    # RFC 7644 §3.4.2.4: startIndex < 1 means 1, a negative count means 0.
    start = max(1, _integer(query.start_index, "startIndex", 1))
    count = min(max(0, _integer(query.count, "count", maximum)), maximum)
    order = (query.sort_order or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid('sortOrder must be "ascending" or "descending"')
    attributes = split_paths(query.attributes)
    excluded = split_paths(query.excluded_attributes)
    return Page(start, count, attributes, excluded, order == "descending")


def _condition(text: str | None, translate: Any) -> ColumnElement[bool] | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise invalid("filter must be a string", "invalidFilter")
    try:
        condition: ColumnElement[bool] = translate(text)
    except FilterError as error:
        raise invalid(error.detail, "invalidFilter") from None
    return condition


def _sort(sort_by: str | None, translate: Any) -> Any:
    if not sort_by:
        return None
    try:
        return translate(sort_by)
    except FilterError as error:
        raise invalid(error.detail, "invalidPath") from None


def _list_response(total: int, page: Page, resources_: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [discovery.LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": len(resources_),
        "Resources": resources_,
    }


# ---------------------------------------------------------------- users


def _groups_of(user_id: ColumnElement[UUID] | InstrumentedAttribute[UUID]) -> Any:
    """A scalar subquery: the groups of `user_id` as JSON (`json_rows`), decoded by _groups."""
    return (
        select(json_rows(Group.id, Group.display_name, Group.display_name_key))
        .select_from(Membership)
        .join(Group, Group.id == Membership.group_id)
        .where(Membership.user_id == user_id)
        .scalar_subquery()
    )


# Built once: a page of users carries each user's groups in its own statement, and a single
# user's are read by the second.
_GROUPS_OF_LISTED_USER = _groups_of(User.id)
_GROUPS_OF_ONE = select(_groups_of(bindparam("user_id", type_=Uuid())))


def _groups(value: Sequence[Sequence[str]] | None) -> list[tuple[str, str]]:
    """(id, displayName) pairs from `_groups_of`, by display name (RFC 7643 §4.1.2 `groups`)."""
    rows = sorted(value or (), key=lambda row: row[2])
    return [(str(UUID(group_id)), display_name) for group_id, display_name, _ in rows]


def _render_users(
    context: Context,
    rows: Sequence[tuple[User, list[tuple[str, str]] | None]],
    page: Page,
) -> list[dict[str, Any]]:
    """Project each user with their groups (None: not asked for, so not loaded)."""
    return [
        project(
            resources.user_to_scim(user, context.base_url, groups),
            discovery.USER_SCHEMA,
            page.attributes,
            page.excluded,
        )
        for user, groups in rows
    ]


def _wants_groups(page: Page) -> bool:
    return wants(discovery.USER_SCHEMA, page.attributes, page.excluded, "groups")


def _user_outcome(
    context: Context, user: User, query: Query, status: int = HTTPStatus.OK
) -> Outcome:
    page = _page(context, query)
    groups: list[tuple[str, str]] | None = None
    if status == HTTPStatus.CREATED:
        groups = []  # A user just created belongs to no group yet: nothing to load.
    elif _wants_groups(page):
        groups = _groups(context.session.scalar(_GROUPS_OF_ONE, {"user_id": user.id}))
    [body] = _render_users(context, [(user, groups)], page)
    headers = {"ETag": etag(user.version)}
    if status == HTTPStatus.CREATED:
        headers["Location"] = f"{context.base_url}/Users/{user.id}"
    return Outcome(body, status, headers)


def _page_rows(
    session: Session,
    model: type[Listed],
    conditions: Sequence[ColumnElement[bool]],
    sort: Any,
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
    order = [model.created_at, model.id] if sort is None else [sort, model.id]
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


def list_users(context: Context, query: Query) -> Outcome:
    page = _page(context, query)
    org_id = context.service.org_id
    conditions: list[ColumnElement[bool]] = [User.org_id == org_id, User.deprovisioned_at.is_(None)]
    condition = _condition(query.filter, user_filter)
    if condition is not None:
        conditions.append(condition)
    sort = _sort(query.sort_by, user_sort_key)
    load_groups = _wants_groups(page)
    total, rows = _page_rows(
        context.session,
        User,
        conditions,
        sort,
        page,
        query.filter is not None,
        carried=_GROUPS_OF_LISTED_USER if load_groups else None,
    )
    users = [(user, _groups(groups) if load_groups else None) for user, groups in rows]
    return Outcome(_list_response(total, page, _render_users(context, users, page)))


def get_user(context: Context, user_id: str, query: Query, none_match: str | None) -> Outcome:
    user = context.service.get_user(user_id)
    if none_match and _matches(none_match, user.version):
        return Outcome(None, HTTPStatus.NOT_MODIFIED, {"ETag": etag(user.version)})
    return _user_outcome(context, user, query)


def create_user(context: Context, body: Any, query: Query) -> Outcome:
    context.require_write()
    user = context.service.create_user(resources.user_spec_from_scim(body))
    return _user_outcome(context, user, query, HTTPStatus.CREATED)


def replace_user(
    context: Context, user_id: str, body: Any, query: Query, if_match: str | None
) -> Outcome:
    context.require_write()
    spec = resources.user_spec_from_scim(body)
    user = context.service.replace_user(user_id, spec, _expected(if_match, context, user_id))
    return _user_outcome(context, user, query)


def patch_user(
    context: Context, user_id: str, body: Any, query: Query, if_match: str | None
) -> Outcome:
    context.require_write()
    user = context.service.get_user(user_id)
    expected = _expected_version(if_match, user.version)
    document = resources.user_to_scim(user, context.base_url, groups=None)
    try:
        patched = apply_user_patch(document, _patch_body(body))
    except PatchError as error:
        raise invalid(error.detail, error.scim_type) from None
    spec = resources.user_spec_from_scim(patched)
    user = context.service.replace_user(user.id, spec, expected)
    return _user_outcome(context, user, query)


def delete_user(context: Context, user_id: str, if_match: str | None) -> Outcome:
    context.require_write()
    user = context.service.get_user(user_id)
    context.service.delete_user(user.id, _expected_version(if_match, user.version))
    return Outcome(None, HTTPStatus.NO_CONTENT)


# --------------------------------------------------------------- groups


def _group_members(session: Session, group_id: UUID) -> list[tuple[str, str | None]]:
    rows = session.execute(
        select(User.id, User.user_name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.group_id == group_id)
        .order_by(User.user_name_key)
    )
    return [(str(user_id), user_name) for user_id, user_name in rows]


def _render_groups(context: Context, groups: Sequence[Group], page: Page) -> list[dict[str, Any]]:
    load_members = wants(discovery.GROUP_SCHEMA, page.attributes, page.excluded, "members")
    members: dict[UUID, list[tuple[str, str | None]]] = defaultdict(list)
    if load_members and groups:
        rows = context.session.execute(
            select(Membership.group_id, User.id, User.user_name)
            .join(User, User.id == Membership.user_id)
            .where(Membership.group_id.in_([g.id for g in groups]))
            .order_by(Membership.group_id, User.user_name_key)
        )
        for group_id, user_id, user_name in rows:
            members[group_id].append((str(user_id), user_name))
    return [
        project(
            resources.group_to_scim(g, context.base_url, members[g.id] if load_members else None),
            discovery.GROUP_SCHEMA,
            page.attributes,
            page.excluded,
        )
        for g in groups
    ]


def _group_outcome(
    context: Context, group: Group, query: Query, status: int = HTTPStatus.OK
) -> Outcome:
    page = _page(context, query)
    [body] = _render_groups(context, [group], page)
    headers = {"ETag": etag(group.version)}
    if status == HTTPStatus.CREATED:
        headers["Location"] = f"{context.base_url}/Groups/{group.id}"
    return Outcome(body, status, headers)


def list_groups(context: Context, query: Query) -> Outcome:
    page = _page(context, query)
    conditions: list[ColumnElement[bool]] = [Group.org_id == context.service.org_id]
    condition = _condition(query.filter, group_filter)
    if condition is not None:
        conditions.append(condition)
    sort = _sort(query.sort_by, group_sort_key)
    total, rows = _page_rows(
        context.session, Group, conditions, sort, page, query.filter is not None
    )
    groups = [group for group, _ in rows]
    return Outcome(_list_response(total, page, _render_groups(context, groups, page)))


def get_group(context: Context, group_id: str, query: Query, none_match: str | None) -> Outcome:
    group = context.service.get_group(group_id)
    if none_match and _matches(none_match, group.version):
        return Outcome(None, HTTPStatus.NOT_MODIFIED, {"ETag": etag(group.version)})
    return _group_outcome(context, group, query)


def create_group(context: Context, body: Any, query: Query) -> Outcome:
    context.require_write()
    group = context.service.create_group(resources.group_spec_from_scim(body))
    return _group_outcome(context, group, query, HTTPStatus.CREATED)


def replace_group(
    context: Context, group_id: str, body: Any, query: Query, if_match: str | None
) -> Outcome:
    context.require_write()
    spec = resources.group_spec_from_scim(body)
    expected = _expected(if_match, context, group_id, group=True)
    group = context.service.replace_group(group_id, spec, expected)
    return _group_outcome(context, group, query)


def patch_group(
    context: Context, group_id: str, body: Any, query: Query, if_match: str | None
) -> Outcome:
    context.require_write()
    group = context.service.get_group(group_id)
    expected = _expected_version(if_match, group.version)
    document = resources.group_to_scim(group, context.base_url, members=None)
    try:
        patched, changes = apply_group_patch(document, _patch_body(body))
    except PatchError as error:
        raise invalid(error.detail, error.scim_type) from None
    spec = resources.group_spec_from_scim(patched, with_members=False)
    members = MemberChange(added=changes.added, removed=changes.removed, replaced=changes.replaced)
    group = context.service.update_group(group.id, spec, members, expected)
    if query.attributes or query.excluded_attributes:
        return _group_outcome(context, group, query)
    # RFC 7644 §3.5.2: 204 is allowed; returning a 50,000-member group on every change is not.
    return Outcome(None, HTTPStatus.NO_CONTENT, {"ETag": etag(group.version)})


def delete_group(context: Context, group_id: str, if_match: str | None) -> Outcome:
    context.require_write()
    group = context.service.get_group(group_id)
    context.service.delete_group(group.id, _expected_version(if_match, group.version))
    return Outcome(None, HTTPStatus.NO_CONTENT)


# ----------------------------------------------------------- versioning


def _matches(header: str, version: int) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(parse_etag(t) == version for t in tags)


def _expected_version(if_match: str | None, current: int) -> int | None:
    """The version If-Match demands (RFC 7644 §3.14); a mismatch is 412."""
    if not if_match:
        return None
    if _matches(if_match, current):
        return current
    raise ScimError(
        HTTPStatus.PRECONDITION_FAILED,
        f"If-Match {if_match} does not match the current version {etag(current)}",
    )


def _expected(
    if_match: str | None, context: Context, resource_id: str, group: bool = False
) -> int | None:
    if not if_match:
        return None
    resource = (
        context.service.get_group(resource_id) if group else context.service.get_user(resource_id)
    )
    return _expected_version(if_match, resource.version)


def _patch_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("the body must be a PatchOp object", "invalidSyntax")
    return copy.deepcopy(body)


# ------------------------------------------------------- root search


def search_all(context: Context, query: Query) -> Outcome:
    """POST /.search: users then groups, one page over both (RFC 7644 §3.4.3)."""
    page = _page(context, query)
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
    for lister in (list_users, list_groups):
        try:
            body = lister(context, everything).body
        except ScimError as error:  # a filter may only make sense for one resource type
            errors.append(error)
            continue
        parts.append((body["totalResults"], body["Resources"]))
    if not parts:
        raise errors[0]
    combined = [r for _, found in parts for r in found]
    total = sum(t for t, _ in parts)
    window = combined[page.start_index - 1 : page.start_index - 1 + page.count]
    return Outcome(_list_response(total, page, window))


# ------------------------------------------------------------------ bulk


def bulk(context: Context, body: Any) -> Outcome:
    """POST /Bulk (RFC 7644 §3.7): each operation in its own savepoint, in order, after the
    groups the request changes are locked in id order."""
    context.require_write()
    if not isinstance(body, dict):
        raise invalid("the body must be a BulkRequest object", "invalidSyntax")
    fields = {k.lower(): v for k, v in body.items()}
    if discovery.BULK_REQUEST_SCHEMA not in (fields.get("schemas") or []):
        raise invalid(f"schemas must include {discovery.BULK_REQUEST_SCHEMA}", "invalidSyntax")
    operations_ = fields.get("operations")
    if not isinstance(operations_, list) or not operations_:
        raise invalid("Operations must be a non-empty list", "invalidSyntax")
    limit = context.settings.scim_bulk_max_operations
    if len(operations_) > limit:
        raise ScimError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"a bulk request may hold at most {limit} operations, this one has {len(operations_)}",
            "tooMany",
        )
    fail_on_errors = _integer(fields.get("failonerrors"), "failOnErrors", 0)
    context.service.lock_groups(_groups_changed_by(operations_))
    bulk_ids: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    failures = 0
    for raw in operations_:
        if fail_on_errors and failures >= fail_on_errors:
            break
        result = _bulk_operation(context, raw, bulk_ids)
        if int(result["status"]) >= 400:
            failures += 1
        results.append(result)
    return Outcome({"schemas": [discovery.BULK_RESPONSE_SCHEMA], "Operations": results})


def _groups_changed_by(operations_: Sequence[Any]) -> list[str]:
    """The ids of the existing groups a bulk request changes (PUT, PATCH or DELETE by id)."""
    ids = []
    for raw in operations_:
        if isinstance(raw, dict):
            method, path = _method_and_path({k.lower(): v for k, v in raw.items()})
            parts = _path_parts(path)
            if method in ("PUT", "PATCH", "DELETE") and len(parts) == 2 and parts[0] == "Groups":
                ids.append(parts[1])
    return ids


def _method_and_path(fields: Mapping[str, Any]) -> tuple[str, str]:
    """A bulk operation's method, upper-cased, and path (its keys already lower-cased)."""
    return str(fields.get("method", "")).upper(), str(fields.get("path", ""))


def _path_parts(path: str) -> list[str]:
    """A bulk path's resource type and id: "/Groups/{id}" → ["Groups", "{id}"]."""
    return [p for p in path.split("/") if p]


def _bulk_operation(context: Context, raw: Any, bulk_ids: dict[str, str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return _bulk_error(None, None, invalid("each operation must be an object", "invalidSyntax"))
    fields = {k.lower(): v for k, v in raw.items()}
    method, path = _method_and_path(fields)
    bulk_id = fields.get("bulkid")
    try:
        path = _resolve_bulk_ids(path, bulk_ids)
        data = _resolve_bulk_ids(fields.get("data"), bulk_ids)
        if method == "POST" and not bulk_id:
            raise invalid("a POST operation needs a bulkId", "invalidValue")
        with context.session.begin_nested():
            outcome = _dispatch(context, method, path, data, fields.get("version"))
    except ScimError as error:
        return _bulk_error(method, bulk_id, error)
    except ProvisioningError as error:
        return _bulk_error(method, bulk_id, from_service(error))
    result: dict[str, Any] = {"method": method, "status": str(int(outcome.status))}
    if bulk_id:
        result["bulkId"] = bulk_id
    location = outcome.headers.get("Location") or (
        outcome.body.get("meta", {}).get("location") if isinstance(outcome.body, dict) else None
    )
    if location:
        result["location"] = location
        if bulk_id and method == "POST":
            bulk_ids[str(bulk_id)] = location.rsplit("/", 1)[-1]
    if "ETag" in outcome.headers:
        result["version"] = outcome.headers["ETag"]
    return result


def _bulk_error(method: str | None, bulk_id: Any, error: ScimError) -> dict[str, Any]:
    result: dict[str, Any] = {"status": str(int(error.status)), "response": error.body()}
    if method:
        result["method"] = method
    if bulk_id:
        result["bulkId"] = bulk_id
    return result


def _resolve_bulk_ids(value: Any, bulk_ids: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        if BULK_ID_PREFIX in value:
            for key, resolved in bulk_ids.items():
                value = value.replace(BULK_ID_PREFIX + key, resolved)
            if BULK_ID_PREFIX in value:
                raise ScimError(
                    HTTPStatus.CONFLICT,
                    f"{value} refers to a bulkId that has not been created",
                    "invalidValue",
                )
        return value
    if isinstance(value, list):
        return [_resolve_bulk_ids(v, bulk_ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_bulk_ids(v, bulk_ids) for k, v in value.items()}
    return value


def _dispatch(context: Context, method: str, path: str, data: Any, version: Any) -> Outcome:
    parts = _path_parts(path)
    if not parts or parts[0] not in ("Users", "Groups") or len(parts) > 2:
        raise invalid(f"unsupported bulk path {path!r}", "invalidPath")
    resource, resource_id = parts[0], (parts[1] if len(parts) == 2 else None)
    if_match = str(version) if version else None
    query = Query()
    if resource == "Users":
        if method == "POST" and resource_id is None:
            return create_user(context, data, query)
        if resource_id is not None and method == "PUT":
            return replace_user(context, resource_id, data, query, if_match)
        if resource_id is not None and method == "PATCH":
            return patch_user(context, resource_id, data, query, if_match)
        if resource_id is not None and method == "DELETE":
            return delete_user(context, resource_id, if_match)
    else:
        if method == "POST" and resource_id is None:
            return create_group(context, data, query)
        if resource_id is not None and method == "PUT":
            return replace_group(context, resource_id, data, query, if_match)
        if resource_id is not None and method == "PATCH":
            return patch_group(context, resource_id, data, query, if_match)
        if resource_id is not None and method == "DELETE":
            return delete_group(context, resource_id, if_match)
    raise invalid(f"{method or 'no method'} is not supported on {path}", "invalidSyntax")
