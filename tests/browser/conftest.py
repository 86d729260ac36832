"""The browser tier: Debian's Chromium, driven by Playwright, against the real embedded stack.

One `manage.py serve embedded` for the tier (daphne, the Celery worker with beat, SQLite, the
SQLite channel layer and the file broker) on a free port with a throw-away data dir; one
Chromium for the tier; a fresh browser context, so fresh cookies, per test.

The stack and the browser are package-scoped, not session-scoped: while Playwright's sync API
is alive it marks an asyncio loop as running in the main thread, so every later test that
uses async_to_sync (the channel layer's, for one) would fail with "You cannot use AsyncToSync
in the same thread as an async event loop". Both stop when the last browser test is done.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Error,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)

from tests.browser.support import BosunServer, sign_in
from tests.conftest import CHROMIUM
from tests.support.processes import PYTHON, bosun_env, free_port, log_tail, running

READY_BANNER = "Bosun is running at "
# A cold start migrates a fresh database and collects (and compresses) the static files.
STARTUP_TIMEOUT = 120.0
# Long enough for a loaded two-core machine; the live paths normally answer in well under 1 s.
EXPECT_TIMEOUT_MS = 10_000

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Live events re-dispatched on <body> by realtime.js, recorded so tests can tell that a change
# arrived over the websocket rather than by polling or a reload.
RECORDED_EVENTS = ("hello", "worker_heartbeat", "system_check")
RECORD_EVENTS_SCRIPT = """
(() => {
  window.__bosunEvents = [];
  for (const name of %s) {
    document.addEventListener("bosun:" + name, (event) => {
      window.__bosunEvents.push({ name: name, detail: event.detail });
    });
  }
})();
""".replace("%s", json.dumps(RECORDED_EVENTS))


@pytest.fixture(scope="package")
def bosun_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BosunServer]:
    port = free_port()
    password = secrets.token_urlsafe(16)
    env = {k: v for k, v in bosun_env().items() if not k.startswith("BOSUN_")}
    env.update(
        BOSUN_HOST="127.0.0.1",
        BOSUN_PORT=str(port),
        BOSUN_DATA_DIR=str(tmp_path_factory.mktemp("bosun-data")),
        BOSUN_ADMIN_PASSWORD=password,
        BOSUN_DEBUG="0",  # the branded error pages show only without DEBUG
    )
    argv = [PYTHON, "manage.py", "serve", "embedded"]
    with running(argv, env=env, name="browser-stack") as process:
        url = _wait_until_ready(process)
        yield BosunServer(url=url, username="admin", password=password, process=process)


def _wait_until_ready(process: subprocess.Popen) -> str:
    """The stack's URL once it prints its banner, which it does when the web server listens."""
    log: Path = process.log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if READY_BANNER in line:
                return line.split(READY_BANNER, 1)[1].split()[0]
        if process.poll() is not None:
            pytest.fail(
                f"serve embedded exited with {process.returncode} before it was ready:\n"
                + log_tail(process),
                pytrace=False,
            )
        time.sleep(0.1)
    pytest.fail(
        f"serve embedded was not ready within {STARTUP_TIMEOUT:.0f}s:\n" + log_tail(process),
        pytrace=False,
    )


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests save screenshots: $BOSUN_SCREENSHOTS, else a directory of this test run."""
    configured = os.environ.get("BOSUN_SCREENSHOTS")
    if not configured:
        return tmp_path_factory.mktemp("screenshots")
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageProblems:
    """What went wrong in the page without failing a step: script errors, missing assets."""

    script_errors: list[str] = field(default_factory=list)
    broken_assets: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.script_errors or self.broken_assets)

    def script_error(self, error: Error) -> None:
        self.script_errors.append(str(error))

    def response(self, response: Response) -> None:
        if response.status >= 400 and _is_asset(response.url):
            self.broken_assets.append(f"{response.status} {response.url}")

    def request_failed(self, request: Request) -> None:
        if _is_asset(request.url):
            self.broken_assets.append(f"{request.failure} {request.url}")


def _is_asset(url: str) -> bool:
    return "/static/" in url


@pytest.fixture
def context(browser: Browser, bosun_server: BosunServer) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=bosun_server.url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    context.add_init_script(RECORD_EVENTS_SCRIPT)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab that fails its test on an uncaught script error or a static file that won't load."""
    page = context.new_page()
    page_problems = PageProblems()
    page.on("pageerror", page_problems.script_error)
    page.on("response", page_problems.response)
    page.on("requestfailed", page_problems.request_failed)
    yield page
    assert not page_problems, f"the page had problems: {page_problems}"


@pytest.fixture
def signed_in_page(page: Page, bosun_server: BosunServer) -> Page:
    sign_in(page, bosun_server.username, bosun_server.password)
    # Until "load", so a test that navigates on at once aborts no asset of the dashboard.
    page.wait_for_url(f"{bosun_server.url}/", wait_until="load")
    return page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On failure, show what the stack logged: the browser only sees its side of the story."""
    report = yield
    server = getattr(item, "funcargs", {}).get("bosun_server")
    if report.failed and isinstance(server, BosunServer):
        report.sections.append(("bosun serve embedded (log tail)", server.log_tail()))
    return report
