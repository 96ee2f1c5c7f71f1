"""Headless Chromium for the end-to-end tests: Debian's /usr/bin/chromium driven by Playwright
(never a browser Playwright downloads), full-page screenshots for docs/screenshots/, and an
axe-core accessibility check."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
NOT_INSTALLED = "chromium not installed: run tools/install-browser.sh"
# Every run refreshes the README's pictures; BLUE_SCREENSHOTS_DIR sends them elsewhere (a
# checkout that should stay clean, such as one about to merge).
SCREENSHOTS = Path(
    os.environ.get("BLUE_SCREENSHOTS_DIR")
    or Path(__file__).resolve().parents[2] / "docs" / "screenshots"
)
VIEWPORT = {"width": 1280, "height": 900}
# The machine's network is closed: nothing in the browser may try to reach the outside.
# Playwright adds --headless and gives every launch a fresh --user-data-dir of its own (it
# refuses one in `args`), and --no-sandbox since chromium_sandbox is off: we run as root.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# axe-core's impacts that fail a page; "moderate" and "minor" are reported by axe, not failed.
FAILING_IMPACTS = frozenset({"serious", "critical"})


def chromium_installed() -> bool:
    """True when Debian's chromium package is there to launch."""
    return CHROMIUM.is_file()


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with nothing that phones home."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, chromium_sandbox=False, args=FLAGS
    )


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as docs/screenshots/NAME.png (the README shows some of them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


def _axe_script() -> str:
    # axe-core's own build, as axe-playwright-python ships it (MPL-2.0, Deque Systems).
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Violation:
    """One axe-core rule a page breaks, with the elements that break it."""

    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]

    def describe(self) -> str:
        where = "\n".join(f"      {target}" for target in self.targets)
        return f"  - {self.rule} ({self.impact}): {self.help}\n    {self.help_url}\n{where}"


def axe_violations(page: Page) -> list[Violation]:
    """Run axe-core in the page as it is now and return every violation it finds.

    The script goes in through the DevTools protocol (page.evaluate), not a <script> tag, so
    the console's Content-Security-Policy, which forbids inline scripts, stays as it is.
    """
    page.evaluate(_axe_script())
    options = json.dumps({"resultTypes": ["violations"]})
    results: dict[str, Any] = page.evaluate(f"axe.run(document, {options})")
    return [
        Violation(
            rule=item["id"],
            impact=item.get("impact") or "unknown",
            help=item["help"],
            help_url=item["helpUrl"],
            targets=tuple(
                " ".join(map(str, node["target"])) + f"  {node['html'][:120]}"
                for node in item["nodes"]
            ),
        )
        for item in results["violations"]
    ]


def assert_accessible(page: Page) -> list[Violation]:
    """Fail on any serious or critical axe-core violation, listing each; return the rest."""
    violations = axe_violations(page)
    failing = [v for v in violations if v.impact in FAILING_IMPACTS]
    if failing:
        listing = "\n".join(v.describe() for v in failing)
        count = len(failing)
        raise AssertionError(f"{page.url}: {count} serious accessibility violations\n{listing}")
    return violations
