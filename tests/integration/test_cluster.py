"""Bosun scaled out: one web, two ws and one worker process on real PostgreSQL and Redis.

A browser's websocket lands on whichever ws process the proxy picks, while the events it waits
for are published by the web process (the request that queued the work) and by a Celery worker
(the work's outcome). Only the Redis channel layer joins them, and these tests prove it does.
"""

from __future__ import annotations

import contextlib
import re

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.cluster import (
    ADMIN_PASSWORD,
    Browser,
    Cluster,
    bosun_cluster,
    events_until,
    next_event,
    open_events,
)

pytestmark = pytest.mark.integration

WS_PROCESSES = ("ws1", "ws2")
EVENT_TIMEOUT = 15.0  # covers a task's trip through the broker on a loaded 2-core machine
CHECK_ROW = re.compile(r'<tr id="check-(\d+)"')
CLOSE_UNAUTHENTICATED = 4401


@pytest.fixture(scope="module")
def cluster(service_urls):
    with bosun_cluster(**service_urls, ws_count=len(WS_PROCESSES)) as running_cluster:
        yield running_cluster


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> Browser:
    browser = Browser(cluster.url("web"))
    browser.log_in("admin", ADMIN_PASSWORD)
    return browser


def _system_check_events(check_id: int):
    def statuses(seen: list[dict]) -> set[str]:
        return {
            event["data"].get("status")
            for event in seen
            if event.get("event") == "system_check" and event["data"].get("id") == check_id
        }

    return statuses


def test_events_from_the_web_process_and_the_worker_reach_websockets_on_every_ws_process(
    cluster, admin
):
    session = admin.cookie("bosun_session")
    with contextlib.ExitStack() as stack:
        sockets = {
            name: stack.enter_context(open_events(cluster.ports[name], session=session))
            for name in WS_PROCESSES
        }
        for name, socket in sockets.items():
            # The consumer joins its groups before it says hello, so nothing after this is lost.
            hello = next_event(socket, timeout=EVENT_TIMEOUT)
            assert hello == {"event": "hello", "data": {}}, name

        reply = admin.post("/system-checks/")
        assert reply.status == 201, reply.text[:500]
        match = CHECK_ROW.search(reply.text)
        assert match, f"no check row in the reply: {reply.text[:500]}"
        check_id = int(match.group(1))

        statuses = _system_check_events(check_id)
        for name, socket in sockets.items():
            # The worker may publish before the web process does; the order is not promised.
            seen, complete = events_until(
                socket, lambda seen: statuses(seen) >= {"queued", "passed"}, timeout=EVENT_TIMEOUT
            )
            assert complete, f"{name} saw {seen} for check {check_id} within {EVENT_TIMEOUT}s"


@pytest.mark.parametrize("role", ["web", *WS_PROCESSES])
def test_healthz_is_ok_with_the_redis_channel_layer_on_every_http_process(cluster, role):
    reply = Browser(cluster.url(role)).get("/healthz")

    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "channel_layer": True,
        "broker": True,
    }
    assert body["checks"]["channel_layer"]["detail"] == "RedisChannelLayer"
    assert body["checks"]["database"]["detail"] == "postgresql"


@pytest.mark.parametrize("ws", WS_PROCESSES)
def test_a_websocket_from_a_foreign_origin_is_refused_even_with_a_valid_session(cluster, admin, ws):
    session = admin.cookie("bosun_session")
    with (
        pytest.raises(InvalidStatus) as refused,
        open_events(cluster.ports[ws], session=session, origin="http://evil.example"),
    ):
        pass

    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("ws", WS_PROCESSES)
def test_a_websocket_without_a_session_never_receives_an_event(cluster, ws):
    try:
        socket = open_events(cluster.ports[ws], session=None)
    except InvalidStatus:
        return  # refused at the handshake: nothing can arrive
    with socket, pytest.raises(ConnectionClosed) as closed:
        event = next_event(socket, timeout=EVENT_TIMEOUT)
        pytest.fail(f"an anonymous websocket received {event}")

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_UNAUTHENTICATED


def test_a_websocket_without_a_session_is_closed_with_the_unauthenticated_code(cluster):
    """The browser's realtime.js stops reconnecting and shows "signed out" on close code 4401."""
    try:
        socket = open_events(cluster.ports["ws1"], session=None)
    except InvalidStatus as refused:
        pytest.fail(
            f"the handshake was refused with HTTP {refused.response.status_code}, so a browser "
            "sees close code 1006, not 4401, and keeps reconnecting"
        )
    with socket, pytest.raises(ConnectionClosed) as closed:
        next_event(socket, timeout=EVENT_TIMEOUT)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_UNAUTHENTICATED
