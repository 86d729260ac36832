"""What Bosun's hot websocket consumers share."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name


class LoopOnlyDispatch:
    """Channels' dispatch without its thread hop before every message.

    Channels closes stale database connections in a thread before each handler. A consumer
    mixing this in promises that no handler touches the database on the event loop (database
    work goes through database_sync_to_async, which does the same around each call): at a
    thousand agents, or a terminal flood, those hops were a tenth of the ws role's CPU.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
