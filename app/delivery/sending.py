"""One HTTP POST to a checked destination, with the standard library's http.client: it
connects to the address `destinations` checked (not the name again), sends the host's name
for TLS and the Host header, follows no redirect, and reads at most a little of the answer."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from app.delivery.destinations import Destination

USER_AGENT = "blue-provisioning-webhooks/1"
# Enough of an error page for the attempt's record.
MAX_ANSWER_BYTES = 4096
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: a status (None when no answer came), Retry-After in seconds, the error."""

    status: int | None
    latency_ms: int
    retry_after: float | None = None
    error: str | None = None


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to one address, speaking to `host` (SNI, certificate, Host)."""

    def __init__(
        self, destination: Destination, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def post(
    destination: Destination,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    now: Callable[[], datetime],
) -> Answer:
    """POST `body`; network errors and timeouts become an Answer without a status."""
    tls = ssl.create_default_context() if destination.scheme == "https" else None
    connection = _PinnedConnection(destination, timeout, tls)
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            destination.target,
            body=body,
            headers={
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **headers,
            },
        )
        response = connection.getresponse()
        text = response.read(MAX_ANSWER_BYTES).decode("utf-8", "replace")
        status = response.status
        retry_after = parse_retry_after(response.getheader("Retry-After"), now())
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, _since(started), error=_describe(error))
    finally:
        connection.close()
    failure = None if 200 <= status < 300 else (text.strip()[:MAX_ERROR_CHARS] or None)
    return Answer(status, _since(started), retry_after, failure)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:MAX_ERROR_CHARS]
