"""Error pages as a person sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_an_unknown_url_shows_the_branded_404_page(page: Page, screenshots: Path):
    response = page.goto("/no-such-page/")

    assert response is not None
    assert response.status == 404
    expect(page).to_have_title("Page not found · Bosun")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_text("Bosun", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Go to the dashboard")).to_have_attribute("href", "/")
    page.screenshot(path=screenshots / "404.png", full_page=True)
