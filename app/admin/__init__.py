"""The admin JSON API at /api/v1: projects, custom roles, mapping rules, contract, seats
(`api.py`), the audit trail and the access-review reports (`review_api.py`), webhook
endpoints and deliveries (`webhooks_api.py`), and Blue's event feed (`events_api.py`)."""

from app.admin.api import bp
from app.admin.events_api import bp as events_bp
from app.admin.review_api import bp as review_bp
from app.admin.webhooks_api import bp as webhooks_bp

__all__ = ["bp", "events_bp", "review_bp", "webhooks_bp"]
