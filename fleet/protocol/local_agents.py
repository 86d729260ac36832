"""The agent sockets one `ws` process holds, and the one channel that wakes them all.

Waking a thousand agents through a channel-layer group each meant a thousand group sends
from the sender and a thousand Redis round trips into this process. Instead every `ws`
process that holds agent sockets listens on one process channel in the group
AGENT_PUSH_GROUP; the sender publishes one message per few hundred nodes
(fleet.realtime), and each process hands each node's part to its own sockets for that node,
ignoring nodes it does not hold. Still at most once (DESIGN.md §2): a lost wake-up is only a
delay until the agent's next heartbeat.

The listener starts with the process's first agent socket and runs as long as the process
(an idle one costs one small message per command). A socket waits until the listener has
joined the group before its handshake reads the pending count, so a message committed in
between is either counted in the hello or pushed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer

from bosun.lib.per_loop import per_event_loop
from fleet.realtime import AGENT_PUSH_GROUP

logger = logging.getLogger(__name__)

# channels_redis forgets group members after a day: the listener joins again well before.
GROUP_REFRESH_SECONDS = 3600.0
RETRY_SECONDS = 1.0
# Group joins and leaves of this process's agent sockets in flight at once. The channel
# layer's Redis pool holds 100 connections and refuses more (MaxConnectionsError): thousands
# of agents reconnecting together after a restart must queue here instead of failing.
GROUP_CALLS = 50

# Called with the node's pushed messages (an empty list: "fetch").
Waker = Callable[[list[dict[str, Any]]], None]


class LocalAgents:
    def __init__(self) -> None:
        self._wakers: dict[str, set[Waker]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()
        self._group_calls = asyncio.Semaphore(GROUP_CALLS)

    async def group_add(self, group: str, channel: str) -> None:
        layer = get_channel_layer()
        if layer is not None:
            async with self._group_calls:
                await layer.group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        layer = get_channel_layer()
        if layer is not None:
            async with self._group_calls:
                await layer.group_discard(group, channel)

    async def listening(self) -> None:
        """Returns once wake-ups published from now on reach this process."""
        if self._listener is None or self._listener.done():
            self._joined.clear()
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        await self._joined.wait()

    def add(self, node_id: str, waker: Waker) -> None:
        self._wakers.setdefault(node_id, set()).add(waker)

    def discard(self, node_id: str, waker: Waker) -> None:
        wakers = self._wakers.get(node_id)
        if wakers is None:
            return
        wakers.discard(waker)
        if not wakers:
            del self._wakers[node_id]

    def deliver(self, wakes: dict[str, list[dict[str, Any]]]) -> int:
        """Hand each node's part to its sockets here; returns how many sockets were woken."""
        woken = 0
        for node_id, messages in wakes.items():
            for waker in tuple(self._wakers.get(node_id, ())):
                waker(messages)
                woken += 1
        return woken

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            self._joined.set()
            return
        while True:
            try:
                channel = await layer.new_channel()
                await layer.group_add(AGENT_PUSH_GROUP, channel)
                self._joined.set()
                await self._receive(layer, channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("agent wake-up listener failed; starting again")
                self._joined.set()  # sockets still work meanwhile: their heartbeats poll
                await asyncio.sleep(RETRY_SECONDS)

    async def _receive(self, layer: Any, channel: str) -> None:
        joined_at = time.monotonic()
        while True:
            message = await layer.receive(channel)
            wakes = message.get("wakes")
            if isinstance(wakes, dict):
                self.deliver(wakes)
            if time.monotonic() - joined_at > GROUP_REFRESH_SECONDS:
                await layer.group_add(AGENT_PUSH_GROUP, channel)
                joined_at = time.monotonic()


# One per process under daphne (see bosun.lib.per_loop).
local_agents = per_event_loop(LocalAgents)
