"""Every main console page in a real browser, as an org admin of a seeded organization sees
it: each passes axe-core with no serious violation, the browser refuses nothing on it (CSP),
and its screenshot goes to docs/screenshots/ for the README. (The rules, import and access
review pages have tests of their own.)"""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.e2e.browser import assert_accessible
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


def test_every_other_console_page_passes_the_checks(
    page: Page, live_server: LiveServer, org: SeededOrg, browser_errors: list[str]
) -> None:
    """The pages below the menu's entries, reached as a person reaches them: report tabs, the
    hash chain verified, a rule's edit form, the connection forms, webhook endpoints, the
    imports list, the sign-in page's options and the 404 page."""
    live_server.cli("connection", "demo", "--org", org.slug)
    sign_in(page, live_server, org)
    failures: list[str] = []

    def check(heading: str) -> None:
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        try:
            assert_accessible(page)
            assert not browser_errors, "\n".join(browser_errors)
        except AssertionError as failure:
            failures.append(str(failure))
        browser_errors.clear()

    menu(page, "Access review").click()
    tabs = page.get_by_role("navigation", name="Reports")
    for tab in ("Changes", "Renewal", "Drift"):
        tabs.get_by_role("link", name=tab).click()
        expect(tabs.get_by_role("link", name=tab)).to_have_attribute("aria-current", "page")
        check("Access review")

    menu(page, "Audit").click()
    page.get_by_role("link", name="Verify the hash chain").click()
    expect(page.get_by_role("status").filter(has_text="every link intact")).to_be_visible()
    check("Audit trail")

    menu(page, "Mapping rules").click()
    page.get_by_role("link", name="Edit rule for Engineering").click()
    check("Edit mapping rule")

    menu(page, "Connections").click()
    page.get_by_role("link", name="New SAML connection").click()
    check("New SAML connection")
    menu(page, "Connections").click()
    page.get_by_role("link", name="New OpenID Connect connection").click()
    check("New OpenID Connect connection")
    menu(page, "Connections").click()
    page.get_by_role("navigation", name="Connections sections").get_by_role(
        "link", name="Webhook endpoints"
    ).click()
    check("Connections")

    menu(page, "Import").click()
    check("Import users")

    page.goto(f"{live_server.url}/console/users/00000000-0000-0000-0000-000000000000")
    check("Not Found")
    page.goto(f"{live_server.url}/console/sign-in?org={org.slug}")
    check("Sign in to the console")

    assert not failures, "\n\n".join(failures)
