"""A session's home: the relay logic that lives with the agent's session socket.

One `Home` per agent socket of a session. It is the only writer of the session's recording
and the only one that talks to the agent; browsers (viewers, maybe in another `ws` process)
reach it through the channel layer (sessions.groups). It

- relays output to the viewers with its offset, keeps what no viewer has acknowledged yet (at
  most the window) so a browser that reconnects gets what it missed, and grants the agent more
  output credit as the viewers acknowledge: the agent never holds credit beyond the window
  minus what waits here, so a flood cannot grow the server's memory;
- records output (and input and resizes when input is recorded) as asciicast events through
  CastEncoder, written by recording_append in chunks every FLUSH_SECONDS or FLUSH_BYTES;
- ends the session, once, whatever ends it: the shell exiting, the agent refusing, a
  terminate, the idle timeout or the maximum duration, or a failed write of a mandatory
  recording (within a tick of the failure, well inside the 2 s the issue allows).

The consumer (sessions.consumers) gives it an `AgentLink` and feeds it frames and
channel-layer messages; everything here runs on the consumer's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from sessions import groups
from sessions.asciicast import CastEncoder
from sessions.exceptions import RecordingSequenceConflict
from sessions.models import Session, SessionStatus
from sessions.selectors import session_get
from sessions.services.recording import CHUNK_MAX_BYTES, recording_append
from sessions.services.sessions import (
    session_connected,
    session_disconnected,
    session_ended,
    session_progress,
)
from sessions.wire import FRAME_INPUT, FRAME_MAX_DATA, SESSION_WINDOW_BYTES

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
FLUSH_BYTES = 64 * 1024
# A write takes whatever has gathered since the last one, in whole lines up to the service's
# CHUNK_MAX_BYTES: a quiet session writes a chunk every FLUSH_SECONDS or FLUSH_BYTES, and a
# flood, where output keeps coming while a write is in the database, writes fewer and larger
# chunks (each write is a commit: their number costs more than their size).
TICK_SECONDS = 0.1
# Credit is granted in pieces at least this large, even to an agent with none left: a grant
# per rendered frame would be a frame back for every frame out (halving a flood's pace).
GRANT_MIN_BYTES = 32 * 1024
# Event lines waiting for the database beyond this hold the agent's credit back.
RECORDING_BACKLOG_BYTES = 2 * 1024 * 1024
MINUTE_SECONDS = 60.0

RECORDING_FAILED = "recording failed"
IDLE_TIMEOUT = "idle timeout"
MAX_DURATION = "maximum session duration reached"


class AgentLink(Protocol):
    """What the home needs of the agent's socket."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_json(self, frame: dict[str, Any]) -> None: ...

    async def close_socket(self, code: int) -> None: ...


Writer = Callable[[int, bytes], Awaitable[None]]
Head = Callable[[], Awaitable[int]]


class Recorder:
    """The recording's buffer: event lines gathered and written as numbered chunks."""

    def __init__(self, *, session: Session, writer: Writer, head: Head, enabled: bool) -> None:
        self.enabled = enabled
        self._head = head
        self.failed = False
        self._started_at = session.started_at.timestamp()
        self._encoder = CastEncoder(input_recorded=session.input_recorded)
        self._writer = writer
        self._pending = bytearray()
        self._sequence = session.recording_chunks
        self._last_flush = time.monotonic()
        self._lock = asyncio.Lock()

    def _elapsed(self) -> float:
        return time.time() - self._started_at

    def _add(self, lines: bytes) -> None:
        if self.enabled and not self.failed and lines:
            self._pending += lines

    def output(self, data: bytes) -> None:
        if self.enabled and not self.failed:
            self._add(self._encoder.output(self._elapsed(), data))

    def input(self, data: bytes) -> None:
        if self.enabled and not self.failed:
            self._add(self._encoder.input(self._elapsed(), data))

    def resize(self, cols: int, rows: int) -> None:
        # Resizes are recorded with the input: the spec keeps them together.
        if self.enabled and not self.failed and self._encoder.input_recorded:
            self._add(self._encoder.resize(self._elapsed(), cols, rows))

    def finish(self) -> None:
        if self.enabled and not self.failed:
            self._add(self._encoder.finish(self._elapsed()))

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def due(self) -> bool:
        if not self._pending:
            return False
        waited = time.monotonic() - self._last_flush
        return len(self._pending) >= FLUSH_BYTES or waited >= FLUSH_SECONDS

    async def flush(self) -> bool:
        """Write what is pending, in chunks of whole lines; False when a write failed."""
        async with self._lock:
            self._last_flush = time.monotonic()
            while self._pending and not self.failed:
                chunk = self._take(CHUNK_MAX_BYTES)
                try:
                    await self._write(chunk)
                except Exception:
                    logger.exception("recording chunk %s could not be written", self._sequence)
                    self.failed = True
                    self._pending.clear()
                    return False
                self._sequence += 1
            return not self.failed

    async def _write(self, chunk: bytes) -> None:
        try:
            await self._writer(self._sequence, chunk)
        except RecordingSequenceConflict:
            # The socket this one replaced wrote its last chunks after this one read the
            # chain's head: continue after them (a chunk is never overwritten).
            self._sequence = await self._head()
            await self._writer(self._sequence, chunk)

    def _take(self, limit: int) -> bytes:
        """Whole lines from the front, at most `limit` bytes of them (the pending bytes always
        end a line); a single line longer than that alone, for the service to refuse."""
        if len(self._pending) <= limit:
            end = len(self._pending)
        else:
            end = self._pending.rfind(b"\n", 0, limit) + 1 or self._pending.index(b"\n") + 1
        chunk = bytes(self._pending[:end])
        del self._pending[:end]
        return chunk


