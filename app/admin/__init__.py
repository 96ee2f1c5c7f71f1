"""The admin JSON API at /api/v1: projects, custom roles, mapping rules, contract, seats,
the audit trail and the access-review reports."""

from app.admin import review_api as review_api
from app.admin.api import bp

__all__ = ["bp"]
