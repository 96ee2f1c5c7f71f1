"""Blue's event feed on the admin API: GET /api/v1/events?after=<cursor>&limit=N.

For consumers that poll rather than receive webhooks. Readable with an admin token or a token
of the `events` scope, which reaches nothing else. The token is checked in a short transaction
of its own (its last use and the rate limit are writes), then the page is read in a read-only
unit of work: only committed events exist, numbered in commit order (app.outbox).
"""

from __future__ import annotations

from uuid import UUID

from flask import request
from flask.typing import ResponseReturnValue

from app import outbox
from app.admin.api import api_blueprint, authenticate, int_arg, json_response
from app.admin.payloads import PayloadError
from app.db import read_only_unit, unit_of_work
from app.organizations import TokenScope

bp = api_blueprint("events")

READERS = frozenset({TokenScope.ADMIN, TokenScope.EVENTS})


def _organization_id() -> UUID:
    """The bearer token's organization (401/403/429 otherwise); the check is committed."""
    with unit_of_work() as session:
        return authenticate(session, write=False, scopes=READERS).organization.id


@bp.get("/events")
def list_events() -> ResponseReturnValue:
    """The organization's events after the cursor, oldest first."""
    org_id = _organization_id()
    try:
        after = outbox.parse_cursor(request.args.get("after"))
    except ValueError:
        raise PayloadError("query parameter after must be a cursor this feed returned") from None
    limit = int_arg("limit", outbox.DEFAULT_PAGE, 1, outbox.MAX_PAGE)
    with read_only_unit() as session:
        page = outbox.read_feed(session, org_id, after, limit)
    return json_response(
        {"events": page.events, "next_cursor": page.next_cursor, "has_more": page.has_more}
    )
