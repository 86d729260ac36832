"""The session websockets: the agent's (the session's home) and the browser's (a viewer).

Both are thin: they check who is on the other end, parse frames, and hand them on: the
agent's to its sessions.relay.Home, the browser's through the channel layer (sessions.groups)
to the home, which may live in another `ws` process. agent/PROTOCOL.md "Session Manager" is
the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import struct
from typing import Any
from urllib.parse import parse_qs

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

from access.adapters import CLOSE_FORBIDDEN, principal_from_scope
from access.authorization import Principal
from bosun.lib.consumers import LoopOnlyDispatch
from bosun.lib.errors import AccessDenied, BosunError
from fleet.protocol.auth import Handshake, handshake_authenticate
from fleet.protocol.errors import close_code
from sessions import groups
from sessions.exceptions import DoesNotExistException
from sessions.models import Session
from sessions.relay import Home
from sessions.services.sessions import (
    TERMINAL_MAX,
    session_for_agent,
    session_for_viewer,
    session_terminate,
)
from sessions.wire import CLOSE_SESSION_UNKNOWN, FRAME_MAX_DATA, FRAME_OUTPUT

CLOSE_UNAUTHENTICATED = 4401
CLOSE_ENDED = 4410
CLOSE_TOO_BIG = 1009
# Control frames are a few dozen bytes; anything this long is not one.
CONTROL_FRAME_MAX = 4096
AGENT_TEXT_MAX = 64 * 1024
_OFFSET = struct.Struct(">Q")


def agent_session_open(handshake: Handshake, session_id: str) -> Session:
    """Authenticate the agent's signed handshake, then find its open session."""
    node = handshake_authenticate(handshake)
    return session_for_agent(session_id=session_id, node_id=node.pk)


def viewer_open(*, scope: dict[str, Any], session_id: str) -> tuple[Principal, Session]:
    principal = principal_from_scope(scope)
    return principal, session_for_viewer(principal=principal, session_id=session_id)


class _InboxDispatch(LoopOnlyDispatch):
    """The session consumers' dispatch (bosun.lib.consumers): from the client, the channel
    layer, and the inbox that sessions.groups' same-process shortcut fills."""

    channel_layer_alias: str
    inbox: asyncio.Queue[dict[str, Any]]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # channels.consumer.AsyncConsumer.__call__, with the inbox as a third source (first
        # after the client: a message already in it was sent before one the layer holds).
        self.inbox = asyncio.Queue()
        layer = get_channel_layer(self.channel_layer_alias)
        if layer is None:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
            return
        consumer: Any = self
        consumer.scope = scope
        consumer.channel_layer = layer
        consumer.channel_name = await layer.new_channel()
        consumer.channel_receive = functools.partial(layer.receive, consumer.channel_name)
        consumer.base_send = send
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch(
                [receive, self.inbox.get, consumer.channel_receive], self.dispatch
            )


