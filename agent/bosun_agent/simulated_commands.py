"""Run Command on the simulator's virtual nodes: no process, no upload, no file.

A virtual node answers a RunCommand with every step `Success` and empty output, after an
optional delay (`--command-delay`) during which a CancelCommand ends it as `Cancelled`. So a
benchmark measures the server's fan-out and bookkeeping, not thousands of shells. With a
journal (`--journal-file`) each run that starts appends "node_id message_id" to one shared
file, flushed at once, so a test that kills servers and agents can prove none ran twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bosun_agent import protocol
from bosun_agent.command_spec import (
    CommandSpec,
    PayloadError,
    StepResult,
    empty_stream,
    run_outcome,
    run_reply,
    run_response_code,
)
from bosun_agent.commands import cancel_command
from bosun_agent.handlers import HandlerContext, HandlerRegistry
from bosun_agent.messages import Message, Reply


async def start_session(message: Message) -> Reply:
    """A virtual node has no shell to offer."""
    return Reply.failed("sessions are not simulated")


class CommandJournal:
    """One line per run started, shared by every virtual node of a simulation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self) -> None:
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run

    def record(self, node_id: str, message_id: str) -> None:
        if self._file is not None:
            self._file.write(f"{node_id} {message_id}\n")
            self._file.flush()  # a killed simulator must not lose the runs it started

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class SimulatedCommands:
    """The RunCommand behaviour every virtual node of one simulation shares."""

    delay: float = 0.0
    journal: CommandJournal | None = None
    started: int = 0
    cancelled: int = 0

    def register(self, registry: HandlerRegistry) -> None:
        registry.register_with_context(protocol.MESSAGE_RUN_COMMAND, self.run_command)
        registry.register_with_context(protocol.MESSAGE_CANCEL_COMMAND, cancel_command)
        registry.register(protocol.MESSAGE_START_SESSION, start_session)

    async def run_command(self, message: Message, context: HandlerContext) -> Reply:
        try:
            spec = CommandSpec.from_payload(message.payload)
        except PayloadError as exc:
            return Reply.failed(f"the RunCommand payload is not usable: {exc}")
        self.started += 1
        if self.journal is not None:
            self.journal.record(context.node_id, message.message_id)
        started_at = time.time()
        cancelled = False
        if self.delay > 0:
            with context.running.running(message.message_id) as cancel:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(cancel.wait(), self.delay)
                cancelled = cancel.is_set()
        results = []
        for step in spec.steps:
            result = StepResult(step.name, step.action, started_at=started_at)
            result.ran = not cancelled
            if cancelled:
                result.end(protocol.STEP_CANCELLED, "cancelled", protocol.KILLED_RESPONSE_CODE)
            else:
                result.end(protocol.STEP_SUCCESS, "", 0)
            results.append(result)
        self.cancelled += cancelled
        outcome = run_outcome(results, cancelled)
        streams = {"stdout": empty_stream(), "stderr": empty_stream()}
        result_wire = {
            "command_id": spec.command_id,
            "outcome": outcome,
            "response_code": run_response_code(results, outcome),
            "steps": [result.to_wire(streams) for result in results],
        }
        return run_reply(result_wire)
