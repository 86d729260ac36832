"""Acks and replies over the websocket: `SocketRequests` on its own, then the agent loop
against a fake server that pushes messages in its wake-ups and takes acks and replies as
request frames (agent/PROTOCOL.md "Websocket"), and that can answer late, wrongly or never."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, cast

import aiohttp
import pytest
from agent_fake_server import FakeBosun, FakeNode, Refused, eventually
from agent_harness import Harness, facts_provider, register, running_agent
from aiohttp import WSMsgType, web

from bosun_agent import backoff, protocol
from bosun_agent.client import BadRequest, MessageNotFound, ServerRefusal, ServerUnavailable
from bosun_agent.handlers import HandlerRegistry, builtin_handlers
from bosun_agent.messages import Message, Reply
from bosun_agent.socket_requests import (
    ANSWER_TIMEOUT_SECONDS,
    SocketRequests,
    SocketUnavailable,
)
from bosun_agent.state import MemoryState
from bosun_agent.statedir import StateDir

MESSAGE_ID = "7f9d3c1e-2b4a-4c5d-8e6f-0a1b2c3d4e5f"
OTHER_ID = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
BOTH = [protocol.WS_ACK, protocol.WS_REPLY]


# --- SocketRequests on its own --------------------------------------------------------------


class FakeSocket:
    """Stands in for the agent's aiohttp websocket: keeps the frames the agent sends."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail
        self.on_send: Callable[[dict[str, Any]], None] | None = None

    async def send_str(self, data: str) -> None:
        if self.fail is not None:
            raise self.fail
        frame = json.loads(data)
        self.sent.append(frame)
        if self.on_send is not None:
            self.on_send(frame)


def attached(accepted: Any = BOTH, *, timeout: float = 5.0) -> tuple[SocketRequests, FakeSocket]:
    requests = SocketRequests(timeout=timeout)
    socket = FakeSocket()
    requests.attach(cast(aiohttp.ClientWebSocketResponse, socket), accepted)
    return requests, socket


def answer(requests: SocketRequests, request_id: Any, **fields: Any) -> None:
    requests.on_answer({"type": protocol.WS_ANSWER, "id": request_id, **fields})


async def sent(socket: FakeSocket, count: int) -> None:
    await eventually(lambda: len(socket.sent) >= count, timeout=2)


def test_the_default_answer_timeout_is_30_seconds() -> None:
    assert ANSWER_TIMEOUT_SECONDS == 30.0
    assert SocketRequests().timeout == 30.0


def test_nothing_is_taken_before_a_hello() -> None:
    async def scenario() -> None:
        requests = SocketRequests()
        assert not requests.takes(protocol.WS_ACK)
        assert not requests.takes(protocol.WS_REPLY)
        with pytest.raises(SocketUnavailable):
            await requests.request(protocol.WS_ACK, MESSAGE_ID, {})

    asyncio.run(scenario())


def test_a_hello_listing_ack_and_reply_has_the_socket_take_both() -> None:
    requests, _ = attached(["ack", "reply"])
    assert requests.takes(protocol.WS_ACK)
    assert requests.takes(protocol.WS_REPLY)
    assert not requests.takes("output")  # only what the protocol defines as request frames


@pytest.mark.parametrize(
    "accepted",
    [None, [], "ack", ("ack", "reply"), {"ack": True}, ["output", "heartbeat", 3, None]],
    ids=["absent", "empty", "a-string", "a-tuple", "an-object", "unknown-kinds"],
)
def test_a_hello_without_a_usable_requests_list_has_nothing_taken(accepted: Any) -> None:
    """An older server lists nothing: every ack and reply goes over HTTP, nothing is sent."""

    async def scenario() -> None:
        requests, socket = attached(accepted)
        assert not requests.takes(protocol.WS_ACK)
        assert not requests.takes(protocol.WS_REPLY)
        for kind in BOTH:
            with pytest.raises(SocketUnavailable, match=f"does not take {kind}"):
                await requests.request(kind, MESSAGE_ID, {})
        assert socket.sent == []

    asyncio.run(scenario())


def test_a_hello_listing_only_ack_leaves_replies_to_http() -> None:
    async def scenario() -> None:
        requests, socket = attached(["ack"])
        assert requests.takes(protocol.WS_ACK)
        assert not requests.takes(protocol.WS_REPLY)
        with pytest.raises(SocketUnavailable):
            await requests.request(protocol.WS_REPLY, MESSAGE_ID, Reply.success().to_wire())
        assert socket.sent == []

    asyncio.run(scenario())


