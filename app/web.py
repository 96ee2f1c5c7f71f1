"""Request plumbing every HTTP adapter shares (SCIM, SSO, the admin API): the settings, the
JSON body. Each adapter words the errors in its own protocol."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, g, request

from app.config import Settings


def html_security_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    """The headers of every HTML page we serve: a CSP without inline scripts or styles that
    no other site may frame, and forms that post only to us (and to `form_targets`: the
    origins a hand-off or SAML POST binding page sends its form to)."""
    form_action = " ".join(["'self'", *form_targets])
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"object-src 'none'; base-uri 'none'; form-action {form_action}; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as a CSP source."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


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


class UnstorableTextError(RequestBodyError):
    """A string no database can store: a NUL character or a lone UTF-16 surrogate."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} contains a character that cannot be stored (NUL or a lone surrogate)"
        )
        self.name = name


def is_storable(text: str) -> bool:
    """False for NUL (PostgreSQL text cannot hold it) and lone surrogates (not UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_field(fields: Iterable[tuple[str, str]]) -> str | None:
    """The name of the first form field or query parameter (name or value) no database can
    store; None when all can be."""
    for name, value in fields:
        if not is_storable(name) or not is_storable(value):
            return name if is_storable(name) else "a parameter name"
    return None


def check_json_shape(value: Any) -> None:
    """NotJsonError when `value` nests deeper than MAX_JSON_DEPTH or holds an array longer
    than MAX_JSON_ARRAY; UnstorableTextError naming the attribute whose string no database
    can store. Iterative: a hostile document cannot exhaust the stack here."""
    pending: list[tuple[Any, int, str]] = [(value, 1, "the body")]
    while pending:
        item, depth, name = pending.pop()
        if isinstance(item, str):
            if not is_storable(item):
                raise UnstorableTextError(name)
            continue
        if isinstance(item, dict):
            for key in item:
                if not is_storable(key):
                    raise UnstorableTextError(f"an attribute name in {name}")
            children = [(child, key) for key, child in item.items()]
        elif isinstance(item, list):
            if len(item) > MAX_JSON_ARRAY:
                raise NotJsonError(f"the body has an array of more than {MAX_JSON_ARRAY} items")
            children = [(child, name) for child in item]
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise NotJsonError(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
        pending.extend((child, depth + 1, key) for child, key in children)


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


def count_request_error(response: Response) -> Response:
    """After a request whose bearer token was accepted (`g.token_id`): an error answer is
    counted for the console's connection health (app/request_errors.py)."""
    from app import request_errors

    token_id = g.pop("token_id", None)  # `g` can outlive a request (tests, scripts)
    if token_id is not None and request_errors.counts(response.status_code):
        body = response.get_json(silent=True) if response.is_json else None
        detail = ""
        if isinstance(body, dict):
            inner = body.get("error")
            detail = str((inner if isinstance(inner, dict) else body).get("detail") or "")
        request_errors.record(
            current_app.extensions["sessions"], token_id, response.status_code, detail
        )
    return response
