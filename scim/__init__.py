"""SCIM 2.0 protocol adapter (RFC 7643/7644) mounted at /scim/v2."""

from scim.views import bp, init_app

__all__ = ["bp", "init_app"]
