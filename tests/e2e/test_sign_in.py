"""Bootstrap link login in a real browser: the link printed by `console link` opens the
console once; the same link again is refused."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import assert_accessible
from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.console import bootstrap_link, sign_in
from tests.e2e.seed import SeededOrg


def test_bootstrap_link_signs_in_once(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    org: SeededOrg,
    check_page: CheckPage,
) -> None:
    link = bootstrap_link(live_server, org, org.admin_email)
    page.goto(link)
    expect(page.get_by_role("heading", name="Sign in with a one-time link")).to_be_visible()
    check_page("sign-in-link")

    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"{org.admin_email} · Org admin")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    assert page.url.startswith(f"{live_server.url}/console/")
    cookie = next(c for c in context.cookies() if c["name"] == "blue_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    # The console's first page: the first entry of its menu (the overview).
    first = page.get_by_role("navigation", name="Console").get_by_role("link").first
    expect(first).to_have_attribute("aria-current", "page")

    # The same link a second time, from a browser with no console session: refused.
    context.clear_cookies()
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign-in link refused")).to_be_visible()
    expect(page.get_by_text("This sign-in link has already been used.")).to_be_visible()
    assert_accessible(page)
    page.goto(f"{live_server.url}/console/")
    expect(page).to_have_url(f"{live_server.url}/console/sign-in")


def test_signing_out_ends_the_console_session(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    check_page("sign-in")
    page.goto(f"{live_server.url}/console/access")
    expect(page).to_have_url(f"{live_server.url}/console/sign-in")


def test_admin_grants_a_group_a_console_role(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/access")
    page.get_by_label("Group name").fill("Design")
    page.get_by_label("Console role").select_option("reviewer")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Members of Design now have console role: reviewer.")).to_be_visible()
    expect(page.get_by_role("cell", name="Design", exact=True)).to_be_visible()
    check_page("console-access")

    page.get_by_label("Group name").fill("Nobody here")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("There is no group named 'Nobody here'.")).to_be_visible()
    assert_accessible(page)


def test_keyboard_reaches_the_content_first(
    page: Page, live_server: LiveServer, org: SeededOrg
) -> None:
    """The first Tab on a console page lands on "Skip to content", which moves the keyboard
    past the header and menu to the page's own content."""
    sign_in(page, live_server, org)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#content$"))
    page.keyboard.press("Tab")
    focused_in_main = page.evaluate(
        "document.getElementById('content').contains(document.activeElement)"
    )
    assert focused_in_main, page.evaluate("document.activeElement.outerHTML")
