"""The admin JSON API at /api/v1: projects, custom roles, mapping rules, contract, seats
(`api.py`), and the audit trail and the access-review reports (`review_api.py`)."""

from app.admin.api import bp
from app.admin.review_api import bp as review_bp

__all__ = ["bp", "review_bp"]
