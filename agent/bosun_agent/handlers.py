"""Message kind → handler. Run Command and friends add their kinds here later.

A handler takes the message and returns a `Reply`; it never raises for an expected failure
(it returns `Reply.failed`). An exception it does raise becomes a Failed reply too, so one
bad message never stops the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Callable

from bosun_agent import __version__, protocol
from bosun_agent.messages import Message, Reply

log = logging.getLogger(__name__)

FactsProvider = Callable[[], Awaitable[dict[str, Any]]]
Handler = Callable[[Message], Awaitable[Reply]]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, message: Message) -> Reply:
        handler = self._handlers.get(message.kind)
        if handler is None:
            return Reply.failed(f"this agent does not know message kind {message.kind}")
        try:
            return await handler(message)
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
