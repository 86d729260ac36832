"""Session Manager on the agent, end to end on REAL PTYs: a StartSession message through the
agent's runtime, the session websocket against a fake server speaking the server's side of
agent/PROTOCOL.md "Session Manager" (signatures verified), credit, input, resize, terminate,
refusals, reconnects within the grace, the grace running out, and floods."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agent_fake_server import FakeBosun, Refused, eventually
from agent_harness import Harness, facts_provider, process_gone, register, running_agent
from aiohttp import WSMsgType, web

from bosun_agent import backoff, protocol, runtime, sessions
from bosun_agent.client import AgentClient, new_session
from bosun_agent.handlers import HandlerContext, RunningMessages, builtin_handlers
from bosun_agent.messages import Message
from bosun_agent.process_groups import RUN_MARKER_ENV, GroupRecords
from bosun_agent.simulated_commands import SimulatedCommands
from bosun_agent.statedir import StateDir

IS_ROOT = os.geteuid() == 0
SESSION_ID = "alice-0123456789abcdef0"
TIMEOUT = 20.0


@dataclass
class FakeSession:
    """What the server side of one session saw."""

    session_id: str
    known: bool = True
    connects: int = 0
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    bad_frames: list[bytes] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.texts if frame.get("type") == kind]

    def text(self) -> str:
        return self.output.decode(errors="replace")


class SessionBosun(FakeBosun):
    """The fake server with the agent's session websocket. Controls: `refuse_sessions` (the
    handshake answers 503), `regrant` (the fresh grant a reconnect gets), `send`, `drop`."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, FakeSession] = {}
        self.refuse_sessions = False
        self.regrant = protocol.SESSION_WINDOW_BYTES

    def add_routes(self, app: web.Application) -> None:
        path = protocol.SESSION_WEBSOCKET_PATH.replace("{session_id}", "{sid}")
        app.router.add_get(path, self.session_socket)

    def session(self, session_id: str = SESSION_ID) -> FakeSession:
        return self.sessions.setdefault(session_id, FakeSession(session_id))

    def send(self, frame: dict[str, Any] | bytes, session_id: str = SESSION_ID) -> None:
        async def go() -> None:
            ws = self.session(session_id).sockets[-1]
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_json(frame)

        self.call(go())

    def type(self, text: str, session_id: str = SESSION_ID) -> None:
        self.send(bytes([protocol.SESSION_FRAME_INPUT]) + text.encode(), session_id)

    def drop(self, code: int = 1001, session_id: str = SESSION_ID) -> None:
        for ws in list(self.session(session_id).sockets):
            self._close_requests[id(ws)] = (code, "going away")

    async def session_socket(self, request: web.Request) -> web.WebSocketResponse:
        if self.refuse_sessions:
            raise web.HTTPServiceUnavailable()
        session = self.session(request.match_info["sid"])
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            self.authenticate(request, b"")
        except Refused:
            await ws.close(code=protocol.CLOSE_UNAUTHORIZED, message=b"bad signature")
            return ws
        if not session.known:
            await ws.close(code=protocol.CLOSE_SESSION_UNKNOWN, message=b"no such session")
            return ws
        session.connects += 1
        session.paths.append(request.path)
        session.headers.append(dict(request.headers))
        session.sockets.append(ws)
        try:
            if session.connects > 1:
                await ws.send_json({"type": protocol.SESSION_GRANT, "bytes": self.regrant})
            while True:
                close = self._close_requests.pop(id(ws), None)
                if close is not None:
                    await ws.close(code=close[0], message=close[1].encode())
                    break
                try:
                    frame = await ws.receive(timeout=0.02)
                except asyncio.TimeoutError:
                    continue
                if frame.type == WSMsgType.BINARY:
                    if frame.data[:1] == bytes([protocol.SESSION_FRAME_OUTPUT]):
                        assert len(frame.data) - 1 <= protocol.SESSION_MAX_FRAME_BYTES
                        session.output += frame.data[1:]
                    else:
                        session.bad_frames.append(frame.data)
                elif frame.type == WSMsgType.TEXT:
                    session.texts.append(json.loads(frame.data))
                elif frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            session.sockets.remove(ws)
            session.closes.append(ws.close_code)
        return ws


