"""The admin console: server-rendered pages for IT admins (org admin) and security reviewers.

One blueprint, `bp`, under /console; each page is a module of this package adding its routes
(imported at the end of this file). Every view is marked `@reader` or `@admin`
(app/console/auth.py); every POST carries a CSRF token; responses carry strict security headers
and a CSP without inline scripts or styles. Views stay thin: one unit of work, one service call
or one query module, render.
"""

from __future__ import annotations

from http import HTTPStatus

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from app.console.auth import admin, console_user, current_user_or_none, load_console_user
from app.logs import current_request_id
from app.web import UnstorableTextError, html_security_headers, unstorable_field

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
csrf = CSRFProtect()

# The navigation: (endpoint, label, admin only). An entry shows once its page exists.
NAV: tuple[tuple[str, str, bool], ...] = (
    ("console.overview", "Overview", False),
    ("console.users", "Users", False),
    ("console.groups", "Groups", False),
    ("console.rules", "Mapping rules", False),
    ("console.contract", "Contract", False),
    ("console.connections", "Connections", True),
    ("console.imports", "Import", True),
    ("console.access_review", "Access review", False),
    ("console.audit", "Audit", False),
    ("console.access", "Console access", False),
)

SECURITY_HEADERS = html_security_headers()


def init_app(app: Flask) -> None:
    """Configure what the console needs of the application: its session cookie and CSRF.
    Called by create_app(), which registers the blueprint."""
    secure = app.extensions["settings"].base_url.startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="blue_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        WTF_CSRF_CHECK_DEFAULT=False,  # only the console's forms: SCIM and the APIs use tokens
        WTF_CSRF_TIME_LIMIT=None,  # bound to the console session, which has its own timeouts
        WTF_CSRF_SSL_STRICT=secure,
    )
    csrf.init_app(app)


@bp.before_request
def before_request() -> ResponseReturnValue | None:
    """Every POST proves it came from our own form; then who is signed in, if anyone."""
    # Flask-WTF keeps the token in `g`, which outlives a request when an app context was
    # already pushed (tests, scripts): each request must take it from its own cookie.
    g.pop("csrf_token", None)
    g.pop("console_user", None)
    if request.method == "POST":
        csrf.protect()
    fields = [*request.args.items(multi=True), *request.form.items(multi=True)]
    name = unstorable_field(fields)
    if name is not None:
        return error_page("Not saved", str(UnstorableTextError(name)), HTTPStatus.BAD_REQUEST)
    return load_console_user()


@bp.after_request
def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not (request.endpoint or "").endswith(".static"):
        response.headers["Cache-Control"] = "no-store"
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


@bp.app_context_processor
def navigation() -> dict[str, object]:
    """What every console page's frame shows: the menu the person may use, and who they are."""
    if not request.path.startswith("/console"):
        return {}
    user = current_user_or_none()
    views = current_app.view_functions
    entries = []
    for endpoint, label, admin_only in NAV:
        if endpoint not in views or user is None or (admin_only and not user.is_admin):
            continue
        url = url_for(endpoint)
        # A page below a menu entry (a user under Users, a report tab) marks that entry.
        current = request.path == url or request.path.startswith(url.rstrip("/") + "/")
        entries.append({"url": url, "label": label, "current": current})
    return {"nav": entries, "me": user}


@bp.errorhandler(CSRFError)
def render_csrf_error(error: CSRFError) -> ResponseReturnValue:
    detail = "The form expired or did not come from this console. Go back, reload and retry."
    return error_page("Form refused", detail, HTTPStatus.BAD_REQUEST)


@bp.errorhandler(HTTPException)
def render_http_error(error: HTTPException) -> ResponseReturnValue:
    status = HTTPStatus(error.code or 500)
    detail = {
        HTTPStatus.FORBIDDEN: "Your console role does not allow this. Ask an org admin.",
        HTTPStatus.NOT_FOUND: "There is nothing here, or it belongs to another organization.",
    }.get(status, error.description or status.phrase)
    return error_page(status.phrase, detail, status)


def error_page(title: str, detail: str, status: int) -> Response:
    """A console error as a page, with the request id to quote to support."""
    body = render_template(
        "console/error.html", title=title, detail=detail, request_id=current_request_id()
    )
    # Headers here too: a routing error (an unknown URL) never reaches the blueprint's hooks.
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index() -> ResponseReturnValue:
    """The first page of the menu, or the sign-in page."""
    user = current_user_or_none()
    if user is None:
        return redirect(url_for("console.sign_in"))
    for endpoint, _label, admin_only in NAV:
        if endpoint in current_app.view_functions and (user.is_admin or not admin_only):
            return redirect(url_for(endpoint))
    return redirect(url_for("console.access"))


__all__ = ["admin", "bp", "console_user", "csrf", "init_app"]

# The pages: each module adds its routes to `bp`.
from app.console import (  # noqa: E402,F401
    access,
    connections,
    contract,
    directory,
    imports,
    overview,
    review,
    rules,
    tokens,
)
