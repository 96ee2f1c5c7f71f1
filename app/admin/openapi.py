"""The admin API described: the OpenAPI 3.1 document at /api/v1/openapi.json.

The document is a maintained file beside this module (`openapi.json`), served as it is written;
tests/app/test_openapi.py fails when a route under /api/v1 is missing from it, when it names a
route that is gone, or when a response no longer matches its schema.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from flask import Response, request
from flask.typing import ResponseReturnValue

from app.admin.api import JSON_CONTENT_TYPE, api_blueprint

bp = api_blueprint("openapi")

DOCUMENT = "openapi.json"


@cache
def document_bytes() -> bytes:
    """The document's bytes, read once per process (it changes only with a release)."""
    return resources.files("app.admin").joinpath(DOCUMENT).read_bytes()


@bp.get("/openapi.json")
def get_openapi_document() -> ResponseReturnValue:
    """Public: it describes the API and holds no organization's data."""
    response = Response(document_bytes(), content_type=JSON_CONTENT_TYPE)
    response.add_etag()
    return response.make_conditional(request)
