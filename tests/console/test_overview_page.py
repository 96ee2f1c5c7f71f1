"""The console's overview: the paid-seat gauge against the tier, counts, the seat trend over
the contract period (server-drawn SVG), recent and held changes, connection health. Data made
through the provisioning service, SCIM, SSO login and the webhook worker."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app import provisioning
from app.config import Settings
from app.console import charts
from app.delivery import Worker
from app.models import IdpConnection, Organization
from app.provisioning import (
    OPERATOR,
    ContractSpec,
    LoginClaims,
    MemberChange,
    ProvisioningService,
    UserSpec,
)
from tests.app.webhooks.support import Receiver, add_endpoint
from tests.console.directory_data import Directory, make_directory, person


def page_of(client: FlaskClient) -> str:
    response = client.get("/console/overview")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def fact(html: str, term: str) -> str:
    found = re.search(rf"<dt>{re.escape(term)}</dt><dd>(.*?)</dd>", html)
    assert found is not None, term
    return re.sub(r"<[^>]+>", "", found.group(1))


@pytest.fixture
def directory(session: Session, acme: Organization) -> Directory:
    return make_directory(session, acme, tier=5)


def test_gauge_and_counts_show_paid_seats_against_the_tier(
    admin: FlaskClient, directory: Directory
) -> None:
    html = page_of(admin)
    gauge = section(html, "seats-heading")
    assert 'role="img"' in gauge and "<title" in gauge
    assert "2 of 5 paid seats used (40%)." in gauge
    assert 'class="gauge-fill"' in gauge
    counts = section(html, "counts-heading")
    assert fact(counts, "Paid") == "2"
    assert fact(counts, "Free") == "1"
    assert fact(counts, "Pending a paid seat") == "0"
    assert fact(counts, "Deactivated") == "1"
    assert fact(counts, "Deprovisioned") == "0"
    assert 'href="/console/users?seat=paid"' in counts


def test_deprovisioned_and_deactivated_users_are_counted_apart(
    admin: FlaskClient, session: Session, acme: Organization, directory: Directory
) -> None:
    ProvisioningService(session, acme, OPERATOR).delete_user(directory.bob.id)
    session.commit()
    counts = section(page_of(admin), "counts-heading")
    assert (fact(counts, "Free"), fact(counts, "Paid")) == ("0", "2")
    assert (fact(counts, "Deactivated"), fact(counts, "Deprovisioned")) == ("1", "1")


def test_over_the_tier_the_gauge_is_full_and_says_by_how_much(
    admin: FlaskClient, session: Session, acme: Organization, directory: Directory
) -> None:
    ProvisioningService(session, acme, OPERATOR).set_contract(ContractSpec(paid_seat_tier=1))
    session.commit()
    html = page_of(admin)
    gauge = section(html, "seats-heading")
    assert "2 of 1 paid seats used (200%), 1 over the tier." in gauge
    assert 'class="gauge-fill over"' in gauge


def test_pending_users_are_counted_under_hold(
    admin: FlaskClient, session: Session, acme: Organization, directory: Directory
) -> None:
    service = ProvisioningService(session, acme, OPERATOR)
    service.set_contract(ContractSpec(paid_seat_tier=2, policy="hold"))
    eve = person(service, "eve@acme.example", "Eve")
    service.update_group(
        directory.engineering.id,
        provisioning.GroupSpec(display_name="Engineering"),
        MemberChange(added=[str(eve.id)]),
    )
    session.commit()
    counts = section(page_of(admin), "counts-heading")
    assert (fact(counts, "Paid"), fact(counts, "Pending a paid seat")) == ("2", "1")


def test_seat_trend_is_an_accessible_svg_over_the_contract_period(
    admin: FlaskClient, directory: Directory
) -> None:
    html = page_of(admin)
    trend = section(html, "trend-heading")
    year = date.today().year
    assert '<svg class="chart trend"' in trend and 'role="img"' in trend
    assert f"over the contract period, {year}-01-01 to {year}-12-31</title>" in trend
    assert 'class="line-paid"' in trend and 'class="line-tier"' in trend
    # The data for screen readers: the day seats changed, with today's count and tier.
    table = trend[trend.index('<table class="visually-hidden">') :]
    today = date.today().isoformat()
    assert f'<tr><th scope="row">{today}</th><td>2</td><td>5</td></tr>' in table
    # Drawn on the server: no script of its own, no inline style (the CSP forbids both).
    content = html[html.index('<main id="content">') :]
    assert "<script" not in content and "style=" not in content


def test_held_and_recent_changes(
    admin: FlaskClient, session: Session, acme: Organization, directory: Directory
) -> None:
    service = ProvisioningService(session, acme, OPERATOR)
    service.set_guard_thresholds(1, 1.0, 10)
    newcomers = [person(service, f"new{n}@acme.example", f"New {n}") for n in range(2)]
    service.update_group(
        directory.engineering.id,
        provisioning.GroupSpec(display_name="Engineering"),
        MemberChange(added=[str(u.id) for u in newcomers]),
    )
    session.commit()
    html = page_of(admin)
    held = section(html, "held-heading")
    assert "No change is waiting" not in held
    assert "<td>2</td>" in held  # two new paid seats held
    link = re.search(r'href="(/console/rules/held/[0-9a-f-]{36})"', held)
    assert link is not None and admin.get(link.group(1)).status_code == 200
    recent = section(html, "recent-heading")
    assert "<code>change.held</code>" in recent
    assert f'href="/console/users/{newcomers[1].id}">new1@acme.example</a>' in recent
    assert "console.signed_in" not in recent


def test_connection_health_shows_last_use_logins_and_errors_of_the_last_day(
    app: Flask,
    admin: FlaskClient,
    session: Session,
    settings: Settings,
    acme: Organization,
    directory: Directory,
) -> None:
    token = provisioning.create_token(session, acme, "entra").secret
    session.commit()
    scim = app.test_client().get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert scim.status_code == 200
    service = ProvisioningService(session, acme, OPERATOR)
    connection: IdpConnection = service.create_connection("Okta", "oidc", {}, {})
    service.login(
        connection,
        LoginClaims(subject="okta|eve", email="eve@acme.example", groups=["Engineering"]),
    )
    service.record_refused_login(connection, "user_deactivated", "your account is deactivated")
    service.record_refused_login(None, "connection", "unknown connection")
    session.commit()

    receiver = Receiver()
    receiver.start()
    try:
        receiver.rule = lambda _received: (500, {})
        add_endpoint(session, acme.id, receiver.url)
        person(service, "fay@acme.example", "Fay")  # an event for Blue after the endpoint
        session.commit()
        worker = Worker(app.extensions["sessions"], replace(settings, webhook_max_attempts=1))
        assert worker.run_once().dead >= 1
        dead = worker.run_once().dead
    finally:
        receiver.stop()

    health = section(page_of(admin), "health-heading")
    entra = health[health.index("entra") :].split("</tr>")[0]
    assert "never" not in entra and "<time" in entra
    okta = health[health.index("Okta (OIDC)") :].split("</tr>")[0]
    assert "<time" in okta and '<td class="error">1</td>' in okta
    assert "1 refused logins named no connection" in health
    hook = health[health.index(receiver.url) :].split("</tr>")[0]
    dead_total = re.search(r'<td class="error">(\d+)</td>', hook)
    assert dead_total is not None and int(dead_total.group(1)) >= 1 + dead
    errors = re.search(
        r"Errors in the last 24 hours: <strong class=\"error\">(\d+)</strong>", health
    )
    assert errors is not None and int(errors.group(1)) == 2 + int(dead_total.group(1))


def test_connection_health_counts_a_tokens_failed_requests(
    app: Flask, admin: FlaskClient, session: Session, acme: Organization
) -> None:
    token = provisioning.create_token(session, acme, "entra").secret
    session.commit()
    idp = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@acme.example"}
    assert idp.post("/scim/v2/Users", json=body, headers=headers).status_code == 201
    assert idp.post("/scim/v2/Users", json=body, headers=headers).status_code == 409
    gone = "/scim/v2/Users/00000000-0000-0000-0000-000000000000"
    assert idp.get(gone, headers=headers).status_code == 404  # an IdP's routine: not counted
    assert idp.get("/scim/v2/Users").status_code == 401  # no token: no one to count it for
    health = section(page_of(admin), "health-heading")
    entra = health[health.index("entra") :].split("</tr>")[0]
    assert '<strong class="error">1</strong>' in entra and "last: 409" in entra
    errors = re.search(r"Errors in the last 24 hours: <strong[^>]*>(\d+)</strong>", health)
    assert errors is not None and errors.group(1) == "1"


def test_a_new_organization_without_contract_period_or_connections(
    admin: FlaskClient, acme: Organization
) -> None:
    html = page_of(admin)
    assert "0 of 100 paid seats used (0%)." in html
    assert 'class="gauge-fill' not in html
    assert "No change is waiting for confirmation." in html
    assert "No SSO connection." in html and "No webhook endpoint." in html


def test_reviewer_reads_the_overview_and_another_org_never_shows(
    reviewer: FlaskClient, session: Session, directory: Directory, other_org: Organization
) -> None:
    service = ProvisioningService(session, other_org, OPERATOR)
    service.create_user(UserSpec(user_name="mole@globex.example"))
    session.commit()
    html = page_of(reviewer)
    assert "<h1>Overview</h1>" in html
    assert "globex" not in html.lower()
    assert 'href="/console/overview" aria-current="page">Overview</a>' in html


@pytest.mark.parametrize(
    ("value", "limit", "fill", "over"),
    [
        (0, 10, None, False),
        (5, 10, "M 20 100 A 80 80 0 0 1 100.00 20.00", False),
        (0, 0, None, False),
    ],
)
def test_gauge_geometry(value: int, limit: int, fill: str | None, over: bool) -> None:
    gauge = charts.gauge(value, limit)
    assert gauge.fill == fill and gauge.is_over is over


def test_full_gauge_ends_at_the_right_and_over_is_flagged() -> None:
    gauge = charts.gauge(12, 10)
    assert gauge.fill is not None and gauge.fill.endswith("180.00 100.00")
    assert gauge.is_over and gauge.percent == 120


def test_step_chart_draws_corners_only_and_marks_today() -> None:
    start, end = date(2026, 1, 1), date(2026, 1, 10)
    days = [date(2026, 1, d) for d in range(1, 5)]
    chart = charts.step_chart(start, end, days, [1, 1, 3, 3], [4, 4, 4, 4])
    assert chart.values.split() == ["48.0,169.6", "163.2,169.6", "163.2,92.8", "278.4,92.8"]
    assert chart.limit.split() == ["48.0,54.4", "278.4,54.4"]
    assert [t.label for t in chart.y_ticks] == ["0", "2", "5"]
    assert chart.today == pytest.approx(278.4)


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (1, 1), (1.1, 2), (5.5, 10), (110, 200), (23, 25)]
)
def test_nice_ceiling(value: float, expected: int) -> None:
    assert charts.nice_ceiling(value) == expected
