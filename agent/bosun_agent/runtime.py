"""The agent loop for one node; the simulator runs thousands of these in one process.

Two long-lived tasks per node:

- the heartbeat loop: a signed heartbeat every server-given interval (±10 %), rotating the
  key when the answer asks, and polling for messages whenever the websocket is down;
- the websocket loop: the push channel (`wake` with or without the new messages,
  `rotate-key`, `revoked`), reconnected with jittered exponential backoff. When the server
  takes them, acks and replies travel over it too (socket_requests), else over HTTP.

Work (fetch → journal → ack → handle → reply) runs in a short-lived task when either loop
asks for it; pushed messages skip the fetch. Each message's handler runs in its own task so a
long one never blocks a Ping. Replies are saved before they are sent and resent from the
outbox, before any new work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import aiohttp

from bosun_agent import __version__, protocol
from bosun_agent.backoff import HEARTBEAT_JITTER, Backoff, jittered
from bosun_agent.client import (
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
    encode_body,
)
from bosun_agent.facts import facts_digest
from bosun_agent.handlers import HandlerContext, HandlerRegistry, RunningMessages
from bosun_agent.messages import INTERRUPTED, Message, Reply
from bosun_agent.socket_requests import SocketRequests, SocketUnavailable
from bosun_agent.state import AgentState, StateError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REVOKED = 3
EXIT_CLONE = 4
EXIT_PROTOCOL = 5

REVOKED_MESSAGE = "this node was deregistered from Bosun; register it again with an activation"
DEFAULT_HEARTBEAT_SECONDS = 60.0
# A server asking for faster heartbeats than this is misconfigured; tests lower it.
MIN_HEARTBEAT_SECONDS = 1.0
FETCH_BATCH = 10
SHUTDOWN_FLUSH_SECONDS = 5.0
# Room for the JSON around a reply's result within the protocol's body limit.
MAX_REPLY_BYTES = protocol.MAX_BODY_BYTES - 1024

log = logging.getLogger(__name__)

FactsProvider = Callable[[], Awaitable[dict[str, Any]]]


class NodeStopped(Exception):
    """The node must stop: revoked, refused as a clone, or an incompatible protocol."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def clone_message(node_id: str) -> str:
    return (
        f"Bosun refused this machine as a suspected clone of {node_id}: its machine fingerprint "
        "differs from the one the node registered with (a copied disk, image or state "
        "directory). Register this machine on its own: bosun-agent register --force …"
    )


@dataclass
class RuntimeStats:
    """Counters one runtime keeps; the simulator shares one instance among all its nodes."""

    heartbeats_ok: int = 0
    heartbeats_failed: int = 0
    websockets_connected: int = 0  # open right now
    websocket_connects: int = 0
    reconnects: int = 0  # connects after the first, for any node
    messages_answered: int = 0
    replies_deferred: int = 0  # replies left in the outbox for a retry
    key_rotations: int = 0
    stopped: int = 0


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # not subscriptable before Python 3.11
    _LoggerAdapter = logging.LoggerAdapter


class _NodeLogger(_LoggerAdapter):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        prefix = self.extra.get("prefix") if self.extra else None
        return (f"{prefix}: {msg}" if prefix else msg), kwargs


