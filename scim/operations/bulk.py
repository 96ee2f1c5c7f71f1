"""POST /Bulk (RFC 7644 §3.7): operations in order, each in its own savepoint, resolving bulkIds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from app.errors import ProvisioningError
from scim import discovery
from scim.errors import ScimError, from_service
from scim.operations.context import Context, Outcome
from scim.operations.groups import GROUPS
from scim.operations.listing import Query, integer
from scim.operations.resource_types import (
    ResourceType,
    create_resource,
    delete_resource,
    replace_resource,
)
from scim.operations.users import USERS
from scim.resources import invalid

BULK_ID_PREFIX = "bulkId:"
_BULK_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_RESOURCE_TYPES: dict[str, ResourceType[Any, Any]] = {
    kind.endpoint: kind for kind in (USERS, GROUPS)
}


def bulk(context: Context, body: Any) -> Outcome:
    """POST /Bulk (RFC 7644 §3.7): each operation in its own savepoint, in order, after the
    groups the request changes are locked in id order."""
    context.require_write()
    if not isinstance(body, dict):
        raise invalid("the body must be a BulkRequest object", "invalidSyntax")
    fields = {k.lower(): v for k, v in body.items()}
    schemas = fields.get("schemas")
    schemas = [schemas] if isinstance(schemas, str) else schemas  # lenient, as PATCH is
    if not isinstance(schemas, list) or discovery.BULK_REQUEST_SCHEMA not in schemas:
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
    fail_on_errors = integer(fields.get("failonerrors"), "failOnErrors", 0)
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
            if (
                method in ("PUT", "PATCH", "DELETE")
                and len(parts) == 2
                and parts[0] == GROUPS.endpoint
            ):
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
    if bulk_id is not None and not isinstance(bulk_id, str):
        # Echoed back in the response, where RFC 7644 §3.7 has it a string.
        return _bulk_error(method, None, invalid("bulkId must be a string", "invalidValue"))
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
            bulk_ids[bulk_id] = location.rsplit("/", 1)[-1]
    if "ETag" in outcome.headers:
        result["version"] = outcome.headers["ETag"]
    return result


def _bulk_error(method: str | None, bulk_id: str | None, error: ScimError) -> dict[str, Any]:
    result: dict[str, Any] = {"status": str(int(error.status)), "response": error.body()}
    if method in _BULK_METHODS:  # an unknown method is not echoed: the response names only these
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
    kind = _RESOURCE_TYPES.get(parts[0]) if parts else None
    if kind is None or len(parts) > 2:
        raise invalid(f"unsupported bulk path {path!r}", "invalidPath")
    resource_id = parts[1] if len(parts) == 2 else None
    if_match = str(version) if version else None
    query = Query()
    if method == "POST" and resource_id is None:
        return create_resource(context, kind, data, query)
    if resource_id is not None and method == "PUT":
        return replace_resource(context, kind, resource_id, data, query, if_match)
    if resource_id is not None and method == "PATCH":
        return kind.patch(context, resource_id, data, query, if_match)
    if resource_id is not None and method == "DELETE":
        return delete_resource(context, kind, resource_id, if_match)
    raise invalid(f"{method or 'no method'} is not supported on {path}", "invalidSyntax")