class Home:
    def __init__(self, *, session: Session, link: AgentLink) -> None:
        self.session = session
        self.session_id = session.session_id
        self.link = link
        self.ended = False
        self.recorder = Recorder(
            session=session,
            writer=self._write_chunk,
            head=self._recording_head,
            enabled=bool(session.recording_header) and not session.is_sealed,
        )
        self.bytes_in = session.bytes_in
        self.out_offset = session.bytes_out
        # Output from `unacked_from` to `out_offset`: what viewers may still ask for.
        self.unacked = bytearray()
        self.unacked_from = self.out_offset
        # Output credit the agent holds (it starts with a window's worth).
        self.credit = 0
        self.last_activity = time.monotonic()
        self.opened_at = time.monotonic()
        self.idle_seconds = session.idle_timeout_minutes * MINUTE_SECONDS
        # The maximum duration counts from the session's start, whichever socket holds it.
        longest = (session.max_duration_minutes or 0) * MINUTE_SECONDS
        started_ago = max(0.0, time.time() - session.started_at.timestamp())
        self.max_seconds_left = longest - started_ago if longest else None
        self._ticker: asyncio.Task[None] | None = None
        self._saved = (self.bytes_in, self.out_offset)
        self._flushing: asyncio.Task[None] | None = None
        # Output not yet published to the viewers, from offset `outbox_from`: published by one
        # task at a time, so the frames that arrive while a publish waits on the channel layer
        # go out together in the next one (a flood's 4 KiB reads become 64 KiB messages)
        # while a lone keystroke's echo goes out at once.
        self.outbox = bytearray()
        self.outbox_from = self.out_offset
        self._publishing: asyncio.Task[None] | None = None
        # Viewers in other processes, by channel, as their attach messages named them: live
        # output goes to them through the channel layer, and to those here through their
        # inbox (sessions.groups' same-process shortcut).
        self.remote_viewers: set[str] = set()
        self.viewers_group = groups.viewers(self.session_id)

    # --- Life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """The agent's socket is open. Its first socket starts with the window's credit; one
        that comes back after a drop (Disconnected) holds none, so it gets a fresh grant."""
        status = self.session.status
        if status == SessionStatus.CONNECTING:
            self.credit = SESSION_WINDOW_BYTES
        else:
            await self._grant()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        if status == SessionStatus.TERMINATING:
            await self.end("terminated", SessionStatus.TERMINATED, tell_agent=True)
            return
        if status == SessionStatus.DISCONNECTED:
            session = await database_sync_to_async(session_connected)(session_id=self.session_id)
            self.session.status = status = session.status
        # "attach": every viewer says where it is, so this home (maybe not the one they knew)
        # learns who to send output to.
        await self._publish(
            {"type": groups.STATUS, "status": status, "message": "agent connected", "attach": True}
        )

    async def agent_gone(self, *, replaced: bool = False) -> None:
        """The agent's socket dropped without an ending: it comes back within its grace period
        (to this process or another), so keep what was recorded and the counters. A socket
        `replaced` by a newer one of the same session leaves the session to that one."""
        self._stop_ticker()
        if self.ended:
            return
        await self._published()
        await self._flush()
        await self._save_progress()
        if replaced:
            return
        await database_sync_to_async(session_disconnected)(session_id=self.session_id)
        await self._publish(
            {
                "type": groups.STATUS,
                "status": SessionStatus.DISCONNECTED,
                "message": "the agent's connection dropped; waiting for it to come back",
            }
        )

    async def end(self, reason: str, status: str, *, tell_agent: bool = False) -> None:
        """End the session once: the recording's last events written and sealed, the session
        row ended and audited (the service tells the viewers), the agent's socket closed."""
        if self.ended:
            return
        self.ended = True
        await self._published()  # the viewers get all of the output before the ending
        if tell_agent:
            try:
                await self.link.send_json({"type": "terminate", "reason": reason})
            except Exception:
                logger.debug("could not tell the agent to terminate %s", self.session_id)
        try:
            self.recorder.finish()
            await self.recorder.flush()
            await database_sync_to_async(session_ended)(
                session_id=self.session_id,
                reason=reason,
                status=status,
                bytes_in=self.bytes_in,
                bytes_out=self.out_offset,
            )
        finally:
            # Even when the database failed us: the agent's reply to StartSession ends the
            # session row then (sessions_replied).
            self._stop_ticker()
            await self.link.close_socket(1000)

    # --- From the agent -----------------------------------------------------------------------

    async def output(self, data: bytes) -> None:
        if self.ended or not data:
            return
        start = self.out_offset
        self.out_offset += len(data)
        self.credit = max(0, self.credit - len(data))
        self.unacked += data
        overflow = len(self.unacked) - SESSION_WINDOW_BYTES
        if overflow > 0:  # an agent past its credit: the oldest output cannot be resumed
            del self.unacked[:overflow]
            self.unacked_from += overflow
        if self.session.idle_counts_output:
            self.last_activity = time.monotonic()
        self.recorder.output(data)
        self._flush_if_full()
        if not self.outbox:
            self.outbox_from = start
        self.outbox += data
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.get_running_loop().create_task(self._publish_output())

    async def started(self, *, run_as: str, pid: int | None) -> None:
        logger.debug("session %s: shell started, pid %s", self.session_id, pid)
        session = await database_sync_to_async(session_connected)(
            session_id=self.session_id, run_as=run_as
        )
        self.session.status = session.status
        if session.status == SessionStatus.TERMINATING:
            await self.end("terminated", SessionStatus.TERMINATED, tell_agent=True)
            return
        message = f"shell started as {session.run_as}" if session.run_as else "shell started"
        await self._publish({"type": groups.STATUS, "status": session.status, "message": message})

    async def refused(self, message: str) -> None:
        await self.end(f"refused by the agent: {message}", SessionStatus.FAILED)

    async def exited(self, *, status: int | None, reason: str) -> None:
        why = reason or "exited"
        if status is not None:
            why = f"{why} (status {status})"
        await self.end(why, SessionStatus.TERMINATED)

    # --- From the viewers ---------------------------------------------------------------------

    async def input(self, data: bytes) -> None:
        if self.ended or not data:
            return
        for start in range(0, len(data), FRAME_MAX_DATA):
            piece = data[start : start + FRAME_MAX_DATA]
            await self.link.send_bytes(bytes([FRAME_INPUT]) + piece)
        self.bytes_in += len(data)
        self.last_activity = time.monotonic()
        self.recorder.input(data)
        self._flush_if_full()

    async def resize(self, cols: int, rows: int) -> None:
        if self.ended:
            return
        await self.link.send_json({"type": "resize", "cols": cols, "rows": rows})
        self.recorder.resize(cols, rows)

    async def ack(self, offset: int) -> None:
        if self.ended:
            return
        offset = min(offset, self.out_offset)
        if offset > self.unacked_from:
            del self.unacked[: offset - self.unacked_from]
            self.unacked_from = offset
        await self._grant()

    async def attach(self, channel: str, offset: int) -> None:
        """Send one viewer what it has not seen: from `offset` (or the oldest output kept)."""
        if get_channel_layer() is None:
            return
        if not groups.is_local(self.viewers_group, channel):
            self.remote_viewers.add(channel)
        start = min(max(offset, self.unacked_from), self.out_offset)
        await self._send_to(channel, {"type": groups.REPLAY, "offset": start})
        held = bytes(self.unacked[start - self.unacked_from :])
        for piece_start in range(0, len(held), FRAME_MAX_DATA):
            piece = held[piece_start : piece_start + FRAME_MAX_DATA]
            await self._send_to(
                channel, {"type": groups.OUTPUT, "offset": start + piece_start, "data": piece}
            )
        await self._send_to(
            channel, {"type": groups.STATUS, "status": self.session.status, "message": ""}
        )

    async def terminate(self, reason: str) -> None:
        await self.end(reason, SessionStatus.TERMINATED, tell_agent=True)

    # --- Internals ----------------------------------------------------------------------------

    async def _grant(self) -> None:
        if self.ended or self.recorder.backlog > RECORDING_BACKLOG_BYTES:
            return
        room = SESSION_WINDOW_BYTES - len(self.unacked) - self.credit
        # Even an agent with no credit left waits for a piece worth a frame: it then holds
        # more than GRANT_MIN_BYTES of output unacked, so the acks that open the room come.
        if room >= GRANT_MIN_BYTES:
            self.credit += room
            await self.link.send_json({"type": "grant", "bytes": room})

    async def _publish_output(self) -> None:
        """Publish the outbox until it is empty, at most FRAME_MAX_DATA bytes a message."""
        try:
            while self.outbox:
                data = bytes(self.outbox[:FRAME_MAX_DATA])
                offset = self.outbox_from
                del self.outbox[: len(data)]
                self.outbox_from += len(data)
                await self._publish_to_viewers(
                    {"type": groups.OUTPUT, "offset": offset, "data": data}
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            # At most once, as the channel layer is: a viewer that sees the gap asks again.
            logger.exception("session %s: publishing output failed", self.session_id)
            self.outbox.clear()

    async def _published(self) -> None:
        """Wait until the outbox is published (an ending must not overtake the output)."""
        publishing = self._publishing
        if publishing is not None and publishing is not asyncio.current_task():
            await asyncio.gather(publishing, return_exceptions=True)

    async def _publish_to_viewers(self, message: dict[str, Any]) -> None:
        """Live output: to the viewers here through their inbox, to the others each through
        the channel layer."""
        for channel in groups.local_channels(self.viewers_group):
            groups.deliver_local(self.viewers_group, channel, message)
        for channel in list(self.remote_viewers):
            await self._send_to(channel, message)

    async def _send_to(self, channel: str, message: dict[str, Any]) -> None:
        if groups.deliver_local(self.viewers_group, channel, message):
            return
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            await layer.send(channel, message)
        except ChannelFull:
            # Nobody reads it any more (that viewer left): a viewer still there attaches again
            # when it sees a gap.
            self.remote_viewers.discard(channel)

    async def _publish(self, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(groups.viewers(self.session_id), message)

    async def _write_chunk(self, sequence: int, events: bytes) -> None:
        await database_sync_to_async(recording_append)(
            session=self.session, sequence=sequence, events=events
        )

    async def _recording_head(self) -> int:
        fresh = await database_sync_to_async(session_get)(session_id=self.session_id)
        return fresh.recording_chunks

    def _flush_if_full(self) -> None:
        if self.recorder.backlog >= FLUSH_BYTES and (
            self._flushing is None or self._flushing.done()
        ):
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        if await self.recorder.flush():
            await self._grant()
            return
        if self.session.recording_required and not self.ended:
            await self.end(RECORDING_FAILED, SessionStatus.FAILED, tell_agent=True)

    async def _save_progress(self) -> None:
        now = (self.bytes_in, self.out_offset)
        if now != self._saved:
            await database_sync_to_async(session_progress)(
                session_id=self.session_id, bytes_in=now[0], bytes_out=now[1]
            )
            self._saved = now

    async def _tick(self) -> None:
        while not self.ended:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self._check()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("session %s: the relay's tick failed", self.session_id)

    async def _check(self) -> None:
        if self.recorder.due():
            await self._flush()
            await self._save_progress()
        if self.ended:
            return
        now = time.monotonic()
        if now - self.last_activity >= self.idle_seconds:
            await self.end(IDLE_TIMEOUT, SessionStatus.TERMINATED, tell_agent=True)
        elif self.max_seconds_left is not None and now - self.opened_at >= self.max_seconds_left:
            await self.end(MAX_DURATION, SessionStatus.TERMINATED, tell_agent=True)

    def _stop_ticker(self) -> None:
        ticker = self._ticker
        self._ticker = None
        if ticker is not None and ticker is not asyncio.current_task():
            ticker.cancel()