class NodeRuntime:
    def __init__(
        self,
        *,
        client: AgentClient,
        state: AgentState,
        fingerprint: str,
        facts: FactsProvider,
        handlers: HandlerRegistry,
        stats: RuntimeStats | None = None,
        heartbeat_jitter: float = HEARTBEAT_JITTER,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_SECONDS,
        rng: random.Random | None = None,
        log_prefix: str = "",
    ) -> None:
        identity = state.identity()
        key = state.node_key()
        if identity is None or key is None:
            raise StateError("this node is not registered: run bosun-agent register first")
        self.client = client
        self.state = state
        self.node_id = identity.node_id
        self.credentials = Credentials(identity.node_id, key, fingerprint)
        self.facts = facts
        self.handlers = handlers
        self.stats = stats or RuntimeStats()
        self.heartbeat_jitter = heartbeat_jitter
        self.heartbeat_interval = heartbeat_interval
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.log = _NodeLogger(log, {"prefix": log_prefix})
        self.outcome: NodeStopped | None = None
        self._stop: asyncio.Event | None = None
        self._heartbeat_wake: asyncio.Event | None = None
        self._websocket_retry_event: asyncio.Event | None = None
        self._websocket: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._work_task: asyncio.Task[None] | None = None
        self._work_again = False
        self._running: set[asyncio.Task[None]] = set()
        self._rotation_lock: asyncio.Lock | None = None
        self._rotation_wanted = state.pending_key() is not None
        self._heartbeat_backoff = Backoff(rng=self.rng)
        self._outbox_backoff = Backoff(rng=self.rng)
        self._outbox_retry_at = 0.0
        self._outbox_timer: asyncio.TimerHandle | None = None
        self._sending: set[str] = set()  # replies on the wire right now: never sent twice at once
        # Messages this process has taken (journaled, acking or running), until their reply.
        self._in_flight: set[str] = set()
        self.socket_requests = SocketRequests()
        self._reclaimed = False  # the first fetch of this run has asked for its leases back
        # Long messages running now (RunCommand), so a CancelCommand can reach them.
        self.running = RunningMessages()
        self.handler_context = HandlerContext(
            node_id=self.node_id,
            call=self.call,
            running=self.running,
            state_dir=state.directory(),
            open_session_socket=self._open_session_socket,
        )

    async def _open_session_socket(self, session_id: str) -> aiohttp.ClientWebSocketResponse[bool]:
        """A session's websocket, signed with the key of the moment (keys rotate)."""
        return await self.client.session_websocket(self.credentials, session_id)

    # Running and stopping.

    async def run(self) -> int:
        """Run until stopped; the exit code says why (see the module's EXIT_ constants)."""
        self._stop = asyncio.Event()
        self._answer_interrupted_messages()
        # Before any message runs: clean up what a crashed run left (its process groups).
        await self.handlers.start(self.handler_context)
        loops = [
            asyncio.create_task(self._guard(self._heartbeat_loop())),
            asyncio.create_task(self._guard(self._websocket_loop())),
        ]
        try:
            await self._stop.wait()
        finally:
            await self._shut_down(loops)
        if self.outcome is None:
            return EXIT_OK
        self.stats.stopped += 1
        return self.outcome.exit_code

    def stop(self) -> None:
        """Ask for a clean stop (SIGTERM, SIGINT, the end of a simulation)."""
        if self._stop is not None:
            self._stop.set()

    async def _guard(self, loop: Coroutine[Any, Any, None]) -> None:
        try:
            await loop
        except NodeStopped:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("the agent loop failed")
            self.outcome = self.outcome or NodeStopped(EXIT_ERROR, "the agent loop failed")
            self.stop()

    async def _shut_down(self, loops: list[asyncio.Task[None]]) -> None:
        tasks: list[asyncio.Task[None]] = [*loops, *self._running]
        if self._work_task is not None:
            tasks.append(self._work_task)
        if self._outbox_timer is not None:
            self._outbox_timer.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._websocket is not None:
            await self._websocket.close()
        if self.outcome is None and self.state.outbox():
            # A last try for replies made while stopping; whatever fails stays on disk.
            with contextlib.suppress(asyncio.TimeoutError, NodeStopped):
                self._outbox_retry_at = 0.0
                await asyncio.wait_for(self._flush_outbox(), SHUTDOWN_FLUSH_SECONDS)

    def _halt(self, exit_code: int, message: str) -> NodeStopped:
        stopped = NodeStopped(exit_code, message)
        if self.outcome is None:
            self.outcome = stopped
            self.log.error("%s", message)
        self.stop()
        return stopped

    # Signed calls, with the refusals that stop a node and the key recovery.

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._call_with(path, body, self.credentials)
        except Unauthorized as exc:
            if exc.code in (protocol.ERROR_SIGNATURE, protocol.ERROR_UNKNOWN_NODE):
                answer = await self._call_with_stored_keys(path, body)
                if answer is not None:
                    return answer
            if exc.code == protocol.ERROR_STALE:
                self.log.error("the server refused a request as stale: is this clock right?")
            raise

    async def _call_with(
        self, path: str, body: dict[str, Any], credentials: Credentials
    ) -> dict[str, Any]:
        try:
            return await self.client.call(path, body, credentials)
        except Revoked as exc:
            raise self._revoked(exc.message) from exc
        except Clone as exc:
            raise self._halt(EXIT_CLONE, clone_message(self.node_id)) from exc
        except ProtocolRefused as exc:
            raise self._halt(EXIT_PROTOCOL, exc.message) from exc

    async def _call_with_stored_keys(
        self, path: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A 401 after a rotation whose answer was lost (the server has the pending key), or
        after `bosun-agent rotate-key` changed the key under a running agent: try those keys."""
        current = protocol.public_key_text(self.credentials.key)
        for pending, key in ((True, self.state.pending_key()), (False, self.state.node_key())):
            if key is None or protocol.public_key_text(key) == current:
                continue
            credentials = Credentials(self.node_id, key, self.credentials.fingerprint)
            try:
                answer = await self._call_with(path, body, credentials)
            except Unauthorized:
                continue
            if pending:
                self.state.promote_pending_key()
                self._rotation_wanted = False
                self.log.info("the server had the pending key already: it is now the node key")
            self.credentials = credentials
            return answer
        return None

    def _revoked(self, server_message: str) -> NodeStopped:
        identity = self.state.identity()
        if identity is not None and identity.revoked_at is None:
            self.state.save_identity(identity.revoked(server_message or "deregistered"))
        return self._halt(EXIT_REVOKED, REVOKED_MESSAGE)

    # Heartbeats.

    async def heartbeat(self) -> dict[str, Any]:
        answer = await self.call(protocol.HEARTBEAT_PATH, {"agent_version": __version__})
        self._apply_interval(answer)
        if answer.get("rotate_key"):
            self._rotation_wanted = True
        return answer

    def _apply_interval(self, answer: dict[str, Any]) -> None:
        interval = answer.get("heartbeat_interval")
        if isinstance(interval, (int, float)) and MIN_HEARTBEAT_SECONDS <= interval <= 86400:
            self.heartbeat_interval = float(interval)

    async def _heartbeat_loop(self) -> None:
        backoff = self._heartbeat_backoff
        facts_sent = False
        while True:
            try:
                answer = await self.heartbeat()
            except (ServerUnavailable, ServerRefusal) as exc:
                self.stats.heartbeats_failed += 1
                delay = backoff.next_delay()
                self.log.warning("heartbeat failed (%s); retrying in %.1f s", exc, delay)
                await self._sleep_or_wake(delay)
                continue
            self.stats.heartbeats_ok += 1
            if backoff.failing:
                self.log.info("heartbeats reach the server again")
            backoff.reset()
            if self._websocket is None:
                # The server answers again: try the websocket now rather than at the end of
                # its own backoff (heartbeats are already spread, so this is no stampede).
                self._websocket_retry.set()
            if self._rotation_wanted:
                await self._rotate_quietly()
            if not facts_sent:
                facts_sent = await self._report_changed_facts()
            # Wake-ups travel an at-most-once channel: the count in the heartbeat is the net
            # under it. Without a websocket, poll every heartbeat.
            # A run's first fetch must happen even when nothing is pending: it reclaims what an
            # earlier run leased and never acked (those are not counted as pending).
            if (
                self._websocket is None
                or answer.get("pending_messages")
                or self.state.outbox()
                or not self._reclaimed
            ):
                self.request_work()
            await self._sleep_or_wake(
                jittered(self.heartbeat_interval, self.heartbeat_jitter, self.rng)
            )

    @property
    def _wake(self) -> asyncio.Event:
        # Made on first use, inside the running loop: on Python 3.9 an Event binds to the loop
        # current when it is created.
        if self._heartbeat_wake is None:
            self._heartbeat_wake = asyncio.Event()
        return self._heartbeat_wake

    @property
    def _websocket_retry(self) -> asyncio.Event:
        if self._websocket_retry_event is None:
            self._websocket_retry_event = asyncio.Event()
        return self._websocket_retry_event

    async def _websocket_pause(self, seconds: float, backoff: Backoff) -> None:
        """Wait out a websocket backoff, cut short when a heartbeat finds the server back."""
        self._websocket_retry.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._websocket_retry.wait(), seconds)
            backoff.reset()

    async def _sleep_or_wake(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _report_changed_facts(self) -> bool:
        """Send the host facts once a run when they changed (an upgrade, a new address)."""
        identity = self.state.identity()
        try:
            facts = await self.facts()
        except Exception:
            self.log.exception("could not collect the host facts")
            return True
        digest = facts_digest(facts)
        if identity is None or identity.facts_digest == digest:
            return True
        try:
            await self.call(protocol.FACTS_PATH, {"facts": facts})
        except (ServerUnavailable, ServerRefusal) as exc:
            self.log.warning("could not send the host facts (%s); will try again", exc)
            return False
        self.state.save_identity(replace(identity, facts_digest=digest))
        return True

    # Key rotation.

    async def rotate_key(self) -> None:
        """Generate a key, keep it as pending, have the server take it (signed with the old
        key, proved by the new), then make it the node key. Raises when the server cannot."""
        new_key = self.state.pending_key()
        if new_key is None:
            new_key = protocol.generate_private_key()
            self.state.save_pending_key(new_key)
        body = {
            "public_key": protocol.public_key_text(new_key),
            "proof": protocol.key_rotation_proof(new_key, self.node_id),
        }
        try:
            await self._call_with(protocol.ROTATE_KEY_PATH, body, self.credentials)
        except Unauthorized:
            # The old key may be retired already: an earlier rotation reached the server and
            # only its answer was lost. If the pending key works, that is what happened.
            probe = Credentials(self.node_id, new_key, self.credentials.fingerprint)
            await self._call_with(protocol.HEARTBEAT_PATH, {"agent_version": __version__}, probe)
        self.state.promote_pending_key()
        self.credentials = Credentials(self.node_id, new_key, self.credentials.fingerprint)
        self._rotation_wanted = False
        self.stats.key_rotations += 1
        self.log.info("rotated the node key")

    async def _rotate_quietly(self) -> None:
        if self._rotation_lock is None:
            self._rotation_lock = asyncio.Lock()
        if self._rotation_lock.locked():
            return  # the heartbeat and the websocket both asked: one rotation is enough
        async with self._rotation_lock:
            try:
                await self.rotate_key()
            except (ServerUnavailable, ServerRefusal) as exc:
                self.log.warning("key rotation failed (%s); the next heartbeat retries", exc)

    # The websocket.

    async def _websocket_loop(self) -> None:
        backoff = Backoff(rng=self.rng)
        connected_before = False
        while True:
            try:
                websocket = await self.client.websocket(self.credentials)
            except ProtocolRefused as exc:
                raise self._halt(EXIT_PROTOCOL, exc.message) from exc
            except ServerUnavailable as exc:
                delay = backoff.next_delay()
                self.log.info("websocket unavailable (%s); retrying in %.1f s", exc, delay)
                await self._websocket_pause(delay, backoff)
                continue
            self._websocket = websocket
            self.stats.websockets_connected += 1
            self.stats.websocket_connects += 1
            if connected_before:
                self.stats.reconnects += 1
            connected_before = True
            try:
                await self._read_websocket(websocket, backoff)
            finally:
                self._websocket = None
                self.socket_requests.detach()
                self.stats.websockets_connected -= 1
                with contextlib.suppress(Exception):
                    await websocket.close()
            if self.outcome is not None:
                return  # closed because the node must stop: nothing to reconnect
            delay = backoff.next_delay()
            self.log.info("websocket closed; reconnecting in %.1f s", delay)
            await self._websocket_pause(delay, backoff)

    async def _read_websocket(
        self, websocket: aiohttp.ClientWebSocketResponse[bool], backoff: Backoff
    ) -> None:
        while True:
            frame = await websocket.receive()
            if frame.type == aiohttp.WSMsgType.TEXT:
                self._on_frame(frame.data, backoff)
            elif frame.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                code = websocket.close_code
                if frame.type == aiohttp.WSMsgType.CLOSE and isinstance(frame.data, int):
                    code = frame.data
                reason = frame.extra if isinstance(frame.extra, str) else ""
                self._on_close(code, reason)
                return

    def _on_frame(self, text: str, backoff: Backoff) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == protocol.WS_ANSWER:
            self.socket_requests.on_answer(frame)
        elif kind == protocol.WS_HELLO:
            self.log.info("websocket connected to %s", self.client.base_url)
            backoff.reset()
            if self._websocket is not None:
                self.socket_requests.attach(self._websocket, frame.get("requests"))
            self._apply_interval(frame)
            if self._heartbeat_backoff.failing:
                self._wake.set()  # heartbeats were failing and the server is back
            if frame.get("pending_messages") or self.state.outbox():
                self.request_work()
        elif kind == protocol.WS_WAKE:
            pushed = frame.get("messages")
            if isinstance(pushed, list) and pushed:
                self._spawn(self._take_pushed(pushed))
            else:
                self.request_work()
        elif kind == protocol.WS_ROTATE_KEY:
            self._rotation_wanted = True
            self._spawn(self._rotate_quietly())
        elif kind == protocol.WS_REVOKED:
            message = frame.get("message")
            self._revoked(message if isinstance(message, str) else "")

    def _on_close(self, code: int | None, reason: str) -> None:
        refused = close_refusal(code or 0, reason)
        if isinstance(refused, Revoked):
            self._revoked(refused.message)
        elif isinstance(refused, Clone):
            self._halt(EXIT_CLONE, clone_message(self.node_id))
        elif isinstance(refused, ProtocolRefused):
            self._halt(EXIT_PROTOCOL, refused.message)
        elif refused is not None:
            self.log.warning("the server refused the websocket: %s", refused)
            # A heartbeat now tries the stored keys if the refusal was the signature.
            self._wake.set()

    # Work: fetch → journal → ack → handle → reply.

    def request_work(self) -> None:
        if self._stop is not None and self._stop.is_set():
            return
        if self._work_task is not None and not self._work_task.done():
            self._work_again = True
            return
        self._work_task = asyncio.create_task(self._guard(self._work()))

    async def _work(self) -> None:
        self._work_again = True
        while self._work_again:
            self._work_again = False
            try:
                if not await self._flush_outbox():
                    return  # old replies first; the outbox retry asks for work again
                while await self._fetch_once():
                    pass
            except (ServerUnavailable, ServerRefusal) as exc:
                self.log.warning("fetching messages failed (%s)", exc)
                return

    async def _fetch_once(self) -> bool:
        """Fetch one batch and start it; True when the batch was full (fetch again)."""
        body: dict[str, Any] = {"max": FETCH_BATCH}
        if not self._reclaimed:
            # This run's first fetch: what an earlier run leased and never acked comes back.
            body["reclaim"] = True
        answer = await self.call(protocol.FETCH_PATH, body)
        self._reclaimed = True
        items = answer.get("messages")
        if not isinstance(items, list):
            return False
        for item in items:
            try:
                message = Message.from_wire(item)
            except ValueError as exc:
                self.log.error("ignoring a message: %s", exc)
                continue
            await self._accept(message)
        return len(items) >= FETCH_BATCH

    async def _take_pushed(self, items: list[Any]) -> None:
        """Messages the wake-up carried: taken as a fetch's would be, without the fetch."""
        for item in items:
            try:
                message = Message.from_wire(item)
            except ValueError as exc:
                self.log.error("ignoring a pushed message: %s", exc)
                continue
            try:
                await self._accept(message)
            except (ServerUnavailable, ServerRefusal) as exc:
                self.log.warning("taking message %s failed (%s)", message.message_id, exc)

    async def _accept(self, message: Message) -> None:
        if message.message_id in self._in_flight:
            # Redelivered while it still runs here: its ack was lost and the lease ran out.
            # Ack it now (the server then knows it started); its reply comes when it ends.
            with contextlib.suppress(MessageNotFound, ServerUnavailable):
                await self._ack(message)
            return
        if self.state.journaled(message.message_id):
            # Redelivered (an ack was lost): never run it again; the saved reply answers.
            reply = self.state.saved_reply(message.message_id)
            if reply is None:
                reply = Reply.failed(INTERRUPTED)
                self.state.save_reply(message.message_id, reply)
            with contextlib.suppress(MessageNotFound, ServerUnavailable):
                await self._ack(message)
            await self._send_reply(message.message_id, reply)
            return
        # Taken before the ack's round trip, so a push and a fetch of the same message
        # arriving together never both start it.
        self._in_flight.add(message.message_id)
        self.state.journal_start(message.message_id)  # durable before it can run
        try:
            await self._ack(message)
        except MessageNotFound:
            self.log.info("message %s is no longer this node's; not running it", message.message_id)
            self.state.journal_finish(message.message_id)
            self._in_flight.discard(message.message_id)
            return
        except ServerUnavailable as exc:
            # Journaled, so it runs at most once; the reply goes through the outbox.
            self.log.warning("ack of %s failed (%s); running it anyway", message.message_id, exc)
        except BaseException:
            self._in_flight.discard(message.message_id)
            raise
        self._spawn(self._run_message(message))

    async def _ack(self, message: Message) -> None:
        path = protocol.ACK_PATH.format(message_id=message.message_id)
        await self._answer_request(protocol.WS_ACK, path, message.message_id, {})

    async def _answer_request(
        self, kind: str, path: str, message_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """An ack or reply: over the websocket when the server takes it there, else HTTP."""
        if self.socket_requests.takes(kind):
            try:
                return await self.socket_requests.request(kind, message_id, body)
            except SocketUnavailable as exc:
                self.log.info("%s of %s goes over HTTP: %s", kind, message_id, exc)
        return await self.call(path, body)

    async def _run_message(self, message: Message) -> None:
        try:
            try:
                reply = await self.handlers.handle(message, self.handler_context)
            except asyncio.CancelledError:
                self.state.save_reply(
                    message.message_id,
                    Reply.failed("the agent was stopped while running this message"),
                )
                raise
            self.state.save_reply(message.message_id, fit_reply(reply))
        finally:
            self._in_flight.discard(message.message_id)
        await self._flush_outbox()  # older replies waiting there go first

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guard(coroutine))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    # Replies and the outbox.

    async def _send_reply(self, message_id: str, reply: Reply) -> bool:
        """Send one reply; False (and a scheduled retry) when the server could not take it."""
        if message_id in self._sending:
            return True  # another task is sending it this instant
        self._sending.add(message_id)
        try:
            path = protocol.REPLY_PATH.format(message_id=message_id)
            await self._answer_request(protocol.WS_REPLY, path, message_id, reply.to_wire())
        except (MessageNotFound, BadRequest) as exc:
            # Sending again would be refused again: the server will never take this one.
            self.log.error("the server refused the reply to %s: %s", message_id, exc)
            self.state.reply_delivered(message_id)
            return True
        except (ServerUnavailable, ServerRefusal) as exc:
            self.stats.replies_deferred += 1
            delay = self._outbox_backoff.next_delay()
            self._outbox_retry_at = time.monotonic() + delay
            if self._outbox_timer is not None:
                self._outbox_timer.cancel()
            self._outbox_timer = asyncio.get_running_loop().call_later(delay, self.request_work)
            self.log.warning("reply to %s kept for a retry in %.1f s (%s)", message_id, delay, exc)
            return False
        finally:
            self._sending.discard(message_id)
        self.state.reply_delivered(message_id)
        self.stats.messages_answered += 1
        self._outbox_backoff.reset()
        return True

    async def _flush_outbox(self) -> bool:
        """Resend saved replies, oldest first; True once the outbox is empty."""
        if time.monotonic() < self._outbox_retry_at:
            return False
        for message_id, reply in self.state.outbox():
            if not await self._send_reply(message_id, reply):
                return False
        return True

    def _answer_interrupted_messages(self) -> None:
        """Messages started by an earlier run that never replied: the run stopped under them."""
        for message_id in self.state.interrupted():
            if self.state.saved_reply(message_id) is not None:
                # The stop came between saving the reply and journaling it done.
                self.state.journal_finish(message_id)
                continue
            self.log.warning("message %s was interrupted by a stop; answering Failed", message_id)
            self.state.save_reply(message_id, Reply.failed(INTERRUPTED))


def fit_reply(reply: Reply) -> Reply:
    """A reply the server can take: one over the body limit becomes a Failed reply saying so."""
    try:
        size = len(encode_body(reply.to_wire()))
    except (TypeError, ValueError):
        return Reply.failed("the agent produced a result that is not JSON")
    except BadRequest:
        size = protocol.MAX_BODY_BYTES + 1
    if size <= MAX_REPLY_BYTES:
        return reply
    return Reply.failed(
        f"the result was {size} bytes, more than the {MAX_REPLY_BYTES} a reply can carry"
    )
