"""Creating a mapping rule through its preview in a real browser: the preview shows who would
change and the seat totals after, writes nothing, and Confirm makes the rule."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.browser import assert_accessible
from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.console import sign_in
from tests.e2e.seed import SeededOrg


def test_rule_is_created_through_its_preview(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/rules")
    rules = page.locator("#rules-table tbody tr")
    expect(rules).to_have_count(3)
    check_page("rules")

    # Contractors (Client in mobile, free seats) become Team Members everywhere: paid seats.
    form = page.locator("#new-rule")
    form.get_by_label("Group", exact=True).fill("Contractors")
    form.get_by_label("Role").select_option(label="Team Member")
    form.get_by_label("Project").select_option("*")
    form.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", name="2 users would change")).to_be_visible()
    affected = page.locator("#affected-users tbody tr")
    expect(affected).to_have_count(2)
    expect(affected.filter(has_text="linus.pauling@acme.example")).to_contain_text("paid")
    paid = page.locator("#seat-totals tbody tr").filter(has_text="Paid").locator("td")
    expect(paid).to_have_text(["7", "9"])
    check_page("rule-preview")

    # The preview wrote nothing: in another tab, the rules are as they were.
    other = page.context.new_page()
    other.goto(f"{live_server.url}/console/rules")
    expect(other.locator("#rules-table tbody tr")).to_have_count(3)
    other.close()
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_text("Mapping rule created.")).to_be_visible()
    expect(rules).to_have_count(4)
    expect(rules.filter(has_text="Contractors").filter(has_text="Team Member")).to_have_count(1)
    assert_accessible(page)


def test_guard_holds_a_mass_grant_until_an_admin_confirms_it(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/rules")
    guard = page.locator("#guard")
    guard.get_by_label("New paid seats per change").fill("1")
    guard.get_by_role("button", name="Save thresholds").click()
    expect(page.get_by_text("Guard thresholds saved.")).to_be_visible()

    form = page.locator("#new-rule")
    form.get_by_label("Group", exact=True).fill("Contractors")
    form.get_by_label("Role").select_option(label="Team Member")
    form.get_by_role("button", name="Preview").click()
    expect(
        page.get_by_role("heading", name="The mass-grant guard would hold this change")
    ).to_be_visible()
    check_page("rule-preview-held")
    page.get_by_role("button", name="Confirm").click()

    # Held: not in force. The rule is not in the table; the held change waits on the page.
    held = page.locator("section").filter(
        has=page.get_by_role("heading", name="Held changes awaiting confirmation")
    )
    expect(held.locator("tbody tr")).to_have_count(1)
    expect(page.locator("#rules-table tbody tr")).to_have_count(3)
    check_page("rules-held")

    held.get_by_role("button", name=re.compile(r"^Confirm held change")).click()
    expect(page.locator("#rules-table tbody tr")).to_have_count(4)
    expect(page.get_by_role("heading", name="Held changes awaiting confirmation")).to_have_count(0)
    page.goto(f"{live_server.url}/console/users?q=linus")
    page.get_by_role("link", name="linus.pauling@acme.example").click()
    expect(page.get_by_role("heading", name="Why paid")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Team Member")
    assert_accessible(page)
