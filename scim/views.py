"""SCIM routes: open the unit of work, parse, make one service call, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from app.db import once_more_if_lost, unit_of_work
from app.errors import ProvisioningError
from app.logs import current_request_id
from app.web import (
    BodyTooLargeError,
    NotJsonError,
    UnstorableTextError,
    count_request_error,
    request_json,
    settings,
    unstorable_field,
)
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
    except UnstorableTextError as error:
        raise ScimError(HTTPStatus.BAD_REQUEST, str(error), "invalidValue") from None


bp.after_request(count_request_error)


@bp.before_request
def refuse_unstorable_parameters() -> None:
    """A query parameter no database can store (NUL, a lone surrogate) is 400, not a 500."""
    name = unstorable_field(request.args.items(multi=True))
    if name is not None:
        raise ScimError(HTTPStatus.BAD_REQUEST, str(UnstorableTextError(name)), "invalidValue")


def query_from_args() -> Query:
    """The listing and projection parameters of the query string."""
    return operations.query_from(request.args.get)


def run(operation: Callable[[operations.Context], Outcome]) -> Response:
    """One request, one unit of work (app.db): authenticate, run the operation, render it."""
    reads = request.method in READ_METHODS

    def attempt() -> Outcome:
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
            g.token_id = context.token_id  # its errors count in the console's health page
            return operation(context)

    outcome = once_more_if_lost(attempt)
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


# ------------------------------------------------------- users and groups


def _serve(kind: operations.ResourceType[Any, Any]) -> None:
    """Register the routes of one resource type (RFC 7644 §3.2–§3.6) under its endpoint; their
    names read like list_users, create_user, search_users, get_user and so on."""
    collection = f"/{kind.endpoint}"
    item = f"{collection}/<resource_id>"

    def list_resources() -> ResponseReturnValue:
        query = query_from_args()
        return run(lambda c: operations.list_resources(c, kind, query))

    # A body is read only once its token is accepted: `json_body()` runs inside `run`.
    def create_resource() -> ResponseReturnValue:
        query = query_from_args()
        return run(lambda c: operations.create_resource(c, kind, json_body(), query))

    def search_resources() -> ResponseReturnValue:
        return run(
            lambda c: operations.list_resources(c, kind, operations.query_from_search(json_body()))
        )

    def get_resource(resource_id: str) -> ResponseReturnValue:
        query = query_from_args()
        none_match = request.headers.get("If-None-Match")
        return run(lambda c: operations.get_resource(c, kind, resource_id, query, none_match))

    def replace_resource(resource_id: str) -> ResponseReturnValue:
        query = query_from_args()
        return run(
            lambda c: operations.replace_resource(
                c, kind, resource_id, json_body(), query, if_match()
            )
        )

    def patch_resource(resource_id: str) -> ResponseReturnValue:
        query = query_from_args()
        return run(lambda c: kind.patch(c, resource_id, json_body(), query, if_match()))

    def delete_resource(resource_id: str) -> ResponseReturnValue:
        return run(lambda c: operations.delete_resource(c, kind, resource_id, if_match()))

    one, many = kind.name, kind.endpoint.lower()
    routes: list[tuple[str, str, Callable[..., ResponseReturnValue], str]] = [
        (collection, f"list_{many}", list_resources, "GET"),
        (collection, f"create_{one}", create_resource, "POST"),
        (f"{collection}/.search", f"search_{many}", search_resources, "POST"),
        (item, f"get_{one}", get_resource, "GET"),
        (item, f"replace_{one}", replace_resource, "PUT"),
        (item, f"patch_{one}", patch_resource, "PATCH"),
        (item, f"delete_{one}", delete_resource, "DELETE"),
    ]
    for rule, endpoint, view, method in routes:
        bp.add_url_rule(rule, endpoint, view, methods=[method], strict_slashes=False)


_serve(operations.USERS)
_serve(operations.GROUPS)


# ------------------------------------------------------ search and bulk


@bp.post("/.search", strict_slashes=False)
def search_all() -> ResponseReturnValue:
    return run(lambda c: operations.search_all(c, operations.query_from_search(json_body())))


@bp.post("/Bulk", strict_slashes=False)
def bulk() -> ResponseReturnValue:
    return run(lambda c: operations.bulk(c, json_body()))


# --------------------------------------------------------------- errors


@bp.errorhandler(ScimError)
def render_scim_error(error: ScimError) -> ResponseReturnValue:
    return render(error)


@bp.errorhandler(ProvisioningError)
def render_service_error(error: ProvisioningError) -> ResponseReturnValue:
    return render(from_service(error))


def _is_scim_path() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


# App-level handlers, registered by create_app(): blueprint handlers never see routing errors,
# so unknown /scim/v2 URLs, wrong methods and crashes get SCIM error bodies here.


def render_http_error(error: HTTPException) -> ResponseReturnValue:
    """An HTTP error under /scim/v2 as a SCIM error; elsewhere left as it is."""
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


def render_crash(error: Exception) -> ResponseReturnValue:
    """An unhandled error: logged with its traceback, answered with a request id only."""
    request_id = current_request_id() or "-"
    log.exception("unhandled error", extra={"request_id": request_id})
    if _is_scim_path():
        detail = f"internal error (request id {request_id})"
        return render(ScimError(HTTPStatus.INTERNAL_SERVER_ERROR, detail))
    return {"error": "internal error", "request_id": request_id}, 500
