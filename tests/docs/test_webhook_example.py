"""The example receiver Blue is given (docs/examples/verify_webhook.py), fed what the service's
worker sends: the Standard Webhooks envelope and headers of app.delivery."""

from __future__ import annotations

import importlib.util
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from app.delivery.documents import event_body
from app.delivery.signing import new_secret, sign_headers

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "verify_webhook.py"
ORG = uuid.uuid4()
USER = uuid.uuid4()


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_webhook", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def delivery(
    secrets: list[str], seq: int, event_id: uuid.UUID | None = None
) -> tuple[bytes, dict[str, str]]:
    event_id = event_id or uuid.uuid4()
    body = event_body(
        event_id, ORG, seq, "user.deactivated", USER, {"active": False}, datetime.now(UTC)
    )
    return body, sign_headers(str(event_id), int(time.time()), body, secrets)


def test_a_signed_event_is_accepted_once_and_a_stale_one_ignored() -> None:
    secret = new_secret()
    receiver = example().WebhookReceiver(secret)
    body, headers = delivery([secret], seq=7)
    event = receiver.receive(body, headers)
    assert event["type"] == "user.deactivated" and event["data"]["payload"] == {"active": False}
    assert receiver.receive(body, headers) is None  # a redelivery of the same id
    older, older_headers = delivery([secret], seq=6)
    assert receiver.receive(older, older_headers) is None  # older than what was applied
    newer, newer_headers = delivery([secret], seq=8)
    assert receiver.receive(newer, newer_headers) is not None


def test_a_rotation_signs_with_both_secrets_and_a_wrong_one_is_refused() -> None:
    module = example()
    old, new = new_secret(), new_secret()
    body, headers = delivery([new, old], seq=1)
    assert module.WebhookReceiver(old).receive(body, headers) is not None
    assert module.WebhookReceiver(new).receive(body, headers) is not None
    with pytest.raises(module.WebhookRefused):
        module.WebhookReceiver(new_secret()).receive(body, headers)
    tampered = body.replace(b"false", b"true")
    with pytest.raises(module.WebhookRefused):
        module.WebhookReceiver(new).receive(tampered, headers)