def test_a_request_sends_an_unsigned_frame_and_returns_the_answer() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        assert socket.sent == [{"type": "ack", "id": 1, "message_id": MESSAGE_ID}]
        assert not ack.done()
        answer(requests, 1, answer={"message_id": MESSAGE_ID, "state": "acked"})
        assert await ack == {"message_id": MESSAGE_ID, "state": "acked"}

        body = Reply.success(pong=True).to_wire()
        reply = asyncio.create_task(requests.request(protocol.WS_REPLY, MESSAGE_ID, body))
        await sent(socket, 2)
        assert socket.sent[1] == {
            "type": "reply",
            "id": 2,
            "message_id": MESSAGE_ID,
            "status": "Success",
            "result": {"pong": True},
        }
        answer(
            requests,
            2,
            answer={"message_id": MESSAGE_ID, "state": "succeeded", "accepted": True},
        )
        assert await reply == {"message_id": MESSAGE_ID, "state": "succeeded", "accepted": True}

    asyncio.run(scenario())


def test_answers_out_of_order_reach_the_request_with_their_id() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        first = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        second = asyncio.create_task(requests.request(protocol.WS_ACK, OTHER_ID, {}))
        await sent(socket, 2)
        ids = {frame["message_id"]: frame["id"] for frame in socket.sent}
        assert sorted(ids.values()) == [1, 2]
        answer(requests, ids[OTHER_ID], answer={"message_id": OTHER_ID, "state": "acked"})
        assert await second == {"message_id": OTHER_ID, "state": "acked"}
        assert not first.done()
        answer(requests, ids[MESSAGE_ID], answer={"message_id": MESSAGE_ID, "state": "acked"})
        assert await first == {"message_id": MESSAGE_ID, "state": "acked"}

    asyncio.run(scenario())


def test_an_answer_that_arrives_while_the_frame_is_being_sent_is_not_lost() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        socket.on_send = lambda frame: answer(
            requests, frame["id"], answer={"state": "acked", "echo": frame["message_id"]}
        )
        got = await asyncio.wait_for(requests.request(protocol.WS_ACK, MESSAGE_ID, {}), 2)
        assert got == {"state": "acked", "echo": MESSAGE_ID}

    asyncio.run(scenario())


@pytest.mark.parametrize("body", [None, [], "acked", 7], ids=["null", "list", "text", "number"])
def test_an_answer_that_is_not_an_object_counts_as_an_empty_one(body: Any) -> None:
    async def scenario() -> None:
        requests, socket = attached()
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        answer(requests, 1, answer=body)
        assert await ack == {}

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (protocol.ERROR_NOT_FOUND, MessageNotFound),
        (protocol.ERROR_BAD_REQUEST, BadRequest),
        (protocol.ERROR_TOO_LARGE, BadRequest),
    ],
)
def test_an_error_answer_raises_the_refusal_http_would_have(
    code: str, error_type: type[ServerRefusal]
) -> None:
    async def scenario() -> None:
        requests, socket = attached()
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        answer(requests, 1, error=code, message="what happened")
        with pytest.raises(error_type) as raised:
            await ack
        assert raised.value.code == code
        assert raised.value.message == "what happened"
        assert not isinstance(raised.value, SocketUnavailable)

    asyncio.run(scenario())


def test_an_internal_error_answer_means_the_server_is_unavailable_for_now() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        reply = asyncio.create_task(
            requests.request(protocol.WS_REPLY, MESSAGE_ID, Reply.success().to_wire())
        )
        await sent(socket, 1)
        answer(requests, 1, error=protocol.ERROR_INTERNAL, message="the database went away")
        with pytest.raises(ServerUnavailable, match="the database went away"):
            await reply

    asyncio.run(scenario())


def test_an_unknown_error_code_is_a_plain_refusal_named_by_its_code() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        answer(requests, 1, error="SomethingNew")  # no message: the code stands in
        with pytest.raises(ServerRefusal) as raised:
            await ack
        assert type(raised.value) is ServerRefusal
        assert raised.value.code == "SomethingNew"
        assert raised.value.message == "SomethingNew"

    asyncio.run(scenario())


