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


def test_connections(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    live_server.cli("connection", "demo", "--org", org.slug)
    sign_in(page, live_server, org)
    menu(page, "Connections").click()
    expect(page.get_by_role("heading", name="Connections", exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Demo")
    check_page("connections")


def test_audit(page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage) -> None:
    sign_in(page, live_server, org)
    menu(page, "Audit").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.locator("main")).to_contain_text("console.signed_in")
    check_page("audit")


def test_scim_token_is_shown_once_works_and_is_revoked(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/connections/tokens")
    page.get_by_label("Label").fill("entra")
    page.get_by_label("Scope").select_option("scim")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("This is the only time it is shown")).to_be_visible()
    secret = page.get_by_label("Secret").input_value()
    check_page("token-created")

    # The secret provisions through SCIM at once; the tokens page never shows it again.
    users = f"{live_server.url}/scim/v2/Users?count=1"
    bearer = {"Authorization": f"Bearer {secret}"}
    assert page.request.get(users, headers=bearer).status == 200
    page.get_by_role("link", name="Back to tokens").click()
    expect(page.get_by_role("cell", name="entra", exact=True)).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(secret)
    check_page("tokens")

    page.get_by_role("button", name="Revoke entra").click()
    expect(page.get_by_role("row").filter(has_text="entra")).to_contain_text("revoked")
    assert page.request.get(users, headers=bearer).status == 401
