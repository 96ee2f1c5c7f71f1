"""Admin JSON API routes: authenticate, parse, make one service call, render."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RequestRedirect

from app import organizations, reporting
from app.admin import changes, documents, payloads, queries
from app.admin.payloads import PayloadError, TooManyChangesError
from app.db import once_more_if_lost, unit_of_work, utcnow
from app.errors import (
    ConflictError,
    InvalidChangeError,
    NotFoundError,
    PreconditionFailedError,
    ProvisioningError,
    UnavailableError,
)
from app.logs import current_request_id
from app.models import HeldChange, Organization
from app.provisioning import Actor, ProvisioningService
from app.web import (
    BodyTooLargeError,
    NotJsonError,
    UnstorableTextError,
    count_request_error,
    request_json,
    settings,
    unstorable_field,
)

PREFIX = "/api/v1"
log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_048_576
JSON_CONTENT_TYPE = "application/json"


class ApiError(Exception):
    """An error answered as {"error": {"status", "code", "detail"}}."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


FROM_SERVICE: dict[type[ProvisioningError], tuple[HTTPStatus, str]] = {
    TooManyChangesError: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_many_changes"),
    PayloadError: (HTTPStatus.BAD_REQUEST, "invalid_request"),
    NotFoundError: (HTTPStatus.NOT_FOUND, "not_found"),
    ConflictError: (HTTPStatus.CONFLICT, "conflict"),
    InvalidChangeError: (HTTPStatus.BAD_REQUEST, "invalid_change"),
    PreconditionFailedError: (HTTPStatus.PRECONDITION_FAILED, "precondition_failed"),
    UnavailableError: (HTTPStatus.SERVICE_UNAVAILABLE, "unavailable"),
}


def from_service(error: ProvisioningError) -> ApiError:
    """Translate a service refusal into its API error."""
    for kind in type(error).__mro__:
        if kind in FROM_SERVICE:
            status, code = FROM_SERVICE[kind]
            headers = {}
            if isinstance(error, UnavailableError):
                headers["Retry-After"] = str(error.retry_after)
            return ApiError(status, code, error.detail, headers)
    return ApiError(HTTPStatus.BAD_REQUEST, "invalid_change", error.detail)


