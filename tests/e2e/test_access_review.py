"""Exporting the access review in a real browser: the page's filters carry into the export,
which downloads as a CSV of every matching row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.console import sign_in
from tests.e2e.seed import SeededOrg


def test_access_review_exports_as_csv(
    page: Page, live_server: LiveServer, org: SeededOrg, check_page: CheckPage
) -> None:
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/access-review")
    expect(page.get_by_role("heading", name="Access review")).to_be_visible()
    expect(page.locator("main table tbody tr").first).to_be_visible()
    check_page("access-review")

    with page.expect_download() as everything:
        page.get_by_role("link", name="CSV", exact=True).click()
    rows = read_csv(everything.value.path())
    assert {row["userName"] for row in rows} == set(org.user_emails), rows
    # Claude Shannon is in no group: listed, with no role and no seat.
    claude = [row for row in rows if row["userName"] == "claude.shannon@acme.example"]
    assert [(row["role"], row["seat"]) for row in claude] == [("", "none")], claude
    ada = [row for row in rows if row["userName"] == "ada.lovelace@acme.example"]
    # Engineering's rule gives Team Member in every project (*): one row, a paid seat.
    assert [(row["project"], row["role"], row["seat"]) for row in ada] == [
        ("*", "team_member", "paid")
    ], ada

    # Filtered to the free seats: the export has the two contractors and no one else.
    page.get_by_label("Seat").select_option("free")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("main table tbody tr")).to_have_count(2)
    with page.expect_download() as filtered:
        page.get_by_role("link", name="CSV", exact=True).click()
    assert filtered.value.suggested_filename.endswith(".csv")
    free = read_csv(filtered.value.path())
    assert {(row["userName"], row["project"], row["seat"]) for row in free} == {
        ("linus.pauling@acme.example", "mobile", "free"),
        ("rosalind.franklin@acme.example", "mobile", "free"),
    }, free


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(Path(path).read_text("utf-8-sig"))))
