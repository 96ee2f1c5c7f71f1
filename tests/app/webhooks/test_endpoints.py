"""Webhook endpoints through the CLI and the admin API: secrets shown once, alone on the last
line; the URL rules (https, http only to loopback outside production); audited changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from app import crypto
from app.actions import Action
from app.delivery import Worker
from app.errors import InvalidChangeError
from app.models import AuditEvent, Organization, WebhookEndpoint
from app.provisioning import SYSTEM, ProvisioningService
from tests.app.webhooks.support import SECRET_KEY, Receiver, add_event
from tests.support import admin_token


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_cli_adds_an_endpoint_and_prints_its_secret_alone_on_the_last_line(
    runner: FlaskCliRunner,
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
) -> None:
    org, _ = organization
    result = runner.invoke(
        args=["webhook", "add", "--org", "acme", "--url", receiver.url, "--events", "user.*"]
    )
    assert result.exit_code == 0, result.output
    secret = last_line(result.output)
    assert secret.startswith("whsec_")
    [endpoint] = session.scalars(select(WebhookEndpoint)).all()
    assert crypto.decrypt(SECRET_KEY, endpoint.encrypted_secret) == secret
    assert secret not in endpoint.encrypted_secret
    assert endpoint.event_types == ["user.*"]
    assert Action.WEBHOOK_CREATED in actions(session)

    add_event(session, org.id, "user.deactivated")
    worker.run_once()
    [request] = receiver.accepted
    Webhook(secret).verify(request.body, request.headers)

    listed = json.loads(runner.invoke(args=["webhook", "list", "--org", "acme", "--json"]).output)
    assert [(e["id"], e["url"], e["enabled"]) for e in listed] == [
        (str(endpoint.id), receiver.url, True)
    ]
    assert "whsec_" not in runner.invoke(args=["webhook", "list", "--org", "acme"]).output


def test_cli_disables_rotates_and_deletes_an_endpoint(
    runner: FlaskCliRunner, session: Session, organization: tuple[Organization, str]
) -> None:
    added = runner.invoke(args=["webhook", "add", "--org", "acme", "--url", "http://localhost/h"])
    old = last_line(added.output)
    [endpoint] = session.scalars(select(WebhookEndpoint)).all()
    webhook_id = str(endpoint.id)

    assert runner.invoke(args=["webhook", "disable", "--org", "acme", webhook_id]).exit_code == 0
    session.refresh(endpoint)
    assert not endpoint.is_enabled
    assert runner.invoke(args=["webhook", "enable", "--org", "acme", webhook_id]).exit_code == 0
    session.refresh(endpoint)
    assert endpoint.is_enabled

    rotated = runner.invoke(args=["webhook", "rotate-secret", "--org", "acme", webhook_id])
    assert rotated.exit_code == 0, rotated.output
    new = last_line(rotated.output)
    assert new.startswith("whsec_") and new != old
    session.refresh(endpoint)
    assert crypto.decrypt(SECRET_KEY, endpoint.encrypted_secret) == new
    assert endpoint.encrypted_previous_secret is not None
    assert crypto.decrypt(SECRET_KEY, endpoint.encrypted_previous_secret) == old

    assert runner.invoke(args=["webhook", "delete", "--org", "acme", webhook_id]).exit_code == 0
    assert session.scalars(select(WebhookEndpoint)).all() == []
    assert actions(session)[-4:] == [
        Action.WEBHOOK_UPDATED,
        Action.WEBHOOK_UPDATED,
        Action.WEBHOOK_SECRET_ROTATED,
        Action.WEBHOOK_DELETED,
    ]
    missing = runner.invoke(args=["webhook", "delete", "--org", "acme", webhook_id])
    assert missing.exit_code == 1
    assert "not found" in missing.output


def test_cli_lists_failed_deliveries_and_replays_them(
    runner: FlaskCliRunner,
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    worker: Worker,
) -> None:
    org, _ = organization
    runner.invoke(args=["webhook", "add", "--org", "acme", "--url", receiver.url])
    event = add_event(session, org.id)
    receiver.rule = lambda _r: (500, {})
    worker.run_once()

    failed = runner.invoke(args=["webhook", "deliveries", "--org", "acme", "--failed", "--json"])
    [row] = json.loads(failed.output)
    assert (row["event_id"], row["state"], row["last_status"]) == (str(event.id), "pending", 500)

    receiver.rule = lambda _r: (200, {})
    replayed = runner.invoke(args=["webhook", "replay", "--org", "acme", "--event", str(event.id)])
    assert replayed.output.strip() == "queued 1 deliveries again"
    assert "delivered 1" in runner.invoke(args=["worker", "--once"]).output
    assert runner.invoke(args=["webhook", "deliveries", "--org", "acme", "--failed"]).output == ""
    usage = runner.invoke(args=["webhook", "replay", "--org", "acme"])
    assert usage.exit_code == 2


@pytest.mark.parametrize(
    ("url", "production"),
    [
        ("http://blue.example.com/hooks", False),
        ("http://127.0.0.1:9000/hooks", True),
        ("ftp://blue.example.com/hooks", False),
        ("https://user:pw@blue.example.com/hooks", False),
        ("not a url", False),
    ],
)
def test_endpoint_urls_are_https_or_loopback_http_in_development(
    session: Session, organization: tuple[Organization, str], url: str, production: bool
) -> None:
    service = ProvisioningService(session, organization[0].id, SYSTEM)
    with pytest.raises(InvalidChangeError):
        service.add_webhook(url, "encrypted", production=production)


def test_event_type_filters_are_checked(
    session: Session, organization: tuple[Organization, str]
) -> None:
    service = ProvisioningService(session, organization[0].id, SYSTEM)
    with pytest.raises(InvalidChangeError):
        service.add_webhook("https://blue.example.com/h", "x", ["User Deleted"], production=True)


def api(client: FlaskClient, token: str, method: str, path: str, body: Any = None) -> Any:
    response = client.open(
        "/api/v1" + path,
        method=method,
        headers={"Authorization": f"Bearer {token}"},
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
    )
    return response


def test_admin_api_manages_endpoints(
    client: FlaskClient, session: Session, organization: tuple[Organization, str]
) -> None:
    token = admin_token(session, organization[0])
    created = api(client, token, "POST", "/webhooks", {"url": "https://blue.example.com/h"})
    assert created.status_code == 201, created.json
    webhook_id = created.json["webhook"]["id"]
    assert created.json["secret"].startswith("whsec_")
    assert created.json["webhook"]["events"] is None

    listed = api(client, token, "GET", "/webhooks").json["webhooks"]
    assert [w["id"] for w in listed] == [webhook_id]
    assert "secret" not in listed[0]

    patched = api(client, token, "PATCH", f"/webhooks/{webhook_id}", {"enabled": False})
    assert patched.json["enabled"] is False
    rotated = api(client, token, "POST", f"/webhooks/{webhook_id}/rotate-secret", {})
    assert rotated.status_code == 200
    assert rotated.json["secret"] != created.json["secret"]
    assert rotated.json["webhook"]["rotating_until"] is not None

    assert api(client, token, "GET", "/webhooks/deliveries?failed=true").json == {"deliveries": []}
    refused = api(client, token, "POST", "/webhooks/replay", {"event_id": webhook_id})
    assert refused.status_code == 404
    assert refused.json["error"]["code"] == "not_found"
    assert api(client, token, "POST", "/webhooks/replay", {"dead": True}).json == {"replayed": 0}

    bad = api(client, token, "POST", "/webhooks", {"url": "http://blue.example.com/h"})
    assert bad.status_code == 400
    assert bad.json["error"]["code"] == "invalid_change"
    unknown = api(client, token, "POST", "/webhooks", {"url": "https://b.example/", "x": 1})
    assert unknown.status_code == 400

    assert api(client, token, "DELETE", f"/webhooks/{webhook_id}").status_code == 204
    assert api(client, token, "GET", f"/webhooks/{webhook_id}").status_code == 404
    assert client.get("/api/v1/webhooks").status_code == 401
