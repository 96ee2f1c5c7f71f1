"""Creating a mapping rule through its preview in a real browser: the preview shows who would
change and the seat totals after, writes nothing, and Confirm makes the rule."""

from __future__ import annotations

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
