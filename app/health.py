"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine, text

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}, HTTPStatus.OK


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    engine: Engine = current_app.extensions["engine"]
    try:
        with engine.connect().execution_options(read_only=True) as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any driver error means "not ready", never a 500
        log.warning("readiness check failed: %s", type(error).__name__)
        return {"status": "unavailable", "database": "unreachable"}, HTTPStatus.SERVICE_UNAVAILABLE
    return {"status": "ok", "database": "ok"}, HTTPStatus.OK
