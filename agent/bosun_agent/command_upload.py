"""Uploading a run's output: every second while its steps run, and what is left before the
reply (PROTOCOL.md "Run Command", Output).

Chunks carry their offsets and the server ignores one it already stored, so a chunk whose
answer was lost is simply sent again. Only what the server confirmed is forgotten here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bosun_agent import protocol
from bosun_agent.backoff import Backoff
from bosun_agent.client import ServerRefusal, ServerUnavailable
from bosun_agent.command_output import RunOutput, json_size
from bosun_agent.handlers import Caller

log = logging.getLogger(__name__)

UPLOAD_INTERVAL_SECONDS = 1.0
# The runtime refuses replies over MAX_BODY_BYTES - 1 KiB; keep another KiB for its envelope.
REPLY_BUDGET_BYTES = protocol.MAX_BODY_BYTES - 2048


class OutputUploader:
    def __init__(self, call: Caller, message_id: str, output: RunOutput) -> None:
        self.call = call
        self.path = protocol.OUTPUT_PATH.format(message_id=message_id)
        self.output = output
        # The server refused an upload (400, 404, 413): the same again would be refused again.
        self.refused = False

    async def upload_every_interval(self) -> None:
        """Each second, whatever came since (in as many bodies as it takes): the server shows
        a running step's output as it comes, and this agent holds little of it."""
        while True:
            await asyncio.sleep(UPLOAD_INTERVAL_SECONDS)
            await self.flush()

    async def upload_once(self) -> bool:
        """One request with what the server lacks; True when it took it or nothing was due."""
        if self.refused:
            return False
        chunks = self.output.pending_chunks()
        if not chunks:
            return True
        try:
            await self.call(self.path, {"chunks": [chunk.to_wire() for chunk in chunks]})
        except ServerUnavailable as exc:
            log.info("uploading output failed (%s); it is sent again", exc)
            return False
        except ServerRefusal as exc:
            log.warning("the server refused the output (%s); the reply carries what fits", exc)
            self.refused = True
            return False
        self.output.confirm(chunks)
        return True

    async def flush(self) -> bool:
        """Upload everything unconfirmed; False at the first failure."""
        while self.output.pending_chunks():
            if not await self.upload_once():
                return False
        return True

    async def settle(self, reply_budget: int) -> None:
        """Before the reply: upload what is left. While more is left than the reply can carry,
        try again with backoff, unless the server refused it outright."""
        backoff = Backoff()
        while not await self.flush():
            if self.refused or self.output.tails_fit(reply_budget):
                return
            await asyncio.sleep(backoff.next_delay())

    @staticmethod
    def reply_budget(result_without_output: dict[str, Any]) -> int:
        """Bytes of output a reply can carry beside the rest of `result`."""
        return REPLY_BUDGET_BYTES - json_size(result_without_output)

    def tail_allowances(self, result_without_output: dict[str, Any]) -> dict[tuple[int, str], int]:
        return self.output.tail_allowances(self.reply_budget(result_without_output))