def test_answers_with_unknown_or_unusable_ids_are_ignored() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        for request_id in (99, 0, -1, "1", 1.0, None, [1]):
            answer(requests, request_id, answer={"state": "wrong"})
            answer(requests, request_id, error=protocol.ERROR_NOT_FOUND, message="wrong")
        requests.on_answer({"type": protocol.WS_ANSWER, "answer": {"state": "no id"}})
        await asyncio.sleep(0.05)
        assert not ack.done()
        answer(requests, 1, answer={"state": "acked"})
        assert await ack == {"state": "acked"}

    asyncio.run(scenario())


def test_a_second_answer_to_the_same_id_is_dropped() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        answer(requests, 1, answer={"state": "acked"})
        answer(requests, 1, error=protocol.ERROR_NOT_FOUND, message="too late")  # no effect
        assert await ack == {"state": "acked"}
        answer(requests, 1, answer={"state": "later still"})  # nobody waits: nothing happens
        # The next request has its own id; the stale answers never reach it.
        reply = asyncio.create_task(requests.request(protocol.WS_ACK, OTHER_ID, {}))
        await sent(socket, 2)
        assert socket.sent[1]["id"] == 2
        answer(requests, 1, answer={"state": "stale"})
        await asyncio.sleep(0.05)
        assert not reply.done()
        answer(requests, 2, answer={"state": "acked", "message_id": OTHER_ID})
        assert await reply == {"state": "acked", "message_id": OTHER_ID}

    asyncio.run(scenario())


def test_no_answer_in_time_is_socket_unavailable_and_a_late_answer_is_dropped() -> None:
    async def scenario() -> None:
        requests, socket = attached(timeout=0.1)
        started = time.monotonic()
        with pytest.raises(SocketUnavailable, match=r"no answer over the websocket in 0\.1 s"):
            await requests.request(protocol.WS_ACK, MESSAGE_ID, {})
        assert 0.09 <= time.monotonic() - started < 2
        answer(requests, 1, answer={"state": "acked"})  # late: nobody waits, nothing breaks
        # The socket stays usable for the next request.
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, OTHER_ID, {}))
        await sent(socket, 2)
        answer(requests, 2, answer={"state": "acked"})
        assert await ack == {"state": "acked"}

    asyncio.run(scenario())


def test_detach_fails_every_waiting_request_with_socket_unavailable() -> None:
    async def scenario() -> None:
        requests, socket = attached()
        waiting = [
            asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {})),
            asyncio.create_task(
                requests.request(protocol.WS_REPLY, OTHER_ID, Reply.success().to_wire())
            ),
        ]
        await sent(socket, 2)
        requests.detach()
        for task in waiting:
            with pytest.raises(SocketUnavailable, match="the websocket closed"):
                await asyncio.wait_for(task, 1)
        assert not requests.takes(protocol.WS_ACK)
        assert not requests.takes(protocol.WS_REPLY)
        answer(requests, 1, answer={"state": "acked"})  # from the dead socket: dropped
        with pytest.raises(SocketUnavailable):
            await requests.request(protocol.WS_ACK, MESSAGE_ID, {})
        assert len(socket.sent) == 2
        requests.detach()  # twice (the loop's finally after a stop) is harmless

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError("Cannot write to closing transport"),
        RuntimeError("websocket is closed"),
        aiohttp.ClientConnectionError("connection lost"),
    ],
    ids=["connection-reset", "runtime-error", "client-error"],
)
def test_a_frame_that_cannot_be_sent_means_the_socket_is_unavailable(
    failure: BaseException,
) -> None:
    async def scenario() -> None:
        requests = SocketRequests(timeout=5)
        broken = FakeSocket(fail=failure)
        requests.attach(cast(aiohttp.ClientWebSocketResponse, broken), BOTH)
        started = time.monotonic()
        with pytest.raises(SocketUnavailable, match="could not send over the websocket"):
            await requests.request(protocol.WS_ACK, MESSAGE_ID, {})
        assert time.monotonic() - started < 1  # at once, not after the answer timeout
        # The failed request waits for nothing: a reconnected socket works as before.
        socket = FakeSocket()
        requests.attach(cast(aiohttp.ClientWebSocketResponse, socket), BOTH)
        ack = asyncio.create_task(requests.request(protocol.WS_ACK, MESSAGE_ID, {}))
        await sent(socket, 1)
        answer(requests, socket.sent[0]["id"], answer={"state": "acked"})
        assert await ack == {"state": "acked"}

    asyncio.run(scenario())


