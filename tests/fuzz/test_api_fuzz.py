"""Schemathesis against the OpenAPI documents the service serves (/scim/v2/openapi.json and
/api/v1/openapi.json), in-process through the WSGI app, with valid tokens of a seeded
organization: no operation answers 5xx, and every answer's status, content type, headers and
body are what its document says.

The short profile (`make test`) runs each document's examples and a few generated cases per
operation, derandomized; the long one (`make fuzz`) adds schemathesis's coverage phase (each
boundary value and undocumented method) and many random cases."""

from __future__ import annotations

import json
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
from sqlalchemy.orm import Session

from app.admin import openapi as admin_openapi
from app.models import Organization
from scim.views import OPENAPI as SCIM_OPENAPI
from tests.fuzz.profiles import LONG, profile
from tests.support import admin_token

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


@pytest.fixture
def admin_secret(session: Session, organization: tuple[Organization, str]) -> str:
    """An admin token with write access, so every admin operation is reached."""
    return admin_token(session, organization[0])


def test_the_served_documents_are_the_files(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/scim/v2/openapi.json").data == SCIM_OPENAPI.read_bytes()
    assert client.get("/api/v1/openapi.json").data == admin_openapi.document_bytes()


@scim_api.parametrize()
@profile(short=3)
def test_scim_api(case: Any, app: Flask, organization: tuple[Organization, str]) -> None:
    case.call_and_validate(
        app=app,
        base_url="http://localhost/scim/v2",
        headers={"Authorization": f"Bearer {organization[1]}"},
        checks=CHECKS,
    )


@admin_api.parametrize()
@profile(short=3)
def test_admin_api(case: Any, app: Flask, admin_secret: str) -> None:
    case.call_and_validate(
        app=app,
        base_url="http://localhost/api/v1",
        headers={"Authorization": f"Bearer {admin_secret}"},
        checks=CHECKS,
    )
