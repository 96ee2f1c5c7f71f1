"""Browser pages: the start page and the error page (HTML, escaped by Jinja)."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, g, render_template, request

from app.web import UnstorableTextError, html_security_headers, origin_of, unstorable_field


def error_page(title: str, detail: str, status: int = HTTPStatus.FORBIDDEN) -> Response:
    """A refused or failed sign-in, explained to the person in the browser."""
    body = render_template("sso_error.html", title=title, detail=detail)
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def refuse_unstorable_input() -> Response | None:
    """A query parameter or form field no database can store (NUL, a lone surrogate) is
    explained as a 400 page, before any lookup could fail on it."""
    fields = [*request.args.items(multi=True), *request.form.items(multi=True)]
    name = unstorable_field(fields)
    if name is None:
        return None
    return error_page("Sign-in refused", str(UnstorableTextError(name)), HTTPStatus.BAD_REQUEST)


def allow_form_target(url: str) -> None:
    """This page's form posts to `url` (Blue's hand-off, the IdP's SAML endpoint): its CSP
    must allow that origin as a form target."""
    g.sso_form_targets = [*g.get("sso_form_targets", []), origin_of(url)]


def add_security_headers(response: Response) -> Response:
    """Every sign-in page gets the HTML security headers (app.web); JSON answers keep theirs."""
    if response.mimetype == "text/html":
        for name, value in html_security_headers(g.get("sso_form_targets", [])).items():
            response.headers.setdefault(name, value)
    return response
