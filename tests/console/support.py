"""Test helpers for console pages: signing in, and posting forms with their CSRF token."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.db import utcnow
from app.models import Group, Organization, User
from app.provisioning import OPERATOR, GroupSpec, MemberChange, ProvisioningService, UserSpec
from app.provisioning.console import ConsoleRole

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/console/access") -> str:
    """The CSRF token a console form on `page` carries for this client's session."""
    response = client.get(page)
    found = CSRF.search(response.get_data(as_text=True))
    assert found is not None, f"no CSRF token on {page} ({response.status_code})"
    return found.group(1)


def post_form(
    client: FlaskClient, url: str, data: dict[str, str] | None = None, page: str | None = None
) -> TestResponse:
    """POST a console form as the browser would: with the CSRF token of the session."""
    token = csrf_token(client, page or "/console/access")
    return client.post(url, data={**(data or {}), "csrf_token": token})


def console_link(runner: FlaskCliRunner, slug: str, email: str) -> str:
    """`console link`: the path of the link printed alone on the last line."""
    result = runner.invoke(args=["console", "link", "--org", slug, "--email", email])
    assert result.exit_code == 0, result.output
    return urlsplit(result.output.strip().splitlines()[-1]).path


def sign_in_with_link(client: FlaskClient, path: str) -> TestResponse:
    """Open a bootstrap link and press its button."""
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    found = CSRF.search(page.get_data(as_text=True))
    assert found is not None
    return client.post(path, data={"csrf_token": found.group(1)})


def make_person(
    session: Session, organization: Organization, user_name: str, group: str | None = None
) -> User:
    """A user of the organization, with a work email, in `group` (made if missing)."""
    service = ProvisioningService(session, organization, OPERATOR)
    user = service.create_user(
        UserSpec(
            user_name=user_name,
            multi_values={"emails": [{"value": user_name, "primary": True, "type": "work"}]},
        )
    )
    if group is not None:
        found = session.query(Group).filter_by(org_id=organization.id, display_name=group).first()
        if found is None:
            service.create_group(GroupSpec(display_name=group, member_ids=[str(user.id)]))
        else:
            spec = GroupSpec(display_name=found.display_name, external_id=found.external_id)
            service.update_group(found.id, spec, MemberChange(added=[str(user.id)]))
    session.commit()
    return user


def signed_in_through_sso(
    client: FlaskClient,
    session: Session,
    organization: Organization,
    user: User,
    group: str,
    role: ConsoleRole,
) -> FlaskClient:
    """Sign `user` in as if back from SSO: their group grants `role` (the whole SSO flow is
    tested in test_access.py)."""
    service = ProvisioningService(session, organization, OPERATOR)
    group_id = (
        session.query(Group.id).filter_by(org_id=organization.id, display_name=group).scalar()
    )
    service.grant_console_role(group_id, role)
    opened = service.open_console_session(user)
    session.commit()
    with client.session_transaction() as cookie:
        cookie["console"] = opened.cookie
        cookie["seen"] = utcnow().timestamp()
    return client
