"""Schemathesis against the OpenAPI documents the service serves (/scim/v2/openapi.json and
/api/v1/openapi.json), in-process through the WSGI app, with valid tokens of a seeded
organization: no operation answers 5xx, and every answer's status, content type, headers and
body are what its document says.

The short profile (`make test`) runs each document's examples and a few generated cases per
operation, derandomized; the long one (`make fuzz`) adds schemathesis's coverage phase (each
boundary value and undocumented method) and many random cases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from app import create_app
from app.admin import openapi as admin_openapi
from app.config import Environment, Settings
from scim.views import OPENAPI as SCIM_OPENAPI
from tests.fuzz.profiles import LONG, profile
from tests.support import admin_token, make_org

# The files the two views serve as they are (test_the_served_documents_are_the_files).
scim_api = schemathesis.openapi.from_dict(json.loads(SCIM_OPENAPI.read_bytes()))
admin_api = schemathesis.openapi.from_dict(json.loads(admin_openapi.document_bytes()))
for document in (scim_api, admin_api):
    document.config.phases.update(
        phases=["examples", "coverage", "fuzzing"] if LONG else ["examples", "fuzzing"]
    )

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Served:
    app: Flask
    scim_token: str
    admin_token: str  # with write access, so every admin operation is reached


@pytest.fixture(scope="module")
def served(database_url: str, engine: Engine) -> Iterator[Served]:
    """One app for the module, bound to a connection whose outer transaction is rolled back
    at the end (as tests/conftest.py's `app`, once instead of once per operation: building
    an app costs more than a short profile's requests), with an organization and its tokens."""
    connection = engine.connect()
    outer = connection.begin()
    app = create_app(
        Settings(
            database_url=database_url,
            secret_key="fuzz-secret-key-that-is-long-enough-0123456789",
            base_url="http://localhost",
            environment=Environment.TEST,
            log_level="WARNING",
        )
    )
    app.extensions["engine"].dispose()
    app.extensions["engine"] = engine
    sessions = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    app.extensions["sessions"] = sessions
    with app.app_context(), sessions() as session:
        organization, scim_secret = make_org(session, "fuzz")
        admin_secret = admin_token(session, organization)
    yield Served(app, scim_secret, admin_secret)
    outer.rollback()
    connection.close()


def test_the_served_documents_are_the_files(served: Served) -> None:
    client = served.app.test_client()
    assert client.get("/scim/v2/openapi.json").data == SCIM_OPENAPI.read_bytes()
    assert client.get("/api/v1/openapi.json").data == admin_openapi.document_bytes()


@scim_api.parametrize()
@profile(short=3)
def test_scim_api(case: Any, served: Served) -> None:
    case.call_and_validate(
        app=served.app,
        base_url="http://localhost/scim/v2",
        headers={"Authorization": f"Bearer {served.scim_token}"},
        checks=CHECKS,
    )


@admin_api.parametrize()
@profile(short=3)
def test_admin_api(case: Any, served: Served) -> None:
    case.call_and_validate(
        app=served.app,
        base_url="http://localhost/api/v1",
        headers={"Authorization": f"Bearer {served.admin_token}"},
        checks=CHECKS,
    )
