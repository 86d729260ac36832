"""Fleet Manager in a real browser, with real agents: this host's own node, and a live list.

The tier's stack (`serve embedded`) registers this host's own agent at start, so a fresh
install shows one real node; a second agent, registered here with an activation made in the
dashboard, shows a status change reaching an open list without a reload.
"""

from __future__ import annotations

import platform
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.support import BosunServer
from tests.e2e.support import Agent, wait_until

pytestmark = pytest.mark.browser

# The local agent registers once the web server listens, which is when the stack is "ready".
LOCAL_NODE_TIMEOUT = 30.0
EXIT_REVOKED = 3


def local_node_row(page: Page) -> Locator:
    """The Fleet Manager row of this host's own node, reloading until it has registered."""
    row = page.locator("tr[data-live-node]").filter(has=page.get_by_text("this host"))

    def shown() -> int:
        page.goto("/fleet/")
        return row.count()

    wait_until(shown, timeout=LOCAL_NODE_TIMEOUT, every=1.0, what="this host's node listed")
    return row


def os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def test_the_fleet_manager_list_shows_this_hosts_own_node_online(
    signed_in_page: Page, screenshots: Path
):
    page = signed_in_page

    row = local_node_row(page)

    expect(page).to_have_title("Fleet Manager · Bosun")
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name=socket.gethostname())).to_be_visible()
    expect(row.get_by_text("Online", exact=True)).to_be_visible()
    expect(row.locator(".badge.text-bg-success")).to_have_text(re.compile(r"Online"))
    expect(row.get_by_text(re.compile(r"^mi-[0-9a-f]{17}$"))).to_be_visible()
    expect(row).to_contain_text(os_name())
    expect(row).to_contain_text(re.compile(r"\d+\.\d+\.\d+\.\d+|[0-9a-f:]+:[0-9a-f:]+"))
    online_count = page.locator("#count-online .fs-4")
    expect(online_count).to_have_text(re.compile(r"^[1-9]\d*$"))
    page.screenshot(path=screenshots / "fleet-list-local-node.png", full_page=True)


def test_this_hosts_node_page_shows_its_host_facts(signed_in_page: Page, screenshots: Path):
    page = signed_in_page
    row = local_node_row(page)
    node_id = row.get_attribute("data-live-node")

    row.get_by_role("link", name=socket.gethostname()).click()

    expect(page).to_have_url(re.compile(rf"/fleet/nodes/{node_id}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(socket.gethostname())
    overview = page.locator("#node-overview")
    expect(overview.get_by_text("Online", exact=True)).to_be_visible()
    expect(overview).to_contain_text(node_id)
    facts = page.locator(".card").filter(has=page.get_by_role("heading", name="Host facts"))
    expect(facts).to_contain_text(re.compile(r"reported (just now|.* ago)"))

    def fact(label: str) -> Locator:
        return (
            facts.locator("tr").filter(has=page.get_by_role("rowheader", name=label)).locator("td")
        )

    expect(fact("Host name")).to_have_text(socket.gethostname())
    expect(fact("Platform")).to_contain_text(os_name())
    expect(fact("Platform")).to_contain_text("(Linux)")
    expect(fact("Kernel")).to_have_text(platform.release())
    expect(fact("Architecture")).to_have_text(platform.machine())
    expect(fact("IP addresses")).not_to_have_text("—")
    page.screenshot(path=screenshots / "fleet-node-local-detail.png", full_page=True)


@pytest.fixture
def agent(bosun_server: BosunServer, tmp_path: Path) -> Iterator[Agent]:
    made = Agent(bosun_server.url, tmp_path, "browser-live-node")
    try:
        yield made
    finally:
        made.stop()


def test_a_node_deregistered_elsewhere_changes_in_an_open_list_without_a_reload(
    signed_in_page: Page, context: BrowserContext, agent: Agent, screenshots: Path
):
    page = signed_in_page
    # An activation made the way an administrator makes one, and used as shown.
    page.goto("/fleet/activations/new/")
    page.get_by_label("Description").fill("browser test")
    page.get_by_label("Tags for registered nodes").fill("Env=browser")
    page.get_by_role("button", name="Create activation").click()
    expect(page.get_by_role("heading", name="Activation created")).to_be_visible()
    activation = {
        "id": page.locator("#activation-id").input_value(),
        "activation_code": page.locator("#activation-code").input_value(),
    }
    node_id = agent.registered(activation)
    agent.start()
    agent.wait_connected()

    page.goto("/fleet/?tag=Env=browser")
    row = page.locator(f"#node-{node_id}")
    expect(row.get_by_text("Online", exact=True)).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    # Someone else deregisters it, in another tab.
    other = context.new_page()
    other.goto(f"/fleet/nodes/{node_id}/")
    other.get_by_role("link", name="Deregister").click()
    other.get_by_role("button", name="Deregister node").click()
    expect(other.locator("#node-overview .badge")).to_have_text(re.compile("Deregistered"))
    other.close()

    expect(row.locator(".badge.text-bg-secondary")).to_have_text(re.compile("Deregistered"))
    assert page.evaluate("window.__sameDocument") is True, "the list was reloaded"
    expect(page.locator("#count-deregistered .fs-4")).to_have_text("1")
    page.screenshot(path=screenshots / "fleet-list-live-deregistered.png", full_page=True)
    assert agent.wait(timeout=15) == EXIT_REVOKED, agent.log_tail()