def test_each_hello_decides_anew_what_the_socket_takes() -> None:
    """A reconnect may reach another server (an upgrade in progress, a load balancer)."""
    requests, _ = attached(BOTH)
    requests.detach()
    requests.attach(cast(aiohttp.ClientWebSocketResponse, FakeSocket()), None)  # an older one
    assert not requests.takes(protocol.WS_ACK)
    assert not requests.takes(protocol.WS_REPLY)
    requests.detach()
    requests.attach(cast(aiohttp.ClientWebSocketResponse, FakeSocket()), ["reply"])
    assert not requests.takes(protocol.WS_ACK)
    assert requests.takes(protocol.WS_REPLY)


# --- The agent loop against a server that takes acks and replies over the socket ------------


class SocketBosun(FakeBosun):
    """The fake server with the websocket's request frames and pushed messages.

    Request frames are recorded in `socket_frames` and in `requests` as `ws-ack`/`ws-reply`
    (HTTP requests keep their route names), and answered with what the HTTP endpoints would
    have answered. Controls: `hello_requests` (None: an older server, no `requests` in its
    hello), `answer_errors` (kind → error codes to answer first), `unanswered` (kinds taken
    and never answered nor recorded), `answer_delay` (seconds before each answer) and
    `max_unanswered` (like protocol.MAX_SOCKET_REQUESTS: more are refused with SocketBusy).
    """

    def __init__(self) -> None:
        super().__init__()
        self.hello_requests: list[str] | None = list(protocol.WS_REQUESTS)
        self.socket_frames: list[dict[str, Any]] = []
        self.answer_errors: dict[str, list[str]] = {}
        self.unanswered: set[str] = set()
        self.answer_delay = 0.0
        self.max_unanswered = protocol.MAX_SOCKET_REQUESTS

    def push_messages(self, node_id: str, *message_ids: str) -> None:
        """A wake-up carrying these messages (which stay pending, as on the real server)."""
        wires = []
        for message_id in message_ids:
            try:
                message = self.message(message_id)
            except KeyError:  # not this server's: its ack is refused MessageNotFound
                wires.append(wire(message_id, "Count"))
                continue
            wires.append(wire(message_id, message.kind, message.payload))
        self.push(node_id, {"type": protocol.WS_WAKE, "messages": wires})

    def frames(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.socket_frames if frame.get("type") == kind]

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws, node = await self.websocket_open(request)
        if node is None:
            return ws
        answering: set[asyncio.Task[None]] = set()
        try:
            hello: dict[str, Any] = {
                "type": protocol.WS_HELLO,
                "protocol": 1,
                "heartbeat_interval": self.heartbeat_interval,
                "pending_messages": sum(1 for m in node.messages if m.state == "pending"),
            }
            if self.hello_requests is not None:
                hello["requests"] = list(self.hello_requests)
            await ws.send_json(hello)
            while True:
                close = self._close_requests.pop(id(ws), None)
                if close is not None:
                    await ws.close(code=close[0], message=close[1].encode())
                    break
                try:
                    frame = await ws.receive(timeout=0.02)
                except asyncio.TimeoutError:
                    continue
                if frame.type == WSMsgType.TEXT:
                    self._request_frame(node, ws, frame.data, answering)
                elif frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            node.websockets.remove(ws)
            for task in answering:
                task.cancel()
        return ws

    def _request_frame(
        self,
        node: FakeNode,
        ws: web.WebSocketResponse,
        text: str,
        answering: set[asyncio.Task[None]],
    ) -> None:
        frame = json.loads(text)
        assert isinstance(frame, dict), "the agent sends JSON objects"
        kind = frame.get("type")
        self.socket_frames.append(frame)
        self.requests.append((f"ws-{kind}", node.node_id))
        if kind in self.unanswered:
            return
        if len(answering) >= self.max_unanswered:
            busy = f"more than {self.max_unanswered} requests unanswered on this socket"
            task = asyncio.ensure_future(
                self._send(ws, error_frame(frame.get("id"), protocol.ERROR_SOCKET_BUSY, busy))
            )
        else:
            task = asyncio.ensure_future(self._answer(node, ws, frame))
            answering.add(task)
            task.add_done_callback(answering.discard)

    async def _answer(
        self, node: FakeNode, ws: web.WebSocketResponse, frame: dict[str, Any]
    ) -> None:
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        request_id, kind = frame.get("id"), frame.get("type")
        errors = self.answer_errors.get(str(kind))
        if errors:
            code = errors.pop(0)
            await self._send(ws, error_frame(request_id, code, f"injected {code}"))
            return
        # The HTTP endpoints' own logic, so both ways record exactly the same.
        route = cast(web.Request, SimpleNamespace(match_info={"mid": frame.get("message_id")}))
        try:
            if kind == protocol.WS_ACK:
                body = await self.ack(route, node, {})
            elif kind == protocol.WS_REPLY:
                data = {"status": frame.get("status"), "result": frame.get("result", {})}
                body = await self.reply(route, node, data)
            else:
                raise Refused(400, protocol.ERROR_BAD_REQUEST, f"type: {kind}")
        except Refused as refused:
            await self._send(ws, error_frame(request_id, refused.code, refused.message))
            return
        await self._send(ws, {"type": protocol.WS_ANSWER, "id": request_id, "answer": body})

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json(frame)


