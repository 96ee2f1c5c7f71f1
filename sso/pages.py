"""Browser pages: the start page and the error page (HTML, escaped by Jinja)."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, render_template


def error_page(title: str, detail: str, status: int = HTTPStatus.FORBIDDEN) -> Response:
    """A refused or failed sign-in, explained to the person in the browser."""
    body = render_template("sso_error.html", title=title, detail=detail)
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response
