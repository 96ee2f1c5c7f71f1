"""Test helpers: a SCIM client that carries a token, organization setup, error assertions, and
waiting for a PostgreSQL lock wait."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from flask.testing import FlaskClient
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session
from werkzeug.datastructures import Headers
from werkzeug.test import TestResponse

from app import organizations, provisioning
from app.models import Organization
from scim.discovery import ERROR_SCHEMA, GROUP_SCHEMA, USER_SCHEMA


class ScimResponse(Protocol):
    """A test response whose JSON body is typed loosely, as tests read it."""

    status_code: int
    headers: Headers
    content_type: str | None

    @property
    def json(self) -> Any: ...

    def get_data(self, as_text: bool = False) -> Any: ...


@dataclass
class ScimClient:
    """A test client that carries an organization's SCIM bearer token."""

    client: FlaskClient
    token: str
    org_id: uuid.UUID
    prefix: str = "/scim/v2"

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> ScimResponse:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs.setdefault("content_type", "application/scim+json")
        url = path if path.startswith("/scim/") else self.prefix + path
        response = self.client.open(url, method=method, headers=headers, **kwargs)
        return cast(ScimResponse, response)

    def get(self, path: str, **kwargs: Any) -> ScimResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> ScimResponse:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> ScimResponse:
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> ScimResponse:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ScimResponse:
        return self.request("DELETE", path, **kwargs)

    def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.json
        created: dict[str, Any] = response.json
        return created

    def create_group(
        self, display_name: str, members: Sequence[str] = (), **attributes: Any
    ) -> dict[str, Any]:
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": display_name,
            "members": [{"value": m} for m in members],
            **attributes,
        }
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.json
        created: dict[str, Any] = response.json
        return created


def admin_token(session: Session, organization: Organization) -> str:
    """A token for the /api/v1 admin API of the organization, committed."""
    secret = provisioning.create_token(
        session, organization, "admin", scope=organizations.TokenScope.ADMIN
    ).secret
    session.commit()
    return secret


def make_org(session: Session, slug: str, paid_seats: int = 100) -> tuple[Organization, str]:
    """An organization and a SCIM token secret, committed to the test's savepoint."""
    organization = provisioning.create_organization(session, slug.title(), slug, paid_seats)
    secret = provisioning.create_token(session, organization, "okta").secret
    session.commit()
    return organization, secret


def assert_scim_error(
    response: ScimResponse | TestResponse, status: int, scim_type: str | None = None
) -> dict[str, Any]:
    """The response is a SCIM error (RFC 7644 §3.12) with this status and scimType."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/scim+json"
    body: dict[str, Any] = response.json or {}
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body["scimType"] == scim_type
    return body


# A row lock wait is on the holder's transaction id, a lock with no database: find the waiter's
# database through its backend.
_WAITING_FOR_A_LOCK = text(
    "SELECT 1 FROM pg_locks JOIN pg_stat_activity USING (pid) "
    "WHERE NOT granted AND datname = current_database() LIMIT 1"
)


_WAITING_QUERY = text(
    "SELECT 1 FROM pg_locks JOIN pg_stat_activity USING (pid) "
    "WHERE NOT granted AND datname = current_database() AND query LIKE :query LIMIT 1"
)


def someone_waits_for_a_lock(
    connection: Connection, timeout: float = 10.0, query: str | None = None
) -> bool:
    """True once a transaction in the connection's PostgreSQL database waits for a lock (in
    a statement LIKE `query`, when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query is None:
            found = connection.execute(_WAITING_FOR_A_LOCK).scalar()
        else:
            found = connection.execute(_WAITING_QUERY, {"query": query}).scalar()
        if found:
            return True
        time.sleep(0.02)
    return False
