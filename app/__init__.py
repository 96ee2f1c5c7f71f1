"""Blue identity provisioning service: the application factory."""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from app.config import Settings
from app.errors import UnavailableError


def create_app(settings: Settings | None = None) -> Flask:
    """Build the WSGI application; reads the environment only when no settings are given."""
    import scim
    import sso
    from app import admin, cli, console, health, logs
    from app.console.sso_setup import EXTENSION as CONSOLE_SSO_SETUP
    from app.db import make_engine, make_sessions

    settings = settings if settings is not None else Settings.from_env()
    settings.validate()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False)
    app.extensions["settings"] = settings
    engine = make_engine(
        settings.database_url,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        lock_timeout_ms=settings.db_lock_timeout_ms,
    )
    app.extensions["engine"] = engine
    app.extensions["sessions"] = make_sessions(engine)

    logs.init_app(app, settings.log_level)
    app.register_blueprint(health.bp)
    app.register_blueprint(scim.bp)
    app.register_blueprint(sso.bp)
    app.register_blueprint(sso.saml_bp)
    app.register_blueprint(sso.oidc_bp)
    app.register_blueprint(sso.jwks_bp)
    app.register_blueprint(sso.api_bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin.review_bp)
    app.register_blueprint(admin.webhooks_bp)
    app.register_blueprint(admin.events_bp)
    app.register_blueprint(admin.openapi_bp)
    console.init_app(app)
    # The console's Connections page reaches sso/ only through this (app/ never imports sso/).
    app.extensions[CONSOLE_SSO_SETUP] = sso.ConsoleSetup()
    app.register_blueprint(console.bp)

    register_error_handlers(app)
    app.cli.add_command(sso.connection_cli)
    app.cli.add_command(sso.handoff_cli)
    for group in cli.COMMAND_GROUPS:
        app.cli.add_command(group)
    return app


def on_console_path() -> bool:
    return request.path == "/console" or request.path.startswith("/console/")


def render_http_error(error: HTTPException) -> ResponseReturnValue:
    """Routing errors (an unknown URL, a malformed id) reach no blueprint's handlers: each
    path prefix answers them in its own format."""
    import scim
    from app import console

    if on_console_path():
        return console.render_http_error(error)
    return scim.render_http_error(error)


def render_unavailable(error: UnavailableError) -> ResponseReturnValue:
    """The database cannot serve a console or sign-in page now (SCIM and the APIs answer it
    in their own format from their blueprints): a page that says to retry, 503."""
    import sso
    from app import console

    title = "Try again in a moment"
    if on_console_path():
        response = console.error_page(title, error.detail, 503)
    else:
        response = sso.error_page(title, error.detail, 503)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def register_error_handlers(app: Flask) -> None:
    """The app-wide error handlers; a blueprint's own come first for its views."""
    import scim

    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(UnavailableError, render_unavailable)
    app.register_error_handler(Exception, scim.render_crash)
