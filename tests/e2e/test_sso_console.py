"""The console through the organization's own SAML IdP, in a real browser (the IdP: idp.py).

A security reviewer, Mary Jackson, new to Blue, is provisioned just in time into the Design
group, which grants the reviewer role: read only, so the menu has no admin pages, admin pages
answer 403, and the rules and contract pages offer no form. An org admin's test sign-in runs
the same flow and shows what the IdP sent, provisioning no one."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.db import read_only_unit
from app.models import MappingRule
from tests.e2e.browser import assert_accessible
from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.console import sign_in
from tests.e2e.idp import Person, add_saml_connection
from tests.e2e.seed import SeededOrg

MARY = Person("okta-mary", "mary.jackson@acme.example", "Mary", "Jackson", ("Design",))


def test_reviewer_signs_in_through_saml_and_reads_only(
    page: Page, live_server: LiveServer, org: SeededOrg, tmp_path: Path, check_page: CheckPage
) -> None:
    add_saml_connection(live_server, org, tmp_path).sign_in_as(page, MARY)
    live_server.cli(
        "console", "grant", "--org", org.slug, "--group", "Design", "--role", "reviewer"
    )

    page.goto(f"{live_server.url}/console/sign-in")
    page.get_by_label("Work email or organization").fill(org.slug)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Acme Okta").click()
    expect(page.get_by_role("heading", name="Acme IdP")).to_be_visible()
    page.get_by_role("button", name="Continue to Blue").click()

    expect(page.get_by_text(f"{MARY.email} · Security reviewer")).to_be_visible()
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Mapping rules")).to_be_visible()
    expect(nav.get_by_role("link", name="Import")).to_have_count(0)
    expect(nav.get_by_role("link", name="Connections")).to_have_count(0)

    nav.get_by_role("link", name="Mapping rules").click()
    expect(page.locator("#rules-table tbody tr")).to_have_count(3)
    expect(page.locator("#new-rule")).to_have_count(0)
    check_page("rules-reviewer")

    page.goto(f"{live_server.url}/console/contract")
    expect(page.locator("#contract-form")).to_have_count(0)
    admin_pages = (f"rules/{rule_id(live_server, org)}/edit", "connections/tokens", "imports")
    for admin_page in admin_pages:
        response = page.goto(f"{live_server.url}/console/{admin_page}")
        assert response is not None and response.status == 403, admin_page
        expect(page.get_by_text("Your console role does not allow this.")).to_be_visible()
    assert_accessible(page)


def test_admin_test_sign_in_shows_what_the_idp_sent_and_provisions_no_one(
    page: Page, live_server: LiveServer, org: SeededOrg, tmp_path: Path, check_page: CheckPage
) -> None:
    add_saml_connection(live_server, org, tmp_path).sign_in_as(page, MARY)
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/connections")
    page.get_by_role("link", name="Acme Okta").click()
    check_page("connection")
    page.get_by_role("link", name="Test sign-in").click()
    # Our login page posts the request to the IdP by itself (a script the app serves).
    expect(page.get_by_role("heading", name="Acme IdP")).to_be_visible()
    page.get_by_role("button", name="Continue to Blue").click()

    expect(page.get_by_role("heading", name="Test sign-in: Acme Okta")).to_be_visible()
    expect(page.get_by_text("Nothing was provisioned")).to_be_visible()
    expect(page.locator("main")).to_contain_text(MARY.email)
    expect(page.locator("main li").filter(has_text="Design")).to_have_count(1)
    check_page("connection-test")

    page.goto(f"{live_server.url}/console/users?q=mary")
    expect(page.get_by_role("link", name=MARY.email)).to_have_count(0)


def rule_id(server: LiveServer, org: SeededOrg) -> str:
    """One of the organization's mapping rules (an admin's edit page is at its id)."""
    with server.app.app_context(), read_only_unit() as session:
        found = session.scalar(select(MappingRule.id).where(MappingRule.org_id == org.id).limit(1))
    assert found is not None
    return str(found)
