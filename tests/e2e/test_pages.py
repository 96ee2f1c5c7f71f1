"""Every main console page in a real browser, as an org admin of a seeded organization sees
it: each passes axe-core with no serious violation, the browser refuses nothing on it (CSP),
and its screenshot goes to docs/screenshots/ for the README. (The rules, import and access
review pages have tests of their own.)"""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.console import sign_in
from tests.e2e.seed import SeededOrg


def menu(page: Page, label: str) -> Locator:
    return page.get_by_role("navigation", name="Console").get_by_role("link", name=label)


def test_overview_users_and_groups(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    menu(page, "Overview").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Paid seats")).to_be_visible()
    check_page("overview")

    menu(page, "Users").click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=org.admin_email)).to_be_visible()
    check_page("users")

    page.get_by_role("link", name=org.admin_email).click()
    expect(page.get_by_role("heading", name=org.admin_email)).to_be_visible()
    expect(page.get_by_role("heading", name="Why paid")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Engineering")
    check_page("user")

    menu(page, "Groups").click()
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    for name in org.groups:
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    check_page("groups")

    page.get_by_role("link", name="Engineering", exact=True).click()
    expect(page.get_by_role("heading", name="Engineering")).to_be_visible()
    check_page("group")


def test_contract(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    menu(page, "Contract").click()
    expect(page.get_by_role("heading", name="Contract", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Pending queue")).to_be_visible()
    check_page("contract")


def test_audit(page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage) -> None:
    sign_in(page, live_server, org)
    menu(page, "Audit").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.locator("main")).to_contain_text("console.signed_in")
    check_page("audit")
