"""The body of a webhook: the Standard Webhooks envelope around one outbox event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID


def event_body(
    event_id: UUID,
    org_id: UUID,
    seq: int,
    event_type: str,
    user_id: UUID | None,
    payload: dict[str, Any],
    at: datetime,
) -> bytes:
    """`{"type", "timestamp", "data"}`; `data` carries the event's id (also `webhook-id`), its
    organization, its `seq` (a consumer drops a user's event older than one it applied) and
    the new state (`payload`)."""
    document = {
        "type": event_type,
        "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "id": str(event_id),
            "organization_id": str(org_id),
            "seq": seq,
            "user_id": str(user_id) if user_id is not None else None,
            "payload": payload,
        },
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
