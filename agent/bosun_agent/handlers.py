"""Message kind → handler.

A handler takes the message and returns a `Reply`; it never raises for an expected failure
(it returns `Reply.failed`). An exception it does raise becomes a Failed reply too, so one
bad message never stops the agent.

Most handlers need nothing but the message. Those that talk to the server while they run or
keep files (Run Command) register `with_context`: they also get the `HandlerContext` of the
node that runs them, so a simulator's thousands of nodes never share one node's calls, files
or running commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bosun_agent import __version__, protocol
from bosun_agent.messages import Message, Reply

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

FactsProvider = Callable[[], Awaitable[dict[str, Any]]]
# A signed POST through the node's runtime: it recovers from key rotations and stops the node
# on the refusals that must stop it, exactly as the runtime's own calls do.
Caller = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
# Opens a session's websocket (signed with the node's current key), for Session Manager.
SessionSocketOpener = Callable[[str], Awaitable["aiohttp.ClientWebSocketResponse[bool]"]]


class RunningMessages:
    """The messages of one node that are running now and can be asked to end early.

    A long handler (a RunCommand) enters `running()` for as long as it can be cancelled; a
    CancelCommand then sets the event it waits on."""

    def __init__(self) -> None:
        self._cancel_events: dict[str, asyncio.Event] = {}

    @contextlib.contextmanager
    def running(self, message_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._cancel_events[message_id] = event
        try:
            yield event
        finally:
            if self._cancel_events.get(message_id) is event:
                del self._cancel_events[message_id]

    def cancel(self, message_id: str) -> bool:
        """Ask a running message to end; False when it is not running here."""
        event = self._cancel_events.get(message_id)
        if event is None:
            return False
        event.set()
        return True

    def ids(self) -> list[str]:
        return sorted(self._cancel_events)


@dataclass(frozen=True)
class HandlerContext:
    """What a node lends the handlers that need more than their message."""

    node_id: str
    call: Caller
    running: RunningMessages
    # The node's private state directory; None for a node kept in memory (the simulator).
    state_dir: Path | None = None
    # Session Manager's websocket for a session id; None where sessions cannot run.
    open_session_socket: SessionSocketOpener | None = None


Handler = Callable[[Message], Awaitable[Reply]]
ContextHandler = Callable[[Message, HandlerContext], Awaitable[Reply]]
StartHook = Callable[[HandlerContext], Awaitable[None]]


class HandlerRegistry:
    def __init__(self) -> None:
        self._plain: dict[str, Handler] = {}
        self._contextual: dict[str, ContextHandler] = {}
        self._start_hooks: list[StartHook] = []

    def register(self, kind: str, handler: Handler) -> None:
        self._contextual.pop(kind, None)
        self._plain[kind] = handler

    def register_with_context(self, kind: str, handler: ContextHandler) -> None:
        self._plain.pop(kind, None)
        self._contextual[kind] = handler

    def on_start(self, hook: StartHook) -> None:
        """Run `hook` when a node starts, before it fetches any message (cleanup after a crash)."""
        self._start_hooks.append(hook)

    def kinds(self) -> list[str]:
        return sorted([*self._plain, *self._contextual])

    async def start(self, context: HandlerContext) -> None:
        for hook in self._start_hooks:
            try:
                await hook(context)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a start-up step of the message handlers failed")

    async def handle(self, message: Message, context: HandlerContext | None = None) -> Reply:
        plain = self._plain.get(message.kind)
        contextual = self._contextual.get(message.kind)
        if plain is None and contextual is None:
            return Reply.failed(f"this agent does not know message kind {message.kind}")
        try:
            if plain is not None:
                return await plain(message)
            if context is None or contextual is None:
                return Reply.failed(f"{message.kind} can only run inside the agent's runtime")
            return await contextual(message, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("message %s (%s) failed", message.message_id, message.kind)
            return Reply.failed(f"the agent failed while handling {message.kind}: {exc}")


def builtin_handlers(facts: FactsProvider) -> HandlerRegistry:
    """The kinds every agent answers (PROTOCOL.md "Built-in kinds")."""
    registry = HandlerRegistry()

    async def ping(message: Message) -> Reply:
        return Reply.success(pong=True, agent_version=__version__)

    async def refresh_host_facts(message: Message) -> Reply:
        return Reply.success(facts=await facts())

    registry.register(protocol.MESSAGE_PING, ping)
    registry.register(protocol.MESSAGE_REFRESH_HOST_FACTS, refresh_host_facts)
    return registry
