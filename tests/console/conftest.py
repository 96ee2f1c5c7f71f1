"""Console fixtures: organization "acme" with an org admin signed in through a bootstrap link
and a security reviewer signed in through SSO; "globex", another organization with data."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from app.models import Organization, User
from app.provisioning.console import ConsoleRole
from tests.console.support import (
    console_link,
    make_person,
    sign_in_with_link,
    signed_in_through_sso,
)
from tests.support import make_org


@pytest.fixture
def acme(session: Session) -> Organization:
    return make_org(session, "acme")[0]


@pytest.fixture
def other_org(session: Session) -> Organization:
    """Another organization, with a user in a group, that acme's console must never show."""
    organization = make_org(session, "globex")[0]
    make_person(session, organization, "spy@globex.example", "Globex Staff")
    return organization


@pytest.fixture
def admin(app: Flask, runner: FlaskCliRunner, acme: Organization) -> FlaskClient:
    """A browser signed in to acme's console as org admin, through a bootstrap link."""
    client = app.test_client()
    response = sign_in_with_link(client, console_link(runner, "acme", "it@acme.example"))
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def reviewer_user(session: Session, acme: Organization) -> User:
    return make_person(session, acme, "auditor@acme.example", "Security Team")


@pytest.fixture
def reviewer(app: Flask, session: Session, acme: Organization, reviewer_user: User) -> FlaskClient:
    """A browser signed in to acme's console as security reviewer (group Security Team)."""
    return signed_in_through_sso(
        app.test_client(), session, acme, reviewer_user, "Security Team", ConsoleRole.REVIEWER
    )
