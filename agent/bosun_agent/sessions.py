"""Session Manager on the agent: a `StartSession` message becomes a shell on a PTY, relayed
over a websocket of its own (PROTOCOL.md "Session Manager").

The handler opens `SESSION_WEBSOCKET_PATH` (signed like the agent's websocket), starts the
PtySession the payload describes and relays: output as binary 0x01 frames, read only within
the credit the server grants (so a flood stays in the kernel's PTY buffer, never here);
input (0x02 frames) written to the PTY at once; resize and terminate as they come. When the
shell ends it sends "exited", closes the socket and replies to the message.

A dropped socket is not the end of the session: the agent keeps the shell (without reading
it: no socket, no credit) and reconnects, 0.5 s doubling to 4 s, for SESSION_GRACE_SECONDS;
the server then grants afresh what it has room for. After the grace it ends the shell. A
close with a 4xxx code (the session is unknown, another node's or over) is final.

Each shell's process group is recorded under the state directory, so the next agent start
ends what a crashed agent left running (`end_leftover_sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bosun_agent import protocol
from bosun_agent.backoff import Backoff
from bosun_agent.client import ServerUnavailable, session_id_safe
from bosun_agent.handlers import HandlerContext, HandlerRegistry, SessionSocketOpener
from bosun_agent.messages import Message, Reply
from bosun_agent.process_groups import GroupRecords, end_marked_groups
from bosun_agent.session_pty import MAX_SIZE, PtySession, PtySpec
from bosun_agent.session_users import SessionRefused

log = logging.getLogger(__name__)

SESSION_PROCESSES_DIR = "session-processes"  # under the state directory: one record a shell
RECONNECT_BASE_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 4.0
RECONNECT_JITTER = 0.25
LOST_SERVER = "agent lost the server"
AGENT_STOPPED = "agent stopped"
CLOSE_FRAME_SECONDS = 2.0  # at most this long for a last frame and the close at the end
_CLOSED = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.ERROR,
)
_OUTPUT = bytes([protocol.SESSION_FRAME_OUTPUT])
# What a socket that went away raises while the relay sends or reads.
_SOCKET_ERRORS = (ConnectionError, aiohttp.ClientError, asyncio.TimeoutError)

Socket = aiohttp.ClientWebSocketResponse


def register_session_handlers(registry: HandlerRegistry) -> None:
    """StartSession for this host, and the clean-up of a crashed run's shells."""
    registry.register_with_context(protocol.MESSAGE_START_SESSION, start_session)
    registry.on_start(end_leftover_sessions)


async def end_leftover_sessions(context: HandlerContext) -> None:
    """At start: end the shells (and what they started) of sessions a crash left running."""
    if context.state_dir is None:
        return
    records = GroupRecords(context.state_dir / SESSION_PROCESSES_DIR)
    markers = {record.message_id for _, record in records.load() if record is not None}
    await records.end_leftovers()
    if markers:
        # The shell's jobs sit in process groups of their own; they carry its marker.
        await end_marked_groups(markers)


class PayloadError(ValueError):
    """The StartSession payload cannot be used; the message says which field."""


@dataclass(frozen=True)
class SessionRequest:
    session_id: str
    spec: PtySpec

    @classmethod
    def session_id_of(cls, payload: dict[str, Any]) -> str:
        session_id = payload.get("session_id")
        if not isinstance(session_id, str) or not session_id_safe(session_id):
            raise PayloadError("session_id must be a session id")
        return session_id

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> SessionRequest:
        session_id = cls.session_id_of(payload)
        fields: dict[str, Any] = {}
        for name in ("run_as", "command", "profile"):
            value = payload.get(name, "")
            if not isinstance(value, str):
                raise PayloadError(f"{name} must be a string")
            fields[name] = value
        allow_root = payload.get("allow_root", False)
        if not isinstance(allow_root, bool):
            raise PayloadError("allow_root must be true or false")
        for name, default in (("cols", 80), ("rows", 24)):
            value = payload.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
                raise PayloadError(f"{name} must be a whole number from 1 to {MAX_SIZE}")
            fields[name] = value
        spec = PtySpec(allow_root=allow_root, marker=session_id, **fields)
        return cls(session_id, spec)


