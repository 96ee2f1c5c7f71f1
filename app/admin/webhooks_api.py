"""Webhook endpoints, their deliveries and replays on the admin API (/api/v1/webhooks).
A signing secret is in the answer only when it is made (create, rotate-secret)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue

from app import crypto
from app.admin import documents
from app.admin.api import Context, api_blueprint, int_arg, json_body, run
from app.admin.payloads import Payload, PayloadError
from app.delivery import new_secret
from app.web import settings

bp = api_blueprint("webhooks")
DEFAULT_OVERLAP_HOURS = 24
MAX_OVERLAP_HOURS = 24 * 30


def _new_secret() -> tuple[str, str]:
    secret = new_secret()
    return secret, crypto.encrypt(settings().secret_key, secret)


@bp.get("/webhooks")
def list_webhooks() -> ResponseReturnValue:
    return run(lambda c: {"webhooks": [documents.webhook(e) for e in c.service.list_webhooks()]})


@bp.post("/webhooks")
def create_webhook() -> ResponseReturnValue:
    def create(c: Context) -> Any:
        body = Payload(json_body(), "the webhook", ("url", "events"))
        url = body.required_text("url")
        events = body.texts("events")
        secret, encrypted = _new_secret()
        endpoint = c.service.add_webhook(
            url, encrypted, events, production=settings().is_production
        )
        return {"webhook": documents.webhook(endpoint), "secret": secret}

    return run(create, write=True, status=HTTPStatus.CREATED)


@bp.get("/webhooks/<webhook_id>")
def get_webhook(webhook_id: str) -> ResponseReturnValue:
    return run(lambda c: documents.webhook(c.service.get_webhook(webhook_id)))


@bp.patch("/webhooks/<webhook_id>")
def update_webhook(webhook_id: str) -> ResponseReturnValue:
    def update(c: Context) -> Any:
        body = Payload(json_body(), "the webhook change", ("enabled",))
        if not body.has("enabled"):
            raise PayloadError("the webhook change needs enabled (true or false)")
        endpoint = c.service.set_webhook_enabled(webhook_id, body.flag("enabled"))
        return documents.webhook(endpoint)

    return run(update, write=True)


@bp.post("/webhooks/<webhook_id>/rotate-secret")
def rotate_webhook_secret(webhook_id: str) -> ResponseReturnValue:
    def rotate(c: Context) -> Any:
        raw = json_body() if request.get_data(cache=True) else {}
        body = Payload(raw, "the rotation", ("overlap_hours",))
        hours = body.integer("overlap_hours")
        hours = DEFAULT_OVERLAP_HOURS if hours is None else hours
        if not 0 <= hours <= MAX_OVERLAP_HOURS:
            raise PayloadError(f"overlap_hours must be between 0 and {MAX_OVERLAP_HOURS}")
        secret, encrypted = _new_secret()
        endpoint = c.service.rotate_webhook_secret(webhook_id, encrypted, timedelta(hours=hours))
        return {"webhook": documents.webhook(endpoint), "secret": secret}

    return run(rotate, write=True)


@bp.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str) -> ResponseReturnValue:
    return run(
        lambda c: c.service.delete_webhook(webhook_id), write=True, status=HTTPStatus.NO_CONTENT
    )


@bp.get("/webhooks/deliveries")
def list_deliveries() -> ResponseReturnValue:
    failed = request.args.get("failed", "").lower() in ("true", "1", "yes")
    limit = int_arg("limit", 100, 1, 1000)
    return run(
        lambda c: {
            "deliveries": [documents.delivery(v) for v in c.service.list_deliveries(failed, limit)]
        }
    )


@bp.post("/webhooks/replay")
def replay() -> ResponseReturnValue:
    def replay_(c: Context) -> Any:
        body = Payload(json_body(), "the replay", ("event_id", "dead"))
        event_id = body.text("event_id")
        dead = body.flag("dead")
        if (event_id is None) == (not dead):
            raise PayloadError('the replay names an event ("event_id") or asks for "dead": true')
        count = c.service.replay_event(event_id) if event_id else c.service.replay_dead()
        return {"replayed": count}

    return run(replay_, write=True)
