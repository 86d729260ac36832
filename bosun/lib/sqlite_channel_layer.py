"""A Channels layer for the embedded stack, shared between processes through one SQLite file.

Channels' in-memory layer lives inside one process, so an event published by the Celery worker
could never reach a websocket held by the web server. Redis is the production answer; this
layer gives the embedded stack the same reach with no server: messages are rows in a WAL-mode
SQLite file, and each process runs one poller that collects the messages for the channels it
is receiving on.

Like every Channels layer it is at-most-once: messages expire, and a channel over capacity
drops new messages. Bosun keeps its records in the database and uses the layer only to say
"look now", so that is enough.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import string
import threading
import time
from collections import defaultdict
from typing import Any

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    expires REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS channel_messages_channel ON channel_messages (channel, id);
CREATE TABLE IF NOT EXISTS channel_groups (
    group_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (group_name, channel)
);
"""


class SQLiteChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(
        self,
        path: str,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: Any = None,
        poll_interval: float = 0.02,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.path = path
        self.group_expiry = group_expiry
        self.poll_interval = poll_interval
        # Channels made by new_channel() in this process share this prefix, so one query with
        # a range on it collects the messages of every local consumer at once.
        self.client_prefix = "".join(random.choices(string.ascii_letters, k=12))  # noqa: S311
        self.local_prefix = f"specific.{self.client_prefix}!"
        self._local = threading.local()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._last_cleanup = 0.0
        self._receivers: _Receivers | None = None

    # --- storage ------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            with self._schema_lock:
                if not self._schema_ready:
                    connection.executescript(_SCHEMA)
                    self._schema_ready = True
            self._local.connection = connection
        return connection

    def _insert(self, rows: list[tuple[str, bytes]]) -> list[str]:
        """Store messages, skipping channels at capacity. Returns the channels that were full."""
        if not rows:
            return []
        now = time.time()
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            channels = sorted({channel for channel, _ in rows})
            marks = ",".join("?" * len(channels))
            counts = dict(
                db.execute(
                    f"SELECT channel, COUNT(*) FROM channel_messages "  # noqa: S608
                    f"WHERE channel IN ({marks}) AND expires > ? GROUP BY channel",
                    [*channels, now],
                ).fetchall()
            )
            full, accepted = [], []
            for channel, body in rows:
                if counts.get(channel, 0) >= self.get_capacity(channel):
                    full.append(channel)
                    continue
                counts[channel] = counts.get(channel, 0) + 1
                accepted.append((channel, now + self.expiry, body))
            db.executemany(
                "INSERT INTO channel_messages (channel, expires, body) VALUES (?, ?, ?)", accepted
            )
            if now - self._last_cleanup > self.expiry:
                self._last_cleanup = now
                db.execute("DELETE FROM channel_messages WHERE expires <= ?", (now,))
                db.execute("DELETE FROM channel_groups WHERE expires <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return full

    def _take(self, exact: list[str]) -> list[tuple[str, bytes]]:
        """Remove and return the live messages for this process's channels and ``exact``."""
        db = self._connection()
        prefix = self.local_prefix
        upper = prefix[:-1] + chr(ord("!") + 1)
        marks = ",".join("?" * len(exact)) or "NULL"
        return db.execute(
            f"DELETE FROM channel_messages WHERE expires > ? AND "  # noqa: S608
            f"((channel >= ? AND channel < ?) OR channel IN ({marks})) RETURNING channel, body",
            [time.time(), prefix, upper, *exact],
        ).fetchall()

    def _group_channels(self, group: str) -> list[str]:
        rows = self._connection().execute(
            "SELECT channel FROM channel_groups WHERE group_name = ? AND expires > ?",
            (group, time.time()),
        )
        return [row[0] for row in rows]

    # --- the layer API ------------------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        suffix = "".join(random.choices(string.ascii_letters, k=12))  # noqa: S311
        return f"{prefix}{self.client_prefix}!{suffix}"

    async def send(self, channel: str, message: dict) -> None:
        _require_dict(message)
        self.require_valid_channel_name(channel)
        full = await asyncio.to_thread(self._insert, [(channel, msgpack.packb(message))])
        if full:
            raise ChannelFull(channel)

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        return await self._receivers_for_loop().receive(channel)

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)

        def add() -> None:
            self._connection().execute(
                "INSERT OR REPLACE INTO channel_groups (group_name, channel, expires) "
                "VALUES (?, ?, ?)",
                (group, channel, time.time() + self.group_expiry),
            )

        await asyncio.to_thread(add)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)

        def discard() -> None:
            self._connection().execute(
                "DELETE FROM channel_groups WHERE group_name = ? AND channel = ?",
                (group, channel),
            )

        await asyncio.to_thread(discard)

    async def group_send(self, group: str, message: dict) -> None:
        _require_dict(message)
        self.require_valid_group_name(group)
        body = msgpack.packb(message)

        def fan_out() -> None:
            # Group sends drop silently for full channels, as every Channels layer does.
            self._insert([(channel, body) for channel in self._group_channels(group)])

        await asyncio.to_thread(fan_out)

    async def flush(self) -> None:
        def wipe() -> None:
            db = self._connection()
            db.execute("DELETE FROM channel_messages")
            db.execute("DELETE FROM channel_groups")

        await asyncio.to_thread(wipe)

    async def close(self) -> None:
        if self._receivers is not None:
            self._receivers.stop()
            self._receivers = None

    def _receivers_for_loop(self) -> _Receivers:
        loop = asyncio.get_running_loop()
        if self._receivers is None or self._receivers.loop is not loop:
            self._receivers = _Receivers(self, loop)
        return self._receivers


def _require_dict(message: object) -> None:
    if not isinstance(message, dict):
        raise TypeError("a channel layer message must be a dict")


class _Receivers:
    """The channels awaited in one event loop, fed by a single polling task."""

    # A channel nobody has awaited for this long is forgotten, with whatever it still held.
    IDLE_SECONDS = 120

    def __init__(self, layer: SQLiteChannelLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.queues: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)
        self.waiting: dict[str, int] = defaultdict(int)
        self.last_wait: dict[str, float] = {}
        self.task: asyncio.Task | None = None

    async def receive(self, channel: str) -> dict:
        self.waiting[channel] += 1
        self.last_wait[channel] = time.monotonic()
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._poll())
        try:
            return await self.queues[channel].get()
        finally:
            self.waiting[channel] -= 1
            self.last_wait[channel] = time.monotonic()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _exact_channels(self) -> list[str]:
        # Other channels (named ones, or made with another prefix) are polled by name, only
        # while someone waits on them.
        local = self.layer.local_prefix
        return [n for n, count in self.waiting.items() if count and not n.startswith(local)]

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - self.IDLE_SECONDS
        for name in [n for n, seen in self.last_wait.items() if seen < cutoff]:
            if not self.waiting.get(name):
                self.queues.pop(name, None)
                self.waiting.pop(name, None)
                self.last_wait.pop(name, None)

    async def _poll(self) -> None:
        while any(self.waiting.values()):
            rows = await asyncio.to_thread(self.layer._take, self._exact_channels())
            for channel, body in rows:
                self.queues[channel].put_nowait(msgpack.unpackb(body))
                self.last_wait.setdefault(channel, time.monotonic())
            self._forget_idle()
            if not rows:
                await asyncio.sleep(self.layer.poll_interval)
