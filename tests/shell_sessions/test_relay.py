"""The relay over the real ASGI application: the agent's session socket (signed like the
agent's own) and the browser's, talking through the channel layer."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.asgi import application
from sessions import relay
from sessions.models import Session, SessionStatus
from sessions.services.recording import recording_cast, recording_verify
from sessions.services.sessions import session_start, session_terminate
from sessions.wire import SESSION_WEBSOCKET_PATH, SESSION_WINDOW_BYTES
from tests.factories import UserFactory
from tests.fleet.protocol.agents import Agent, activation_make

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 3


@pytest.fixture
def agent(db) -> Agent:
    registering = Agent()
    response = registering.register(*activation_make(limit=5))
    assert response.status_code == 201, response.content
    return registering


@pytest.fixture
def shell(agent, admin_user) -> Session:
    """A session ada started on the agent's node (Connecting: no socket yet)."""
    return session_start(principal=Principal(user=admin_user), node_id=agent.node_id)


def agent_socket(agent: Agent, session_id: str, **overrides) -> WebsocketCommunicator:
    path = SESSION_WEBSOCKET_PATH.format(session_id=session_id)
    signed = agent.headers(path, method="GET", **overrides)
    headers = [(b"host", b"127.0.0.1:8000")] + [
        (name.lower().encode(), value.encode()) for name, value in signed.items()
    ]
    return WebsocketCommunicator(application, path, headers=headers)


def cookie_of(user) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def browser_socket(
    cookie: bytes | None, session_id: str, *, resume: int | None = None
) -> WebsocketCommunicator:
    path = f"/ws/sessions/{session_id}/"
    if resume is not None:
        path += f"?resume={resume}"
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


