"""A fixed-window request limit shared by every worker through the database."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

WINDOW_SECONDS = 60
_HIT = text(
    "INSERT INTO rate_limits (key, window_number, count) VALUES (:key, :window, 1) "
    "ON CONFLICT (key) DO UPDATE SET count = CASE "
    "WHEN rate_limits.window_number = excluded.window_number THEN rate_limits.count + 1 "
    "ELSE 1 END, "
    "window_number = excluded.window_number "
    "RETURNING count"
)


def retry_after(engine: Engine, session: Session, key: str, limit: int) -> int | None:
    """Count one request for `key`; seconds to wait when over `limit` per window, else None."""
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    params = {"key": key[:64], "window": window}
    if engine.dialect.name == "sqlite":
        # SQLite writers are serialized already; counting in the request's transaction is free.
        count = session.execute(_HIT, params).scalar_one()
    else:
        # Its own short autocommit statement: holding this row until the request commits would
        # serialize every request of the token.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            count = connection.execute(_HIT, params).scalar_one()
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
