"""Webhooks in a real browser against the embedded stack: an endpoint made in the form shows
its secret once, and a test event sent from its page reaches a receiver, signed, and shows
as delivered."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.received
    server.shutdown()


def test_a_webhook_made_in_the_form_receives_a_signed_test_event(
    signed_in_page: Page, screenshots: Path, receiver
):
    page = signed_in_page
    url, received = receiver
    name = f"browser-{secrets.token_hex(3)}"

    page.goto("/webhooks/")
    page.get_by_role("link", name="Create webhook").first.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Payload URL").fill(url)
    page.get_by_role("button", name="Create webhook").click()

    secret_box = page.get_by_label("Signing secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert len(secret) >= 32
    page.screenshot(path=screenshots / "webhook-secret.png", full_page=True)

    page.goto("/webhooks/")
    page.get_by_role("link", name=name).click()
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Delivered").first).to_be_visible(timeout=30_000)
    page.screenshot(path=screenshots / "webhook-delivered.png", full_page=True)

    assert len(received) == 1
    headers, body = received[0]
    assert headers["X-Bosun-Event"] == "webhook.test"
    timestamp = headers["X-Bosun-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Bosun-Signature"] == "sha256=" + expected.hexdigest()
