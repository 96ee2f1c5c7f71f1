"""SSO adapters: SAML 2.0 and OpenID Connect logins, per organization, with a signed hand-off."""

from flask import Flask

# The protocol modules attach their routes and commands to the shared blueprint and groups.
from sso import api, oidc_views, saml_views  # noqa: F401
from sso import views as _views
from sso.cli import connection_cli, handoff_cli
from sso.views import bp


def init_app(app: Flask) -> None:
    """Publish the JWKS and register the SSO commands."""
    _views.init_app(app)
    app.cli.add_command(connection_cli)
    app.cli.add_command(handoff_cli)


__all__ = ["bp", "init_app"]
