"""The keys that verify hand-off tokens, published at `/.well-known/jwks.json` (RFC 7517)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from app import handoff
from app.db import unit_of_work
from app.web import settings

bp = Blueprint("jwks", __name__)


@bp.get("/.well-known/jwks.json")
def get_jwks() -> ResponseReturnValue:
    """The keys that verify hand-off tokens (RFC 7517)."""
    with unit_of_work() as session:
        handoff.current_key(session, settings().secret_key)
        keys = handoff.jwks(session)
    response = jsonify(keys)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
