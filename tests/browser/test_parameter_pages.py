"""Parameter Store in a real browser: a SecureString made in the form stays masked on its page
until revealed, is edited into a second version, and its two versions are compared."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_a_secure_string_is_masked_revealed_edited_and_compared(
    signed_in_page: Page, screenshots: Path
):
    page = signed_in_page
    name = f"/browser/{secrets.token_hex(4)}/db-password"
    first, second = f"first-{secrets.token_hex(6)}", f"second-{secrets.token_hex(6)}"

    page.goto("/parameters/")
    page.get_by_role("link", name="Create parameter").click()
    expect(page).to_have_title("Create parameter · Bosun")
    kms_key = page.get_by_label("KMS key")
    expect(kms_key).to_be_hidden()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description").fill("Made by the browser test")
    page.get_by_label("Type", exact=True).select_option("SecureString")
    expect(kms_key).to_be_visible()
    expect(kms_key).to_have_value("alias/aws/ssm")
    page.get_by_label("Value").fill(first)
    page.get_by_role("button", name="Create parameter").click()

    expect(page).to_have_url(re.compile(r"/parameters/detail/\?name="))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    value = page.locator("#parameter-value")
    expect(value.locator("#masked-value")).to_have_text("••••••")
    assert first not in page.content()
    page.screenshot(path=screenshots / "parameter-secure-masked.png", full_page=True)

    value.get_by_role("button", name="Reveal").click()
    expect(value.locator("#revealed-value")).to_have_text(first)
    page.screenshot(path=screenshots / "parameter-secure-revealed.png", full_page=True)
    value.get_by_role("button", name="Hide").click()
    expect(value.locator("#masked-value")).to_be_visible()
    assert first not in page.content()

    page.get_by_role("link", name="Edit (new version)").click()
    expect(page.get_by_label("Value")).to_have_value("")
    expect(page.get_by_text("type the new value in full")).to_be_visible()
    page.get_by_label("Value").fill(second)
    page.get_by_role("button", name="Save version 2").click()
    expect(page.get_by_text("as version 2")).to_be_visible()
    overview = page.locator("#parameter-overview")
    expect(overview.locator("dt:text-is('Version') + dd")).to_have_text("2")
    history = page.locator("#parameter-history tbody tr")
    expect(history).to_have_count(2)

    page.get_by_role("link", name="Compare versions").click()
    expect(page.get_by_label("Version", exact=True)).to_have_value("1")
    expect(page.get_by_label("with version")).to_have_value("2")
    assert first not in page.content() and second not in page.content()
    page.get_by_role("button", name="Decrypt and compare").click()
    diff = page.locator("#diff-lines")
    expect(diff.locator("[data-kind=removed]")).to_have_text(f"-{first}")
    expect(diff.locator("[data-kind=added]")).to_have_text(f"+{second}")
    page.screenshot(path=screenshots / "parameter-secure-diff.png", full_page=True)


def test_the_tree_opens_a_folder_in_place_and_links_to_its_level(signed_in_page: Page):
    page = signed_in_page
    top = f"tree{secrets.token_hex(3)}"
    for name in (f"/{top}/app/one", f"/{top}/app/deep/two"):
        page.goto("/parameters/new/")
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Value").fill("v")
        page.get_by_role("button", name="Create parameter").click()
        expect(page).to_have_url(re.compile(r"/parameters/detail/"))

    page.goto("/parameters/")
    tree = page.locator("#parameter-tree")
    folder = tree.locator("details").filter(has=page.get_by_role("link", name=top, exact=True))
    folder.locator("summary").first.click()
    app = folder.get_by_role("link", name="app", exact=True)
    expect(app).to_be_visible()  # fetched when the folder opened
    app.click()
    expect(page).to_have_url(re.compile(rf"\?path=/{top}/app$"))
    results = page.locator("#parameter-table")
    expect(results.get_by_role("link", name="one", exact=True)).to_be_visible()
    expect(results.get_by_role("link", name="deep/")).to_be_visible()