def json_response(
    body: Any, status: int = HTTPStatus.OK, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(
        json.dumps(body, default=str) if body is not None else None,
        status=status,
        content_type=JSON_CONTENT_TYPE if body is not None else None,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render(error: ApiError) -> Response:
    body = {"error": {"status": int(error.status), "code": error.code, "detail": error.detail}}
    return json_response(body, error.status, error.headers)


# ------------------------------------------------------- request plumbing


@dataclass(frozen=True, slots=True)
class Context:
    """The authenticated organization and a service acting for the token."""

    session: Session
    organization: Organization
    service: ProvisioningService


# How the admin API words each refusal of a bearer token.
REFUSALS: dict[organizations.TokenRefusal, tuple[HTTPStatus, str, str, str | None]] = {
    organizations.TokenRefusal.MISSING: (
        HTTPStatus.UNAUTHORIZED,
        "unauthorized",
        "a bearer token is required",
        'Bearer realm="api"',
    ),
    organizations.TokenRefusal.INVALID: (
        HTTPStatus.UNAUTHORIZED,
        "unauthorized",
        "the bearer token is invalid or revoked",
        'Bearer realm="api", error="invalid_token"',
    ),
    organizations.TokenRefusal.WRONG_SCOPE: (
        HTTPStatus.FORBIDDEN,
        "forbidden",
        "this token's scope does not reach this route; the admin API needs an admin token "
        "(blue-provisioning token create --scope admin)",
        None,
    ),
    organizations.TokenRefusal.READ_ONLY: (
        HTTPStatus.FORBIDDEN,
        "forbidden",
        "this token is read-only",
        None,
    ),
}


def authenticate(
    session: Session,
    write: bool,
    scopes: frozenset[organizations.TokenScope] = frozenset({organizations.TokenScope.ADMIN}),
) -> Context:
    """The bearer token's organization, or 401; a token of another scope (an admin token
    unless `scopes` says otherwise), or a read-only one asking for a change, 403."""
    limit = settings().scim_rate_limit
    try:
        token = organizations.authorize_bearer(
            session,
            current_app.extensions["engine"],
            request.headers.get("Authorization", ""),
            scopes,
            limit,
            write=write,
        )
    except organizations.TokenRefusedError as refused:
        if refused.refusal is organizations.TokenRefusal.RATE_LIMITED:
            raise ApiError(
                HTTPStatus.TOO_MANY_REQUESTS,
                "rate_limited",
                f"more than {limit} requests a minute with this token",
                {"Retry-After": str(refused.retry_after)},
            ) from None
        status, code, detail, challenge = REFUSALS[refused.refusal]
        headers = {"WWW-Authenticate": challenge} if challenge else None
        raise ApiError(status, code, detail, headers) from None
    actor = Actor(
        kind="api",
        label=token.label,
        request_id=current_request_id(),
        source_ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )
    organization = token.organization
    g.token_id = token.id  # its errors count in the console's connection health
    return Context(session, organization, ProvisioningService(session, organization, actor))


@dataclass(frozen=True, slots=True)
class Accepted:
    """A change the mass-grant guard held, answered 202 Accepted with {"held": …}: it is
    recorded, and comes into force only when an admin confirms it."""

    held: dict[str, Any]


def held_or(result: Any, render: Callable[[Any], Any]) -> Any:
    """The held change as an `Accepted` answer, or the change's own document."""
    if isinstance(result, HeldChange):
        return Accepted(documents.held_change(result, with_users=True))
    return render(result)


def run(
    operation: Callable[[Context], Any],
    write: bool = False,
    status: HTTPStatus = HTTPStatus.OK,
) -> Response:
    """One request, one transaction: authenticate, run the operation, render its result
    (202 Accepted for a change the guard held)."""

    def attempt() -> Any:
        with unit_of_work() as session:
            return operation(authenticate(session, write))

    body = once_more_if_lost(attempt)
    if isinstance(body, Accepted):
        return json_response({"held": body.held}, HTTPStatus.ACCEPTED)
    return json_response(body, status)


def json_body() -> Any:
    """The request body as JSON; 400 when it is not JSON, 413 when it is too large."""
    try:
        return request_json(MAX_BODY_BYTES)
    except BodyTooLargeError as error:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", str(error)) from None
    except NotJsonError as error:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_json", str(error)) from None
    except UnstorableTextError as error:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", str(error)) from None


def refuse_unstorable_parameters() -> None:
    """A query parameter no database can store (NUL, a lone surrogate) is 400, not a 500."""
    name = unstorable_field(request.args.items(multi=True))
    if name is not None:
        detail = str(UnstorableTextError(name))
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", detail)


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PayloadError(f"query parameter {name} must be an integer") from None
    if not minimum <= value <= maximum:
        raise PayloadError(f"query parameter {name} must be between {minimum} and {maximum}")
    return value


def date_arg(name: str) -> date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise PayloadError(f"query parameter {name} must be a date (YYYY-MM-DD)") from None


def render_api_error(error: ApiError) -> ResponseReturnValue:
    return render(error)


def render_service_error(error: ProvisioningError) -> ResponseReturnValue:
    return render(from_service(error))


def render_http_error(error: HTTPException) -> ResponseReturnValue:
    status = HTTPStatus(error.code or HTTPStatus.INTERNAL_SERVER_ERROR)
    code = status.phrase.lower().replace(" ", "_")
    return render(ApiError(status, code, error.description or status.phrase))


def render_crash(error: Exception) -> ResponseReturnValue:
    request_id = current_request_id() or "-"
    log.exception("unhandled error", extra={"request_id": request_id})
    detail = f"internal error (request id {request_id})"
    return render(ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", detail))


def api_blueprint(name: str) -> Blueprint:
    """A blueprint of routes under /api/v1, answering errors with the API's JSON bodies."""
    blueprint = Blueprint(name, __name__, url_prefix=PREFIX)
    blueprint.before_request(refuse_unstorable_parameters)
    blueprint.after_request(count_request_error)
    blueprint.register_error_handler(ApiError, render_api_error)
    blueprint.register_error_handler(ProvisioningError, render_service_error)
    blueprint.register_error_handler(HTTPException, render_http_error)
    blueprint.register_error_handler(Exception, render_crash)
    return blueprint


bp = api_blueprint("admin")


# --------------------------------------------------------------- projects


@bp.get("/projects")
def list_projects() -> ResponseReturnValue:
    return run(
        lambda c: {
            "projects": [
                documents.project(p) for p in queries.list_projects(c.session, c.organization)
            ]
        }
    )


@bp.post("/projects")
def create_project() -> ResponseReturnValue:
    def create(c: Context) -> Any:
        key, name = payloads.project_input(json_body())
        return documents.project(c.service.create_project(key, name))

    return run(create, write=True, status=HTTPStatus.CREATED)


@bp.patch("/projects/<key>")
def rename_project(key: str) -> ResponseReturnValue:
    return run(
        lambda c: documents.project(
            c.service.rename_project(key, payloads.project_name(json_body()))
        ),
        write=True,
    )


@bp.delete("/projects/<key>")
def delete_project(key: str) -> ResponseReturnValue:
    return run(lambda c: c.service.delete_project(key), write=True, status=HTTPStatus.NO_CONTENT)


# ----------------------------------------------------------------- roles


@bp.get("/roles")
def list_roles() -> ResponseReturnValue:
    return run(lambda c: {"roles": documents.catalogue(c.service.catalogue())})


@bp.get("/custom-roles")
def list_custom_roles() -> ResponseReturnValue:
    return run(
        lambda c: {
            "custom_roles": [
                documents.custom_role(r)
                for r in queries.list_custom_roles(c.session, c.organization)
            ]
        }
    )


@bp.post("/custom-roles")
def create_custom_role() -> ResponseReturnValue:
    def create(c: Context) -> Any:
        role = payloads.custom_role_input(json_body())
        row = c.service.create_custom_role(
            role.slug, role.name, role.rank, role.description, role.permissions
        )
        return documents.custom_role(row)

    return run(create, write=True, status=HTTPStatus.CREATED)


@bp.patch("/custom-roles/<key>")
def update_custom_role(key: str) -> ResponseReturnValue:
    def update(c: Context) -> Any:
        edit = payloads.custom_role_edit(key, json_body())
        row = c.service.update_custom_role(
            changes.custom_role_key(key),
            name=edit.name,
            rank=edit.rank,
            description=edit.description,
            permissions=edit.permissions,
        )
        return documents.custom_role(row)

    return run(update, write=True)


@bp.delete("/custom-roles/<key>")
def delete_custom_role(key: str) -> ResponseReturnValue:
    return run(
        lambda c: c.service.delete_custom_role(changes.custom_role_key(key)),
        write=True,
        status=HTTPStatus.NO_CONTENT,
    )


# ---------------------------------------------------------- mapping rules


@bp.get("/rules")
def list_rules() -> ResponseReturnValue:
    def listing(c: Context) -> Any:
        roles = c.service.catalogue()
        return {
            "rules": [
                documents.rule(r, roles) for r in queries.list_rules(c.session, c.organization)
            ]
        }

    return run(listing)


@bp.post("/rules")
def create_rule() -> ResponseReturnValue:
    def create(c: Context) -> Any:
        result = changes.create_rule(c.service, payloads.rule_input(json_body()))
        return held_or(result, lambda row: documents.rule(row, c.service.catalogue()))

    return run(create, write=True, status=HTTPStatus.CREATED)


@bp.get("/rules/<rule_id>")
def get_rule(rule_id: str) -> ResponseReturnValue:
    return run(
        lambda c: documents.rule(
            queries.get_rule(c.session, c.organization, rule_id), c.service.catalogue()
        )
    )


@bp.patch("/rules/<rule_id>")
def patch_rule(rule_id: str) -> ResponseReturnValue:
    def edit(c: Context) -> Any:
        result = changes.edit_rule(c.service, rule_id, payloads.rule_edit(json_body()))
        return held_or(result, lambda row: documents.rule(row, c.service.catalogue()))

    return run(edit, write=True)


@bp.put("/rules/<rule_id>")
def replace_rule(rule_id: str) -> ResponseReturnValue:
    def replace(c: Context) -> Any:
        rule = payloads.rule_input(json_body())
        result = c.service.update_rule(rule_id, rule.spec(c.service))
        return held_or(result, lambda row: documents.rule(row, c.service.catalogue()))

    return run(replace, write=True)


@bp.delete("/rules/<rule_id>")
def delete_rule(rule_id: str) -> ResponseReturnValue:
    return run(lambda c: c.service.delete_rule(rule_id), write=True, status=HTTPStatus.NO_CONTENT)


# ------------------------------------------------- organization settings


@bp.get("/settings/default-role")
def get_default_role() -> ResponseReturnValue:
    return run(lambda c: documents.default_role(c.organization, c.service.catalogue()))


@bp.put("/settings/default-role")
def set_default_role() -> ResponseReturnValue:
    def update(c: Context) -> Any:
        _, held = changes.set_default_role(c.service, payloads.default_role(json_body()))
        return held_or(
            held, lambda _: documents.default_role(c.organization, c.service.catalogue())
        )

    return run(update, write=True)


@bp.get("/settings/guard")
def get_guard() -> ResponseReturnValue:
    return run(lambda c: documents.guard(c.organization))


@bp.put("/settings/guard")
def set_guard() -> ResponseReturnValue:
    return run(
        lambda c: documents.guard(
            changes.set_guard_thresholds(c.service, payloads.guard_input(json_body()))
        ),
        write=True,
    )


@bp.get("/contract")
def get_contract() -> ResponseReturnValue:
    return run(lambda c: documents.contract(c.organization))


@bp.route("/contract", methods=["PUT", "PATCH"])
def set_contract() -> ResponseReturnValue:
    return run(
        lambda c: documents.contract(
            changes.set_contract(c.service, payloads.contract_input(json_body()))
        ),
        write=True,
    )


# --------------------------------------------------------------- dry run


@bp.post("/dry-run")
def dry_run() -> ResponseReturnValue:
    # Allowed for read-only tokens: the change is tried in a savepoint and rolled back.
    def attempt(c: Context) -> Any:
        change = payloads.proposed_change(json_body())
        limit = int_arg("limit", 1000, 0, 100_000)
        outcome = changes.dry_run(c.service, change)
        names = queries.user_names(c.session, c.organization, outcome.user_ids(limit))
        return documents.dry_run(outcome, names, limit)

    return run(attempt)


# ---------------------------------------------------------- held changes


@bp.get("/held-changes")
def list_held_changes() -> ResponseReturnValue:
    def listing(c: Context) -> Any:
        status = request.args.get("status") or None
        if status is not None and status not in queries.HELD_STATUSES:
            raise PayloadError(f"status must be one of: {', '.join(queries.HELD_STATUSES)}")
        limit = int_arg("limit", 100, 1, 1000)
        rows = queries.list_held_changes(c.session, c.organization, status, limit)
        return {"held_changes": [documents.held_change(h) for h in rows]}

    return run(listing)


@bp.get("/held-changes/<held_id>")
def get_held_change(held_id: str) -> ResponseReturnValue:
    return run(
        lambda c: documents.held_change(
            queries.get_held_change(c.session, c.organization, held_id), with_users=True
        )
    )


@bp.post("/held-changes/<held_id>/confirm")
def confirm_held_change(held_id: str) -> ResponseReturnValue:
    return run(lambda c: documents.held_change(c.service.confirm_held(held_id)), write=True)


@bp.post("/held-changes/<held_id>/discard")
def discard_held_change(held_id: str) -> ResponseReturnValue:
    return run(lambda c: documents.held_change(c.service.discard_held(held_id)), write=True)


# ------------------------------------------------------- users and seats


@bp.get("/users/<reference>/access")
def get_user_access(reference: str) -> ResponseReturnValue:
    return run(
        lambda c: reporting.user_access(
            c.session,
            c.organization,
            c.service.catalogue(),
            queries.find_user(c.session, c.organization, reference),
        )
    )


@bp.get("/seats")
def get_seats() -> ResponseReturnValue:
    return run(lambda c: reporting.seat_summary(c.session, c.organization).as_json())


@bp.get("/seats/history")
def get_seat_history() -> ResponseReturnValue:
    def history(c: Context) -> Any:
        today = utcnow().date()
        start, end = payloads.seat_period(date_arg("start"), date_arg("end"), today)
        return reporting.seat_history(c.session, c.organization, start, end)

    return run(history)


@bp.get("/seats/pending")
def get_pending_seats() -> ResponseReturnValue:
    return run(lambda c: {"users": reporting.pending_users(c.session, c.organization)})


# --------------------------------------------------------------- errors


@bp.before_app_request
def answer_routing_errors() -> ResponseReturnValue | None:
    """Unknown /api/v1 URLs and methods get the API's JSON errors too.

    Routing failures never reach blueprint error handlers (no blueprint matched), but app-level
    before-request hooks run before Flask raises them.
    """
    error = request.routing_exception
    if error is None or isinstance(error, RequestRedirect):
        return None
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return None
    if isinstance(error, MethodNotAllowed):
        response = render(
            ApiError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{request.method} is not supported on {request.path}",
            )
        )
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods or []))
        return response
    return render(ApiError(HTTPStatus.NOT_FOUND, "not_found", f"no API endpoint at {request.path}"))
