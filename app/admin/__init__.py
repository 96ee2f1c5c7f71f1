"""The admin JSON API at /api/v1: projects, custom roles, mapping rules, contract, seats."""

from app.admin.api import bp

__all__ = ["bp"]
