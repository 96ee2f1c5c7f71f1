"""Blue identity provisioning service: the application factory."""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from app.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the WSGI application; reads the environment only when no settings are given."""
    import scim
    import sso
    from app import admin, cli, console, health, logs
    from app.db import make_engine, make_sessions

    settings = settings if settings is not None else Settings.from_env()
    settings.validate()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False)
    app.extensions["settings"] = settings
    engine = make_engine(settings.database_url)
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
    app.register_blueprint(console.bp)

    # Routing errors (an unknown URL, a malformed id) reach no blueprint's handlers: each
    # path prefix answers them in its own format.
    def render_http_error(error: HTTPException) -> ResponseReturnValue:
        if request.path == "/console" or request.path.startswith("/console/"):
            return console.render_http_error(error)
        return scim.render_http_error(error)

    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, scim.render_crash)
    app.cli.add_command(sso.connection_cli)
    app.cli.add_command(sso.handoff_cli)
    for group in cli.COMMAND_GROUPS:
        app.cli.add_command(group)
    return app
