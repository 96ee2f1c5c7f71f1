"""Request plumbing every HTTP adapter shares (SCIM, SSO, the admin API): the settings, the
JSON body. Each adapter words the errors in its own protocol."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from app.config import Settings


def settings() -> Settings:
    """The application's settings, read once by `create_app()`."""
    configured: Settings = current_app.extensions["settings"]
    return configured


class RequestBodyError(Exception):
    """The request body cannot be read as JSON."""


class BodyTooLargeError(RequestBodyError):
    """The body is larger than the adapter's limit (by its header or by what arrived)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class NotJsonError(RequestBodyError):
    """The body is not valid JSON."""


def request_json(limit: int, allow_empty: bool = False) -> Any:
    """The request body parsed as JSON, at most `limit` bytes; an empty body is None when
    `allow_empty`, otherwise not JSON. The length header is checked before anything is read."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLargeError(limit)
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise BodyTooLargeError(limit)
    if not raw and allow_empty:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise NotJsonError("the body is not valid JSON") from None