class AgentSessionConsumer(_InboxDispatch, AsyncWebsocketConsumer):
    """/ws/agent/sessions/<session_id>/: the agent's side of one session."""

    home: Home | None = None
    group: str | None = None
    replaced = False

    async def connect(self) -> None:
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        try:
            session = await database_sync_to_async(agent_session_open)(
                Handshake.of(self.scope), session_id
            )
        except ProtocolError as error:
            await self.accept()
            await self.close(code=close_code(error))
            return
        except DoesNotExistException:
            await self.accept()
            await self.close(code=CLOSE_SESSION_UNKNOWN)
            return
        self.group = groups.home(session.session_id)
        # An older socket of this session (a reconnect raced its drop) steps aside.
        await self.channel_layer.group_send(
            self.group, {"type": groups.REPLACED, "channel": self.channel_name}
        )
        await self.channel_layer.group_add(self.group, self.channel_name)
        groups.local_join(self.group, self.channel_name, self.inbox)
        await self.accept()
        self.home = Home(session=session, link=self)
        await self.home.start()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            groups.local_leave(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.home is not None:
            await self.home.agent_gone(replaced=self.replaced)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        home = self.home
        if home is None:
            return
        if bytes_data is not None:
            if (
                not bytes_data
                or bytes_data[0] != FRAME_OUTPUT
                or len(bytes_data) > 1 + FRAME_MAX_DATA
            ):
                await self.close(code=protocol.CLOSE_BAD_REQUEST)
                return
            await home.output(bytes_data[1:])
            return
        frame = _agent_frame(text_data or "")
        if frame is None:
            await self.close(code=protocol.CLOSE_BAD_REQUEST)
            return
        kind = frame.get("type")
        if kind == "started":
            run_as, pid = frame.get("run_as"), frame.get("pid")
            await home.started(
                run_as=run_as if isinstance(run_as, str) else "",
                pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            )
        elif kind == "refused":
            message = frame.get("message")
            await home.refused(str(message)[:500] if message else "no reason given")
        elif kind == "exited":
            status, reason = frame.get("status"), frame.get("reason")
            await home.exited(
                status=status if isinstance(status, int) and not isinstance(status, bool) else None,
                reason=str(reason)[:200] if reason else "exited",
            )
        # Other types are from a newer agent: ignored, as the protocol's other sockets do.

    # AgentLink, for the home.

    async def send_bytes(self, data: bytes) -> None:
        await self.send(bytes_data=data)

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def close_socket(self, code: int) -> None:
        await self.close(code=code)

    # Channel-layer messages to the home (sessions.groups).

    async def shell_input(self, message: dict[str, Any]) -> None:
        if self.home is not None:
            await self.home.input(message["data"])

    async def shell_resize(self, message: dict[str, Any]) -> None:
        if self.home is not None:
            await self.home.resize(message["cols"], message["rows"])

    async def shell_ack(self, message: dict[str, Any]) -> None:
        if self.home is not None:
            await self.home.ack(message["offset"])

    async def shell_attach(self, message: dict[str, Any]) -> None:
        if self.home is not None:
            await self.home.attach(message["channel"], message["offset"])

    async def shell_terminate(self, message: dict[str, Any]) -> None:
        if self.home is not None:
            await self.home.terminate(message.get("reason") or "terminated")

    async def shell_replaced(self, message: dict[str, Any]) -> None:
        if self.home is not None and message.get("channel") != self.channel_name:
            self.replaced = True
            await self.close(code=1000)


def _output_frame(data: bytes) -> bool:
    return bool(data) and data[0] == FRAME_OUTPUT and len(data) <= 1 + FRAME_MAX_DATA


def _agent_frame(text: str) -> dict[str, Any] | None:
    if len(text) > AGENT_TEXT_MAX:
        return None
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


class BrowserSessionConsumer(_InboxDispatch, AsyncWebsocketConsumer):
    """/ws/sessions/<session_id>/?resume=<offset>: a browser's terminal on one session."""

    session_id: str = ""
    principal: Principal | None = None
    joined: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The next output offset this browser needs; None until the home says where it is.
        self.expected = 0
        self.requested = 0
        self.replayed = False
        self.resend_pending = False
        # Acks go to the home one at a time: those the browser sends meanwhile are folded
        # into the newest (an ack covers every byte before its offset).
        self.ack_pending: int | None = None
        self.acking: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        try:
            principal, session = await database_sync_to_async(viewer_open)(
                scope=self.scope, session_id=session_id
            )
        except AccessDenied:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        except DoesNotExistException:
            await self.accept()
            await self.close(code=CLOSE_SESSION_UNKNOWN)
            return
        await self.accept()
        if session.is_ended:
            await self._send_json(
                {"type": "ended", "reason": session.end_reason, "status": session.status}
            )
            await self.close(code=CLOSE_ENDED)
            return
        self.session_id = session.session_id
        self.principal = principal
        self.joined = groups.viewers(session.session_id)
        await self.channel_layer.group_add(self.joined, self.channel_name)
        groups.local_join(self.joined, self.channel_name, self.inbox)
        await self._send_json({"type": "status", "status": session.status, "message": ""})
        self.requested = self.expected = _resume_offset(self.scope.get("query_string", b""))
        await self._attach()

    async def disconnect(self, code: int) -> None:
        if self.acking is not None and not self.acking.done():
            await asyncio.gather(self.acking, return_exceptions=True)
        if self.joined is not None:
            groups.local_leave(self.joined, self.channel_name)
            await self.channel_layer.group_discard(self.joined, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.principal is None:
            return
        if bytes_data is not None:
            if len(bytes_data) > FRAME_MAX_DATA:
                await self.close(code=CLOSE_TOO_BIG)
                return
            if bytes_data:
                await self._to_home({"type": groups.INPUT, "data": bytes_data})
            return
        text = text_data or ""
        if len(text) > CONTROL_FRAME_MAX:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            await self._control(text)
        except FrameError as error:
            await self._send_json({"type": "error", "message": str(error)})

    async def _control(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            raise FrameError("frames are JSON objects or binary input") from None
        if not isinstance(frame, dict):
            raise FrameError("frames are JSON objects or binary input")
        kind = frame.get("type")
        if kind == "resize":
            cols, rows = _size(frame.get("cols")), _size(frame.get("rows"))
            await self._to_home({"type": groups.RESIZE, "cols": cols, "rows": rows})
        elif kind == "ack":
            offset = frame.get("offset")
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise FrameError("ack: offset is a number of output bytes, 0 or more")
            self.ack_pending = max(offset, self.ack_pending or 0)
            if self.acking is None or self.acking.done():
                self.acking = asyncio.get_running_loop().create_task(self._send_acks())
        elif kind == "terminate" and self.principal is not None:
            try:
                await database_sync_to_async(session_terminate)(
                    principal=self.principal, session_id=self.session_id
                )
            except BosunError as error:
                raise FrameError(error.message) from None
        else:
            raise FrameError("type: one of resize, ack, terminate")

    # Channel-layer messages to the viewers (sessions.groups).

    async def shell_replay(self, message: dict[str, Any]) -> None:
        offset = message["offset"]
        if not self.replayed and offset != self.requested:
            self.expected = offset  # the home holds nothing from where this browser asked
        else:
            self.expected = max(self.expected, offset)
        self.replayed = True
        self.resend_pending = False

    async def shell_output(self, message: dict[str, Any]) -> None:
        offset, data = message["offset"], message["data"]
        end = offset + len(data)
        if end <= self.expected:
            return  # sent before (a replay overlapping the live output)
        if offset > self.expected:
            # A message the channel layer dropped: ask the home again from where we are.
            if not self.resend_pending:
                await self._attach()
            return
        await self.send(bytes_data=_OFFSET.pack(self.expected) + data[self.expected - offset :])
        self.expected = end

    async def shell_status(self, message: dict[str, Any]) -> None:
        if self.resend_pending or message.get("attach"):
            # The home was not there when this browser attached, or a new one (the agent's
            # socket came back) asks its viewers to say where they are.
            await self._attach()
        await self._send_json(
            {"type": "status", "status": message["status"], "message": message.get("message", "")}
        )

    async def shell_ended(self, message: dict[str, Any]) -> None:
        # The ending comes through the channel layer; output the home put in the inbox
        # before it ended goes out first.
        while not self.inbox.empty():
            await self.dispatch(self.inbox.get_nowait())
        await self._send_json(
            {"type": "ended", "reason": message["reason"], "status": message["status"]}
        )
        await self.close(code=CLOSE_ENDED)

    async def _send_acks(self) -> None:
        while self.ack_pending is not None:
            offset, self.ack_pending = self.ack_pending, None
            await self._to_home({"type": groups.ACK, "offset": offset})

    async def _attach(self) -> None:
        self.resend_pending = True
        await self._to_home(
            {"type": groups.ATTACH, "channel": self.channel_name, "offset": self.expected}
        )

    async def _to_home(self, message: dict[str, Any]) -> None:
        group = groups.home(self.session_id)
        local = groups.local_channels(group)
        if local:  # the home is in this process: straight into its inbox
            for channel in local:
                groups.deliver_local(group, channel, message)
            return
        await self.channel_layer.group_send(group, message)

    async def _send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))


class FrameError(Exception):
    """A browser frame refused with an error frame (the socket stays open)."""


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= TERMINAL_MAX:
        raise FrameError(f"resize: cols and rows are whole numbers from 1 to {TERMINAL_MAX}")
    return value


def _resume_offset(query_string: bytes) -> int:
    values = parse_qs(query_string.decode("latin-1")).get("resume") or ["0"]
    try:
        offset = int(values[0])
    except ValueError:
        return 0
    return max(0, offset)
