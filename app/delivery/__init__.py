"""Webhook delivery: outbox events to each organization's endpoints, per Standard Webhooks.

No Flask: the `worker` command hands it a session factory and the settings.

- `signing`: secrets (`whsec_…`) and the `webhook-*` headers;
- `destinations`: which URLs the worker may reach (https in production; no private, loopback
  or link-local address there unless BLUE_WEBHOOK_ALLOW_HOSTS names it: SSRF);
- `sending`: one HTTP POST to the address that was checked;
- `policy`: what an answer means (delivered, retry after a backoff, dead);
- `queue`: the delivery rows: fan-out from the outbox, claim under a lease, record, release;
- `worker`: the loop that ties them together.
"""

from app.delivery.signing import new_secret, sign_headers
from app.delivery.worker import Tally, Worker

__all__ = ["Tally", "Worker", "new_secret", "sign_headers"]
