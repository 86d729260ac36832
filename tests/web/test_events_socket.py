"""The live event feed over the real ASGI application (origin check, session auth, groups)."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from bosun.asgi import application
from bosun.lib import realtime

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def communicator(*, origin: bytes = b"http://127.0.0.1:8000", cookie: bytes | None = None):
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin)]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/events/", headers=headers)


def test_a_signed_in_browser_receives_events_for_itself_and_for_everyone(operator_user):
    cookie = session_cookie(operator_user)

    async def scenario():
        socket = communicator(cookie=cookie)
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_json_from(timeout=2) == {"event": "hello", "data": {}}
        await asyncio.to_thread(
            realtime.publish, realtime.user_group(operator_user.pk), "system_check", {"id": 1}
        )
        mine = await socket.receive_json_from(timeout=2)
        await asyncio.to_thread(realtime.publish, realtime.BROADCAST_GROUP, "worker_heartbeat", {})
        everyone = await socket.receive_json_from(timeout=2)
        await socket.send_json_to({"type": "ping", "sent": 5})
        pong = await socket.receive_json_from(timeout=2)
        await socket.disconnect()
        return mine, everyone, pong

    mine, everyone, pong = async_to_sync(scenario)()
    assert mine == {"event": "system_check", "data": {"id": 1}}
    assert everyone["event"] == "worker_heartbeat"
    assert pong == {"event": "pong", "data": {"sent": 5}}


def test_events_for_another_user_are_not_delivered(operator_user, outsider_user):
    cookie = session_cookie(operator_user)

    async def scenario():
        socket = communicator(cookie=cookie)
        await socket.connect()
        await socket.receive_json_from(timeout=2)
        await asyncio.to_thread(
            realtime.publish, realtime.user_group(outsider_user.pk), "system_check", {"id": 2}
        )
        nothing = await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True


def test_a_socket_without_a_session_is_closed_with_4401():
    async def scenario():
        socket = communicator()
        connected, _ = await socket.connect()
        closed = await socket.receive_output(timeout=2)
        return connected, closed

    connected, closed = async_to_sync(scenario)()
    assert connected is True
    assert closed == {"type": "websocket.close", "code": 4401}


def test_a_socket_from_a_foreign_origin_is_refused(operator_user):
    cookie = session_cookie(operator_user)

    async def scenario():
        socket = communicator(origin=b"http://evil.example", cookie=cookie)
        connected, _ = await socket.connect()
        return connected

    assert async_to_sync(scenario)() is False
