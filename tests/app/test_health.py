from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.config import Environment, Settings


def test_healthz_answers_while_the_process_lives(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_reachable_database(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_readyz_is_503_when_database_is_unreachable() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/nowhere?connect_timeout=2",
        environment=Environment.TEST,
    )
    client = create_app(settings).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable"}
    assert client.get("/healthz").status_code == 200


def test_request_id_is_taken_from_header_and_returned(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert response.headers["X-Request-ID"] == "req-123"


def test_request_id_is_generated_when_missing_or_malformed(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces <script>"})
    assert len(first) == 32
    assert second.headers["X-Request-ID"] != "bad id with spaces <script>"
    assert first != second.headers["X-Request-ID"]


def test_one_json_log_line_per_request_without_secrets(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    from app.logs import JsonFormatter

    caplog.set_level(logging.INFO, logger="blue.access")
    client.get(
        "/healthz?token=blue_scim_secret&x=1",
        headers={"X-Request-ID": "abc", "Authorization": "Bearer blue_scim_secret"},
    )
    records = [r for r in caplog.records if r.name == "blue.access"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    entry = json.loads(line)
    assert entry["status"] == 200
    assert entry["path"] == "/healthz"
    assert entry["request_id"] == "abc"
    assert entry["query"] == "token=***&x=1"
    assert "blue_scim_secret" not in line
