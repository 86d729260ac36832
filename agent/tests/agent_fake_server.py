"""A test double of the Bosun server's agent endpoints, for the agent's unit tests only.

It follows agent/PROTOCOL.md and verifies every signature with bosun_agent.protocol, the
code the real server uses, so a signing mistake in the agent fails here. It runs on its own
event loop in a thread: the agent under test (or its CLI, which calls asyncio.run itself)
keeps the main thread. Real end-to-end tests against Django live elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bosun_agent import protocol

T = TypeVar("T")

ACTIVATION_ID = "5d2b0f4e-0000-4000-8000-000000000001"
ACTIVATION_CODE = "correct-horse-battery"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class FakeActivation:
    code: str
    uses_left: int = 1000
    expired: bool = False


@dataclass
class FakeMessage:
    message_id: str
    kind: str
    payload: dict[str, Any]
    state: str = "pending"
    lease_until: float = 0.0
    delivery_count: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)
    # Run Command: the output stored per (step, stream), and every upload body's chunks.
    output: dict[tuple[int, str], str] = field(default_factory=dict)
    uploads: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass
class FakeNode:
    node_id: str
    public_key: str
    fingerprint: str
    name: str
    tags: dict[str, str]
    facts: dict[str, Any]
    previous_key: str = ""
    previous_valid_until: float = 0.0
    revoked: bool = False
    rotate_key: bool = False
    heartbeats: int = 0
    messages: list[FakeMessage] = field(default_factory=list)
    websockets: list[web.WebSocketResponse] = field(default_factory=list)
    clone_seen: str = ""


class FakeBosun:
    def __init__(self) -> None:
        self.activations = {ACTIVATION_ID: FakeActivation(ACTIVATION_CODE)}
        self.nodes: dict[str, FakeNode] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.heartbeat_interval: float = 60
        self.lease_seconds = 120
        self.protocols = protocol.SUPPORTED_PROTOCOL_VERSIONS
        self.failures: dict[str, list[int]] = {}  # route name → statuses to answer first
        self.lose_rotate_answer = False
        self.refuse_websockets = False
        self._close_requests: dict[int, tuple[int, str]] = {}
        self.requests: list[tuple[str, str]] = []  # (route, node id)
        self.fetch_bodies: list[dict[str, Any]] = []
        # Run Command's SecureString values; a name in `denied_parameters` is AccessDenied.
        self.secure_parameters: dict[str, str] = {}
        self.denied_parameters: set[str] = set()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    # Lifecycle, from the test's thread.

    def start(self) -> FakeBosun:
        if not self._thread.is_alive():
            self._thread.start()
        self.call(self._start())
        return self

    def stop(self) -> None:
        self.call(self._stop())

    def close(self) -> None:
        if self._runner is not None:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post(protocol.REGISTER_PATH, self._route("register", self.register))
        app.router.add_post(protocol.HEARTBEAT_PATH, self._route("heartbeat", self.heartbeat))
        app.router.add_post(protocol.FETCH_PATH, self._route("fetch", self.fetch))
        app.router.add_post(
            protocol.ACK_PATH.replace("{message_id}", "{mid}"), self._route("ack", self.ack)
        )
        app.router.add_post(
            protocol.REPLY_PATH.replace("{message_id}", "{mid}"), self._route("reply", self.reply)
        )
        app.router.add_post(protocol.FACTS_PATH, self._route("facts", self.facts))
        app.router.add_post(
            protocol.OUTPUT_PATH.replace("{message_id}", "{mid}"),
            self._route("output", self.output),
        )
        app.router.add_post(
            protocol.SECURE_PARAMETERS_PATH,
            self._route("secure-parameters", self.secure_parameters_endpoint),
        )
        app.router.add_post(protocol.ROTATE_KEY_PATH, self._route("rotate", self.rotate_key))
        app.router.add_post(protocol.DEREGISTER_PATH, self._route("deregister", self.deregister))
        app.router.add_get(protocol.WEBSOCKET_PATH, self.websocket)
        self.add_routes(app)
        app.on_shutdown.append(self._close_websockets)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    def add_routes(self, app: web.Application) -> None:
        """More endpoints, for a test file's subclass (the router is frozen once serving)."""

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _close_websockets(self, app: web.Application) -> None:
        for node in self.nodes.values():
            for ws in node.websockets:
                self._close_requests[id(ws)] = (1001, "server restarting")
        for _ in range(250):
            if not any(node.websockets for node in self.nodes.values()):
                return
            await asyncio.sleep(0.02)

    # Test controls.

    def fail(self, route: str, *statuses: int) -> None:
        self.failures.setdefault(route, []).extend(statuses)

    def enqueue(
        self,
        node_id: str,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        wake: bool = True,
        message_id: str | None = None,
    ) -> str:
        message = FakeMessage(message_id or str(uuid.uuid4()), kind, payload or {})

        async def add() -> None:  # on the server's loop, never beside a request using the list
            self.nodes[node_id].messages.append(message)

        self.call(add())
        if wake:
            self.push(node_id, {"type": protocol.WS_WAKE})
        return message.message_id

    def push(self, node_id: str, frame: dict[str, Any]) -> None:
        async def send() -> None:
            for ws in list(self.nodes[node_id].websockets):
                await ws.send_json(frame)

        self.call(send())

    def close_websockets(self, node_id: str, code: int, reason: str = "") -> None:
        for ws in list(self.nodes[node_id].websockets):
            self._close_requests[id(ws)] = (code, reason)

    def revoke(self, node_id: str) -> None:
        self.nodes[node_id].revoked = True
        self.push(node_id, {"type": protocol.WS_REVOKED, "message": "deregistered by admin"})

    def message(self, message_id: str) -> FakeMessage:
        for node in self.nodes.values():
            for message in node.messages:
                if message.message_id == message_id:
                    return message
        raise KeyError(message_id)

    def command_output(self, message_id: str, step: int, stream: str) -> str:
        """A step's stream as the server ends up with it: the uploads, then the reply's tail."""
        message = self.message(message_id)
        text = message.output.get((step, stream), "")
        if message.replies:
            tail = message.replies[0]["result"]["steps"][step][stream]
            assert tail["offset"] <= len(text), "the reply's tail leaves a gap"
            text = text[: tail["offset"]] + tail["data"]
        return text

    def only_node(self) -> FakeNode:
        (node,) = self.nodes.values()
        return node

    def connected(self, node_id: str) -> int:
        return len(self.nodes[node_id].websockets)

    # Request plumbing.

    def _route(self, name: str, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            pending = self.failures.get(name)
            if pending:
                status = pending.pop(0)
                self.requests.append((f"{name}!", ""))
                injected = {"error": "Injected", "message": "injected"}
                return web.json_response(injected, status=status)
            try:
                if len(body) > protocol.MAX_BODY_BYTES:
                    raise Refused(413, protocol.ERROR_TOO_LARGE, "too large")
                node = None if name == "register" else self.authenticate(request, body)
                self.requests.append((name, node.node_id if node else ""))
                data = json.loads(body or b"{}")
                answer = await handler(request, node, data)
            except Refused as refused:
                return web.json_response(
                    {"error": refused.code, "message": refused.message}, status=refused.status
                )
            return web.json_response(answer, status=201 if name == "register" else 200)

        return wrapped

    def authenticate(self, request: web.Request, body: bytes) -> FakeNode:
        proto, node_id, timestamp, nonce, fingerprint, signature = protocol.header_lookup(
            request.headers
        )
        if not proto.isdigit() or int(proto) not in self.protocols:
            raise Refused(426, protocol.ERROR_PROTOCOL, f"this server speaks {self.protocols}")
        node = self.nodes.get(node_id)
        if node is None:
            raise Refused(401, protocol.ERROR_UNKNOWN_NODE, "unknown node")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            raise Refused(401, protocol.ERROR_STALE, "stale")
        message = protocol.canonical_request(
            method=request.method,
            path=request.path,
            node_id=node_id,
            timestamp=timestamp,
            nonce=nonce,
            fingerprint=fingerprint,
            protocol=proto,
            body=body,
        )
        keys = [node.public_key]
        if node.previous_key and time.time() < node.previous_valid_until:
            keys.append(node.previous_key)
        if not any(
            protocol.signature_valid(protocol.load_public_key(k), signature, message) for k in keys
        ):
            raise Refused(401, protocol.ERROR_SIGNATURE, "bad signature")
        if (node_id, nonce) in self.nonces:
            raise Refused(401, protocol.ERROR_REPLAY, "replayed")
        self.nonces.add((node_id, nonce))
        if node.revoked:
            raise Refused(403, protocol.ERROR_REVOKED, "this node was deregistered")
        if fingerprint != node.fingerprint:
            node.clone_seen = fingerprint
            raise Refused(409, protocol.ERROR_CLONE, "suspected clone")
        return node

    # Endpoints.

    async def register(self, request: web.Request, _: Any, data: dict[str, Any]) -> Any:
        if data.get("protocol") not in self.protocols:
            raise Refused(426, protocol.ERROR_PROTOCOL, f"this server speaks {self.protocols}")
        activation = self.activations.get(str(data.get("activation_id")))
        if activation is None or activation.code != data.get("activation_code"):
            raise Refused(403, protocol.ERROR_ACTIVATION, "the activation id or code is wrong")
        if activation.expired:
            raise Refused(403, protocol.ERROR_ACTIVATION_EXPIRED, "the activation expired")
        if activation.uses_left <= 0:
            raise Refused(403, protocol.ERROR_ACTIVATION_EXHAUSTED, "the activation is used up")
        try:
            protocol.load_public_key(str(data.get("public_key")))
        except ValueError as exc:
            raise Refused(400, protocol.ERROR_BAD_REQUEST, f"public_key: {exc}") from exc
        activation.uses_left -= 1
        node_id = "mi-" + secrets.token_hex(9)[:17]
        facts = data.get("facts") or {}
        node = FakeNode(
            node_id=node_id,
            public_key=data["public_key"],
            fingerprint=data["fingerprint"],
            name=data.get("name") or facts.get("hostname", ""),
            tags=data.get("tags") or {},
            facts=facts,
        )
        self.nodes[node_id] = node
        return {
            "protocol": 1,
            "node_id": node_id,
            "name": node.name,
            "heartbeat_interval": self.heartbeat_interval,
            "server_time": time.time(),
        }

    async def heartbeat(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        node.heartbeats += 1
        now = time.time()
        pending = sum(
            1
            for m in node.messages
            if m.state == "pending" or (m.state == "leased" and m.lease_until < now)
        )
        return {
            "protocol": 1,
            "status": "Online",
            "heartbeat_interval": self.heartbeat_interval,
            "pending_messages": pending,
            "rotate_key": node.rotate_key,
            "server_time": now,
        }

    async def fetch(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        now = time.time()
        batch: list[dict[str, Any]] = []
        # As the server: a restarted agent's first fetch takes back what it leased unacked.
        reclaim = data.get("reclaim") is True
        self.fetch_bodies.append(dict(data))
        for message in node.messages:
            due = message.state == "pending" or (
                message.state == "leased" and (reclaim or message.lease_until < now)
            )
            if due and len(batch) < int(data.get("max", 10)):
                message.state = "leased"
                message.lease_until = now + self.lease_seconds
                message.delivery_count += 1
                batch.append(
                    {
                        "message_id": message.message_id,
                        "kind": message.kind,
                        "payload": message.payload,
                        "created_at": now,
                        "lease_seconds": self.lease_seconds,
                        "delivery_count": message.delivery_count,
                    }
                )
        return {"messages": batch}

    def _message(self, node: FakeNode, message_id: str) -> FakeMessage:
        for message in node.messages:
            if message.message_id == message_id:
                return message
        raise Refused(404, protocol.ERROR_NOT_FOUND, "no such message")

    async def ack(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        message = self._message(node, request.match_info["mid"])
        if message.state in ("pending", "leased"):
            message.state = "acked"
        return {"message_id": message.message_id, "state": message.state}

    async def reply(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        message = self._message(node, request.match_info["mid"])
        if data.get("status") not in protocol.REPLY_STATUSES:
            raise Refused(400, protocol.ERROR_BAD_REQUEST, "status")
        message.replies.append(data)
        accepted = message.state not in ("succeeded", "failed")
        if accepted:
            message.state = "succeeded" if data["status"] == protocol.REPLY_SUCCESS else "failed"
            if message.kind == protocol.MESSAGE_REFRESH_HOST_FACTS:
                node.facts = data.get("result", {}).get("facts", node.facts)
        return {"message_id": message.message_id, "state": message.state, "accepted": accepted}

    async def output(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        message = self._message(node, request.match_info["mid"])
        chunks = data.get("chunks")
        if not isinstance(chunks, list) or not chunks or len(chunks) > protocol.MAX_OUTPUT_CHUNKS:
            raise Refused(400, protocol.ERROR_BAD_REQUEST, "chunks")
        stored = 0
        for chunk in chunks:
            key = (chunk["step"], chunk["stream"])
            offset, text = chunk["offset"], chunk["data"]
            if chunk["stream"] not in ("stdout", "stderr"):
                raise Refused(400, protocol.ERROR_BAD_REQUEST, "stream")
            if len(text) > protocol.MAX_OUTPUT_CHUNK_CHARS:
                raise Refused(400, protocol.ERROR_BAD_REQUEST, "data is too long")
            have = message.output.get(key, "")
            if offset > len(have):
                raise Refused(400, protocol.ERROR_BAD_REQUEST, f"offset {offset} leaves a gap")
            if offset + len(text) <= len(have):
                assert have[offset : offset + len(text)] == text, "a resent chunk differs"
                continue  # stored already: ignored
            message.output[key] = have[:offset] + text
            stored += 1
        message.uploads.append(chunks)
        return {"stored": stored}

    async def secure_parameters_endpoint(
        self, request: web.Request, node: FakeNode, data: Any
    ) -> Any:
        self._message(node, str(data.get("message_id")))
        names = data.get("names") or []
        for name in names:
            if name in self.denied_parameters:
                raise Refused(403, protocol.ERROR_ACCESS_DENIED, f"you may not read {name}")
            if name not in self.secure_parameters:
                raise Refused(400, protocol.ERROR_PARAMETER_NOT_FOUND, f"no parameter {name}")
        return {"parameters": {name: self.secure_parameters[name] for name in names}}

    async def facts(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        node.facts = data["facts"]
        return {"updated": True}

    async def rotate_key(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        new_key: Ed25519PublicKey = protocol.load_public_key(str(data.get("public_key")))
        if not protocol.key_rotation_proof_valid(new_key, node.node_id, str(data.get("proof"))):
            raise Refused(400, protocol.ERROR_BAD_REQUEST, "proof")
        if data["public_key"] != node.public_key:
            node.previous_key, node.public_key = node.public_key, data["public_key"]
            node.previous_valid_until = time.time() + protocol.KEY_OVERLAP_SECONDS
        node.rotate_key = False
        if self.lose_rotate_answer:
            self.lose_rotate_answer = False
            raise Refused(503, "Injected", "the answer was lost")
        return {"rotated_at": time.time()}

    async def deregister(self, request: web.Request, node: FakeNode, data: Any) -> Any:
        node.revoked = True
        for ws in list(node.websockets):
            await ws.send_json({"type": protocol.WS_REVOKED, "message": "deregistered"})
        return {"status": "Deregistered"}

    async def websocket_open(
        self, request: web.Request
    ) -> tuple[web.WebSocketResponse, FakeNode | None]:
        """Accept a websocket and authenticate its handshake; a refused one is closed with
        the protocol's code and comes back without a node."""
        if self.refuse_websockets:
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            node = self.authenticate(request, b"")
        except Refused as refused:
            close_code = {401: 4401, 403: 4403, 409: 4409, 426: 4426}.get(refused.status, 4400)
            await ws.close(code=close_code, message=refused.message.encode())
            return ws, None
        node.websockets.append(ws)
        return ws, node

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws, node = await self.websocket_open(request)
        if node is None:
            return ws
        try:
            pending = sum(1 for m in node.messages if m.state == "pending")
            await ws.send_json(
                {
                    "type": protocol.WS_HELLO,
                    "protocol": 1,
                    "heartbeat_interval": self.heartbeat_interval,
                    "pending_messages": pending,
                }
            )
            while True:
                # A close the test asks for is made here, by the task that reads: closing
                # from another task while this one reads is not safe on older aiohttp.
                close = self._close_requests.pop(id(ws), None)
                if close is not None:
                    await ws.close(code=close[0], message=close[1].encode())
                    break
                try:
                    frame = await ws.receive(timeout=0.02)
                except asyncio.TimeoutError:
                    continue
                if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            node.websockets.remove(ws)
        return ws


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll from a thread that is not running an event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


async def eventually(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll from inside a running event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached in time")
