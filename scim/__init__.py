"""SCIM 2.0 protocol adapter (RFC 7643/7644) mounted at /scim/v2.

create_app() registers `bp` and, app-wide, `render_http_error` for HTTPException (unknown
/scim/v2 URLs and wrong methods answer in SCIM's error body) and `render_crash` for Exception.
"""

from scim.views import bp, render_crash, render_http_error

__all__ = ["bp", "render_crash", "render_http_error"]
