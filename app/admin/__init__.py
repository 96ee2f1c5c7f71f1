"""The admin JSON API at /api/v1: projects, custom roles, mapping rules, contract, seats
(`api.py`), the audit trail and the access-review reports (`review_api.py`), webhook
endpoints and deliveries (`webhooks_api.py`), Blue's event feed (`events_api.py`), and the
OpenAPI document that describes them all (`openapi.py`)."""

from app.admin.api import bp
from app.admin.events_api import bp as events_bp
from app.admin.openapi import bp as openapi_bp
from app.admin.review_api import bp as review_bp
from app.admin.webhooks_api import bp as webhooks_bp

__all__ = ["bp", "events_bp", "openapi_bp", "review_bp", "webhooks_bp"]
