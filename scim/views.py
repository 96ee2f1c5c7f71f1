"""SCIM routes: open the unit of work, parse, make one service call, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from app.db import unit_of_work
from app.errors import ProvisioningError
from app.logs import current_request_id
from app.web import BodyTooLargeError, NotJsonError, request_json, settings
from scim import discovery, operations
from scim.errors import ScimError, from_service, render, scim_response
from scim.operations import Outcome, Query

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
log = logging.getLogger(__name__)
OPENAPI = Path(__file__).with_name("openapi.json")
PREFIX = "/scim/v2"
READ_METHODS = frozenset({"GET", "HEAD"})


def base_url() -> str:
    return settings().base_url + PREFIX


def json_body() -> Any:
    """The request body as JSON (None when empty); 413 past the payload limit, 400 if not JSON."""
    limit = settings().scim_bulk_max_payload_bytes
    try:
        return request_json(limit, allow_empty=True)
    except BodyTooLargeError as error:
        raise ScimError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(error), "tooMany") from None
    except NotJsonError as error:
        raise ScimError(HTTPStatus.BAD_REQUEST, str(error), "invalidSyntax") from None


def query_from_args() -> Query:
    args = request.args
    return Query(
        filter=args.get("filter"),
        start_index=args.get("startIndex"),
        count=args.get("count"),
        sort_by=args.get("sortBy"),
        sort_order=args.get("sortOrder"),
        attributes=args.get("attributes"),
        excluded_attributes=args.get("excludedAttributes"),
    )


def run(operation: Callable[[operations.Context], Outcome]) -> Response:
    """One request, one unit of work (app.db): authenticate, run the operation, render it."""
    reads = request.method in READ_METHODS
    with unit_of_work(reads=reads) as session:
        context = operations.authenticate(
            session,
            current_app.extensions["engine"],
            request.headers.get("Authorization", ""),
            settings(),
            base_url(),
            request_id=current_request_id(),
            source_ip=request.remote_addr,
            user_agent=request.user_agent.string or None,
            reads_only=reads,
        )
        outcome = operation(context)
    return scim_response(outcome.body, outcome.status, outcome.headers)


def if_match() -> str | None:
    return request.headers.get("If-Match")


# ------------------------------------------------------------ discovery


@bp.get("/ServiceProviderConfig", strict_slashes=False)
def get_service_provider_config() -> ResponseReturnValue:
    return run(lambda c: Outcome(operations.service_provider_config(c)))


@bp.get("/ResourceTypes", strict_slashes=False)
def list_resource_types() -> ResponseReturnValue:
    return run(lambda c: Outcome(operations.list_of(discovery.resource_types(c.base_url))))


@bp.get("/ResourceTypes/<name>", strict_slashes=False)
def get_resource_type(name: str) -> ResponseReturnValue:
    return run(
        lambda c: Outcome(operations.find_document(discovery.resource_types(c.base_url), name))
    )


@bp.get("/Schemas", strict_slashes=False)
def list_schemas() -> ResponseReturnValue:
    return run(lambda c: Outcome(operations.list_of(discovery.schemas(c.base_url))))


@bp.get("/Schemas/<path:urn>", strict_slashes=False)
def get_schema(urn: str) -> ResponseReturnValue:
    return run(lambda c: Outcome(operations.find_document(discovery.schemas(c.base_url), urn)))


@bp.get("/openapi.json")
def get_openapi() -> ResponseReturnValue:
    return Response(OPENAPI.read_bytes(), content_type="application/json")


# ---------------------------------------------------------------- users


@bp.get("/Users", strict_slashes=False)
def list_users() -> ResponseReturnValue:
    query = query_from_args()
    return run(lambda c: operations.list_users(c, query))


@bp.post("/Users", strict_slashes=False)
def create_user() -> ResponseReturnValue:
    body = json_body()
    query = query_from_args()
    return run(lambda c: operations.create_user(c, body, query))


@bp.post("/Users/.search", strict_slashes=False)
def search_users() -> ResponseReturnValue:
    query = operations.query_from_search(json_body())
    return run(lambda c: operations.list_users(c, query))


@bp.get("/Users/<user_id>", strict_slashes=False)
def get_user(user_id: str) -> ResponseReturnValue:
    query = query_from_args()
    none_match = request.headers.get("If-None-Match")
    return run(lambda c: operations.get_user(c, user_id, query, none_match))


@bp.put("/Users/<user_id>", strict_slashes=False)
def replace_user(user_id: str) -> ResponseReturnValue:
    body = json_body()
    query = query_from_args()
    return run(lambda c: operations.replace_user(c, user_id, body, query, if_match()))


@bp.patch("/Users/<user_id>", strict_slashes=False)
def patch_user(user_id: str) -> ResponseReturnValue:
    body = json_body()
    query = query_from_args()
    return run(lambda c: operations.patch_user(c, user_id, body, query, if_match()))


@bp.delete("/Users/<user_id>", strict_slashes=False)
def delete_user(user_id: str) -> ResponseReturnValue:
    return run(lambda c: operations.delete_user(c, user_id, if_match()))


# --------------------------------------------------------------- groups


@bp.get("/Groups", strict_slashes=False)
def list_groups() -> ResponseReturnValue:
    query = query_from_args()
    return run(lambda c: operations.list_groups(c, query))


@bp.post("/Groups", strict_slashes=False)
def create_group() -> ResponseReturnValue:
    body = json_body()
    query = query_from_args()
    return run(lambda c: operations.create_group(c, body, query))


@bp.post("/Groups/.search", strict_slashes=False)
def search_groups() -> ResponseReturnValue:
    query = operations.query_from_search(json_body())
    return run(lambda c: operations.list_groups(c, query))


@bp.get("/Groups/<group_id>", strict_slashes=False)
def get_group(group_id: str) -> ResponseReturnValue:
    query = query_from_args()
    none_match = request.headers.get("If-None-Match")
    return run(lambda c: operations.get_group(c, group_id, query, none_match))


@bp.put("/Groups/<group_id>", strict_slashes=False)
def replace_group(group_id: str) -> ResponseReturnValue:
    body = json_body()
    query = query_from_args()
    return run(lambda c: operations.replace_group(c, group_id, body, query, if_match()))


@bp.patch("/Groups/<group_id>", strict_slashes=False)
def patch_group(group_id: str) -> ResponseReturnValue:
    body = json_body()
    query = query_from_args()
    return run(lambda c: operations.patch_group(c, group_id, body, query, if_match()))


@bp.delete("/Groups/<group_id>", strict_slashes=False)
def delete_group(group_id: str) -> ResponseReturnValue:
    return run(lambda c: operations.delete_group(c, group_id, if_match()))


# ------------------------------------------------------ search and bulk


@bp.post("/.search", strict_slashes=False)
def search_all() -> ResponseReturnValue:
    query = operations.query_from_search(json_body())
    return run(lambda c: operations.search_all(c, query))


@bp.post("/Bulk", strict_slashes=False)
def bulk() -> ResponseReturnValue:
    body = json_body()
    return run(lambda c: operations.bulk(c, body))


# --------------------------------------------------------------- errors


@bp.errorhandler(ScimError)
def render_scim_error(error: ScimError) -> ResponseReturnValue:
    return render(error)


@bp.errorhandler(ProvisioningError)
def render_service_error(error: ProvisioningError) -> ResponseReturnValue:
    return render(from_service(error))


def _is_scim_path() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def init_app(app: Flask) -> None:
    """Give unknown /scim/v2 URLs, wrong methods and crashes SCIM error bodies too."""

    @app.errorhandler(HTTPException)
    def render_http_error(error: HTTPException) -> ResponseReturnValue:
        if not _is_scim_path():
            return error
        status = HTTPStatus(error.code or 500)
        detail = {
            HTTPStatus.NOT_FOUND: f"no SCIM endpoint at {request.path}",
            HTTPStatus.METHOD_NOT_ALLOWED: f"{request.method} is not supported on {request.path}",
        }.get(status, error.description or status.phrase)
        response = render(ScimError(status, detail))
        if status is HTTPStatus.METHOD_NOT_ALLOWED:
            response.headers["Allow"] = ", ".join(error.valid_methods or [])  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def render_crash(error: Exception) -> ResponseReturnValue:
        request_id = current_request_id() or "-"
        log.exception("unhandled error", extra={"request_id": request_id})
        if _is_scim_path():
            detail = f"internal error (request id {request_id})"
            return render(ScimError(HTTPStatus.INTERNAL_SERVER_ERROR, detail))
        return {"error": "internal error", "request_id": request_id}, 500
