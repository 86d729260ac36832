"""The dashboard in a real browser: htmx, the Celery worker and the live websocket together."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import BosunServer, events_received, wait_for_event

pytestmark = pytest.mark.browser

# Beat records a worker heartbeat every 10 s; allow one missed beat on a loaded machine.
HEARTBEAT_TIMEOUT_MS = 25_000


def test_the_admin_signs_in_and_sees_the_dashboard(page: Page, bosun_server: BosunServer):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))

    page.get_by_label("Username").fill(bosun_server.username)
    page.get_by_label("Password").fill(bosun_server.password)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{bosun_server.url}/")
    expect(page).to_have_title("Dashboard · Bosun")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    navigation = page.get_by_role("navigation", name="Main navigation")
    current = navigation.get_by_role("link", name="Dashboard")
    expect(current).to_have_attribute("aria-current", "page")
    expect(current).to_have_class(re.compile(r"\bactive\b"))
    expect(page.get_by_text(bosun_server.username, exact=True)).to_be_visible()
    expect(page.get_by_text("Embedded", exact=True)).to_be_visible()
    expect(page.get_by_text("File queue", exact=True)).to_be_visible()
    expect(page.get_by_text("polled every 20 ms")).to_be_visible()

    live = page.locator("#live-status")
    expect(live).to_have_attribute("data-state", "live")
    expect(live).to_have_text(re.compile(r"\blive\b"))
    expect(live).to_have_class(re.compile(r"\btext-bg-success\b"))

    icon_fonts = page.evaluate(
        """async () => {
          await document.fonts.ready;
          return [...document.fonts]
            .filter(font => font.family.includes("bootstrap-icons"))
            .map(font => font.status);
        }"""
    )
    assert icon_fonts, "the Bootstrap Icons font is not declared"
    assert set(icon_fonts) == {"loaded"}, f"the Bootstrap Icons font did not load: {icon_fonts}"


def test_running_a_system_check_shows_a_row_that_turns_passed_without_reloading_the_page(
    signed_in_page: Page, screenshots: Path
):
    page = signed_in_page
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    with page.expect_response(
        lambda response: (
            response.url.endswith("/system-checks/") and response.request.method == "POST"
        )
    ) as posted:
        page.get_by_role("button", name="Run system check").click()
    response = posted.value
    assert response.status == 201
    created = response.text()
    assert "Queued" in created, "a new check starts Queued"
    check_id = int(re.search(r'id="check-(\d+)"', created).group(1))

    row = page.locator(f"#check-rows > #check-{check_id}")
    expect(page.locator("#check-rows > tr").first).to_have_id(f"check-{check_id}")
    expect(page.locator("#no-checks")).to_have_count(0)
    expect(row.get_by_text("Passed", exact=True)).to_be_visible()
    expect(row.locator(".bi-check-circle")).to_have_count(3)
    expect(row.locator("td").last).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))

    wait_for_event(page, "system_check", matching={"id": check_id, "status": "passed"})
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    page.screenshot(path=screenshots / "dashboard-after-check.png", full_page=True)


def test_the_worker_card_shows_online_after_a_heartbeat(signed_in_page: Page, screenshots: Path):
    page = signed_in_page
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.locator("#worker-card").evaluate("card => { card.dataset.rendered = 'with the page'; }")
    heartbeats_before = len(events_received(page, "worker_heartbeat"))

    wait_for_event(page, "worker_heartbeat", after=heartbeats_before, timeout=HEARTBEAT_TIMEOUT_MS)

    refreshed = page.locator("#worker-card:not([data-rendered])")
    expect(refreshed).to_contain_text("Online")
    expect(refreshed).to_contain_text(socket.gethostname())
    expect(refreshed.locator(".bi-check-circle-fill")).to_be_visible()
    assert events_received(page, "worker_heartbeat")[-1]["hostname"] == socket.gethostname()
    page.screenshot(path=screenshots / "dashboard-worker-online.png", full_page=True)
