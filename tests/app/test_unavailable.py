"""When the database cannot serve a request now (issue #16 items 1 and 6): a lock or statement
timeout, or a lost connection, answers 503 with Retry-After in the protocol's own format; a
connection lost before anything was written is retried once, unseen by the client."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.db import CONNECT_TIMEOUT_SECONDS
from app.models import Organization
from app.provisioning import OPERATOR, ProvisioningService, RuleSpec
from tests.support import ScimClient, admin_token, make_org

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def acme(app: object) -> tuple[Organization, str, str]:
    """Organization acme with a rule (seats in play: a create locks the seat counter)."""
    with app.app_context(), app.extensions["sessions"]() as session:  # type: ignore[attr-defined]
        organization, secret = make_org(session, "acme")
        ProvisioningService(session, organization, OPERATOR).create_rule(
            RuleSpec("displayName", "Everyone", "team_member")
        )
        session.commit()
        return organization, secret, admin_token(session, organization)


@pytest.mark.postgresql_only
def test_a_lock_wait_past_the_timeout_is_503_with_retry_after(
    separate_database: Settings,
) -> None:
    app = create_app(replace(separate_database, db_lock_timeout_ms=300))
    engine: Engine = app.extensions["engine"]
    organization, secret, admin = acme(app)
    scim = ScimClient(app.test_client(), secret, uuid.uuid4())
    with engine.connect() as holder:
        holder.execute(
            text("SELECT id FROM organizations WHERE id = :id FOR UPDATE"),
            {"id": organization.id},
        )
        response = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "a@acme.example"})
        assert response.status_code == 503, response.json
        assert response.headers["Retry-After"] == "2"
        assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert "lock" in response.json["detail"]
        api = app.test_client().put(
            "/api/v1/contract",
            json={"paid_seats": 5},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert api.status_code == 503 and api.headers["Retry-After"] == "2"
        assert api.json is not None and api.json["error"]["code"] == "unavailable"
        holder.rollback()
    after = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "a@acme.example"})
    assert after.status_code == 201  # nothing was half-applied
    engine.dispose()


@pytest.mark.postgresql_only
def test_a_connection_lost_before_any_write_is_retried_once(separate_database: Settings) -> None:
    app = create_app(separate_database)
    engine: Engine = app.extensions["engine"]
    _, secret, _ = acme(app)
    scim = ScimClient(app.test_client(), secret, uuid.uuid4())
    assert scim.get("/Users").status_code == 200  # the pool now holds live connections

    def kill_the_pools_connections() -> None:
        with engine.connect() as killer:
            killer.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )

    kill_the_pools_connections()
    assert scim.get("/Users").status_code == 200
    kill_the_pools_connections()
    created = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "b@acme.example"})
    assert created.status_code == 201, created.json
    assert scim.get(f"/Users/{created.json['id']}").status_code == 200
    engine.dispose()


@pytest.mark.postgresql_only
def test_a_database_that_refuses_connections_is_503(separate_database: Settings) -> None:
    """A server down or restarting refuses the connection itself (no SQLSTATE to read)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        down = make_url(separate_database.database_url).set(host="127.0.0.1", port=port)
        app = create_app(replace(separate_database, database_url=down.render_as_string(False)))
        scim = ScimClient(app.test_client(), "blue_scim_anything", uuid.uuid4())
        for response in (
            scim.get("/Users"),
            scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "c@acme.example"}),
        ):
            assert response.status_code == 503, response.json
            assert response.headers["Retry-After"] == "1"
            assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    app.extensions["engine"].dispose()


@pytest.mark.postgresql_only
def test_a_database_server_that_never_answers_is_503_after_the_connect_timeout(
    separate_database: Settings,
) -> None:
    """A server that takes the TCP connection and then says nothing (a failover's dead host
    behind a proxy) must not hold the request for the system's TCP timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nobody ever answers
        port = silent.getsockname()[1]
        url = make_url(separate_database.database_url).set(host="127.0.0.1", port=port)
        assert "connect_timeout" not in url.query
        app = create_app(replace(separate_database, database_url=url.render_as_string(False)))
        engine: Engine = app.extensions["engine"]
        asked: dict[str, Any] = {}

        @event.listens_for(engine, "do_connect")
        def _capture(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            asked.update(params)
            raise ConnectionAbortedError  # seen what the driver is asked: no need to wait

        with pytest.raises(ConnectionAbortedError):
            engine.connect()
        # Every connection gives up after CONNECT_TIMEOUT_SECONDS unless the URL says otherwise.
        assert asked["connect_timeout"] == CONNECT_TIMEOUT_SECONDS == 5
        engine.dispose()
        quick = url.update_query_dict({"connect_timeout": "2"}).render_as_string(False)
        app = create_app(replace(separate_database, database_url=quick))
        scim = ScimClient(app.test_client(), "blue_scim_anything", uuid.uuid4())
        started = time.monotonic()
        response = scim.get("/Users")
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 10  # two attempts of 2 s, not minutes
    app.extensions["engine"].dispose()
