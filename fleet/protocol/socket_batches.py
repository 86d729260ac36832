"""Acks and replies that arrive over agent websockets, recorded in batches.

A command to a thousand nodes brings a thousand acks and a thousand replies within a second.
One transaction each would cost a thousand round trips of BEGIN, lock, update, handlers,
COMMIT; instead every consumer of a `ws` process hands its entries to this process's batcher,
which records whatever has gathered in one call of fleet.protocol.answers (a few statements
for the lot) while the next batch gathers. Under light load a batch is a single entry and
waits for nothing; under heavy load batches grow by themselves.

A batch that fails as a whole (a deadlock, a bug one entry triggers) is retried entry by
entry, so one bad entry fails alone; an entry that still fails is answered as an internal
error, which the agent treats like an unreachable server (its outbox keeps the reply).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from bosun_agent import protocol
from channels.db import database_sync_to_async

from bosun.lib.per_loop import per_event_loop
from fleet.protocol.answers import Ack, Outcome, Reply, messages_ack, messages_reply
from fleet.protocol.errors import refusal

logger = logging.getLogger(__name__)

# Bounds one transaction's size (and the rows it locks) when thousands arrive at once.
MAX_BATCH = 500

Entry = TypeVar("Entry", Ack, Reply)


class Batcher(Generic[Entry]):
    def __init__(self, record: Callable[[Sequence[Entry]], list[Outcome]]) -> None:
        self._record: Callable[[Sequence[Entry]], list[Outcome]] = record
        self._waiting: list[tuple[Entry, asyncio.Future[Outcome]]] = []
        self._draining = False

    async def submit(self, entry: Entry) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            # One turn of the loop lets frames read in the same tick join the first batch.
            await asyncio.sleep(0)
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                entries = [entry for entry, _ in batch]
                outcomes = await database_sync_to_async(self._record_safely)(entries)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._draining = False
            for _, future in self._waiting:  # only when the loop itself is going away
                if not future.done():
                    future.cancel()

    def _record_safely(self, entries: list[Entry]) -> list[Outcome]:
        try:
            return list(self._record(entries))
        except Exception:
            if len(entries) == 1:
                logger.exception("recording an agent's %s failed", type(entries[0]).__name__)
                return [_failed(entries[0])]
            logger.warning("a batch of %d failed; recording one by one", len(entries))
        return [self._record_safely([entry])[0] for entry in entries]


def _failed(entry: Ack | Reply) -> Outcome:
    return Outcome(
        entry.message_id,
        error=refusal(protocol.ERROR_INTERNAL, "the server could not record this; send it again"),
    )


class _Batchers:
    def __init__(self) -> None:
        self.acks: Batcher[Ack] = Batcher(messages_ack)
        self.replies: Batcher[Reply] = Batcher(messages_reply)


# One pair per process under daphne (see bosun.lib.per_loop).
batchers = per_event_loop(_Batchers)
