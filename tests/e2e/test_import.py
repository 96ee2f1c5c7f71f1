"""A CSV import with one bad row in a real browser: the preview names the bad row before
anything is written, the import runs in the background (the worker) while the page polls its
progress, and the result downloads as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import FilePayload, Page, expect

from tests.e2e.browser import assert_accessible
from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.console import sign_in
from tests.e2e.seed import SeededOrg

CSV = (
    "email,givenName,familyName,groups\n"
    "margaret.hamilton@acme.example,Margaret,Hamilton,Engineering\n"
    "katherine.johnson@acme.example,Katherine,Johnson,Design;Launch\n"
    "not-an-email,Bad,Row,Engineering\n"
)


def test_csv_import_with_one_bad_row(
    page: Page,
    live_server: LiveServer,
    org: SeededOrg,
    start_worker: Callable[[], object],
    check_page: CheckPage,
) -> None:
    sign_in(page, live_server, org)
    page.goto(f"{live_server.url}/console/imports")
    upload = FilePayload(name="new-hires.csv", mimeType="text/csv", buffer=CSV.encode())
    page.get_by_label("CSV file").set_input_files(files=[upload])
    page.get_by_role("button", name="Check the file").click()

    # The preview: 3 rows checked, line 4 refused, nothing written yet.
    expect(page.get_by_role("heading", name="Import of new-hires.csv")).to_be_visible()
    expect(page.get_by_text("3 rows checked")).to_be_visible()
    failed = page.locator("table tbody tr")
    expect(failed).to_have_count(1)
    expect(failed.locator("td").first).to_have_text("4")
    expect(failed).to_contain_text("not-an-email")
    check_page("import-preview")
    other = page.context.new_page()
    other.goto(f"{live_server.url}/console/users?q=margaret")
    expect(other.get_by_text("margaret.hamilton@acme.example")).to_have_count(0)
    other.close()

    # Started, it waits for a worker; once one runs, the page (polling, no reload) follows it
    # to the end.
    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.get_by_text("Import started")).to_be_visible()
    # The bad row counts as processed (failed) from the preview on.
    expect(page.get_by_text("1 of 3 rows done (queued)")).to_be_visible()
    expect(page.get_by_text("Waiting for a worker")).to_be_visible()
    start_worker()
    expect(page.get_by_text("3 of 3 rows done (done)")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Import started")).to_be_visible()  # the same page, not reloaded
    facts = page.locator("#import-progress dl")
    expect(facts.locator("dd")).to_have_text(["2", "0", "0", "1"])
    check_page("import")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the result (CSV)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text("utf-8-sig"))))
    assert len(rows) == 3, rows
    outcomes = {row["line"]: row["outcome"] for row in rows}
    assert outcomes == {"2": "created", "3": "created", "4": "failed"}, rows

    # The imported people are in the directory, in the groups the file named.
    page.goto(f"{live_server.url}/console/users?q=katherine")
    page.get_by_role("link", name="katherine.johnson@acme.example").click()
    expect(page.get_by_role("heading", name="katherine.johnson@acme.example")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Launch")
    assert_accessible(page)