def wire(message_id: str, kind: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message as a wake-up carries it: what a fetch would return."""
    return {
        "message_id": message_id,
        "kind": kind,
        "payload": payload or {},
        "created_at": time.time(),
        "lease_seconds": protocol.LEASE_SECONDS,
        "delivery_count": 0,
    }


def error_frame(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": protocol.WS_ANSWER, "id": request_id, "error": code, "message": message}


@pytest.fixture
def bosun(monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketBosun]:
    """Quick backoff; heartbeats at the server's 60 s, so after the first one (and the run's
    first fetch) no HTTP request happens unless the websocket path falls back to it."""
    monkeypatch.setattr(backoff, "BACKOFF_BASE_SECONDS", 0.05)
    monkeypatch.setattr(backoff, "BACKOFF_CAP_SECONDS", 0.4)
    fake = SocketBosun().start()
    try:
        yield fake
    finally:
        fake.close()


def counting_handlers(calls: list[str], gate: asyncio.Event | None = None) -> HandlerRegistry:
    """`Count` records each run (and waits for `gate` when given)."""
    registry = builtin_handlers(facts_provider)

    async def count(message: Message) -> Reply:
        calls.append(message.message_id)
        if gate is not None:
            await gate.wait()
        return Reply.success(counted=len(calls))

    registry.register("Count", count)
    return registry


async def settled(server: SocketBosun, node_id: str, agent: Harness) -> int:
    """The agent is connected, has read the hello and made its run's first fetch; returns how
    many requests the server has seen, so a test can look at what comes after."""
    await eventually(lambda: server.connected(node_id) == 1)
    await eventually(lambda: len(server.fetch_bodies) >= 1)
    if server.hello_requests:
        await eventually(lambda: agent.runtime.socket_requests.takes(server.hello_requests[0]))
    return len(server.requests)


def routes_since(server: SocketBosun, start: int) -> list[str]:
    return [name for name, _ in server.requests[start:]]


def test_a_pushed_message_is_journaled_acked_run_and_replied_over_the_socket_alone(
    bosun: SocketBosun, state_dir: Path
) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
            assert agent.runtime.stats.messages_answered == 1
        assert calls == [MESSAGE_ID]
        # Nothing over HTTP: no fetch, no ack, no reply.
        assert routes_since(bosun, start) == ["ws-ack", "ws-reply"]
        # The frames carry no signature: the handshake authenticated the socket.
        assert bosun.socket_frames == [
            {"type": "ack", "id": 1, "message_id": MESSAGE_ID},
            {
                "type": "reply",
                "id": 2,
                "message_id": MESSAGE_ID,
                "status": "Success",
                "result": {"counted": 1},
            },
        ]
        message = bosun.message(MESSAGE_ID)
        assert message.delivery_count == 0  # never fetched
        assert message.replies == [{"status": "Success", "result": {"counted": 1}}]
        on_disk = StateDir(state_dir)
        assert on_disk.journaled(MESSAGE_ID)
        assert on_disk.interrupted() == []
        assert on_disk.outbox() == []
        assert on_disk.saved_reply(MESSAGE_ID) == Reply.success(counted=1)

    asyncio.run(scenario())


def test_several_messages_in_one_wake_up_each_run_once(bosun: SocketBosun) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            for message_id in (MESSAGE_ID, OTHER_ID):
                bosun.enqueue(identity.node_id, "Count", message_id=message_id, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID, OTHER_ID)
            for message_id in (MESSAGE_ID, OTHER_ID):
                await eventually(lambda m=message_id: bosun.message(m).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
        assert sorted(calls) == sorted([MESSAGE_ID, OTHER_ID])
        assert sorted(routes_since(bosun, start)) == ["ws-ack"] * 2 + ["ws-reply"] * 2

    asyncio.run(scenario())


def test_the_same_message_pushed_twice_runs_once(bosun: SocketBosun) -> None:
    calls: list[str] = []
    bosun.answer_delay = 0.3  # the second push arrives while the first ack waits

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
            assert calls == [MESSAGE_ID]
            assert bosun.message(MESSAGE_ID).replies == [
                {"status": "Success", "result": {"counted": 1}}
            ]
            # The second push was acked again (the server learns it runs), never run.
            assert len(bosun.frames(protocol.WS_ACK)) == 2
            assert len(bosun.frames(protocol.WS_REPLY)) == 1

            # Pushed once more after it finished: the saved reply answers, it does not run.
            bosun.answer_delay = 0.0
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: len(bosun.message(MESSAGE_ID).replies) == 2)
            await eventually(lambda: state.outbox() == [])
        assert calls == [MESSAGE_ID]
        assert (
            bosun.message(MESSAGE_ID).replies
            == [{"status": "Success", "result": {"counted": 1}}] * 2
        )
        assert "fetch" not in routes_since(bosun, start)

    asyncio.run(scenario())


@pytest.mark.parametrize("first", ["push", "fetch"])
def test_a_message_both_pushed_and_fetched_runs_once(bosun: SocketBosun, first: str) -> None:
    calls: list[str] = []
    bosun.answer_delay = 0.5  # whichever takes it first waits for its ack meanwhile

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        node_id = identity.node_id
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, node_id, agent)
            bosun.enqueue(node_id, "Count", message_id=MESSAGE_ID, wake=False)
            if first == "push":
                bosun.push_messages(node_id, MESSAGE_ID)
                bosun.push(node_id, {"type": protocol.WS_WAKE})  # a wake-up without messages
            else:
                bosun.push(node_id, {"type": protocol.WS_WAKE})
                await eventually(lambda: bosun.message(MESSAGE_ID).delivery_count == 1)
                bosun.push_messages(node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
            # The wake-up without messages had the agent fetch: the fetch handed it out too.
            assert bosun.message(MESSAGE_ID).delivery_count == 1
            assert "fetch" in routes_since(bosun, start)
        assert calls == [MESSAGE_ID]
        assert bosun.message(MESSAGE_ID).replies == [
            {"status": "Success", "result": {"counted": 1}}
        ]
        assert len(bosun.frames(protocol.WS_REPLY)) == 1
        assert not {"ack", "reply"} & set(routes_since(bosun, start))

    asyncio.run(scenario())


def test_a_push_of_a_message_that_is_running_does_not_run_it_again(bosun: SocketBosun) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        gate = asyncio.Event()
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls, gate)) as agent:
            await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: calls == [MESSAGE_ID])
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "acked")
            bosun.push_messages(identity.node_id, MESSAGE_ID)  # its lease ran out, say
            await eventually(lambda: len(bosun.frames(protocol.WS_ACK)) == 2)
            assert bosun.frames(protocol.WS_REPLY) == []
            gate.set()
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
        assert calls == [MESSAGE_ID]
        assert bosun.message(MESSAGE_ID).replies == [
            {"status": "Success", "result": {"counted": 1}}
        ]

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["unknown-to-the-server", "withdrawn"])
def test_an_ack_answered_message_not_found_over_the_socket_is_not_run(
    bosun: SocketBosun, state_dir: Path, how: str
) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            if how == "withdrawn":
                bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
                bosun.answer_errors[protocol.WS_ACK] = [protocol.ERROR_NOT_FOUND]
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            # Journaled before its ack, then closed in the journal when the ack was refused.
            await eventually(
                lambda: state.journaled(MESSAGE_ID) and MESSAGE_ID not in state.interrupted()
            )
            await asyncio.sleep(0.3)  # time enough for a run that must not happen
            assert calls == []
            assert MESSAGE_ID not in agent.runtime._in_flight
        assert routes_since(bosun, start) == ["ws-ack"]  # no HTTP retry, no reply
        assert state.outbox() == []
        assert state.saved_reply(MESSAGE_ID) is None
        on_disk = StateDir(state_dir)
        assert on_disk.journaled(MESSAGE_ID)  # never run here, even if it came back
        assert on_disk.interrupted() == []  # nor answered "interrupted" by the next run
        if how == "withdrawn":
            assert bosun.message(MESSAGE_ID).replies == []

    asyncio.run(scenario())


def test_an_ack_answered_internal_error_runs_the_message_anyway_without_http(
    bosun: SocketBosun,
) -> None:
    calls: list[str] = []
    bosun.answer_errors[protocol.WS_ACK] = [protocol.ERROR_INTERNAL]

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
        assert calls == [MESSAGE_ID]
        # Journaled, so it runs at most once; "try later" is not "send it over HTTP now".
        assert routes_since(bosun, start) == ["ws-ack", "ws-reply"]

    asyncio.run(scenario())


def test_a_reply_answered_internal_error_stays_in_the_outbox_and_is_sent_again(
    bosun: SocketBosun, state_dir: Path
) -> None:
    calls: list[str] = []
    bosun.answer_errors[protocol.WS_REPLY] = [protocol.ERROR_INTERNAL]

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded", timeout=5)
            await eventually(lambda: state.outbox() == [])
            assert agent.runtime.stats.replies_deferred == 1
            assert agent.runtime.stats.messages_answered == 1
        assert calls == [MESSAGE_ID]
        assert len(bosun.frames(protocol.WS_REPLY)) == 2  # refused for now, then taken
        assert bosun.message(MESSAGE_ID).replies == [
            {"status": "Success", "result": {"counted": 1}}
        ]
        # The retry is the outbox's (its work fetches afterwards), over the socket again.
        assert not {"ack", "reply"} & set(routes_since(bosun, start))

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", [protocol.WS_ACK, protocol.WS_REPLY])
def test_when_the_socket_drops_while_a_request_waits_it_goes_over_http(
    bosun: SocketBosun, state_dir: Path, kind: str
) -> None:
    calls: list[str] = []
    bosun.unanswered = {kind}  # the server took the frame and died before answering

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: len(bosun.frames(kind)) == 1)
            await asyncio.sleep(0.1)
            # The frame was never recorded: a reply waits with its ack recorded, an ack alone.
            waiting_state = "acked" if kind == protocol.WS_REPLY else "pending"
            assert bosun.message(MESSAGE_ID).state == waiting_state
            if kind == protocol.WS_REPLY:
                assert [mid for mid, _ in state.outbox()] == [MESSAGE_ID]
            bosun.close_websockets(identity.node_id, 1001, "going away")
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded", timeout=5)
            await eventually(lambda: state.outbox() == [])
            assert agent.runtime.stats.messages_answered == 1
            await eventually(lambda: bosun.connected(identity.node_id) == 1)  # back again
        assert calls == [MESSAGE_ID]
        assert kind in routes_since(bosun, start)  # the HTTP route of the same name
        assert bosun.message(MESSAGE_ID).replies == [
            {"status": "Success", "result": {"counted": 1}}
        ]
        assert StateDir(state_dir).outbox() == []

    asyncio.run(scenario())


def test_a_request_without_an_answer_in_time_goes_over_http(bosun: SocketBosun) -> None:
    calls: list[str] = []
    bosun.unanswered = {protocol.WS_ACK}

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            agent.runtime.socket_requests.timeout = 0.2
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
            assert bosun.connected(identity.node_id) == 1  # the socket itself stays
        assert calls == [MESSAGE_ID]
        assert routes_since(bosun, start) == ["ws-ack", "ack", "ws-reply"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("hello_requests", "expected"),
    [
        (None, ["fetch", "ack", "reply"]),
        ([], ["fetch", "ack", "reply"]),
        (["ack"], ["fetch", "ws-ack", "reply"]),
        (["reply"], ["fetch", "ack", "ws-reply"]),
    ],
    ids=["no-requests-key", "empty-list", "ack-only", "reply-only"],
)
def test_what_the_hello_does_not_list_goes_over_http(
    bosun: SocketBosun, hello_requests: list[str] | None, expected: list[str]
) -> None:
    """An older server's hello lists nothing and its wake-ups carry no messages."""
    calls: list[str] = []
    bosun.hello_requests = hello_requests

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID)  # a bare wake-up
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
        assert calls == [MESSAGE_ID]
        assert routes_since(bosun, start) == expected
        assert [frame["type"] for frame in bosun.socket_frames] == [
            route[3:] for route in expected if route.startswith("ws-")
        ]

    asyncio.run(scenario())


