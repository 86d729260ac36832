from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun, free_port
from agent_harness import FACTS
from aiohttp import web

from bosun_agent import protocol
from bosun_agent.client import (
    ActivationRefused,
    AgentClient,
    BadRequest,
    Clone,
    Credentials,
    MessageNotFound,
    ProtocolRefused,
    Revoked,
    ServerRefusal,
    ServerUnavailable,
    Unauthorized,
    close_refusal,
    decode_answer,
    new_session,
    refusal,
    websocket_url,
)


def test_signed_headers_verify_with_the_servers_own_check() -> None:
    key = protocol.generate_private_key()
    credentials = Credentials("mi-0123456789abcdef0", key, "ab" * 32)
    body = b'{"agent_version":"0.1.0"}'
    headers = credentials.headers("POST", protocol.HEARTBEAT_PATH, body)
    proto, node, timestamp, nonce, fingerprint, signature = protocol.header_lookup(headers)
    message = protocol.canonical_request(
        method="POST",
        path=protocol.HEARTBEAT_PATH,
        node_id=node,
        timestamp=timestamp,
        nonce=nonce,
        fingerprint=fingerprint,
        protocol=proto,
        body=body,
    )
    public = protocol.load_public_key(protocol.public_key_text(key))
    assert protocol.signature_valid(public, signature, message)
    tampered = message.replace(
        protocol.body_digest(body).encode(), protocol.body_digest(b"{}").encode()
    )
    assert not protocol.signature_valid(public, signature, tampered)
    # Every request gets a fresh nonce, so none can be replayed as another.
    assert credentials.headers("POST", "/x")[protocol.HEADER_NONCE] != nonce


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, protocol.ERROR_BAD_REQUEST, BadRequest),
        (413, protocol.ERROR_TOO_LARGE, BadRequest),
        (401, protocol.ERROR_SIGNATURE, Unauthorized),
        (401, protocol.ERROR_STALE, Unauthorized),
        (401, protocol.ERROR_REPLAY, Unauthorized),
        (401, protocol.ERROR_UNKNOWN_NODE, Unauthorized),
        (403, protocol.ERROR_ACTIVATION, ActivationRefused),
        (403, protocol.ERROR_ACTIVATION_EXPIRED, ActivationRefused),
        (403, protocol.ERROR_ACTIVATION_EXHAUSTED, ActivationRefused),
        (403, protocol.ERROR_REVOKED, Revoked),
        (404, protocol.ERROR_NOT_FOUND, MessageNotFound),
        (409, protocol.ERROR_CLONE, Clone),
        (426, protocol.ERROR_PROTOCOL, ProtocolRefused),
        (418, "SomethingNew", ServerRefusal),
    ],
)
def test_each_refusal_code_becomes_its_own_error(
    status: int, code: str, kind: type[ServerRefusal]
) -> None:
    raw = json.dumps({"error": code, "message": "what happened"}).encode()
    with pytest.raises(kind) as caught:
        decode_answer(status, raw, "/p")
    assert type(caught.value) is kind
    assert caught.value.code == code
    assert str(caught.value) == f"what happened ({code})"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_trouble_means_try_again_later(status: int) -> None:
    with pytest.raises(ServerUnavailable):
        decode_answer(status, b"<html>Bad Gateway</html>", "/p")


def test_a_page_that_is_not_bosun_says_so() -> None:
    with pytest.raises(ServerRefusal, match="is the URL a Bosun server"):
        decode_answer(404, b"<html>Not Found</html>", "/agent/v1/register")


def test_websocket_close_codes_map_to_the_same_errors() -> None:
    assert isinstance(close_refusal(4403, "gone"), Revoked)
    assert isinstance(close_refusal(4409, ""), Clone)
    assert isinstance(close_refusal(4426, ""), ProtocolRefused)
    assert isinstance(close_refusal(4401, ""), Unauthorized)
    assert isinstance(close_refusal(4400, ""), BadRequest)
    assert close_refusal(1001, "restart") is None
    assert isinstance(refusal(403, "", ""), ActivationRefused)


def test_websocket_urls_follow_the_servers_scheme() -> None:
    assert websocket_url("http://h:8000/ws/agent/") == "ws://h:8000/ws/agent/"
    assert websocket_url("https://h/ws/agent/") == "wss://h/ws/agent/"
    assert websocket_url("wss://h/ws/agent/") == "wss://h/ws/agent/"
    assert websocket_url("ws://h:8001") == "ws://h:8001"


def test_only_http_urls_are_accepted() -> None:
    async def go() -> None:
        async with new_session() as session:
            with pytest.raises(ValueError, match="http:// or https://"):
                AgentClient(session, "ftp://bosun")
            with pytest.raises(ValueError):
                AgentClient(session, "bosun:8000")
            with pytest.raises(ValueError, match="ws:// or wss://"):
                AgentClient(session, "http://bosun", ws_url="ftp://bosun")

    asyncio.run(go())


