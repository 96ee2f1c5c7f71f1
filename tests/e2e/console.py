"""Getting a browser into the console the way an admin does on first setup: the one-time
bootstrap link that `blue-provisioning console link` prints, alone on its last line."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer
from tests.e2e.seed import SeededOrg


def bootstrap_link(server: LiveServer, org: SeededOrg, email: str) -> str:
    """A fresh one-time link, taken from the last line of the command's output."""
    output = server.cli("console", "link", "--org", org.slug, "--email", email)
    link = output.strip().splitlines()[-1]
    assert link.startswith(f"{server.url}/console/link/"), output
    return link


def sign_in(page: Page, server: LiveServer, org: SeededOrg, email: str | None = None) -> str:
    """Sign the page's browser in as org admin through a bootstrap link; the link, used up."""
    email = email or org.admin_email
    link = bootstrap_link(server, org, email)
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"{email} · Org admin")).to_be_visible()
    return link