def test_a_pushed_message_from_a_server_without_socket_requests_is_acked_over_http(
    bosun: SocketBosun,
) -> None:
    calls: list[str] = []
    bosun.hello_requests = None

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            start = await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await eventually(lambda: state.outbox() == [])
        assert calls == [MESSAGE_ID]
        assert routes_since(bosun, start) == ["ack", "reply"]  # still no fetch
        assert bosun.socket_frames == []

    asyncio.run(scenario())


def test_unusable_pushed_messages_are_skipped_and_the_rest_run(bosun: SocketBosun) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            await settled(bosun, identity.node_id, agent)
            bosun.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
            bad = [
                "not an object",
                {"message_id": "../../etc/passwd", "kind": "Count"},
                {"message_id": OTHER_ID},  # no kind
                {"message_id": OTHER_ID, "kind": "Count", "payload": [1]},
            ]
            bosun.push(
                identity.node_id,
                {"type": protocol.WS_WAKE, "messages": [*bad, wire(MESSAGE_ID, "Count")]},
            )
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            assert not agent.task.done()
        assert calls == [MESSAGE_ID]
        assert [frame["message_id"] for frame in bosun.socket_frames] == [MESSAGE_ID] * 2

    asyncio.run(scenario())


def test_a_reply_refused_because_the_socket_is_busy_is_not_lost(bosun: SocketBosun) -> None:
    calls: list[str] = []
    bosun.max_unanswered = 1  # protocol.MAX_SOCKET_REQUESTS, scaled down
    bosun.answer_delay = 0.3

    async def scenario() -> None:
        gate = asyncio.Event()
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls, gate)) as agent:
            await settled(bosun, identity.node_id, agent)
            for message_id in (MESSAGE_ID, OTHER_ID):
                bosun.enqueue(identity.node_id, "Count", message_id=message_id, wake=False)
                bosun.push_messages(identity.node_id, message_id)
                await eventually(lambda m=message_id: bosun.message(m).state == "acked")
            gate.set()  # both finish at once: two replies on the socket together
            await eventually(lambda: state.outbox() == [])
            await asyncio.sleep(0.5)
        assert sorted(calls) == sorted([MESSAGE_ID, OTHER_ID])
        assert bosun.message(MESSAGE_ID).state == "succeeded"
        assert bosun.message(OTHER_ID).state == "succeeded"

    asyncio.run(scenario())


