"""The one SCIM error type and its rendering (RFC 7644 §3.12)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response

from app.errors import (
    ConflictError,
    InvalidChangeError,
    NotFoundError,
    PreconditionFailedError,
    ProvisioningError,
    UnavailableError,
)
from scim.discovery import ERROR_SCHEMA

SCIM_CONTENT_TYPE = "application/scim+json"


class ScimError(Exception):
    """An error answered to the SCIM client in the protocol's own JSON."""

    def __init__(
        self,
        status: HTTPStatus,
        detail: str,
        scim_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(int(self.status))}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


FROM_SERVICE: dict[type[ProvisioningError], tuple[HTTPStatus, str | None]] = {
    NotFoundError: (HTTPStatus.NOT_FOUND, None),
    ConflictError: (HTTPStatus.CONFLICT, "uniqueness"),
    InvalidChangeError: (HTTPStatus.BAD_REQUEST, "invalidValue"),
    PreconditionFailedError: (HTTPStatus.PRECONDITION_FAILED, None),
    UnavailableError: (HTTPStatus.SERVICE_UNAVAILABLE, None),
}


def from_service(error: ProvisioningError) -> ScimError:
    """Translate a service refusal into its SCIM error."""
    for kind in type(error).__mro__:
        if kind in FROM_SERVICE:
            status, scim_type = FROM_SERVICE[kind]
            headers = {}
            if isinstance(error, UnavailableError):  # Okta and Entra ID honour Retry-After
                headers["Retry-After"] = str(error.retry_after)
            return ScimError(status, error.detail, scim_type, headers)
    return ScimError(HTTPStatus.BAD_REQUEST, error.detail)


def scim_response(
    body: Any, status: int = HTTPStatus.OK, headers: Mapping[str, str] | None = None
) -> Response:
    """A response with the SCIM media type."""
    response = Response(
        json.dumps(body, separators=(",", ":"), default=str) if body is not None else None,
        status=status,
        content_type=SCIM_CONTENT_TYPE if body is not None else None,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render(error: ScimError) -> Response:
    """The error as a SCIM response."""
    return scim_response(error.body(), error.status, error.headers)
