"""A token's refused and failed requests, counted per hour for the console's connection
health. Bookkeeping beside the request, like the rate limit: written in its own short
transaction after the request's own has ended (rolled back, usually), never through the
provisioning door, since it records how a request went rather than a change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.models import RequestErrors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenErrors:
    """A token's errors in a window: how many, and the last one."""

    count: int
    last_status: int
    last_detail: str
    last_at: datetime


def counts(status: int) -> bool:
    """Which answers are errors of the caller's or ours: 400 and over, but 404 (an IdP asks
    for users that are gone as a matter of course)."""
    return status >= 400 and status != 404


def record(sessions: sessionmaker[Session], token_id: UUID, status: int, detail: str) -> None:
    """Count one error of the token in the current hour, with its status and detail, in a
    short transaction of its own."""
    now = utcnow()
    try:
        with sessions.begin() as session:
            _count(session, token_id, status, detail, now)
    except SQLAlchemyError:
        # The answer matters more than its count: a database that failed the request (a 503)
        # may fail this too.
        log.warning("request error not counted", exc_info=True)


def _count(session: Session, token_id: UUID, status: int, detail: str, now: datetime) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "token_id": token_id,
        "hour": int(now.timestamp() // 3600),
        "count": 1,
        "last_status": status,
        "last_detail": detail[:300],
        "last_at": now,
    }
    statement = dialect.insert(RequestErrors).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["token_id", "hour"],
        set_={
            "count": RequestErrors.count + 1,
            "last_status": statement.excluded.last_status,
            "last_detail": statement.excluded.last_detail,
            "last_at": statement.excluded.last_at,
        },
    )
    session.execute(statement)


def since(session: Session, token_ids: list[UUID], start: datetime) -> dict[UUID, TokenErrors]:
    """Per token, its errors in the hours since `start`: the count, and the last one."""
    if not token_ids:
        return {}
    first_hour = int(start.timestamp() // 3600)
    rows = session.scalars(
        select(RequestErrors)
        .where(RequestErrors.token_id.in_(token_ids), RequestErrors.hour >= first_hour)
        .order_by(RequestErrors.token_id, RequestErrors.last_at)
    )
    totals: dict[UUID, int] = {}
    last: dict[UUID, RequestErrors] = {}
    for row in rows:  # at most 25 hours a token
        totals[row.token_id] = totals.get(row.token_id, 0) + row.count
        last[row.token_id] = row
    return {
        token_id: TokenErrors(totals[token_id], row.last_status, row.last_detail, row.last_at)
        for token_id, row in last.items()
    }


__all__ = ["TokenErrors", "counts", "record", "since"]
