"""The agent's websocket over the real ASGI application: signed handshake, frames, revocation."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from bosun_agent import protocol
from channels.testing import WebsocketCommunicator

from bosun.asgi import application
from fleet.models import ManagedNode, NodeStatus
from fleet.protocol.messages import message_enqueue
from fleet.realtime import revoke_agent_on_commit, rotate_agent_key_on_commit, wake_agents_on_commit
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db(transaction=True)


def socket_of(agent: Agent, **overrides) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, protocol.WEBSOCKET_PATH, headers=agent.socket_headers(**overrides)
    )


def closed_with(agent: Agent, **overrides) -> dict:
    async def scenario():
        socket = socket_of(agent, **overrides)
        connected, _ = await socket.connect()
        assert connected  # accepted first, so the agent can read the close code
        return await socket.receive_output(timeout=3)

    return async_to_sync(scenario)()


def test_a_signed_handshake_is_greeted_with_hello(agent):
    message_enqueue(node_ids=[agent.node_id], kind=protocol.MESSAGE_PING, payload={})
    ManagedNode.objects.filter(pk=agent.node_id).update(status=NodeStatus.CONNECTION_LOST)

    async def scenario():
        socket = socket_of(agent)
        connected, _ = await socket.connect()
        hello = await socket.receive_json_from(timeout=3)
        await socket.disconnect()
        return connected, hello

    connected, hello = async_to_sync(scenario)()
    assert connected
    assert hello == {
        "type": "hello",
        "protocol": protocol.PROTOCOL_VERSION,
        "heartbeat_interval": 60,
        "pending_messages": 1,
        "requests": [protocol.WS_ACK, protocol.WS_REPLY],
    }
    # Connecting is being heard from.
    assert ManagedNode.objects.get(pk=agent.node_id).status == NodeStatus.ONLINE


def test_wake_and_rotate_key_are_forwarded_as_frames(agent):
    async def scenario():
        socket = socket_of(agent)
        await socket.connect()
        await socket.receive_json_from(timeout=3)
        await asyncio.to_thread(wake_agents_on_commit, [agent.node_id])
        wake = await socket.receive_json_from(timeout=3)
        await asyncio.to_thread(rotate_agent_key_on_commit, agent.node_id)
        rotate = await socket.receive_json_from(timeout=3)
        quiet = await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()
        return wake, rotate, quiet

    wake, rotate, quiet = async_to_sync(scenario)()
    assert wake == {"type": protocol.WS_WAKE}
    assert rotate == {"type": protocol.WS_ROTATE_KEY}
    assert quiet


def test_another_nodes_wake_is_not_delivered(agent, activation):
    other = Agent()
    other.register(*activation)

    async def scenario():
        socket = socket_of(agent)
        await socket.connect()
        await socket.receive_json_from(timeout=3)
        await asyncio.to_thread(wake_agents_on_commit, [other.node_id])
        quiet = await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()
        return quiet

    assert async_to_sync(scenario)()


def test_a_revoked_agent_is_told_why_and_closed_with_4403(agent):
    async def scenario():
        socket = socket_of(agent)
        await socket.connect()
        await socket.receive_json_from(timeout=3)
        await asyncio.to_thread(revoke_agent_on_commit, agent.node_id, "deregistered by ada")
        frame = await socket.receive_json_from(timeout=3)
        closed = await socket.receive_output(timeout=3)
        return frame, closed

    frame, closed = async_to_sync(scenario)()
    assert frame == {"type": protocol.WS_REVOKED, "message": "deregistered by ada"}
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_DEREGISTERED}


def test_the_agents_self_deregistration_closes_its_socket(agent):
    async def scenario():
        socket = socket_of(agent)
        await socket.connect()
        await socket.receive_json_from(timeout=3)
        response = await asyncio.to_thread(agent.post, protocol.DEREGISTER_PATH, {})
        frame = await socket.receive_json_from(timeout=3)
        closed = await socket.receive_output(timeout=3)
        return response.status_code, frame["type"], closed["code"]

    assert async_to_sync(scenario)() == (200, protocol.WS_REVOKED, protocol.CLOSE_DEREGISTERED)


def test_a_handshake_with_a_bad_signature_is_closed_with_4401(agent):
    closed = closed_with(agent, key=protocol.generate_private_key())
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHORIZED}


def test_a_handshake_from_an_unknown_node_is_closed_with_4401(agent):
    closed = closed_with(agent, node_id="mi-0000000000000000a")
    assert closed["code"] == protocol.CLOSE_UNAUTHORIZED


def test_a_handshake_from_a_deregistered_node_is_closed_with_4403(agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(status=NodeStatus.DEREGISTERED)
    assert closed_with(agent)["code"] == protocol.CLOSE_DEREGISTERED


def test_a_handshake_from_a_clone_is_closed_with_4409(agent):
    assert closed_with(agent, fingerprint="ab" * 16)["code"] == protocol.CLOSE_CLONE
    assert ManagedNode.objects.get(pk=agent.node_id).clone_suspected_at is not None


def test_an_unsigned_handshake_is_closed_with_4401(db):
    async def scenario():
        socket = WebsocketCommunicator(
            application, protocol.WEBSOCKET_PATH, headers=[(b"host", b"127.0.0.1:8000")]
        )
        await socket.connect()
        return await socket.receive_output(timeout=3)

    assert async_to_sync(scenario)()["code"] == protocol.CLOSE_UNAUTHORIZED


def test_a_handshake_in_another_protocol_version_is_closed_with_4426(agent):
    async def scenario():
        headers = [
            (name, b"9" if name == protocol.HEADER_PROTOCOL.lower().encode() else value)
            for name, value in agent.socket_headers()
        ]
        socket = WebsocketCommunicator(application, protocol.WEBSOCKET_PATH, headers=headers)
        await socket.connect()
        return await socket.receive_output(timeout=3)

    assert async_to_sync(scenario)()["code"] == protocol.CLOSE_PROTOCOL


def test_a_browser_socket_from_a_foreign_origin_is_still_refused(db):
    async def scenario():
        headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://evil.example")]
        socket = WebsocketCommunicator(application, "/ws/events/", headers=headers)
        connected, _ = await socket.connect()
        return connected

    assert async_to_sync(scenario)() is False