@pytest.fixture
def bosun(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionBosun]:
    monkeypatch.setattr(backoff, "BACKOFF_BASE_SECONDS", 0.05)
    monkeypatch.setattr(backoff, "BACKOFF_CAP_SECONDS", 0.4)
    monkeypatch.setattr(runtime, "MIN_HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(sessions, "RECONNECT_BASE_SECONDS", 0.05)
    monkeypatch.setattr(sessions, "RECONNECT_CAP_SECONDS", 0.2)
    fake = SessionBosun().start()
    fake.heartbeat_interval = 0.2
    try:
        yield fake
    finally:
        fake.close()


def payload(**overrides: Any) -> dict[str, Any]:
    """A StartSession payload as session_start enqueues it."""
    return {
        "session_id": SESSION_ID,
        "run_as": "",
        "allow_root": IS_ROOT,
        "command": "",
        "profile": "",
        "cols": 80,
        "rows": 24,
        "idle_timeout_seconds": 1200,
        "max_duration_seconds": 0,
        **overrides,
    }


@asynccontextmanager
async def agent(server: SessionBosun, state_dir: Path) -> AsyncIterator[tuple[Harness, str]]:
    """A registered agent with the session handlers, running; yields it and its node id."""
    state = StateDir(state_dir, create=True)
    identity = await register(server, state)
    handlers = builtin_handlers(facts_provider)
    sessions.register_session_handlers(handlers)
    async with running_agent(server, state, handlers) as harness:
        await eventually(lambda: server.connected(identity.node_id) == 1)
        yield harness, identity.node_id


async def start(server: SessionBosun, node_id: str, **overrides: Any) -> tuple[str, int]:
    """Enqueue a StartSession; the message id and, once "started" came, the shell's pid."""
    message_id = server.enqueue(node_id, protocol.MESSAGE_START_SESSION, payload(**overrides))
    session = server.session(overrides.get("session_id", SESSION_ID))
    await eventually(lambda: session.of_type(protocol.SESSION_STARTED), TIMEOUT)
    (started,) = session.of_type(protocol.SESSION_STARTED)
    return message_id, int(started["pid"])


async def output_matches(session: FakeSession, pattern: str, timeout: float = TIMEOUT) -> None:
    await eventually(lambda: re.search(pattern, session.text()), timeout)


async def reply_of(server: SessionBosun, message_id: str) -> dict[str, Any]:
    await eventually(lambda: server.message(message_id).replies, TIMEOUT)
    return server.message(message_id).replies[0]


async def settled(read: Any, quiet: float = 0.5) -> Any:
    """`read()` once it has stopped changing for `quiet` seconds."""
    last, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        await asyncio.sleep(0.05)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_a_session_starts_relays_input_resize_and_ends_on_terminate(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id, pid = await start(bosun, node_id)
            session = bosun.session()
            (started,) = session.of_type(protocol.SESSION_STARTED)
            assert started["run_as"] and pid > 0 and not process_gone(pid)
            assert server_message_state(bosun, message_id) == "acked"

            bosun.type("echo hi-$((6 * 7))\n")
            await output_matches(session, r"hi-42")
            bosun.send({"type": protocol.SESSION_RESIZE, "cols": 100, "rows": 40})
            await asyncio.sleep(0.2)
            bosun.type("stty size\n")
            await output_matches(session, r"40 100")

            bosun.send({"type": protocol.SESSION_TERMINATE, "reason": "terminated"})
            await eventually(lambda: session.of_type(protocol.SESSION_EXITED), TIMEOUT)
            assert process_gone(pid)
            (exited,) = session.of_type(protocol.SESSION_EXITED)
            assert exited["reason"] == "terminated"
            assert isinstance(exited["status"], int) and exited["status"] > 128
            reply = await reply_of(bosun, message_id)
            assert reply["status"] == protocol.REPLY_SUCCESS
            result = reply["result"]
            assert result["end_reason"] == "terminated"
            assert result["exit_status"] == exited["status"]
            assert result["bytes_out"] == len(session.output)
            assert result["bytes_in"] == len("echo hi-$((6 * 7))\n") + len("stty size\n")
            assert session.bad_frames == []
            await eventually(lambda: not session.sockets)  # the agent closed it
            assert session.paths == [f"/ws/agent/sessions/{SESSION_ID}/"]

    asyncio.run(scenario())


def server_message_state(server: SessionBosun, message_id: str) -> str:
    return server.message(message_id).state


def test_a_shell_that_exits_by_itself_sends_exited_and_its_status(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id, _ = await start(bosun, node_id)
            bosun.type("exit 7\n")
            reply = await reply_of(bosun, message_id)
            assert reply["result"]["exit_status"] == 7
            assert reply["result"]["end_reason"] == "exited"
            (exited,) = bosun.session().of_type(protocol.SESSION_EXITED)
            assert exited == {"type": "exited", "status": 7, "reason": "exited"}

    asyncio.run(scenario())


def test_output_is_sent_within_the_credit_only_and_memory_stays_bounded_in_a_flood(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id, pid = await start(bosun, node_id, command="exec yes flood")
            session = bosun.session()
            window = protocol.SESSION_WINDOW_BYTES
            assert await settled(lambda: len(session.output)) == window
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await asyncio.sleep(1.5)  # `yes` keeps writing; nobody reads it
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert grown < 1024 * 1024, f"{grown} bytes more while flooded without credit"
            assert len(session.output) == window
            bosun.send({"type": protocol.SESSION_GRANT, "bytes": 1000})
            assert await settled(lambda: len(session.output)) == window + 1000
            assert session.text().startswith("flood\r\nflood\r\n")

            bosun.send({"type": protocol.SESSION_TERMINATE, "reason": "user ended it"})
            reply = await reply_of(bosun, message_id)
            assert process_gone(pid)
            assert reply["result"]["end_reason"] == "user ended it"
            # Without credit nothing more is read, also while the flood ends.
            assert len(session.output) == window + 1000

    asyncio.run(scenario())


def test_a_refused_run_as_user_is_a_refused_frame_and_a_failed_reply(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id = bosun.enqueue(
                node_id, protocol.MESSAGE_START_SESSION, payload(run_as="no-such-user-x9")
            )
            reply = await reply_of(bosun, message_id)
            session = bosun.session()
            assert reply["status"] == protocol.REPLY_FAILED
            assert "'no-such-user-x9' does not exist" in reply["result"]["error"]
            await eventually(lambda: session.of_type(protocol.SESSION_REFUSED))
            (refused,) = session.of_type(protocol.SESSION_REFUSED)
            assert refused["message"] == reply["result"]["error"]
            assert session.of_type(protocol.SESSION_STARTED) == []
            await eventually(lambda: not session.sockets)

    asyncio.run(scenario())


def test_a_dropped_socket_reconnects_within_the_grace_and_keeps_the_same_shell(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id, pid = await start(bosun, node_id)
            session = bosun.session()
            bosun.type("MARK=kept-$((40 + 2)); echo set\n")
            await output_matches(session, r"\bset\b")
            bosun.drop(1001)
            await eventually(lambda: session.connects == 2 and session.sockets, TIMEOUT)
            bosun.type("echo still-$MARK-$$\n")
            await output_matches(session, rf"still-kept-42-{pid}")
            assert not process_gone(pid)
            assert len(session.of_type(protocol.SESSION_STARTED)) == 1
            bosun.type("exit\n")
            reply = await reply_of(bosun, message_id)
            assert reply["result"]["end_reason"] == "exited"
            assert reply["result"]["bytes_out"] == len(session.output)

    asyncio.run(scenario())


def test_a_reconnect_holds_the_output_until_the_fresh_grant(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id, _ = await start(bosun, node_id, command="exec yes flood")
            session = bosun.session()
            window = protocol.SESSION_WINDOW_BYTES
            assert await settled(lambda: len(session.output)) == window
            bosun.regrant = 5000
            bosun.drop(1001)
            await eventually(lambda: session.connects == 2, TIMEOUT)
            assert await settled(lambda: len(session.output)) == window + 5000
            bosun.send({"type": protocol.SESSION_TERMINATE, "reason": "done"})
            await reply_of(bosun, message_id)

    asyncio.run(scenario())


def test_a_socket_gone_past_the_grace_ends_the_shell_and_the_reply_says_why(
    bosun: SessionBosun, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "SESSION_GRACE_SECONDS", 1.0)

    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id, pid = await start(bosun, node_id)
            bosun.refuse_sessions = True
            bosun.drop(1011)
            reply = await reply_of(bosun, message_id)
            assert process_gone(pid)
            assert reply["status"] == protocol.REPLY_SUCCESS
            assert reply["result"]["end_reason"] == sessions.LOST_SERVER
            assert bosun.session().connects == 1

    asyncio.run(scenario())


def test_an_agent_that_stops_ends_its_shells_and_says_so(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (harness, node_id):
            message_id, pid = await start(bosun, node_id)
            assert await harness.stop() == runtime.EXIT_OK
            assert process_gone(pid)
            session = bosun.session()
            await eventually(lambda: session.of_type(protocol.SESSION_EXITED))
            (exited,) = session.of_type(protocol.SESSION_EXITED)
            assert exited["reason"] == sessions.AGENT_STOPPED
            assert not list((state_dir / sessions.SESSION_PROCESSES_DIR).glob("*.json"))
            reply = await reply_of(bosun, message_id)
            assert reply["status"] == protocol.REPLY_FAILED
            assert "stopped" in reply["result"]["error"]

    asyncio.run(scenario())


def test_an_unknown_session_is_closed_4404_and_ends_the_shell(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            bosun.session().known = False
            message_id = bosun.enqueue(node_id, protocol.MESSAGE_START_SESSION, payload())
            reply = await reply_of(bosun, message_id)
            assert "4404" in reply["result"]["end_reason"]
            assert bosun.session().connects == 0

    asyncio.run(scenario())


def test_the_session_handshake_is_signed_for_the_session_path(
    bosun: SessionBosun, state_dir: Path
) -> None:
    """The fake server verifies the signature over the full session path (a wrong one is
    closed 4401 and never counted as a connect); here the headers themselves."""

    async def scenario() -> None:
        async with agent(bosun, state_dir) as (harness, node_id):
            await start(bosun, node_id)
            (headers,) = bosun.session().headers
            lookup = protocol.header_lookup(headers)
            assert lookup[0] == str(protocol.PROTOCOL_VERSION)
            assert lookup[1] == node_id
            assert all(lookup), "every signed header is there"
            message = protocol.canonical_request(
                method="GET",
                path=f"/ws/agent/sessions/{SESSION_ID}/",
                node_id=node_id,
                timestamp=lookup[2],
                nonce=lookup[3],
                fingerprint=lookup[4],
                protocol=lookup[0],
                body=b"",
            )
            public = harness.runtime.credentials.key.public_key()
            assert protocol.signature_valid(public, lookup[5], message)
            bosun.send({"type": protocol.SESSION_TERMINATE, "reason": "done"})

    asyncio.run(scenario())


def test_a_session_id_that_is_no_path_segment_is_refused_before_any_socket(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            for bad in ("../etc", "..", "a/b", "", "x" * 97):
                message_id = bosun.enqueue(
                    node_id, protocol.MESSAGE_START_SESSION, payload(session_id=bad)
                )
                reply = await reply_of(bosun, message_id)
                assert reply["status"] == protocol.REPLY_FAILED
                assert "session_id" in reply["result"]["error"]
            assert all(s.connects == 0 for s in bosun.sessions.values())

    asyncio.run(scenario())


def test_a_bad_terminal_size_is_refused_over_the_socket(
    bosun: SessionBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        async with agent(bosun, state_dir) as (_, node_id):
            message_id = bosun.enqueue(node_id, protocol.MESSAGE_START_SESSION, payload(cols=0))
            reply = await reply_of(bosun, message_id)
            assert reply["status"] == protocol.REPLY_FAILED
            assert "cols" in reply["result"]["error"]
            await eventually(lambda: bosun.session().of_type(protocol.SESSION_REFUSED))

    asyncio.run(scenario())


def test_the_simulator_answers_that_sessions_are_not_simulated() -> None:
    async def scenario() -> None:
        registry = builtin_handlers(facts_provider)
        SimulatedCommands().register(registry)
        message = Message("m-1", protocol.MESSAGE_START_SESSION, payload())
        reply = await registry.handle(message)
        assert reply.status == protocol.REPLY_FAILED
        assert reply.result == {"error": "sessions are not simulated"}

    asyncio.run(scenario())


def test_shells_a_crashed_agent_left_are_ended_at_start(tmp_path: Path) -> None:
    records = GroupRecords(tmp_path / sessions.SESSION_PROCESSES_DIR)
    shell = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 60 & sleep 60"],
        start_new_session=True,
        env={**os.environ, RUN_MARKER_ENV: SESSION_ID},
    )
    try:
        records.add(shell.pid, SESSION_ID, 0)

        async def scenario() -> None:
            registry = builtin_handlers(facts_provider)
            sessions.register_session_handlers(registry)

            async def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
                raise AssertionError("no call at start")

            context = HandlerContext("mi-0", call, RunningMessages(), state_dir=tmp_path)
            await registry.start(context)

        asyncio.run(scenario())
        assert shell.wait(10) != 0
        assert not list(records.directory.glob("*.json"))
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()


def test_the_client_refuses_a_session_id_that_is_no_path_segment(bosun: SessionBosun) -> None:
    async def scenario() -> None:
        async with new_session() as http:
            client = AgentClient(http, bosun.url)
            with pytest.raises(ValueError, match="session id"):
                await client.session_websocket(None, "../x")  # type: ignore[arg-type]

    asyncio.run(scenario())
