"""SSO adapters: SAML 2.0 and OpenID Connect logins, per organization, with a signed hand-off.

What `create_app()` registers: the blueprints (shared pages, SAML, OIDC, the JWKS and the
connections on the admin API), the command groups (`connection`, `handoff`) and the console
Connections page's side of SSO (`ConsoleSetup`)."""

from sso.api import bp as api_bp
from sso.cli import connection_cli, handoff_cli
from sso.console_setup import ConsoleSetup
from sso.jwks import bp as jwks_bp
from sso.oidc_views import bp as oidc_bp
from sso.pages import error_page
from sso.saml_views import bp as saml_bp
from sso.views import bp

__all__ = [
    "ConsoleSetup",
    "api_bp",
    "bp",
    "connection_cli",
    "error_page",
    "handoff_cli",
    "jwks_bp",
    "oidc_bp",
    "saml_bp",
]
