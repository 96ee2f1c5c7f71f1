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
    """The body is not valid JSON, or JSON nested or repeated past what any client sends."""


# No SCIM or admin document nests deeper, and none carries longer arrays (a body is at most
# 1 MiB anyway): beyond these a body is an attack on the parser or on what reads it after.
MAX_JSON_DEPTH = 32
MAX_JSON_ARRAY = 20_000


def check_json_shape(value: Any) -> None:
    """NotJsonError when `value` nests deeper than MAX_JSON_DEPTH or holds an array longer
    than MAX_JSON_ARRAY. Iterative: a hostile document cannot exhaust the stack here."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            if len(item) > MAX_JSON_ARRAY:
                raise NotJsonError(f"the body has an array of more than {MAX_JSON_ARRAY} items")
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise NotJsonError(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children)


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
        value = json.loads(raw)
    except RecursionError:
        raise NotJsonError(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise NotJsonError("the body is not valid JSON") from None
    check_json_shape(value)
    return value
