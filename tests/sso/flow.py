"""Test helpers both sign-in protocols share: the organization, the service, and what a
refused or finished login leaves behind."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import provisioning
from app.audit import Actor
from app.models import AuditEvent, Organization
from app.provisioning import ProvisioningService, RuleSpec

ACTOR = Actor(kind="cli", label="test")


def setup_org(session: Session, slug: str = "acme") -> Organization:
    """An organization whose Engineering group members are team members everywhere."""
    organization = provisioning.create_organization(session, slug.title(), slug, 100)
    service_for(session, organization).create_rule(
        RuleSpec("displayName", "Engineering", "team_member")
    )
    session.commit()
    return organization


def service_for(session: Session, organization: Organization) -> ProvisioningService:
    return ProvisioningService(session, organization, ACTOR)


def handoff_token(response: TestResponse) -> str:
    """The token in the hand-off page's auto-submitted form."""
    body = response.get_data(as_text=True)
    match = re.search(r'name="token" value="([^"]+)"', body)
    assert match is not None, body
    return match.group(1)


def refusals(session: Session) -> list[dict[str, Any]]:
    """The recorded login.refused events, oldest first."""
    session.expire_all()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "login.refused").order_by(AuditEvent.id)
    )
    return [dict(event.after or {}) for event in events]


def assert_refused(response: TestResponse, session: Session, reason: str) -> str:
    """The browser got the error page, the audit trail says why, and no session was opened."""
    body = response.get_data(as_text=True)
    assert response.status_code == 403, body
    assert "Sign-in refused" in body
    recorded = refusals(session)
    assert recorded, "no login.refused event"
    assert recorded[-1]["reason"] == reason, recorded[-1]
    cookies = response.headers.getlist("Set-Cookie")
    assert not any(cookie.startswith("blue_sso=") for cookie in cookies)
    return body