def test_an_oversized_request_is_refused_before_it_is_sent() -> None:
    async def go() -> None:
        async with new_session() as session:
            client = AgentClient(session, "http://127.0.0.1:9")
            creds = Credentials("mi-0123456789abcdef0", protocol.generate_private_key(), "ab" * 8)
            with pytest.raises(BadRequest, match="limit"):
                await client.call("/x", {"blob": "x" * protocol.MAX_BODY_BYTES}, creds)

    asyncio.run(go())


def test_an_unreachable_server_is_unavailable_not_a_crash() -> None:
    async def go() -> None:
        async with new_session() as session:
            client = AgentClient(session, f"http://127.0.0.1:{free_port()}")
            with pytest.raises(ServerUnavailable, match="cannot reach"):
                await client.register(
                    activation_id="a",
                    activation_code="b",
                    public_key="c",
                    fingerprint="d",
                    facts={},
                )

    asyncio.run(go())


def test_registration_and_a_signed_call_pass_the_servers_checks(server: FakeBosun) -> None:
    async def go() -> dict[str, Any]:
        key = protocol.generate_private_key()
        async with new_session() as session:
            client = AgentClient(session, server.url + "/")
            answer = await client.register(
                activation_id=ACTIVATION_ID,
                activation_code=ACTIVATION_CODE,
                public_key=protocol.public_key_text(key),
                fingerprint="ab" * 16,
                facts=FACTS,
                name="db-1",
                tags={"Env": "dev"},
            )
            credentials = Credentials(answer["node_id"], key, "ab" * 16)
            return await client.call(protocol.HEARTBEAT_PATH, {"agent_version": "x"}, credentials)

    answer = asyncio.run(go())
    node = server.only_node()
    assert answer["status"] == "Online"
    assert node.heartbeats == 1
    assert (node.name, node.tags) == ("db-1", {"Env": "dev"})


def test_a_url_prefix_is_part_of_the_signed_path() -> None:
    seen: dict[str, bool] = {}
    key = protocol.generate_private_key()

    async def heartbeat(request: web.Request) -> web.Response:
        body = await request.read()
        proto, node, ts, nonce, fp, signature = protocol.header_lookup(request.headers)
        message = protocol.canonical_request(
            method="POST", path=request.path, node_id=node, timestamp=ts, nonce=nonce,
            fingerprint=fp, protocol=proto, body=body,
        )  # fmt: skip
        public = protocol.load_public_key(protocol.public_key_text(key))
        seen["valid"] = protocol.signature_valid(public, signature, message)
        return web.json_response({"status": "Online"})

    async def go() -> None:
        app = web.Application()
        app.router.add_post("/bosun" + protocol.HEARTBEAT_PATH, heartbeat)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with new_session() as session:
                client = AgentClient(session, f"http://127.0.0.1:{port}/bosun")
                creds = Credentials("mi-0123456789abcdef0", key, "ab" * 8)
                await client.call(protocol.HEARTBEAT_PATH, {}, creds)
        finally:
            await runner.cleanup()

    asyncio.run(go())
    assert seen == {"valid": True}


def test_the_websocket_follows_its_own_url_and_prefix_when_given() -> None:
    """Without a reverse proxy the websocket role listens apart from the HTTP one."""
    seen: dict[str, Any] = {}
    key = protocol.generate_private_key()

    async def agent_socket(request: web.Request) -> web.WebSocketResponse:
        proto, node, ts, nonce, fp, signature = protocol.header_lookup(request.headers)
        message = protocol.canonical_request(
            method="GET", path=request.path, node_id=node, timestamp=ts, nonce=nonce,
            fingerprint=fp, protocol=proto, body=b"",
        )  # fmt: skip
        public = protocol.load_public_key(protocol.public_key_text(key))
        seen["path"] = request.path
        seen["valid"] = protocol.signature_valid(public, signature, message)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    async def go() -> None:
        app = web.Application()
        app.router.add_get("/edge" + protocol.WEBSOCKET_PATH, agent_socket)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with new_session() as session:
                # Nothing listens at the HTTP URL: the websocket must not go there.
                client = AgentClient(
                    session,
                    f"http://127.0.0.1:{free_port()}/bosun",
                    ws_url=f"http://127.0.0.1:{port}/edge/",
                )
                assert client.ws_base_url == f"ws://127.0.0.1:{port}/edge"
                creds = Credentials("mi-0123456789abcdef0", key, "ab" * 8)
                websocket = await client.websocket(creds)
                await websocket.close()
        finally:
            await runner.cleanup()

    asyncio.run(go())
    assert seen == {"path": "/edge" + protocol.WEBSOCKET_PATH, "valid": True}


def test_without_a_websocket_url_the_websocket_goes_beside_the_http_endpoints() -> None:
    async def go() -> None:
        async with new_session() as session:
            assert AgentClient(session, "https://bosun/x/").ws_base_url == "wss://bosun/x"

    asyncio.run(go())