def test_an_ack_refused_because_the_socket_is_busy_still_runs_the_message(
    bosun: SocketBosun,
) -> None:
    calls: list[str] = []
    bosun.max_unanswered = 1  # protocol.MAX_SOCKET_REQUESTS, scaled down
    bosun.answer_delay = 0.3

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(bosun, state)
        async with running_agent(bosun, state, counting_handlers(calls)) as agent:
            await settled(bosun, identity.node_id, agent)
            for message_id in (MESSAGE_ID, OTHER_ID):
                bosun.enqueue(identity.node_id, "Count", message_id=message_id, wake=False)
            # Two wake-ups, two acks on the socket at once.
            bosun.push_messages(identity.node_id, MESSAGE_ID)
            bosun.push_messages(identity.node_id, OTHER_ID)
            await eventually(lambda: bosun.message(MESSAGE_ID).state == "succeeded")
            await asyncio.sleep(0.5)
            # The heartbeat's pending count would bring the other one back: a fetch.
            bosun.push(identity.node_id, {"type": protocol.WS_WAKE})
            await eventually(lambda: bosun.message(OTHER_ID).replies != [])
        assert sorted(calls) == sorted([MESSAGE_ID, OTHER_ID])
        assert bosun.message(OTHER_ID).replies[0]["status"] == "Success"

    asyncio.run(scenario())
