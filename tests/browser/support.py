"""What the browser tests share besides fixtures: the running stack and the steps of a person."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from playwright.sync_api import Page

from tests.support.processes import log_tail


@dataclass(frozen=True)
class BosunServer:
    url: str
    username: str
    password: str
    process: subprocess.Popen = field(repr=False)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.process, lines)


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def events_received(page: Page, name: str) -> list[dict]:
    """Payloads of the live events of this name that reached the page over the websocket.

    The browser context's init script records them (conftest.RECORD_EVENTS_SCRIPT).
    """
    return page.evaluate(
        "name => window.__bosunEvents.filter(e => e.name === name).map(e => e.detail)", name
    )


def wait_for_event(
    page: Page,
    name: str,
    *,
    matching: dict | None = None,
    after: int = 0,
    timeout: float | None = None,
) -> None:
    """Wait until a live event of this name, whose data has the `matching` items, arrives.

    `after` skips the first events of that name, to wait for a new one.
    """
    page.wait_for_function(
        """({ name, matching, after }) => window.__bosunEvents
             .filter(event => event.name === name)
             .slice(after)
             .some(event => Object.entries(matching)
               .every(([key, value]) => event.detail[key] === value))""",
        arg={"name": name, "matching": matching or {}, "after": after},
        timeout=timeout,
    )
