"""Run Command in a real browser, with this host's real agent: a shell script chosen and
filled in on the form, the nodes it reaches previewed as they are ticked, reviewed, sent; the
command's page follows it, and the node's output arrives on its page while it runs."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import wait_until

pytestmark = pytest.mark.browser

# The local agent registers once the web server listens, which is when the stack is "ready".
LOCAL_NODE_TIMEOUT = 30.0
# Sent, fetched, run and replied by a real agent, on a loaded machine.
RUN_TIMEOUT_MS = 30_000


def local_node_choice(page: Page) -> Locator:
    """The node picker's entry for this host's own node, reloading until it registered."""
    choice = page.locator("#node-picker .form-check").filter(has=page.get_by_text("this host"))

    def shown() -> int:
        page.goto("/commands/send/")
        return choice.count()

    wait_until(shown, timeout=LOCAL_NODE_TIMEOUT, every=1.0, what="this host's node offered")
    return choice


def test_a_shell_script_runs_on_this_host_and_its_output_arrives_live(
    signed_in_page: Page, screenshots: Path
):
    page = signed_in_page
    marker = f"hello-from-browser-{secrets.token_hex(3)}"
    local_node_choice(page)

    page.goto("/commands/")
    page.get_by_role("link", name="Run a command").click()
    expect(page).to_have_title("Run a command · Bosun")
    page.get_by_label("Document", exact=True).select_option("Bosun-RunShellScript")
    commands = page.get_by_label("commands")
    expect(commands).to_be_visible()  # the document's fields, fetched when it was chosen
    expect(page.locator("#document-description")).to_contain_text("shell script")
    commands.fill(f"echo {marker}\nsleep 2\necho finished")

    preview = page.locator("#target-preview")
    expect(preview).to_contain_text("Choose nodes, tags or a group")
    local = page.locator("#node-picker .form-check").filter(has=page.get_by_text("this host"))
    local.get_by_role("checkbox").check()
    expect(preview.locator("#preview-total")).to_have_text("1")
    expect(preview.locator("#preview-split")).to_contain_text("1 online")
    page.get_by_label("Comment").fill("from the browser test")
    page.screenshot(path=screenshots / "run-command-form.png", full_page=True)

    page.get_by_role("button", name="Review").click()
    summary = page.locator("#send-summary")
    expect(summary).to_contain_text("Run Bosun-RunShellScript on 1 node?")
    expect(summary).to_contain_text("(1 online, 0 offline)")
    expect(summary).to_contain_text(marker)
    page.screenshot(path=screenshots / "run-command-review.png", full_page=True)
    page.get_by_role("button", name="Run command").click()

    expect(page).to_have_url(re.compile(r"/commands/[0-9a-f-]{36}/$"))
    expect(page.get_by_text("Command sent to 1 node.")).to_be_visible()
    expect(page.locator("#command-overview")).to_contain_text("from the browser test")
    invocations = page.locator("#invocation-table tbody tr")
    expect(invocations).to_have_count(1)
    invocations.first.get_by_role("link").first.click()

    expect(page).to_have_url(re.compile(r"/commands/[0-9a-f-]{36}/mi-[0-9a-f]{17}/$"))
    stdout = page.locator("#output-0-stdout")
    expect(stdout).to_contain_text(marker, timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=screenshots / "run-command-output-live.png", full_page=True)
    status = page.locator("#invocation-status")
    expect(status).to_contain_text("Success", timeout=RUN_TIMEOUT_MS)
    expect(stdout).to_contain_text("finished")
    expect(page.locator("#invocation-code")).to_have_text("0")
    expect(page.locator("#invocation-live")).to_have_attribute("data-live", "false")
    page.screenshot(path=screenshots / "run-command-output-done.png", full_page=True)

    page.get_by_role("link", name=re.compile(r"Command [0-9a-f]")).click()
    expect(page.locator("#command-status")).to_contain_text("Success", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#progress-summary")).to_contain_text("1 of 1 node done")
    page.screenshot(path=screenshots / "run-command-detail.png", full_page=True)
