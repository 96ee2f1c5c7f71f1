"""Token hygiene (issue #16 item 8): a prefix per scope, optional expiry with a warning listed
before it, and the last use visible."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from app import db, organizations, provisioning
from app.errors import InvalidChangeError
from app.models import Organization
from app.organizations import TokenScope


@pytest.mark.parametrize(
    ("scope", "prefix"),
    [
        (TokenScope.SCIM, "blue_scim_"),
        (TokenScope.ADMIN, "blue_admin_"),
        (TokenScope.EVENTS, "blue_events_"),
    ],
)
def test_each_scope_has_its_own_prefix(
    session: Session, organization: tuple[Organization, str], scope: TokenScope, prefix: str
) -> None:
    issued = provisioning.create_token(session, organization[0], f"t-{scope}", scope=scope)
    assert issued.secret.startswith(prefix)
    assert issued.token.prefix == issued.secret[: len(prefix) + 4]
    assert organizations.authenticate_token(session, issued.secret) is not None


def test_an_expired_token_is_refused_and_warned_about_before(
    client: FlaskClient,
    session: Session,
    organization: tuple[Organization, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = provisioning.create_token(session, organization[0], "temp", expires_in_days=30)
    session.commit()
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert client.get("/scim/v2/Users", headers=headers).status_code == 200
    assert organizations.expiry_warning(issued.token) is None
    start = db.utcnow()
    monkeypatch.setattr(db, "clock", lambda: start + timedelta(days=20))
    assert organizations.expiry_warning(issued.token) == "expires in 10 days"
    monkeypatch.setattr(db, "clock", lambda: start + timedelta(days=30, seconds=1))
    assert organizations.expiry_warning(issued.token) == "expired"
    response = client.get("/scim/v2/Users", headers=headers)
    assert response.status_code == 401


def test_expiry_is_bounded(session: Session, organization: tuple[Organization, str]) -> None:
    with pytest.raises(InvalidChangeError):
        provisioning.create_token(session, organization[0], "x", expires_in_days=0)


def test_the_cli_lists_expiry_warning_and_last_use(
    runner: FlaskCliRunner, organization: tuple[Organization, str]
) -> None:
    created = runner.invoke(
        args=["token", "create", "--org", "acme", "--label", "ci", "--expires-in-days", "7"]
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("blue_scim_")
    listed = runner.invoke(args=["token", "list", "--org", "acme"])
    line = next(row for row in listed.output.splitlines() if " ci " in row)
    assert "expires" in line and "! expires in 7 days" in line and "last used never" in line