async def json_of(socket: WebsocketCommunicator, kind: str) -> dict:
    """The next JSON frame of type `kind`, skipping others (status updates come and go)."""
    deadline = time.monotonic() + WAIT
    while True:
        output = await socket.receive_output(timeout=max(0.01, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            raise AssertionError(f"closed with {output.get('code')} waiting for {kind}")
        text = output.get("text")
        if text is not None and json.loads(text).get("type") == kind:
            return json.loads(text)


async def output_of(socket: WebsocketCommunicator, size: int) -> list[tuple[int, bytes]]:
    """Output frames (offset, bytes) until `size` bytes came, skipping text frames."""
    frames: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + WAIT
    while sum(len(data) for _, data in frames) < size:
        output = await socket.receive_output(timeout=max(0.01, deadline - time.monotonic()))
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            (offset,) = struct.unpack(">Q", output["bytes"][:8])
            frames.append((offset, output["bytes"][8:]))
    return frames


async def closed_code(socket: WebsocketCommunicator) -> int:
    deadline = time.monotonic() + WAIT
    while True:
        output = await socket.receive_output(timeout=max(0.01, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


async def agent_frames(socket: WebsocketCommunicator, count: int) -> list[dict]:
    """The next `count` frames the agent received: {"bytes": …} or the JSON object."""
    frames = []
    for _ in range(count):
        output = await socket.receive_output(timeout=WAIT)
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            frames.append({"bytes": output["bytes"]})
        else:
            frames.append(json.loads(output["text"]))
    return frames


async def open_pair(agent: Agent, session: Session, cookie: bytes, *, started: bool = True):
    home = agent_socket(agent, session.session_id)
    assert (await home.connect())[0]
    viewer = browser_socket(cookie, session.session_id)
    assert (await viewer.connect())[0]
    if started:
        await home.send_json_to({"type": "started", "run_as": "ssm-user", "pid": 4242})
        await json_of(viewer, "status")
        status = await json_of(viewer, "status")
        while status["status"] != "Connected":
            status = await json_of(viewer, "status")
    return home, viewer


def reload(session: Session) -> Session:
    return Session.objects.get(pk=session.pk)


# --- The agent's socket ---------------------------------------------------------------------


def test_an_unknown_session_is_closed_with_4404(agent):
    async def scenario():
        socket = agent_socket(agent, "ada-0123456789abcdef0")
        connected, _ = await socket.connect()
        return connected, await closed_code(socket)

    assert async_to_sync(scenario)() == (True, 4404)


def test_another_nodes_session_is_closed_with_4404(agent, shell):
    other = Agent()
    assert other.register(*activation_make()).status_code == 201

    async def scenario():
        socket = agent_socket(other, shell.session_id)
        await socket.connect()
        return await closed_code(socket)

    assert async_to_sync(scenario)() == 4404


def test_an_ended_session_is_closed_with_4404(agent, shell, admin_user):
    session_terminate(principal=Principal(user=admin_user), session_id=shell.session_id)

    async def scenario():
        socket = agent_socket(agent, shell.session_id)
        await socket.connect()
        return await closed_code(socket)

    assert async_to_sync(scenario)() == 4404


def test_an_unsigned_handshake_is_refused_with_the_protocols_code(agent, shell):
    async def scenario():
        path = SESSION_WEBSOCKET_PATH.format(session_id=shell.session_id)
        socket = WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1")])
        await socket.connect()
        return await closed_code(socket)

    assert async_to_sync(scenario)() == 4401


def test_a_handshake_signed_for_another_path_is_refused(agent, shell):
    async def scenario():
        path = SESSION_WEBSOCKET_PATH.format(session_id=shell.session_id)
        signed = agent.headers("/ws/agent/", method="GET")
        headers = [(k.lower().encode(), v.encode()) for k, v in signed.items()]
        socket = WebsocketCommunicator(application, path, headers=headers)
        await socket.connect()
        return await closed_code(socket)

    assert async_to_sync(scenario)() == 4401


def test_started_output_and_input_are_relayed_both_ways(agent, shell, admin_user):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        await home.send_to(bytes_data=b"\x01hello ")
        await home.send_to(bytes_data=b"\x01world\r\n")
        frames = await output_of(viewer, 13)
        await viewer.send_to(bytes_data=b"ls -l\r")
        await viewer.send_json_to({"type": "resize", "cols": 132, "rows": 43})
        to_agent = await agent_frames(home, 2)
        await home.disconnect()
        await viewer.disconnect()
        return frames, to_agent

    frames, to_agent = async_to_sync(scenario)()
    assert frames == [(0, b"hello "), (6, b"world\r\n")]
    assert to_agent == [{"bytes": b"\x02ls -l\r"}, {"type": "resize", "cols": 132, "rows": 43}]
    session = reload(shell)
    # Started as the agent said; its socket closed without an ending, so the shell waits.
    assert session.run_as == "ssm-user" and session.status == SessionStatus.DISCONNECTED


def test_acks_grant_credit_that_never_exceeds_the_window(agent, shell, admin_user):
    cookie = cookie_of(admin_user)
    piece = 64 * 1024

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        # The agent spends its whole first window.
        for n in range(SESSION_WINDOW_BYTES // piece):
            await home.send_to(bytes_data=b"\x01" + bytes([65 + n]) * piece)
        await output_of(viewer, SESSION_WINDOW_BYTES)
        quiet_before_ack = await home.receive_nothing(timeout=0.3)
        await viewer.send_json_to({"type": "ack", "offset": 3 * piece})
        (first,) = await agent_frames(home, 1)
        # Acking the same again, or beyond the output, grants nothing more than the room.
        await viewer.send_json_to({"type": "ack", "offset": 3 * piece})
        await viewer.send_json_to({"type": "ack", "offset": 10 * SESSION_WINDOW_BYTES})
        (second,) = await agent_frames(home, 1)
        quiet = await home.receive_nothing(timeout=0.3)
        await home.disconnect()
        await viewer.disconnect()
        return quiet_before_ack, first, second, quiet

    quiet_before_ack, first, second, quiet = async_to_sync(scenario)()
    assert quiet_before_ack  # no credit before the browser has rendered anything
    assert first == {"type": "grant", "bytes": 3 * piece}
    # Everything is acked now: the agent may hold the whole window again, never more.
    assert second == {"type": "grant", "bytes": SESSION_WINDOW_BYTES - 3 * piece}
    assert quiet
    assert first["bytes"] + second["bytes"] <= SESSION_WINDOW_BYTES


def test_a_browser_that_reconnects_with_resume_gets_the_missed_output_exactly_once(
    agent, shell, admin_user
):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        await home.send_to(bytes_data=b"\x01before ")
        seen = await output_of(viewer, 7)
        await viewer.disconnect()
        await home.send_to(bytes_data=b"\x01missed ")
        await home.send_to(bytes_data=b"\x01also ")
        await asyncio.sleep(0.2)
        last = seen[-1][0] + len(seen[-1][1])
        again = browser_socket(cookie, shell.session_id, resume=last)
        assert (await again.connect())[0]
        replayed = await output_of(again, 12)
        await home.send_to(bytes_data=b"\x01live")
        live = await output_of(again, 4)
        nothing_twice = await again.receive_nothing(timeout=0.3)
        await home.disconnect()
        await again.disconnect()
        return replayed, live, nothing_twice

    replayed, live, nothing_twice = async_to_sync(scenario)()
    assert b"".join(data for _, data in replayed) == b"missed also "
    assert replayed[0][0] == 7
    assert live == [(19, b"live")]
    assert nothing_twice


def test_the_recording_is_written_sealed_and_holds_exactly_the_output(agent, shell, admin_user):
    cookie = cookie_of(admin_user)
    # A character split across frames, and a flood bigger than one chunk.
    sent = [b"caf\xc3", b"\xa9 \xe2\x9c\x93\r\n", b"x" * 70_000, b"\x1b[0mdone\r\n"]

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        for data in sent:
            for start in range(0, len(data), 65536):
                await home.send_to(bytes_data=b"\x01" + data[start : start + 65536])
        await viewer.send_to(bytes_data=b"exit\r")
        await agent_frames(home, 1)
        await viewer.send_json_to({"type": "resize", "cols": 100, "rows": 30})
        await agent_frames(home, 1)
        await home.send_json_to({"type": "exited", "status": 0, "reason": "exited"})
        ended = await json_of(viewer, "ended")
        viewer_closed = await closed_code(viewer)
        agent_closed = await closed_code(home)
        return ended, viewer_closed, agent_closed

    ended, viewer_closed, agent_closed = async_to_sync(scenario)()
    assert ended == {"type": "ended", "reason": "exited (status 0)", "status": "Terminated"}
    assert (viewer_closed, agent_closed) == (4410, 1000)
    session = reload(shell)
    assert session.status == SessionStatus.TERMINATED and session.ended_at
    assert session.bytes_out == sum(len(data) for data in sent)
    assert session.bytes_in == 5
    assert session.is_sealed and session.recording_chunks >= 2
    assert recording_verify(session=session).ok
    lines = b"".join(recording_cast(session=session)).decode().splitlines()
    events = [json.loads(line) for line in lines[1:]]
    output = "".join(text for _, code, text in events if code == "o")
    assert output.encode() == b"".join(sent)
    assert ["i", "exit\r"] in [[code, text] for _, code, text in events]
    assert ["r", "100x30"] in [[code, text] for _, code, text in events]
    assert AuditEvent.objects.filter(action="bosun:EndSession").count() == 1


def test_input_is_not_recorded_when_the_setting_says_so(agent, admin_user, settings):
    settings.BOSUN_SESSION_RECORD_INPUT = False
    session = session_start(principal=Principal(user=admin_user), node_id=agent.node_id)
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, session, cookie)
        await viewer.send_to(bytes_data=b"s3cret\r")
        await agent_frames(home, 1)
        await home.send_to(bytes_data=b"\x01ok\r\n")
        await output_of(viewer, 4)
        await home.send_json_to({"type": "exited", "status": 0, "reason": "exited"})
        await closed_code(home)

    async_to_sync(scenario)()
    cast = b"".join(recording_cast(session=reload(session))).decode()
    assert "s3cret" not in cast and "ok" in cast


def test_a_failing_mandatory_recording_ends_the_session_within_two_seconds(
    agent, shell, admin_user, monkeypatch
):
    cookie = cookie_of(admin_user)

    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(relay, "recording_append", broken)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        began = time.monotonic()
        await home.send_to(bytes_data=b"\x01secret output\r\n")
        terminate = await json_of(home, "terminate")
        ended = await json_of(viewer, "ended")
        took = time.monotonic() - began
        return terminate, ended, took, await closed_code(home)

    terminate, ended, took, agent_closed = async_to_sync(scenario)()
    assert took < 2
    assert terminate == {"type": "terminate", "reason": "recording failed"}
    assert ended["status"] == "Failed" and ended["reason"] == "recording failed"
    assert agent_closed == 1000
    session = reload(shell)
    assert session.status == SessionStatus.FAILED and session.end_reason == "recording failed"


def test_an_idle_session_is_ended(agent, shell, admin_user, monkeypatch):
    monkeypatch.setattr(relay, "MINUTE_SECONDS", 0.4)  # the 20 idle minutes become 8 s
    Session.objects.filter(pk=shell.pk).update(idle_timeout_minutes=1)
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        ended = await json_of(viewer, "ended")
        return ended, await json_of(home, "terminate")

    ended, terminate = async_to_sync(scenario)()
    assert ended == {"type": "ended", "reason": "idle timeout", "status": "Terminated"}
    assert terminate["reason"] == "idle timeout"
    assert reload(shell).end_reason == "idle timeout"


@pytest.mark.parametrize("counts_output", [True, False])
def test_output_keeps_a_session_from_its_idle_timeout_unless_only_typing_counts(
    agent, shell, admin_user, monkeypatch, counts_output
):
    monkeypatch.setattr(relay, "MINUTE_SECONDS", 1.0)  # an idle minute becomes a second
    Session.objects.filter(pk=shell.pk).update(
        idle_timeout_minutes=1, idle_counts_output=counts_output
    )
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        # `tail -f`: output every 0.2 s for 2.5 s, nobody typing.
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            await home.send_to(bytes_data=b"\x01log line\r\n")
            await asyncio.sleep(0.2)
        reason = (await database_sync_to_async(reload)(shell)).end_reason
        await home.disconnect()
        await viewer.disconnect()
        return reason

    assert async_to_sync(scenario)() == ("" if counts_output else "idle timeout")


def test_the_agents_refusal_fails_the_session_with_its_message(agent, shell, admin_user):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie, started=False)
        await home.send_json_to({"type": "refused", "message": "no user bob on this node"})
        return await json_of(viewer, "ended")

    ended = async_to_sync(scenario)()
    assert ended["status"] == "Failed"
    assert "no user bob on this node" in ended["reason"]
    assert reload(shell).status == SessionStatus.FAILED


def test_malformed_agent_frames_close_its_socket(agent, shell):
    async def scenario():
        codes = []
        for frame in ({"bytes_data": b"\x07junk"}, {"text_data": "not json"}):
            home = agent_socket(agent, shell.session_id)
            await home.connect()
            await home.send_to(**frame)
            codes.append(await closed_code(home))
        home = agent_socket(agent, shell.session_id)
        await home.connect()
        await home.send_to(bytes_data=b"\x01" + b"x" * (64 * 1024 + 1))
        codes.append(await closed_code(home))
        return codes

    assert async_to_sync(scenario)() == [4400, 4400, 4400]


# --- The browser's socket -------------------------------------------------------------------


def test_the_owner_terminates_from_the_browser(agent, shell, admin_user):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        await viewer.send_json_to({"type": "terminate"})
        terminate = await json_of(home, "terminate")
        ended = await json_of(viewer, "ended")
        return terminate, ended, await closed_code(viewer)

    terminate, ended, code = async_to_sync(scenario)()
    assert terminate == {"type": "terminate", "reason": "terminated by ada"}
    assert ended["reason"] == "terminated by ada" and code == 4410
    assert reload(shell).status == SessionStatus.TERMINATED
    assert AuditEvent.objects.filter(action="ssm:TerminateSession", outcome="success").exists()


def test_a_terminate_from_a_service_reaches_the_relay(agent, shell, admin_user):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        await asyncio.to_thread(
            session_terminate, principal=Principal(user=admin_user), session_id=shell.session_id
        )
        return await json_of(home, "terminate"), await json_of(viewer, "ended")

    terminate, ended = async_to_sync(scenario)()
    assert terminate["reason"] == "terminated by ada"
    assert ended["status"] == "Terminated"


def test_another_user_is_closed_with_4403_and_audited(agent, shell):
    mallory = UserFactory(username="mallory")
    cookie = cookie_of(mallory)

    async def scenario():
        socket = browser_socket(cookie, shell.session_id)
        connected, _ = await socket.connect()
        return connected, await closed_code(socket)

    assert async_to_sync(scenario)() == (True, 4403)
    denied = AuditEvent.objects.get(action="ssm:ResumeSession", outcome="denied")
    assert denied.principal == "mallory"


def test_a_signed_out_browser_is_closed_with_4401(shell):
    async def scenario():
        socket = browser_socket(None, shell.session_id)
        await socket.connect()
        return await closed_code(socket)

    assert async_to_sync(scenario)() == 4401


def test_a_foreign_origin_is_refused(shell, admin_user):
    cookie = cookie_of(admin_user)

    async def scenario():
        socket = WebsocketCommunicator(
            application,
            f"/ws/sessions/{shell.session_id}/",
            headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)],
        )
        connected, _ = await socket.connect()
        return connected

    assert async_to_sync(scenario)() is False


def test_an_ended_session_says_so_and_closes_with_4410(shell, admin_user):
    session_terminate(principal=Principal(user=admin_user), session_id=shell.session_id)
    cookie = cookie_of(admin_user)

    async def scenario():
        socket = browser_socket(cookie, shell.session_id)
        await socket.connect()
        ended = await json_of(socket, "ended")
        return ended, await closed_code(socket)

    ended, code = async_to_sync(scenario)()
    assert ended == {"type": "ended", "reason": "terminated by ada", "status": "Terminated"}
    assert code == 4410


def test_malformed_browser_frames_get_an_error_and_oversized_ones_close_1009(
    agent, shell, admin_user
):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        errors = []
        for text in (
            "not json",
            "[1, 2]",
            '{"type": "resize", "cols": 0, "rows": 24}',
            '{"type": "resize", "cols": 80, "rows": 1001}',
            '{"type": "ack", "offset": -1}',
            '{"type": "explode"}',
        ):
            await viewer.send_to(text_data=text)
            errors.append(await json_of(viewer, "error"))
        nothing_reached_agent = await home.receive_nothing(timeout=0.2)
        await viewer.send_to(bytes_data=b"x" * (64 * 1024 + 1))
        return errors, nothing_reached_agent, await closed_code(viewer)

    errors, nothing_reached_agent, code = async_to_sync(scenario)()
    assert all(error["message"] for error in errors)
    assert nothing_reached_agent
    assert code == 1009


def test_an_agent_that_reconnects_gets_a_fresh_grant_and_offsets_go_on(agent, shell, admin_user):
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        await home.send_to(bytes_data=b"\x01first\r\n")
        await output_of(viewer, 7)
        await home.disconnect()
        dropped = await json_of(viewer, "status")
        while dropped["status"] != "Disconnected":
            dropped = await json_of(viewer, "status")
        status_while_away = (await asyncio.to_thread(reload, shell)).status
        back = agent_socket(agent, shell.session_id)
        assert (await back.connect())[0]
        grant = await json_of(back, "grant")
        while (await json_of(viewer, "status"))["status"] != "Connected":
            pass
        await back.send_to(bytes_data=b"\x01second\r\n")
        frames = await output_of(viewer, 8)
        await back.disconnect()
        await viewer.disconnect()
        return dropped, status_while_away, grant, frames

    dropped, status_while_away, grant, frames = async_to_sync(scenario)()
    assert "waiting for it to come back" in dropped["message"]
    assert status_while_away == SessionStatus.DISCONNECTED
    # The new relay holds nothing unacknowledged: the agent may send a whole window.
    assert grant == {"type": "grant", "bytes": SESSION_WINDOW_BYTES}
    assert frames == [(7, b"second\r\n")]


def test_the_maximum_duration_ends_the_session(agent, shell, admin_user, monkeypatch):
    monkeypatch.setattr(relay, "MINUTE_SECONDS", 0.5)
    Session.objects.filter(pk=shell.pk).update(max_duration_minutes=1)
    cookie = cookie_of(admin_user)

    async def scenario():
        home, viewer = await open_pair(agent, shell, cookie)
        # Activity does not keep it going.
        for _ in range(3):
            await home.send_to(bytes_data=b"\x01.")
            await asyncio.sleep(0.1)
        return await json_of(viewer, "ended")

    ended = async_to_sync(scenario)()
    assert ended == {"type": "ended", "reason": relay.MAX_DURATION, "status": "Terminated"}


def test_a_recording_that_is_not_mandatory_may_fail_without_ending_the_session(
    agent, admin_user, monkeypatch, settings
):
    settings.BOSUN_SESSION_RECORDING_REQUIRED = False
    session = session_start(principal=Principal(user=admin_user), node_id=agent.node_id)
    cookie = cookie_of(admin_user)

    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(relay, "recording_append", broken)

    async def scenario():
        home, viewer = await open_pair(agent, session, cookie)
        await home.send_to(bytes_data=b"\x01one\r\n")
        await output_of(viewer, 5)
        await asyncio.sleep(0.5)  # past a flush, which fails
        await home.send_to(bytes_data=b"\x01two\r\n")
        second = await output_of(viewer, 5)
        await home.disconnect()
        await viewer.disconnect()
        return second

    assert async_to_sync(scenario)() == [(5, b"two\r\n")]
    assert reload(session).status == SessionStatus.DISCONNECTED
