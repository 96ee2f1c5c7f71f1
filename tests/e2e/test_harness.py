"""The browser harness itself, on a page that exists without the console: the SSO start page
is served by the live server, passes axe-core, and answers an unknown email as a person sees it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.browser import SCREENSHOTS, assert_accessible
from tests.e2e.conftest import CheckPage, LiveServer


def test_sso_start_page_is_accessible_and_refuses_an_unknown_domain(
    page: Page, live_server: LiveServer, check_page: CheckPage
) -> None:
    page.goto(f"{live_server.url}/sso/")
    expect(page.get_by_role("heading", name="Sign in to Blue")).to_be_visible()
    assert check_page("sso-start") == SCREENSHOTS / "sso-start.png"

    page.get_by_label("Work email").fill("someone@nowhere.example")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("We could not find single sign-on for that email")).to_be_visible()
    assert_accessible(page)


def test_page_check_reports_what_the_browser_refused(
    page: Page, browser_errors: list[str], check_page: CheckPage
) -> None:
    """A script error on the page fails the check, as an inline script blocked by the
    console's Content-Security-Policy would."""
    page.set_content(
        '<!doctype html><html lang="en"><head><title>Broken</title></head><body><main>'
        '<h1>Broken</h1><button onclick="missing()">Go</button></main></body></html>'
    )
    page.get_by_role("button", name="Go").click()
    try:
        check_page("broken")
    except AssertionError as failure:
        assert "missing is not defined" in str(failure)
    else:
        raise AssertionError("a script error passed the page check")
    assert not (SCREENSHOTS / "broken.png").exists()


def test_accessibility_check_fails_on_serious_violations(page: Page) -> None:
    """The check is not a formality: an unlabelled input and an image without alt text fail it,
    and the failure names the rules and the elements."""
    page.set_content(
        '<!doctype html><html lang="en"><head><title>Bad</title></head><body><main>'
        '<h1>Bad form</h1><img src="data:," id="logo"><input type="text" id="who">'
        "</main></body></html>"
    )
    try:
        assert_accessible(page)
    except AssertionError as failure:
        report = str(failure)
    else:
        raise AssertionError("a page with an unlabelled input passed the accessibility check")
    assert "image-alt (critical)" in report
    assert "label (critical)" in report
    assert "#who" in report
