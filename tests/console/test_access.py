"""Getting in and out of the console: bootstrap links, SSO sign-in by group grant, roles,
CSRF, security headers, timeouts and sessions that end with the person."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db
from app.models import AuditEvent, ConsoleSession, Organization, User
from app.provisioning import OPERATOR, ProvisioningService, RuleSpec, UserSpec
from tests.console.support import (
    console_link,
    csrf_token,
    make_person,
    post_form,
    sign_in_with_link,
)
from tests.sso.saml_flow import OKTA_ATTRIBUTES, add_connection, post_acs, sp_urls, start_login
from tests.sso.saml_idp import TestIdp, key_pair

ACME_IDP = "https://acme.okta.example/app/blue/exk1"


def actions(session: Session, organization: Organization) -> list[tuple[str, str, str]]:
    session.expire_all()
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.actor)
        .where(AuditEvent.org_id == organization.id)
        .order_by(AuditEvent.id)
    )
    return [(a, k, label) for a, k, label in rows if a.startswith("console.")]


def test_console_link_prints_the_link_alone_on_the_last_line(
    runner: FlaskCliRunner, acme: Organization
) -> None:
    result = runner.invoke(args=["console", "link", "--org", "acme", "--email", "it@acme.example"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("http://localhost/console/link/") and " " not in last
    assert "15 minutes" in result.output


def test_bootstrap_link_signs_in_once_as_org_admin_and_is_audited(
    app: Flask, runner: FlaskCliRunner, session: Session, acme: Organization
) -> None:
    path = console_link(runner, "acme", "it@acme.example")
    browser = app.test_client()
    response = sign_in_with_link(browser, path)
    assert response.status_code == 302
    page = browser.get("/console/access")
    assert page.status_code == 200
    assert "it@acme.example" in page.get_data(as_text=True)
    assert "Org admin" in page.get_data(as_text=True)

    again = sign_in_with_link(app.test_client(), path)
    assert again.status_code == 403
    assert "already been used" in again.get_data(as_text=True)
    assert actions(session, acme) == [
        ("console.link_created", "cli", actions(session, acme)[0][2]),
        ("console.signed_in", "console", "it@acme.example"),
    ]


def test_expired_and_unknown_links_are_refused(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch, acme: Organization
) -> None:
    path = console_link(runner, "acme", "it@acme.example")
    later = db.utcnow() + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr(db, "clock", lambda: later)
    expired = sign_in_with_link(app.test_client(), path)
    assert expired.status_code == 403
    assert "expired" in expired.get_data(as_text=True)
    unknown = sign_in_with_link(app.test_client(), "/console/link/not-a-real-secret")
    assert unknown.status_code == 403
    assert app.test_client().get("/console/access").status_code == 302


def test_a_link_for_an_unknown_organization_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["console", "link", "--org", "nope", "--email", "a@b.example"])
    assert result.exit_code != 0
    assert "no organization" in result.output


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/console/access")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/sign-in")
    assert client.get("/console/").headers["Location"] == "/console/sign-in"


def test_pages_carry_strict_security_headers_and_a_safe_cookie(
    app: Flask, runner: FlaskCliRunner, acme: Organization
) -> None:
    browser = app.test_client()
    path = console_link(runner, "acme", "it@acme.example")
    page = browser.get(path)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    signed_in = sign_in_with_link(browser, path)
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "<script>" not in browser.get("/console/access").get_data(as_text=True)


def test_forms_without_a_csrf_token_are_refused(admin: FlaskClient) -> None:
    response = admin.post("/console/access", data={"group": "x", "role": "admin"})
    assert response.status_code == 400
    assert "Form refused" in response.get_data(as_text=True)
    wrong = admin.post("/console/access", data={"group": "x", "role": "admin", "csrf_token": "x"})
    assert wrong.status_code == 400


def test_admin_grants_a_group_a_console_role(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    make_person(session, acme, "ops@acme.example", "IT Admins")
    response = post_form(admin, "/console/access", {"group": "it admins", "role": "admin"})
    assert response.status_code == 303
    page = admin.get("/console/access").get_data(as_text=True)
    assert "IT Admins" in page
    assert ("console.access_changed", "console", "it@acme.example") in actions(session, acme)


def test_a_group_of_another_organization_cannot_be_granted(
    admin: FlaskClient, other_org: Organization
) -> None:
    response = post_form(admin, "/console/access", {"group": "Globex Staff", "role": "admin"})
    assert response.status_code == 400
    assert "no group named" in response.get_data(as_text=True)


def test_reviewer_reads_but_every_write_is_forbidden(reviewer: FlaskClient) -> None:
    page = reviewer.get("/console/access")
    assert page.status_code == 200
    assert "Security reviewer" in page.get_data(as_text=True)
    response = post_form(reviewer, "/console/access", {"group": "Security Team", "role": "admin"})
    assert response.status_code == 403


def test_deactivation_ends_the_persons_console_session(
    reviewer: FlaskClient, session: Session, acme: Organization, reviewer_user: User
) -> None:
    assert reviewer.get("/console/access").status_code == 200
    service = ProvisioningService(session, acme, OPERATOR)
    service.replace_user(
        reviewer_user.id, UserSpec(user_name=reviewer_user.user_name, is_active=False)
    )
    session.commit()
    response = reviewer.get("/console/access")
    assert response.status_code == 302
    assert "reason=ended" in response.headers["Location"]
    session.expire_all()
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.user_id == reviewer_user.id))
    assert row is not None and row.ended_at is not None


def test_leaving_the_granting_group_takes_console_access_away(
    reviewer: FlaskClient, session: Session, acme: Organization, reviewer_user: User
) -> None:
    from app.models import Group
    from app.provisioning import GroupSpec, MemberChange

    group = session.scalar(select(Group).where(Group.display_name == "Security Team"))
    assert group is not None
    ProvisioningService(session, acme, OPERATOR).update_group(
        group.id,
        GroupSpec(display_name=group.display_name),
        MemberChange(removed=[str(reviewer_user.id)]),
    )
    session.commit()
    assert reviewer.get("/console/access").status_code == 302


def test_idle_sessions_end_and_are_audited(
    admin: FlaskClient, session: Session, acme: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = db.utcnow() + timedelta(minutes=31)
    monkeypatch.setattr(db, "clock", lambda: later)
    response = admin.get("/console/access")
    assert response.status_code == 302
    assert "reason=idle" in response.headers["Location"]
    assert actions(session, acme)[-1] == ("console.signed_out", "console", "it@acme.example")


def test_sessions_end_after_their_absolute_lifetime_however_busy(
    admin: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = db.utcnow()
    for minutes in range(0, 12 * 60, 25):  # active every 25 minutes: never idle
        moment = start + timedelta(minutes=minutes)
        monkeypatch.setattr(db, "clock", lambda moment=moment: moment)
        assert admin.get("/console/access").status_code == 200
    end = start + timedelta(hours=12, minutes=1)
    monkeypatch.setattr(db, "clock", lambda: end)
    assert admin.get("/console/access").status_code == 302


def test_sign_out_ends_the_session(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    token = csrf_token(admin)
    response = admin.post("/console/sign-out", data={"csrf_token": token})
    assert response.status_code == 302
    assert admin.get("/console/access").status_code == 302
    assert actions(session, acme)[-1] == ("console.signed_out", "console", "it@acme.example")


def test_every_console_view_declares_who_may_use_it(app: Flask) -> None:
    undeclared = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint.startswith("console.")
        and endpoint not in {"console.static", "console.index"}
        and getattr(view, "console_access", None) not in {"public", "reader", "admin"}
    ]
    assert undeclared == []


# ------------------------------------------------------------- SSO sign-in through a group


@pytest.fixture
def okta(
    runner: FlaskCliRunner, tmp_path: Path, session: Session, acme: Organization
) -> tuple[TestIdp, str]:
    idp = TestIdp(ACME_IDP, key_pair("acme-idp"))
    service = ProvisioningService(session, acme, OPERATOR)
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    session.commit()
    document = add_connection(runner, tmp_path, idp, "--preset", "okta")
    return idp, str(document["id"])


def sso_sign_in(app: Flask, client: FlaskClient, okta: tuple[TestIdp, str]) -> FlaskClient:
    idp, connection_id = okta
    page = client.get("/console/sign-in", query_string={"org": "acme"})
    assert f"/sso/saml/{connection_id}/login?return_to=/console/sso" in page.get_data(as_text=True)
    started = start_login(client, connection_id, return_to="/console/sso")
    saml_response = idp.response(
        sp_urls(app, connection_id), in_response_to=started.request_id, attributes=OKTA_ATTRIBUTES
    )
    response = post_acs(client, connection_id, saml_response, started.relay_state)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/console/sso"
    return client


def test_members_of_a_granted_group_sign_in_through_sso(
    app: Flask,
    session: Session,
    acme: Organization,
    okta: tuple[TestIdp, str],
    runner: FlaskCliRunner,
) -> None:
    browser = sso_sign_in(app, app.test_client(), okta)
    result = runner.invoke(
        args=["console", "grant", "--org", "acme", "--group", "Engineering", "--role", "admin"]
    )
    assert result.exit_code == 0, result.output
    response = browser.get("/console/sso")
    assert response.status_code == 302
    page = browser.get("/console/access")
    assert page.status_code == 200
    assert "jane@acme.example" in page.get_data(as_text=True)
    assert "single sign-on" in page.get_data(as_text=True)


def test_sso_users_without_a_granted_group_are_refused(
    app: Flask, acme: Organization, okta: tuple[TestIdp, str]
) -> None:
    browser = sso_sign_in(app, app.test_client(), okta)
    response = browser.get("/console/sso")
    assert response.status_code == 403
    assert "no access to the console" in response.get_data(as_text=True)
    assert browser.get("/console/access").status_code == 302


def test_sign_in_page_finds_no_sso_for_an_unknown_organization(client: FlaskClient) -> None:
    response = client.get("/console/sign-in", query_string={"org": "nobody.example"})
    assert response.status_code == 404
    assert "no single sign-on" in response.get_data(as_text=True)


def test_unknown_console_urls_answer_the_consoles_own_404_page(admin: FlaskClient) -> None:
    for path in ("/console/users/not-a-uuid", "/console/no-such-page"):
        response = admin.get(path)
        assert response.status_code == 404
        assert "belongs to another organization" in response.get_data(as_text=True)
        assert response.headers["X-Frame-Options"] == "DENY"


def test_a_database_that_cannot_answer_now_is_a_503_page_with_retry_after(
    admin: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.console import lookups
    from app.errors import UnavailableError

    def busy(*_: object) -> None:
        raise UnavailableError("the request waited too long for a lock in the database; retry")

    monkeypatch.setattr(lookups, "grants", busy)
    response = admin.get("/console/access")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "Try again in a moment" in response.get_data(as_text=True)


def test_a_reviewer_gets_403_on_every_write_and_every_admin_page(
    app: Flask, reviewer: FlaskClient
) -> None:
    import re

    token = csrf_token(reviewer)
    allowed = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if (
            not rule.endpoint.startswith("console.")
            or getattr(view, "console_access", "") != "admin"
        ):
            continue
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "00000000-0000-0000-0000-000000000000", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method == "POST" else None
            status = reviewer.open(path, method=method, data=data).status_code
            if status != 403:
                allowed.append(f"{method} {path} -> {status}")
    writes = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.") and "POST" in (rule.methods or set())
    ]
    assert len(writes) > 25  # the walk saw the console's forms
    assert allowed == []
    # Every POST but signing in and out is for admins only.
    readers = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint in writes
        and getattr(app.view_functions[rule.endpoint], "console_access", "") != "admin"
    }
    assert readers == {"console.redeem", "console.sign_out"}
