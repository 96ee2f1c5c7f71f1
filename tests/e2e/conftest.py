"""Browser fixtures: a live server (werkzeug, in a thread) over a migrated database of its own
that really commits (SQLite, and PostgreSQL when BLUE_TEST_DATABASE_URL is set), a seeded
organization per test, and Debian's headless Chromium with a fresh context per test.

Every test here is skipped, with the reason shown, when chromium is not installed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from werkzeug.serving import make_server

from app import create_app, migrate
from app.config import Environment, Settings
from app.delivery.worker import Worker
from tests.conftest import BACKENDS, postgres_database
from tests.e2e.browser import (
    NOT_INSTALLED,
    VIEWPORT,
    assert_accessible,
    chromium_installed,
    launch,
    screenshot,
)
from tests.e2e.seed import SeededOrg, seed_organization

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HERE = Path(__file__).resolve().parent
# A page that does not answer within this many milliseconds fails the test, not the suite.
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests, visibly, on a machine without chromium (before any fixture)."""
    if chromium_installed():
        return
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.skip(reason=NOT_INSTALLED))


class _Deferred:
    """The server's WSGI callable, bound to the app once the port (and so the base URL) is
    known."""

    app: Flask | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None
        return self.app(environ, start_response)


@dataclass(frozen=True, slots=True)
class LiveServer:
    """The running service: its app (for the CLI and seeding) and its base URL."""

    app: Flask
    url: str

    def cli(self, *args: str) -> str:
        """Run a `blue-provisioning` command against the server's database; its output."""
        result = self.app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output


@pytest.fixture(scope="session", params=BACKENDS)
def live_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for the live server alone: its rows are committed, not rolled back."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'blue.db'}"
        migrate.upgrade(url)
        yield url
        return
    with postgres_database("blue_e2e") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def live_server(live_database_url: str) -> Iterator[LiveServer]:
    """The service on a free loopback port, in a thread."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    deferred = _Deferred()
    server = make_server("127.0.0.1", 0, deferred, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    settings = Settings(
        database_url=live_database_url,
        secret_key="e2e-secret-key-that-is-long-enough-0123456789",
        base_url=url,
        environment=Environment.TEST,
    )
    deferred.app = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield LiveServer(deferred.app, url)
    server.shutdown()
    thread.join(timeout=10)
    deferred.app.extensions["engine"].dispose()


@pytest.fixture
def org(live_server: LiveServer) -> SeededOrg:
    """A fresh organization of this test's own, with people, groups, projects and rules."""
    return seed_organization(live_server.app)


@pytest.fixture
def start_worker(live_server: LiveServer) -> Iterator[Callable[[], Worker]]:
    """Starts `blue-provisioning worker` as a thread beside the server, when the test says so:
    it runs started import jobs (and delivers webhooks) in the background, as in production;
    stopped after the test."""
    running: list[tuple[Worker, threading.Thread]] = []

    def start() -> Worker:
        app = live_server.app
        worker = Worker(app.extensions["sessions"], app.extensions["settings"], name="e2e-worker")
        thread = threading.Thread(target=worker.run, name="e2e-worker", daemon=True)
        thread.start()
        running.append((worker, thread))
        return worker

    yield start
    for worker, thread in running:
        worker.stop.set()
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) with the fixed viewport screenshots use."""
    context = browser.new_context(
        viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
        accept_downloads=True,
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def browser_errors(page: Page) -> list[str]:
    """What the browser reported as going wrong on the page: console errors (a script or style
    the Content-Security-Policy blocked, a failed request) and uncaught script errors."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        url = message.location["url"]
        # The page's own status (a 404 or 403 page) is the test's to check, not an error.
        document = url == page.url and message.text.startswith("Failed to load resource")
        if message.type == "error" and not url.endswith("/favicon.ico") and not document:
            errors.append(f"console: {message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"script: {error}"))
    return errors


class CheckPage(Protocol):
    def __call__(self, name: str) -> Path: ...


@pytest.fixture
def check_page(page: Page, browser_errors: list[str]) -> CheckPage:
    """Look at the page as it is now: no serious axe-core violation, nothing the browser
    refused or failed, then a screenshot docs/screenshots/NAME.png; its path."""

    def check(name: str) -> Path:
        assert_accessible(page)
        assert not browser_errors, f"{page.url}: " + "\n".join(browser_errors)
        return screenshot(page, name)

    return check
