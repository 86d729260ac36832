"""Webhook fixtures: personas as principals, and a real HTTP receiver that checks signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from access.authorization import Principal
from access.models import ManagedPolicy
from access.services import builtin_policies_sync
from tests.factories import UserFactory
from webhooks import services


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers with the next
    status from `statuses` (then `default_status`); `secret` is what it verifies with."""

    url: str = ""
    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else self.default_status


def receiver_verifies(secret: str, timestamp: str, signature: str, body: bytes) -> bool:
    """What the README tells a receiver to do, written without Bosun's code."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), signature)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            verified = receiver_verifies(
                receiver.secret,
                self.headers.get("X-Bosun-Timestamp", ""),
                self.headers.get("X-Bosun-Signature", ""),
                body,
            )
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, dict(self.headers.items()), body, verified)
                )
            if receiver.delay:
                threading.Event().wait(receiver.delay)
            status = receiver.answer()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{receiver.url}elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin(admin_user):
    return Principal(user=admin_user)


@pytest.fixture
def operator(operator_user):
    return Principal(user=operator_user)


@pytest.fixture
def auditor(auditor_user):
    return Principal(user=auditor_user)


@pytest.fixture
def outsider(outsider_user):
    return Principal(user=outsider_user)


@pytest.fixture
def reader_user(db):
    """May list everything (ReadOnlyAccess, which grants bosun:List*), change nothing."""
    user = UserFactory(username="rita")
    builtin_policies_sync()
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(user)
    return user


@pytest.fixture
def reader(reader_user):
    return Principal(user=reader_user)


@pytest.fixture
def hook(admin, receiver):
    """An endpoint subscribed to every parameter event, its secret known to the receiver."""
    endpoint, secret = services.webhook_endpoint_create(
        principal=admin, name="ops-alerts", url=receiver.url, events=["parameter.*"]
    )
    receiver.secret = secret
    return endpoint