async def start_session(message: Message, context: HandlerContext) -> Reply:
    try:
        session_id = SessionRequest.session_id_of(message.payload)
    except PayloadError as exc:
        return Reply.failed(f"the StartSession payload is not usable: {exc}")
    if context.open_session_socket is None or context.state_dir is None:
        return Reply.failed("Session Manager needs the agent's runtime and state directory")
    records = GroupRecords(context.state_dir / SESSION_PROCESSES_DIR)
    relay = SessionRelay(session_id, context.open_session_socket, records)
    return await relay.run(message.payload)


class SessionRelay:
    """One session: its socket (reconnected while the grace lasts), its shell, its frames."""

    def __init__(
        self,
        session_id: str,
        open_socket: SessionSocketOpener,
        records: GroupRecords | None = None,
        *,
        grace: float | None = None,
    ) -> None:
        self.session_id = session_id
        self.open_socket = open_socket
        self.grace = protocol.SESSION_GRACE_SECONDS if grace is None else grace
        self.pty = PtySession(credit=0, records=records)
        self.credit = protocol.SESSION_WINDOW_BYTES  # what the server lets us send now
        self.held = b""  # read from the PTY, not yet sent (at most one read)
        self.credit_changed = asyncio.Event()
        self.server_ended = ""  # why the server ended the session (a final close)
        self.terminate_asked = False
        self.reconnects = 0
        self.socket: Socket[bool] | None = None  # the one open now

    async def run(self, payload: dict[str, Any]) -> Reply:
        try:
            socket = await self._connect()
        except ServerUnavailable as exc:
            return Reply.failed(f"could not open the session's websocket: {exc}")
        self.socket = socket
        try:
            try:
                request = SessionRequest.from_payload(payload)
                await self.pty.start(request.spec)
            except (PayloadError, SessionRefused) as exc:
                text = str(exc)
                if isinstance(exc, PayloadError):
                    text = f"the StartSession payload is not usable: {exc}"
                await self._last_frame(socket, {"type": protocol.SESSION_REFUSED, "message": text})
                return Reply.failed(text)
            run_as = self.pty.run_as.name if self.pty.run_as is not None else ""
            started = {"type": protocol.SESSION_STARTED, "run_as": run_as, "pid": self.pty.pid}
            # A socket gone already: the relay below finds it so, and reconnects.
            with contextlib.suppress(RuntimeError, *_SOCKET_ERRORS):
                await socket.send_str(json.dumps(started))
            await self._relay(socket)
        except asyncio.CancelledError:
            await self.pty.terminate(AGENT_STOPPED)
            await self._last_frame(self.socket, self._exited_frame())
            raise
        finally:
            await self.pty.close()
            with contextlib.suppress(Exception):
                await self.socket.close()
        return Reply.success(
            exit_status=self.pty.exit_status,
            end_reason=self.pty.end_reason,
            bytes_in=self.pty.bytes_in,
            bytes_out=self.pty.bytes_out,
        )

    # The socket.

    async def _connect(self) -> Socket[bool]:
        """Open the socket, trying again until the grace is over."""
        deadline = time.monotonic() + self.grace
        backoff = Backoff(
            base=RECONNECT_BASE_SECONDS, cap=RECONNECT_CAP_SECONDS, jitter=RECONNECT_JITTER
        )
        while True:
            try:
                return await self.open_socket(self.session_id)
            except ServerUnavailable as exc:
                delay = backoff.next_delay()
                if time.monotonic() + delay >= deadline:
                    raise
                log.info("session %s: socket unavailable (%s)", self.session_id, exc)
                await asyncio.sleep(delay)

    async def _relay(self, socket: Socket[bool]) -> None:
        """Relay until the shell has ended and its output is sent, reconnecting on drops."""
        while True:
            ended = await self._connected(socket)
            if ended:
                await self._last_frame(socket, self._exited_frame())
                return
            with contextlib.suppress(Exception):
                await socket.close()
            if self.server_ended:
                await self.pty.terminate(self.server_ended)
                return
            # Dropped: hold the shell, read nothing (no credit until the server grants anew).
            self.credit = 0
            try:
                socket = await self._connect()
            except ServerUnavailable as exc:
                log.warning("session %s: the server is gone (%s)", self.session_id, exc)
                await self.pty.terminate(LOST_SERVER)
                return
            self.socket = socket
            self.reconnects += 1

    async def _connected(self, socket: Socket[bool]) -> bool:
        """Relay over one socket; True once the shell ended and all is sent, False when the
        socket closed first."""
        pump = asyncio.ensure_future(self._pump(socket))
        reader = asyncio.ensure_future(self._read_socket(socket))
        try:
            await asyncio.wait((pump, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, reader):
                task.cancel()
            await asyncio.gather(pump, reader, return_exceptions=True)
        for task in (pump, reader):
            failure = None if task.cancelled() else task.exception()
            if failure is not None and not isinstance(failure, _SOCKET_ERRORS):
                raise failure  # not the socket's doing: reconnecting would not help
        return pump.done() and not pump.cancelled() and pump.exception() is None and pump.result()

    async def _pump(self, socket: Socket[bool]) -> bool:
        """Output → 0x01 frames, never more than the credit; True at the end of the output."""
        while True:
            if self.held:
                size = min(len(self.held), self.credit)
                if size:
                    # Sent, then dropped: a socket that fails here keeps it for the next.
                    await socket.send_bytes(_OUTPUT + self.held[:size])
                    self.held = self.held[size:]
                    self.credit -= size
                    continue
            elif self.credit > 0:
                if self.pty.credit < self.credit:
                    self.pty.grant(self.credit - self.pty.credit)
                data = await self.pty.read()  # never waits for credit: it has some
                if not data:
                    return True
                self.held = data
                continue
            if self.terminate_asked and self.pty.exit_status is not None:
                return True  # ended on request: what is left unread is dropped
            self.credit_changed.clear()
            await self.credit_changed.wait()

    async def _read_socket(self, socket: Socket[bool]) -> None:
        """Frames from the server until the socket closes; a 4xxx close ends the session."""
        while True:
            frame = await socket.receive()
            if frame.type == aiohttp.WSMsgType.BINARY:
                data = frame.data
                if data[:1] == bytes([protocol.SESSION_FRAME_INPUT]):
                    await self.pty.write(data[1:])
            elif frame.type == aiohttp.WSMsgType.TEXT:
                await self._on_text(frame.data)
            elif frame.type in _CLOSED:
                code = socket.close_code
                if frame.type == aiohttp.WSMsgType.CLOSE and isinstance(frame.data, int):
                    code = frame.data
                if code is not None and 4000 <= code <= 4999:
                    reason = frame.extra if isinstance(frame.extra, str) else ""
                    self.server_ended = f"the server closed the session ({code} {reason})".replace(
                        " )", ")"
                    )
                return

    async def _on_text(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == protocol.SESSION_GRANT:
            amount = frame.get("bytes")
            if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
                self.credit += amount
                self.credit_changed.set()
        elif kind == protocol.SESSION_RESIZE:
            cols, rows = frame.get("cols"), frame.get("rows")
            try:
                if not isinstance(cols, int) or not isinstance(rows, int):
                    raise ValueError("cols and rows must be numbers")
                self.pty.resize(cols, rows)
            except ValueError as exc:
                log.info("session %s: resize ignored: %s", self.session_id, exc)
        elif kind == protocol.SESSION_TERMINATE:
            reason = frame.get("reason")
            self.terminate_asked = True
            await self.pty.terminate(reason if isinstance(reason, str) and reason else "terminated")
            self.credit_changed.set()

    def _exited_frame(self) -> dict[str, Any]:
        status = self.pty.exit_status
        return {
            "type": protocol.SESSION_EXITED,
            "status": -1 if status is None else status,
            "reason": self.pty.end_reason or "",
        }

    async def _last_frame(self, socket: Socket[bool], frame: dict[str, Any]) -> None:
        """A final text frame and the close, best effort and never for long."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.send_str(json.dumps(frame)), CLOSE_FRAME_SECONDS)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.close(), CLOSE_FRAME_SECONDS)
