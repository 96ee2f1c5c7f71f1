"""Receive the provisioning service's webhooks: an example for Blue.

The service POSTs each event to Blue's endpoint following the Standard Webhooks specification
(https://www.standardwebhooks.com): headers `webhook-id` (the event's id), `webhook-timestamp`
(Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` over `id.timestamp.body`, two
of them while a secret is being rotated), signed with the endpoint's `whsec_…` secret.
Blue accepts an event only if:

- the signature verifies with the secret (the `standardwebhooks` package checks the signature
  and that the timestamp is within five minutes, against replays);
- its id was not processed before: delivery is at least once, and the event id is the
  idempotency key (this example remembers ids in memory; with more than one Blue process use a
  shared store, e.g. a table with a unique key on the id);
- it is newer than what Blue already applied for that user: events carry the user's new state,
  not a diff, and a per-organization sequence (`seq`), so a stale redelivery is ignored and a
  consumer that missed events still converges on the latest.

Answer 2xx once the event is applied (or ignored as a duplicate); anything else, or a timeout,
makes the service retry with backoff, holding back that user's later events until then.

Usage (requires standardwebhooks):

    receiver = WebhookReceiver(secret="whsec_…")
    event = receiver.receive(body, headers)   # WebhookRefused: answer 400; None: a duplicate
    if event is not None:
        apply(event)                          # e.g. end the user's sessions, free their seat

Run `python verify_webhook.py SECRET [PORT]` to serve 127.0.0.1:PORT (default 8787), verify what
arrives and print each accepted event.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


class WebhookRefused(Exception):
    """The request is not a genuine, fresh event from the service (answer 400)."""


class WebhookReceiver:
    """Verifies events, drops redeliveries and stale events, remembers each user's newest."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._newest: dict[tuple[str, str], int] = {}

    def receive(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """The event to apply; None for a duplicate or a stale event; WebhookRefused for a
        request that does not verify."""
        wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            event = self._webhook.verify(body, {k: lowered.get(k, "") for k in wanted})
        except WebhookVerificationError as error:
            raise WebhookRefused(str(error)) from None
        if not isinstance(event, dict):
            raise WebhookRefused("the body is not a JSON object")
        event_id = lowered["webhook-id"]
        with self._lock:
            if event_id in self._seen:
                return None
            self._seen.add(event_id)
            return event if self._is_newest(event) else None

    def _is_newest(self, event: Mapping[str, Any]) -> bool:
        data = event.get("data")
        if not isinstance(data, Mapping):
            return True
        org, user, seq = data.get("organization_id"), data.get("user_id"), data.get("seq")
        if not (isinstance(org, str) and isinstance(user, str) and isinstance(seq, int)):
            return True
        key = (org, user)
        if seq <= self._newest.get(key, -1):
            return False
        self._newest[key] = seq
        return True


def serve(secret: str, port: int) -> None:
    """Serve 127.0.0.1:port, printing each accepted event as one line of JSON."""
    receiver = WebhookReceiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = receiver.receive(body, dict(self.headers.items()))
            except WebhookRefused as error:
                self.send_response(HTTPStatus.BAD_REQUEST)
                self.end_headers()
                self.wfile.write(str(error).encode())
                return
            if event is not None:
                print(json.dumps(event), flush=True)
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} SECRET [PORT]")
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 8787)
