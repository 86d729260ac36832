"""One process of a RunCommand step: started in a session of its own, its output read as it
comes, and ended with its whole process group on a timeout, a cancel or an agent stop.

The pipes are the agent's own (not asyncio's subprocess pipes), read by protocols that hand
every read straight to the capture: nothing queues up between the pipe and the cap, so a
process printing gigabytes costs the agent one read buffer, and never blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bosun_agent.command_output import StreamCapture
from bosun_agent.process_groups import RUN_MARKER_ENV, GroupRecords, end_group

# After the shell exits, how long its pipes may stay open (a background process inherited
# them) before the agent stops reading: the step is over when its shell is.
PIPE_GRACE_SECONDS = 2.0
# After the group was killed, how long to wait for the shell's exit status.
EXIT_STATUS_WAIT_SECONDS = 5.0

EXITED = "exited"
TIMED_OUT = "timed out"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ProcessEnd:
    how: str  # EXITED, TIMED_OUT or CANCELLED
    exit_code: int | None  # for EXITED: the exit status (128 + N when killed by signal N)


class _PipeReader(asyncio.Protocol):
    def __init__(self, capture: StreamCapture, closed: asyncio.Future[None]) -> None:
        self.capture = capture
        self.closed = closed

    def data_received(self, data: bytes) -> None:
        self.capture.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass(frozen=True)
class ProcessStep:
    """Where and how one step's process runs, and where its output and group id go."""

    argv: Sequence[str]
    cwd: Path
    stdout: StreamCapture
    stderr: StreamCapture
    records: GroupRecords
    message_id: str
    step: int


async def run_process(spec: ProcessStep, timeout: float, cancel: asyncio.Event) -> ProcessEnd:
    """Run to the end, the timeout or the cancel; OSError when the process cannot start."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        try:
            process = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                cwd=str(spec.cwd),
                env={**os.environ, RUN_MARKER_ENV: spec.message_id},
                start_new_session=True,
            )
        finally:
            os.close(out_write)
            os.close(err_write)
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    pgid = process.pid  # a new session's leader leads its own group
    pipes = [
        (os.fdopen(out_read, "rb", buffering=0), spec.stdout),
        (os.fdopen(err_read, "rb", buffering=0), spec.stderr),
    ]
    record = None
    transports: list[asyncio.BaseTransport] = []
    try:
        record = spec.records.add(pgid, spec.message_id, spec.step)
        closed = await _read_pipes(pipes, transports)
        end = await _wait(process, timeout, cancel)
        # What the processes wrote before they ended is still in the pipes: read it all.
        await asyncio.wait(closed, timeout=PIPE_GRACE_SECONDS)
    except BaseException:
        # The agent is stopping, or failed here: the step's processes must not outlive it.
        # Should this be cut short too, the record stays and the next start ends the group.
        if await end_group(pgid) and record is not None:
            spec.records.remove(record)
        raise
    finally:
        for transport in transports:
            transport.close()
        for pipe, _ in pipes:
            pipe.close()  # a no-op for those a transport already closed
    spec.records.remove(record)
    return end


async def _read_pipes(
    pipes: Sequence[tuple[BinaryIO, StreamCapture]], transports: list[asyncio.BaseTransport]
) -> list[asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    closed: list[asyncio.Future[None]] = []
    for pipe, capture in pipes:
        done: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.connect_read_pipe(
            functools.partial(_PipeReader, capture, done), pipe
        )
        transports.append(transport)
        closed.append(done)
    return closed


async def _wait(
    process: asyncio.subprocess.Process, timeout: float, cancel: asyncio.Event
) -> ProcessEnd:
    exited = asyncio.ensure_future(process.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        done, _ = await asyncio.wait(
            {exited, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if exited in done:
            code = exited.result()
            return ProcessEnd(EXITED, code if code >= 0 else 128 - code)
        how = CANCELLED if cancelled in done else TIMED_OUT
        await end_group(process.pid)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), EXIT_STATUS_WAIT_SECONDS)
        return ProcessEnd(how, None)
    finally:
        cancelled.cancel()
        if not exited.done():
            exited.cancel()
