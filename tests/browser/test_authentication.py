"""Signing in and out in a real browser against the embedded stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import BosunServer, sign_in

pytestmark = pytest.mark.browser


def test_signing_in_with_a_wrong_password_shows_an_inline_error_and_stays_on_the_login_page(
    page: Page, bosun_server: BosunServer, screenshots: Path
):
    page.goto("/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()
    page.screenshot(path=screenshots / "login.png", full_page=True)

    sign_in(page, bosun_server.username, "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password"
    )
    expect(page).to_have_url(f"{bosun_server.url}/login/")
    expect(page.get_by_label("Username")).to_have_value(bosun_server.username)
    expect(page.get_by_label("Password")).to_have_value("")
    page.screenshot(path=screenshots / "login-wrong-password.png", full_page=True)


def test_signing_out_returns_to_the_login_page_and_the_dashboard_then_redirects_to_login(
    signed_in_page: Page, bosun_server: BosunServer
):
    page = signed_in_page

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url(f"{bosun_server.url}/login/", wait_until="load")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.goto("/")
    expect(page).to_have_url(re.compile(re.escape(f"{bosun_server.url}/login/?next=") + "(/|%2F)$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
