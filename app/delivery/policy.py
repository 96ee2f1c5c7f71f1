"""What an attempt's answer means for the delivery.

- 2xx: delivered.
- Anything else, or no answer (network error, timeout, a refused destination): retried after
  an exponential backoff with jitter, or after the receiver's Retry-After when it gives one,
  until `max_attempts` attempts have been made; then the delivery is dead (dead letter),
  listed by `webhook deliveries --failed` and replayable.

4xx answers other than 429 are retried like the rest rather than dead at once: at Blue they
mean a configuration not yet in place (a route not deployed, a secret rotated on one side
only), which an operator fixes within the retry window, and an offboarding dropped at once
would wait for someone to notice and replay it. The payload is the new state, so a retried
event is harmless.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

# Retry-After beyond this is not believed (a broken header must not park an event for weeks).
MAX_RETRY_AFTER_SECONDS = 86_400


def equal_jitter() -> float:
    """A factor in [0.5, 1): half the delay is kept, the rest is random (no thundering herd)."""
    return 0.5 + random.random() / 2  # noqa: S311  # spreading retries, not a secret


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float
    jitter: Callable[[], float] = field(default=equal_jitter)

    @staticmethod
    def is_delivered(status: int | None) -> bool:
        """True for a 2xx answer."""
        return status is not None and 200 <= status < 300

    def next_delay(self, attempts: int, retry_after: float | None) -> timedelta | None:
        """The wait before the next attempt after `attempts` failed ones; None: dead."""
        if attempts >= self.max_attempts:
            return None
        if retry_after is not None:
            return timedelta(seconds=min(retry_after, MAX_RETRY_AFTER_SECONDS))
        backoff = min(self.max_seconds, self.base_seconds * 2 ** (attempts - 1))
        return timedelta(seconds=backoff * self.jitter())
